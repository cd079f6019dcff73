//! Types shared by the request builder (`request`), the SSE reader (`sse`), the chunk state
//! machine (`state`) and the transport/binding (`transport`, `py`). Pure Rust, no Python.

use std::time::Duration;

use serde_json::Value;

/// The APIs the core dispatches (docs/architecture.md#routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    OpenAiCompletions,
    MiniMaxCompletions,
    /// Experimental: alchemy-llm's own transport (docs/wire.md#anthropic-path).
    AnthropicMessages,
}

impl ApiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::OpenAiCompletions => "openai-completions",
            ApiKind::MiniMaxCompletions => "minimax-completions",
            ApiKind::AnthropicMessages => "anthropic-messages",
        }
    }
}

/// Stop reasons a built-in stream can end with (docs/architecture.md#types,
/// docs/wire.md#stop-reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Stop,
    Length,
    ToolCalls,
    Error,
    Aborted,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Stop => "stop",
            StopReason::Length => "length",
            StopReason::ToolCalls => "tool_calls",
            StopReason::Error => "error",
            StopReason::Aborted => "aborted",
        }
    }
}

/// `thinking_signature`: the wire field reasoning text came from (docs/wire.md#reasoning-fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingSource {
    ReasoningContent,
    Reasoning,
    ReasoningText,
    ReasoningDetails,
    ThinkTag,
    ContentParts,
}

impl ThinkingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ThinkingSource::ReasoningContent => "reasoning_content",
            ThinkingSource::Reasoning => "reasoning",
            ThinkingSource::ReasoningText => "reasoning_text",
            ThinkingSource::ReasoningDetails => "reasoning_details",
            ThinkingSource::ThinkTag => "think_tag",
            ThinkingSource::ContentParts => "content_parts",
        }
    }
}

/// One content block of the message under construction, in the order blocks were opened.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        signature: ThinkingSource,
    },
    ToolCall {
        id: String,
        name: String,
        /// Concatenated raw argument fragments.
        raw_args: String,
        /// Set at finalization: the parsed object, or `{}` when the text did not parse.
        arguments: Option<Value>,
        /// True once finalization found `raw_args` unparseable (or not an object).
        invalid: bool,
    },
}

/// Usage in the canonical schema (docs/architecture.md#types), filled by docs/wire.md#usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub total_tokens: u64,
    pub cost_input: f64,
    pub cost_output: f64,
    pub cost_cache_read: f64,
    pub cost_cache_write: f64,
    pub cost_total: f64,
}

/// The assistant message being streamed; the partial and the final message are views of it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageState {
    pub blocks: Vec<Block>,
    pub stop_reason: StopReason,
    pub error_message: Option<String>,
    pub usage: Usage,
    /// Epoch ms of the request start.
    pub timestamp: i64,
    pub api: ApiKind,
    pub provider: String,
    pub model: String,
}

/// Why a stream ended with `error` (docs/wire.md#stop-reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReason {
    Error,
    Aborted,
}

impl ErrorReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Error => "error",
            ErrorReason::Aborted => "aborted",
        }
    }
}

/// Events of docs/events.md#provider-events without the `partial` (the binding attaches it).
/// `ci` is the `content_index`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start,
    TextStart {
        ci: usize,
    },
    TextDelta {
        ci: usize,
        delta: String,
    },
    TextEnd {
        ci: usize,
        content: String,
    },
    ThinkingStart {
        ci: usize,
    },
    ThinkingDelta {
        ci: usize,
        delta: String,
    },
    ThinkingEnd {
        ci: usize,
        content: String,
    },
    ToolCallStart {
        ci: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        ci: usize,
        delta: String,
    },
    /// `partial_json` is `Some(raw)` when the arguments did not parse as a JSON object.
    ToolCallEnd {
        ci: usize,
        id: String,
        name: String,
        arguments: Value,
        partial_json: Option<String>,
    },
    Done {
        reason: StopReason,
    },
    Error {
        reason: ErrorReason,
        message: String,
    },
    Retry {
        attempt: u32,
        delay: f64,
        reason: String,
    },
}

impl Event {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Error { .. })
    }
}

/// Timeouts of docs/wire.md#timeouts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(300),
            idle: Duration::from_secs(120),
        }
    }
}

pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// Everything the transport needs to run one request, built from the three input dicts by
/// `request::plan_request` before any network activity.
#[derive(Debug, Clone)]
pub struct RequestPlan {
    pub api: ApiKind,
    pub provider: String,
    pub model_id: String,
    /// The full endpoint URL (or the API root on the anthropic path).
    pub url: String,
    /// Final header list, in order, names already validated.
    pub headers: Vec<(String, String)>,
    /// The serialized JSON body (empty on the anthropic path, which builds its own).
    pub body: Vec<u8>,
    /// The key actually used (for scrubbing it from every error text); `None` = no auth header.
    pub api_key: Option<String>,
    pub timeouts: Timeouts,
    pub max_retries: u32,
    /// `n > 1` was requested through `extra_body`: read only choice index 0 (docs/wire.md#chunks).
    pub multi_choice: bool,
    pub context_window: Option<u64>,
    /// A start error found while planning (missing key, unsupported api, bad reasoning effort,
    /// invalid header): raised as `RuntimeError("failed to start <api> stream: <reason>")`
    /// from the first `next_event()` rather than synchronously
    /// (docs/wire.md#request).
    pub start_error: Option<String>,
    /// The original input, kept for the experimental anthropic path which converts it itself.
    pub raw_model: Value,
    pub raw_context: Value,
    pub raw_options: Value,
}

/// A malformed input dict: raised synchronously as `ValueError("invalid <what>: <reason>")`.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    Model(String),
    Context(String),
    Options(String),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Model(m) => write!(f, "invalid model: {m}"),
            InputError::Context(m) => write!(f, "invalid context: {m}"),
            InputError::Options(m) => write!(f, "invalid options: {m}"),
        }
    }
}

/// Replace every occurrence of the key in `text` with `***` (docs/architecture.md#secrets).
pub fn scrub_key(text: &str, key: Option<&str>) -> String {
    match key {
        Some(k) if !k.is_empty() && text.contains(k) => text.replace(k, "***"),
        _ => text.to_string(),
    }
}
