//! The owned transport of `openai-completions` and `minimax-completions` (docs/wire.md#transport):
//! one shared runtime and client, a cancellation token per stream raced against every await (R1),
//! the timeouts of R2, HTTP-status handling (docs/wire.md#error-messages) and the retries of R17
//! (R-numbers: docs/wire.md#requirements). Bytes go to the
//! SSE reader and the chunk state machine (`state::ChunkProcessor`, built in `sink.rs`); their events go to the stream's [`StreamQueue`].

pub mod client;
pub mod errors;
pub mod log;
pub mod queue;
pub mod sink;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio_util::sync::CancellationToken;

use crate::sse::SseReader;
use crate::state::{ChunkProcessor, Flow};
use crate::types::{scrub_key, Block, ErrorReason, Event, RequestPlan, StopReason};
use queue::{Queued, StreamQueue};

pub use client::runtime;

/// The cancellation message of docs/wire.md#error-messages.
pub const ABORTED_MESSAGE: &str = "Request was aborted";

/// A JSON completion larger than this is refused rather than buffered.
const JSON_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// After `[DONE]`, the rest of the body is read for at most this long (and this much) so the
/// connection can go back to the keep-alive pool instead of being closed.
const TRAILER_GRACE: Duration = Duration::from_millis(250);
const TRAILER_LIMIT: usize = 64 * 1024;

/// Start `plan` on the shared runtime; events go to `queue` until exactly one terminal event.
pub fn spawn(plan: RequestPlan, started: i64, queue: Arc<StreamQueue>, token: CancellationToken) {
    let machine = sink::new_machine(&plan, started);
    let driver = Driver {
        url: plan.url.clone(),
        plan,
        machine,
        queue,
        token,
        out: Vec::new(),
        retries: 0,
    };
    runtime().spawn(driver.run());
}

/// docs/wire.md#retries: an error that ends a stream after retries says so, whatever produced it
/// (the transport, or an in-band error in the body of the attempt that finally got through).
fn append_retries(message: &mut String, retries: u32) {
    if retries > 0 {
        message.push_str(&format!(" (after {retries} retries)"));
    }
}

/// How one request attempt ended before any body byte was handed on.
enum Attempt {
    Response(reqwest::Response),
    Aborted,
    /// `retry` holds the retry reason and the server's `Retry-After` when R17 allows a retry.
    Failed {
        message: String,
        retry: Option<(String, Option<f64>)>,
    },
}

/// Read failure while draining a body.
enum ReadError {
    Aborted,
    Message(String),
}

struct Driver {
    plan: RequestPlan,
    url: String,
    /// The chunk state machine of this request (owned, no trait object: it has one kind).
    machine: ChunkProcessor,
    queue: Arc<StreamQueue>,
    token: CancellationToken,
    out: Vec<Event>,
    retries: u32,
}

impl Driver {
    async fn run(mut self) {
        let client = match client::shared_client(self.plan.timeouts.connect) {
            Ok(client) => client,
            Err(message) => return self.fail(message),
        };
        let request = match self.build_request(&client) {
            Ok(request) => request,
            Err(message) => return self.fail(message),
        };
        loop {
            let Some(attempt) = request.try_clone() else {
                return self.fail("request body cannot be replayed".to_string());
            };
            match self.attempt(&client, attempt).await {
                Attempt::Response(response) => return self.read_response(response).await,
                Attempt::Aborted => return self.abort(),
                Attempt::Failed {
                    message,
                    retry: Some((reason, retry_after)),
                } if self.retries < self.plan.max_retries => {
                    let _ = message;
                    self.retries += 1;
                    let delay = retry_after.unwrap_or_else(|| errors::backoff(self.retries));
                    log::info(scrub_key(
                        &errors::retry_log_line(
                            &reason,
                            delay,
                            self.retries,
                            self.plan.max_retries,
                        ),
                        self.plan.api_key.as_deref(),
                    ));
                    self.out.push(Event::Retry {
                        attempt: self.retries,
                        delay,
                        reason: scrub_key(&reason, self.plan.api_key.as_deref()),
                    });
                    self.flush();
                    tokio::select! {
                        biased;
                        _ = self.token.cancelled() => return self.abort(),
                        _ = tokio::time::sleep(Duration::from_secs_f64(delay)) => {}
                    }
                }
                Attempt::Failed { message, .. } => return self.fail(message),
            }
        }
    }

    fn build_request(&self, client: &reqwest::Client) -> Result<reqwest::Request, String> {
        let mut headers = HeaderMap::with_capacity(self.plan.headers.len());
        for (name, value) in &self.plan.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            headers.insert(name, value);
        }
        client
            .post(&self.url)
            .headers(headers)
            .body(Bytes::from(self.plan.body.clone()))
            .build()
            .map_err(|e| {
                format!(
                    "invalid request to {}: {}",
                    self.url,
                    errors::root_cause(&e)
                )
            })
    }

    /// Send one request and wait for its headers (first-byte timeout), racing cancellation.
    async fn attempt(&mut self, client: &reqwest::Client, request: reqwest::Request) -> Attempt {
        let url = request.url().clone();
        let timeouts = self.plan.timeouts;
        let response = tokio::select! {
            biased;
            _ = self.token.cancelled() => return Attempt::Aborted,
            r = tokio::time::timeout(timeouts.first_byte, client.execute(request)) => r,
        };
        let response = match response {
            Err(_) => {
                return Attempt::Failed {
                    message: errors::first_byte_timeout(&url, timeouts.first_byte),
                    retry: None,
                }
            }
            Ok(Err(e)) if e.is_timeout() => {
                let message = errors::connect_timeout(&url, timeouts.connect);
                return Attempt::Failed {
                    retry: Some((message.clone(), None)),
                    message,
                };
            }
            Ok(Err(e)) => {
                let message = errors::connect_failed(&url, &e);
                return Attempt::Failed {
                    retry: Some((message.clone(), None)),
                    message,
                };
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Response(response);
        }
        let retry_after = errors::retry_after(response.headers());
        let body = match self.read_limited(response, errors::ERROR_BODY_LIMIT).await {
            Ok(body) => body,
            Err(ReadError::Aborted) => return Attempt::Aborted,
            // What arrived of the body is lost with the error; the status still says enough.
            Err(ReadError::Message(_)) => Vec::new(),
        };
        let message = errors::http_status(status, &body);
        let retry = errors::is_retryable_status(status).then(|| {
            let reason = match status.canonical_reason() {
                Some(r) => format!("HTTP {} {}", status.as_u16(), r),
                None => format!("HTTP {}", status.as_u16()),
            };
            (reason, retry_after)
        });
        Attempt::Failed { message, retry }
    }

    /// Read up to `limit` bytes of a body, with the idle timeout and cancellation.
    async fn read_limited(
        &self,
        mut response: reqwest::Response,
        limit: usize,
    ) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        while body.len() < limit {
            match self.next_chunk(&mut response).await? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => return Ok(body),
            }
        }
        body.truncate(limit);
        Ok(body)
    }

    /// The next read of the body: `None` at its end. Every read is bounded by the idle timeout.
    async fn next_chunk(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Option<Bytes>, ReadError> {
        let idle = self.plan.timeouts.idle;
        tokio::select! {
            biased;
            _ = self.token.cancelled() => Err(ReadError::Aborted),
            r = tokio::time::timeout(idle, response.chunk()) => match r {
                Err(_) => Err(ReadError::Message(errors::idle_timeout(idle))),
                Ok(Err(e)) => Err(ReadError::Message(errors::interrupted(&e))),
                Ok(Ok(chunk)) => Ok(chunk),
            },
        }
    }

    async fn read_response(mut self, mut response: reqwest::Response) {
        self.machine.start(&mut self.out);
        self.flush();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if is_json {
            return match self.read_limited(response, JSON_BODY_LIMIT).await {
                Ok(body) => {
                    self.machine.on_json_body(&body, &mut self.out);
                    self.flush();
                }
                Err(ReadError::Aborted) => self.abort(),
                Err(ReadError::Message(message)) => self.fail(message),
            };
        }
        let mut reader = SseReader::new();
        let mut sse_events = Vec::new();
        loop {
            let chunk = match self.next_chunk(&mut response).await {
                Ok(chunk) => chunk,
                Err(ReadError::Aborted) => return self.abort(),
                Err(ReadError::Message(message)) => return self.fail(message),
            };
            let parsed = match &chunk {
                Some(bytes) => reader.feed(bytes, &mut sse_events),
                None => reader.finish(&mut sse_events),
            };
            let mut finished = false;
            for event in sse_events.drain(..) {
                if self.machine.on_sse_event(&event, &mut self.out) == Flow::Finished {
                    finished = true;
                    break;
                }
            }
            if !finished {
                if let Err(e) = parsed {
                    return self.fail(e.to_string());
                }
                if chunk.is_none() {
                    self.machine.on_end_of_body(&mut self.out);
                    finished = true;
                }
            }
            self.flush();
            if finished {
                if chunk.is_some() {
                    self.drain_trailer(response).await;
                }
                return;
            }
        }
    }

    /// After the terminal event: read what is left of the body briefly, so a server that ends
    /// its response right after `[DONE]` leaves a reusable connection (R12).
    async fn drain_trailer(&self, mut response: reqwest::Response) {
        let mut read = 0;
        let _ = tokio::time::timeout(TRAILER_GRACE, async {
            while read < TRAILER_LIMIT {
                match self.next_chunk(&mut response).await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
        })
        .await;
    }

    /// Hand the events produced so far to the queue (with the final message after a terminal
    /// event). Thinking starts carry their signature, which the consumer cannot see otherwise.
    fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let message = self.machine.message();
        let retried = self.retries;
        let mut terminal = false;
        let batch: Vec<Queued> = self
            .out
            .drain(..)
            .map(|mut event| {
                terminal |= event.is_terminal();
                if let Event::Error {
                    reason: ErrorReason::Error,
                    message,
                } = &mut event
                {
                    append_retries(message, retried);
                }
                let thinking_signature = match &event {
                    Event::ThinkingStart { ci } => match message.blocks.get(*ci) {
                        Some(Block::Thinking { signature, .. }) => Some(*signature),
                        _ => None,
                    },
                    _ => None,
                };
                Queued {
                    event,
                    thinking_signature,
                }
            })
            .collect();
        let final_message = terminal.then(|| {
            let mut message = message.clone();
            if message.stop_reason == StopReason::Error {
                if let Some(text) = &mut message.error_message {
                    append_retries(text, retried);
                }
            }
            message
        });
        if terminal {
            // Before the terminal event is visible, so the records reach Python no later than
            // the caller's next call.
            sink::log_diagnostics(&self.machine);
        }
        self.queue.push(batch, final_message);
    }

    fn fail(mut self, message: String) {
        let message = scrub_key(&message, self.plan.api_key.as_deref());
        self.machine
            .fail(ErrorReason::Error, message, &mut self.out);
        self.flush();
    }

    fn abort(mut self) {
        self.machine.fail(
            ErrorReason::Aborted,
            ABORTED_MESSAGE.to_string(),
            &mut self.out,
        );
        self.flush();
    }
}
