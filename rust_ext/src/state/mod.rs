//! The chunk → event state machine (docs/wire.md#chunks to docs/wire.md#json-replies): it owns the
//! [`MessageState`] under construction and appends [`Event`]s to a caller-supplied vector.
//!
//! # Public API (called by the transport)
//!
//! ```text
//! let mut p = ChunkProcessor::new(ProcessorConfig { api, provider, model, timestamp,
//!                                                   multi_choice, context_window, api_key });
//! p.start(&mut out);                                   // 2xx headers arrived: `Start` (once)
//! // SSE body: for each event dispatched by sse::SseReader
//! if p.on_sse_event(&ev, &mut out) == Flow::Finished { /* stop reading, release connection */ }
//! p.on_end_of_body(&mut out);                          // body ended (after SseReader::finish)
//! // 2xx application/json body instead of SSE:
//! p.on_json_body(&body_bytes, &mut out);
//! // transport failure, timeout, HTTP status error, malformed UTF-8, cancel:
//! p.fail(ErrorReason::Error, "stream idle for 120s (idle timeout)".into(), &mut out);
//! p.fail(ErrorReason::Aborted, "Request was aborted".into(), &mut out);
//! p.message();  p.is_finished();  p.diagnostics();
//! ```
//!
//! Guarantees: exactly one terminal event (`Done`/`Error`) is ever appended; every entry point is a
//! no-op once it has been. `fail` before `start` appends only the `Error` (docs/wire.md#lifecycle);
//! the feeding entry points emit `Start` themselves if the caller has not. Every terminal error
//! message goes through [`ChunkProcessor::final_error_message`]: the API key is scrubbed and a
//! context overflow recognised by alchemy-llm is wrapped as `context window exceeded: <msg>`.
//!
//! Block lifecycle (docs/wire.md#lifecycle): a text or thinking block closes as soon as another
//! block receives a fragment; tool calls stay open until finalization (at `[DONE]` or end of body),
//! where they end in content-index order with parsed arguments. On an error, open tool calls end
//! with their raw `partial_json` and their block is marked `invalid` (they must never run).
//!
//! Modules: `wire` (typed lenient chunk view), `delta` (payload → choice → delta fields),
//! `tools` (tool-call assembly), `usage`, `errors` (in-band error shapes, stop-reason
//! table, messages), `completion` (non-streaming body).

mod completion;
mod delta;
mod errors;
mod tools;
mod usage;
mod wire;

#[cfg(test)]
mod terminal_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;
#[cfg(test)]
mod transcript_tests;

use alchemy_llm::utils::{ThinkFragment, ThinkTagParser};

use crate::types::{
    ApiKind, Block, ErrorReason, Event, MessageState, StopReason, ThinkingSource, Usage,
};

pub use errors::{CONTENT_FILTER_MESSAGE, TRUNCATED_MESSAGE};
pub use tools::{partial_arguments, PARTIAL_ARGUMENTS_LIMIT};

/// What the transport needs to tell the state machine about one request.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub api: ApiKind,
    pub provider: String,
    pub model: String,
    /// Epoch ms of the request start.
    pub timestamp: i64,
    /// `n > 1` was requested: only choice index 0 is read (docs/wire.md#chunks).
    pub multi_choice: bool,
    /// Passed to alchemy-llm's `is_context_overflow`.
    pub context_window: Option<u64>,
    /// Scrubbed (`***`) from every error message.
    pub api_key: Option<String>,
}

/// Whether the stream wants more input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The terminal event has been emitted: stop reading and release the connection.
    Finished,
}

/// Tolerated irregularities, for the caller to log once per stream (docs/wire.md#chunks, R5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Field-level oddities (a wrong-typed optional field, an unknown content part, …): the
    /// field was ignored, the rest of the chunk was read.
    pub oddities: u32,
    /// What the first oddity was.
    pub first_oddity: Option<String>,
    /// A `finish_reason` outside the known set, mapped to `stop` (docs/wire.md#stop-reasons): log a
    /// warning.
    pub unknown_finish_reason: Option<String>,
    /// Events whose data lines had to be read as separate events (missing blank lines,
    /// docs/wire.md#payloads).
    pub split_events: u32,
    /// Tool calls whose arguments did not parse into a JSON object at finalization
    /// (docs/wire.md#tool-calls).
    pub invalid_tool_arguments: u32,
}

/// One open tool call: where its block is and the wire `index` that identifies it.
#[derive(Debug, Clone)]
struct ToolSlot {
    ci: usize,
    index: Option<i64>,
}

/// The state machine. One per request attempt that reached 2xx headers (or failed).
#[derive(Debug)]
pub struct ChunkProcessor {
    msg: MessageState,
    multi_choice: bool,
    context_window: Option<u64>,
    api_key: Option<String>,
    started: bool,
    finished: bool,
    /// Content index of the open text or thinking block.
    open: Option<usize>,
    tools: Vec<ToolSlot>,
    finish_reason: Option<String>,
    /// MiniMax inline `<think>` splitter, created on first use.
    think: Option<ThinkTagParser>,
    /// The last fragment out of `think` was thinking: whitespace opening the next text is the
    /// separator after `</think>` and is dropped (docs/wire.md#minimax).
    trim_after_think: bool,
    /// The last bytes of inline content, to see a `</think>` split across chunks.
    think_tail: String,
    diag: Diagnostics,
}

impl ChunkProcessor {
    pub fn new(cfg: ProcessorConfig) -> Self {
        ChunkProcessor {
            msg: MessageState {
                blocks: Vec::new(),
                stop_reason: StopReason::Stop,
                error_message: None,
                usage: Usage::default(),
                timestamp: cfg.timestamp,
                api: cfg.api,
                provider: cfg.provider,
                model: cfg.model,
            },
            multi_choice: cfg.multi_choice,
            context_window: cfg.context_window,
            api_key: cfg.api_key,
            started: false,
            finished: false,
            open: None,
            tools: Vec::new(),
            finish_reason: None,
            think: None,
            trim_after_think: false,
            think_tail: String::new(),
            diag: Diagnostics::default(),
        }
    }

    /// The message under construction (the partial), or the final message once finished.
    pub fn message(&self) -> &MessageState {
        &self.msg
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diag
    }

    /// The `finish_reason` recorded so far, verbatim.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// Emit `Start` (once): call when the 2xx response headers arrive.
    pub fn start(&mut self, out: &mut Vec<Event>) {
        if !self.started && !self.finished {
            self.started = true;
            out.push(Event::Start);
        }
    }

    /// One dispatched SSE event (docs/wire.md#payloads).
    pub fn on_sse_event(&mut self, ev: &crate::sse::SseEvent, out: &mut Vec<Event>) -> Flow {
        self.on_sse_data(&ev.data, ev.is_error, out)
    }

    /// Same as [`Self::on_sse_event`] for a borrowed payload.
    pub fn on_sse_data(&mut self, data: &str, is_error: bool, out: &mut Vec<Event>) -> Flow {
        if self.finished {
            return Flow::Finished;
        }
        self.start(out);
        self.on_payload(data, is_error, out);
        self.flow()
    }

    /// The body ended (after `SseReader::finish` and its events). Finalizes with `done` when a
    /// `finish_reason` was recorded, else with the truncated-stream error
    /// (docs/wire.md#stop-reasons).
    pub fn on_end_of_body(&mut self, out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        self.start(out);
        if self.finish_reason.is_some() {
            self.finalize(out);
        } else {
            self.terminate(ErrorReason::Error, TRUNCATED_MESSAGE.to_string(), out);
        }
    }

    /// End the stream with an error (transport failure, timeout, HTTP status, malformed bytes)
    /// or an abort. Open text/thinking blocks are ended and kept; open tool calls end with their
    /// raw `partial_json`. The message is scrubbed and overflow-wrapped (`Error` only). No-op once
    /// finished.
    pub fn fail(&mut self, reason: ErrorReason, message: String, out: &mut Vec<Event>) {
        if !self.finished {
            self.terminate(reason, message, out);
        }
    }

    /// The final form of an error message (docs/wire.md#error-messages): API key scrubbed, and a
    /// context overflow recognised by alchemy-llm's `is_context_overflow` wrapped as `context
    /// window exceeded: <msg>`.
    pub fn final_error_message(&self, message: &str) -> String {
        errors::final_error_message(
            message,
            self.api_key.as_deref(),
            self.context_window,
            &self.msg,
        )
    }

    fn flow(&self) -> Flow {
        if self.finished {
            Flow::Finished
        } else {
            Flow::Continue
        }
    }

    fn oddity(&mut self, what: impl FnOnce() -> String) {
        self.diag.oddities += 1;
        if self.diag.first_oddity.is_none() {
            self.diag.first_oddity = Some(what());
        }
    }

    // ----- blocks -----

    /// End the open text or thinking block, if any.
    fn close_open(&mut self, out: &mut Vec<Event>) {
        let Some(ci) = self.open.take() else { return };
        match &self.msg.blocks[ci] {
            Block::Text { text } => out.push(Event::TextEnd {
                ci,
                content: text.clone(),
            }),
            Block::Thinking { thinking, .. } => out.push(Event::ThinkingEnd {
                ci,
                content: thinking.clone(),
            }),
            Block::ToolCall { .. } => {}
        }
    }

    /// Append a non-empty text fragment: to the open text block, else to a new one.
    fn push_text(&mut self, delta: String, out: &mut Vec<Event>) {
        if delta.is_empty() {
            return;
        }
        let ci = match self.open {
            Some(ci) if matches!(self.msg.blocks[ci], Block::Text { .. }) => ci,
            _ => {
                self.close_open(out);
                let ci = self.msg.blocks.len();
                self.msg.blocks.push(Block::Text {
                    text: String::new(),
                });
                self.open = Some(ci);
                out.push(Event::TextStart { ci });
                ci
            }
        };
        if let Block::Text { text } = &mut self.msg.blocks[ci] {
            text.push_str(&delta);
        }
        out.push(Event::TextDelta { ci, delta });
    }

    /// Append a non-empty reasoning fragment: to the open thinking block, else to a new one
    /// whose signature is `source`.
    fn push_thinking(&mut self, delta: String, source: ThinkingSource, out: &mut Vec<Event>) {
        if delta.is_empty() {
            return;
        }
        let ci = match self.open {
            Some(ci) if matches!(self.msg.blocks[ci], Block::Thinking { .. }) => ci,
            _ => {
                self.close_open(out);
                let ci = self.msg.blocks.len();
                self.msg.blocks.push(Block::Thinking {
                    thinking: String::new(),
                    signature: source,
                });
                self.open = Some(ci);
                out.push(Event::ThinkingStart { ci });
                ci
            }
        };
        if let Block::Thinking { thinking, .. } = &mut self.msg.blocks[ci] {
            thinking.push_str(&delta);
        }
        out.push(Event::ThinkingDelta { ci, delta });
    }

    /// MiniMax inline mode: split `content` on `<think>` tags (docs/wire.md#minimax).
    fn push_think_tagged(&mut self, content: &str, out: &mut Vec<Event>) {
        // An empty `<think></think>` yields no thinking fragment, so the close tag itself is
        // watched for: the whitespace after it is dropped all the same.
        if self.saw_close_tag(content) {
            self.trim_after_think = true;
        }
        let fragments = self
            .think
            .get_or_insert_with(ThinkTagParser::new)
            .feed(content);
        self.apply_think_fragments(fragments, out);
    }

    fn saw_close_tag(&mut self, content: &str) -> bool {
        const CLOSE: &str = "</think>";
        let mut window = std::mem::take(&mut self.think_tail);
        window.push_str(content);
        let found = window.contains(CLOSE);
        let mut keep = window.len().saturating_sub(CLOSE.len() - 1);
        while !window.is_char_boundary(keep) {
            keep += 1;
        }
        window.drain(..keep);
        self.think_tail = window;
        found
    }

    fn apply_think_fragments(&mut self, fragments: Vec<ThinkFragment>, out: &mut Vec<Event>) {
        for fragment in fragments {
            match fragment {
                ThinkFragment::Thinking(t) => {
                    self.trim_after_think = true;
                    self.push_thinking(t, ThinkingSource::ThinkTag, out);
                }
                ThinkFragment::Text(t) => {
                    let t = if self.trim_after_think {
                        let trimmed = t.trim_start();
                        if trimmed.is_empty() {
                            continue;
                        }
                        self.trim_after_think = false;
                        if trimmed.len() == t.len() {
                            t
                        } else {
                            trimmed.to_string()
                        }
                    } else {
                        t
                    };
                    self.push_text(t, out);
                }
            }
        }
    }

    /// Release a tag prefix the `<think>` splitter is still holding back.
    fn flush_think(&mut self, out: &mut Vec<Event>) {
        if let Some(parser) = self.think.as_mut() {
            let fragments = parser.flush();
            self.apply_think_fragments(fragments, out);
        }
    }

    fn has_tool_calls(&self) -> bool {
        !self.tools.is_empty()
    }

    // ----- terminal paths -----

    /// Successful end (`[DONE]`, or end of body after a `finish_reason`): the stop reason table
    /// of docs/wire.md#stop-reasons decides between `done` and `error`.
    fn finalize(&mut self, out: &mut Vec<Event>) {
        let verdict = errors::stop_reason_for(self.finish_reason.as_deref(), self.has_tool_calls());
        if verdict.unknown {
            self.diag.unknown_finish_reason = self.finish_reason.clone();
        }
        match verdict.outcome {
            Ok(stop) => {
                self.flush_think(out);
                self.close_open(out);
                self.end_tool_calls(false, out);
                self.msg.stop_reason = stop;
                self.finished = true;
                out.push(Event::Done { reason: stop });
            }
            Err(message) => self.terminate(ErrorReason::Error, message, out),
        }
    }

    /// Error end: keep the text, end tool calls with raw `partial_json`, one `Error` event.
    fn terminate(&mut self, reason: ErrorReason, message: String, out: &mut Vec<Event>) {
        self.flush_think(out);
        self.close_open(out);
        self.end_tool_calls(true, out);
        let message = match reason {
            ErrorReason::Error => self.final_error_message(&message),
            ErrorReason::Aborted => crate::types::scrub_key(&message, self.api_key.as_deref()),
        };
        self.msg.stop_reason = match reason {
            ErrorReason::Error => StopReason::Error,
            ErrorReason::Aborted => StopReason::Aborted,
        };
        self.msg.error_message = Some(message.clone());
        self.finished = true;
        out.push(Event::Error { reason, message });
    }
}
