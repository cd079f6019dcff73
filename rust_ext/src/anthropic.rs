//! The experimental `anthropic-messages` path (Anthropic, Kimi): alchemy-llm's own transport,
//! unpatched (docs/wire.md#anthropic-path; R-numbers: docs/wire.md#requirements).
//!
//! Each stream runs on its own current-thread runtime on its own thread. When the stream ends
//! or is cancelled the runtime is dropped there, outside any async context: that is the only
//! way to stop the crate's detached task (R1, R14). First-byte and idle timeouts wrap each
//! `next()` (there is no connect timeout); R17 parses the status out of the crate's error text.

mod convert;
mod errors;

use std::collections::HashMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use alchemy_llm::types::{
    AnthropicMessages, AssistantMessageEvent as Crate, Content, Context, Model, StopReasonSuccess,
};
use alchemy_llm::OpenAICompletionsOptions;
use futures_util::{FutureExt, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::transport::queue::{Queued, StreamQueue};
use crate::transport::{errors as transport_errors, log, ABORTED_MESSAGE};
use crate::types::{
    scrub_key, Block, ErrorReason, Event, MessageState, RequestPlan, StopReason, ThinkingSource,
    Timeouts, Usage,
};
use errors::{describe_error, usage};

/// The crate names no wire field for Anthropic thinking; this is the closest signature we have.
const THINKING_SOURCE: ThinkingSource = ThinkingSource::Reasoning;

/// Start the stream on its own thread; `Err` is the start-error reason.
pub fn spawn(
    plan: RequestPlan,
    started: i64,
    queue: Arc<StreamQueue>,
    token: CancellationToken,
) -> Result<(), String> {
    static EXPERIMENTAL: Once = Once::new();
    let model = convert::model(&plan);
    let context = convert::context(&plan)?;
    let options = convert::options(&plan);
    let host = reqwest::Url::parse(&plan.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    EXPERIMENTAL.call_once(|| {
        log::warn(
            "the anthropic-messages path is experimental: it uses alchemy-llm's own transport \
             (no prompt caching, no connect timeout, lossy stream decoding; see the README)",
        )
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let driver = Driver {
        model,
        context,
        options,
        host,
        timeouts: plan.timeouts,
        max_retries: plan.max_retries,
        api_key: plan.api_key.clone(),
        context_window: plan.context_window,
        queue,
        token,
        msg: MessageState {
            blocks: Vec::new(),
            stop_reason: StopReason::Stop,
            error_message: None,
            usage: Usage::default(),
            timestamp: started,
            api: plan.api,
            provider: plan.provider.clone(),
            model: plan.model_id.clone(),
        },
        out: Vec::new(),
        index: HashMap::new(),
        open: None,
        started: false,
        retries: 0,
    };
    std::thread::Builder::new()
        .name("tinyagent-anthropic".to_string())
        .spawn(move || {
            runtime.block_on(driver.run());
            // Dropped here, outside the runtime: this stops the crate's detached task and
            // closes its connection.
            drop(runtime);
        })
        .map_err(|e| format!("cannot start the stream thread: {e}"))?;
    Ok(())
}

/// How one `stream()` invocation ended.
enum Outcome {
    Finished,
    /// The crate reported an error: its text, and whether R17 allows a retry.
    Failed {
        message: String,
        retryable: bool,
    },
}

struct Driver {
    model: Model<AnthropicMessages>,
    context: Context,
    options: OpenAICompletionsOptions,
    host: String,
    timeouts: Timeouts,
    max_retries: u32,
    api_key: Option<String>,
    context_window: Option<u64>,
    queue: Arc<StreamQueue>,
    token: CancellationToken,
    msg: MessageState,
    out: Vec<Queued>,
    /// The crate's content index → ours.
    index: HashMap<usize, usize>,
    /// Our index of the open text or thinking block.
    open: Option<usize>,
    started: bool,
    retries: u32,
}

impl Driver {
    async fn run(mut self) {
        loop {
            match self.attempt().await {
                Outcome::Finished => return,
                Outcome::Failed { message, retryable }
                    if retryable && !self.started && self.retries < self.max_retries =>
                {
                    self.retries += 1;
                    let delay = transport_errors::backoff(self.retries);
                    let reason = scrub_key(&message, self.api_key.as_deref());
                    log::info(transport_errors::retry_log_line(
                        &reason,
                        delay,
                        self.retries,
                        self.max_retries,
                    ));
                    self.emit(Event::Retry {
                        attempt: self.retries,
                        delay,
                        reason,
                    });
                    self.flush();
                    tokio::select! {
                        biased;
                        _ = self.token.cancelled() => {
                            return self.fail(ErrorReason::Aborted, ABORTED_MESSAGE.to_string());
                        }
                        _ = tokio::time::sleep(Duration::from_secs_f64(delay)) => {}
                    }
                }
                Outcome::Failed { message, .. } => {
                    let mut message = message;
                    if self.retries > 0 {
                        message.push_str(&format!(" (after {} retries)", self.retries));
                    }
                    return self.fail(ErrorReason::Error, message);
                }
            }
        }
    }

    async fn attempt(&mut self) -> Outcome {
        let mut stream =
            match alchemy_llm::stream(&self.model, &self.context, Some(self.options.clone())) {
                Ok(stream) => stream,
                Err(e) => {
                    return Outcome::Failed {
                        message: e.to_string(),
                        retryable: false,
                    }
                }
            };
        loop {
            let (limit, timeout_message) = if self.started {
                (
                    self.timeouts.idle,
                    transport_errors::idle_timeout(self.timeouts.idle),
                )
            } else {
                let message = format!(
                    "no response from {} within {}s (first-byte timeout)",
                    self.host,
                    transport_errors::secs(self.timeouts.first_byte)
                );
                (self.timeouts.first_byte, message)
            };
            let next = tokio::select! {
                biased;
                _ = self.token.cancelled() => {
                    self.fail(ErrorReason::Aborted, ABORTED_MESSAGE.to_string());
                    return Outcome::Finished;
                }
                next = tokio::time::timeout(limit, stream.next()) => next,
            };
            let event = match next {
                Err(_) => {
                    self.fail(ErrorReason::Error, timeout_message);
                    return Outcome::Finished;
                }
                Ok(None) => {
                    let message = "stream ended without a result".to_string();
                    self.fail(ErrorReason::Error, message);
                    return Outcome::Finished;
                }
                Ok(Some(event)) => event,
            };
            // Take whatever else is ready as the same batch.
            let mut batch = vec![event];
            while let Some(Some(more)) = stream.next().now_or_never() {
                batch.push(more);
            }
            for event in batch {
                if let Some(outcome) = self.on_event(event) {
                    self.flush();
                    return outcome;
                }
            }
            self.flush();
        }
    }

    fn emit(&mut self, event: Event) {
        let thinking_signature =
            matches!(event, Event::ThinkingStart { .. }).then_some(THINKING_SOURCE);
        self.out.push(Queued {
            event,
            thinking_signature,
        });
    }

    fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let terminal = self.out.iter().any(|q| q.event.is_terminal());
        let final_message = terminal.then(|| self.msg.clone());
        self.queue.push(self.out.drain(..), final_message);
    }

    fn open_block(&mut self, crate_ci: usize, block: Block) -> usize {
        let ci = self.msg.blocks.len();
        self.msg.blocks.push(block);
        self.index.insert(crate_ci, ci);
        ci
    }

    /// Apply one crate event; `Some` once the attempt is over.
    fn on_event(&mut self, event: Crate) -> Option<Outcome> {
        match event {
            Crate::Start { .. } => {
                if !self.started {
                    self.started = true;
                    self.emit(Event::Start);
                }
            }
            Crate::TextStart { content_index, .. } => {
                let ci = self.open_block(
                    content_index,
                    Block::Text {
                        text: String::new(),
                    },
                );
                self.open = Some(ci);
                self.emit(Event::TextStart { ci });
            }
            Crate::ThinkingStart { content_index, .. } => {
                let block = Block::Thinking {
                    thinking: String::new(),
                    signature: THINKING_SOURCE,
                };
                let ci = self.open_block(content_index, block);
                self.open = Some(ci);
                self.emit(Event::ThinkingStart { ci });
            }
            Crate::ToolCallStart {
                content_index,
                partial,
            } => {
                let (id, name) = match partial.content.get(content_index) {
                    Some(Content::ToolCall { inner }) => {
                        (inner.id.as_str().to_string(), inner.name.clone())
                    }
                    _ => (String::new(), String::new()),
                };
                let block = Block::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    raw_args: String::new(),
                    arguments: None,
                    invalid: false,
                };
                let ci = self.open_block(content_index, block);
                self.emit(Event::ToolCallStart { ci, id, name });
            }
            Crate::TextDelta {
                content_index,
                delta,
                ..
            }
            | Crate::ThinkingDelta {
                content_index,
                delta,
                ..
            }
            | Crate::ToolCallDelta {
                content_index,
                delta,
                ..
            } => {
                let ci = *self.index.get(&content_index)?;
                let event = match &mut self.msg.blocks[ci] {
                    Block::Text { text } => {
                        text.push_str(&delta);
                        Event::TextDelta { ci, delta }
                    }
                    Block::Thinking { thinking, .. } => {
                        thinking.push_str(&delta);
                        Event::ThinkingDelta { ci, delta }
                    }
                    Block::ToolCall { raw_args, .. } => {
                        raw_args.push_str(&delta);
                        Event::ToolCallDelta { ci, delta }
                    }
                };
                self.emit(event);
            }
            Crate::TextEnd { content_index, .. } | Crate::ThinkingEnd { content_index, .. } => {
                let ci = *self.index.get(&content_index)?;
                self.close_text(ci);
            }
            Crate::ToolCallEnd {
                content_index,
                tool_call,
                ..
            } => {
                let ci = *self.index.get(&content_index)?;
                if let Block::ToolCall {
                    id,
                    name,
                    arguments,
                    ..
                } = &mut self.msg.blocks[ci]
                {
                    let value = match tool_call.arguments {
                        v @ Value::Object(_) => v,
                        _ => Value::Object(Default::default()),
                    };
                    *arguments = Some(value.clone());
                    let event = Event::ToolCallEnd {
                        ci,
                        id: id.clone(),
                        name: name.clone(),
                        arguments: value,
                        partial_json: None,
                    };
                    self.emit(event);
                }
            }
            Crate::Done { reason, message } => {
                self.close_open();
                self.msg.usage = usage(&message);
                let has_calls = self
                    .msg
                    .blocks
                    .iter()
                    .any(|b| matches!(b, Block::ToolCall { .. }));
                self.msg.stop_reason = match reason {
                    StopReasonSuccess::Length => StopReason::Length,
                    StopReasonSuccess::ToolUse => StopReason::ToolCalls,
                    StopReasonSuccess::Stop if has_calls => StopReason::ToolCalls,
                    StopReasonSuccess::Stop => StopReason::Stop,
                };
                let reason = self.msg.stop_reason;
                self.emit(Event::Done { reason });
                return Some(Outcome::Finished);
            }
            Crate::Error { error, .. } => {
                self.msg.usage = usage(&error);
                let raw = error.error_message.clone().unwrap_or_default();
                let (message, retryable) = describe_error(&raw, self.started);
                let overflow = alchemy_llm::is_context_overflow(
                    &error,
                    self.context_window.map(|n| n.min(u32::MAX as u64) as u32),
                );
                let message = if overflow {
                    format!("context window exceeded: {message}")
                } else {
                    message
                };
                return Some(Outcome::Failed { message, retryable });
            }
        }
        None
    }

    fn close_text(&mut self, ci: usize) {
        if self.open == Some(ci) {
            self.open = None;
        }
        let event = match &self.msg.blocks[ci] {
            Block::Text { text } => Event::TextEnd {
                ci,
                content: text.clone(),
            },
            Block::Thinking { thinking, .. } => Event::ThinkingEnd {
                ci,
                content: thinking.clone(),
            },
            Block::ToolCall { .. } => return,
        };
        self.emit(event);
    }

    fn close_open(&mut self) {
        if let Some(ci) = self.open {
            self.close_text(ci);
        }
    }

    /// End with `error`: open blocks are ended (tool calls with their raw text), then the
    /// terminal event with the scrubbed message.
    fn fail(&mut self, reason: ErrorReason, message: String) {
        self.close_open();
        let mut ends = Vec::new();
        for (ci, block) in self.msg.blocks.iter_mut().enumerate() {
            if let Block::ToolCall {
                id,
                name,
                raw_args,
                arguments: arguments @ None,
                invalid,
            } = block
            {
                *arguments = Some(Value::Object(Default::default()));
                *invalid = true;
                ends.push(Event::ToolCallEnd {
                    ci,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: Value::Object(Default::default()),
                    partial_json: Some(raw_args.clone()),
                });
            }
        }
        for event in ends {
            self.emit(event);
        }
        let message = scrub_key(&message, self.api_key.as_deref());
        self.msg.stop_reason = match reason {
            ErrorReason::Error => StopReason::Error,
            ErrorReason::Aborted => StopReason::Aborted,
        };
        self.msg.error_message = Some(message.clone());
        self.emit(Event::Error { reason, message });
        self.flush();
    }
}
