//! In-band error shapes (docs/wire.md#in-band-errors), the stop-reason table
//! (docs/wire.md#stop-reasons) and the final form of error messages (docs/wire.md#error-messages).

use serde_json::Value;

use serde_json::Map;

use super::delta::excerpt;
use super::wire::WireChunk;
use crate::types::{scrub_key, MessageState, StopReason};

pub const TRUNCATED_MESSAGE: &str =
    "stream ended before completion (no finish_reason and no [DONE])";
pub const CONTENT_FILTER_MESSAGE: &str =
    "response blocked by the provider's content filter (finish_reason=content_filter)";
const FINISH_ERROR_MESSAGE: &str =
    "provider error: the provider ended the stream with finish_reason=error";

/// `provider error <code>: <message>`, or `provider error: <message>` without a code.
pub(super) fn provider_error(code: Option<String>, message: &str) -> String {
    match code {
        Some(code) => format!("provider error {code}: {message}"),
        None => format!("provider error: {message}"),
    }
}

fn code_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn message_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The top-level fields that make the in-band error shapes.
pub(super) struct ErrorShape<'a> {
    pub error: &'a Value,
    pub object: &'a Value,
    pub message: &'a Value,
    pub code: &'a Value,
    pub base_resp: &'a Value,
}

impl WireChunk {
    pub(super) fn error_shape(&self) -> ErrorShape<'_> {
        ErrorShape {
            error: &self.error,
            object: &self.object,
            message: &self.message,
            code: &self.code,
            base_resp: &self.base_resp,
        }
    }
}

impl<'a> ErrorShape<'a> {
    pub(super) fn of_object(obj: &'a Map<String, Value>) -> Self {
        let get = |k: &str| obj.get(k).unwrap_or(&Value::Null);
        ErrorShape {
            error: get("error"),
            object: get("object"),
            message: get("message"),
            code: get("code"),
            base_resp: get("base_resp"),
        }
    }
}

/// The error message if this payload is one of the in-band error shapes. `raw` is the payload text,
/// quoted when an `event: error` payload has no recognisable message.
pub(super) fn inband_error(p: &ErrorShape<'_>, is_error: bool, raw: &str) -> Option<String> {
    match p.error {
        Value::Null => {}
        Value::Object(e) => {
            let message =
                message_of(e.get("message")).unwrap_or_else(|| excerpt(&p.error.to_string()));
            return Some(provider_error(code_of(e.get("code")), &message));
        }
        Value::String(s) => return Some(provider_error(code_of(Some(p.code)), s)),
        // `"error": false` and the like are not errors.
        Value::Bool(false) => {}
        other => return Some(provider_error(None, &excerpt(&other.to_string()))),
    }
    if p.object.as_str() == Some("error") {
        let message = message_of(Some(p.message)).unwrap_or_else(|| excerpt(raw));
        return Some(provider_error(code_of(Some(p.code)), &message));
    }
    if let Some(status) = p.base_resp.get("status_code").and_then(Value::as_i64) {
        if status != 0 {
            let message = message_of(p.base_resp.get("status_msg")).unwrap_or_else(|| excerpt(raw));
            return Some(provider_error(Some(status.to_string()), &message));
        }
    }
    if is_error {
        let message = message_of(Some(p.message)).unwrap_or_else(|| excerpt(raw));
        return Some(provider_error(code_of(Some(p.code)), &message));
    }
    None
}

/// The outcome of a finalization: the stop reason of a `done`, or an error message.
pub(super) struct Verdict {
    pub outcome: Result<StopReason, String>,
    /// The finish reason was not one of the known values (log a warning).
    pub unknown: bool,
}

/// docs/wire.md#stop-reasons. `None` is a `[DONE]` (or a finish chunk) without any `finish_reason`.
pub(super) fn stop_reason_for(finish: Option<&str>, has_tool_calls: bool) -> Verdict {
    let natural = if has_tool_calls {
        StopReason::ToolCalls
    } else {
        StopReason::Stop
    };
    let (outcome, unknown) = match finish {
        // `eos_token` is Hugging Face TGI's spelling of a natural end.
        None | Some("stop" | "end_turn" | "eos" | "eos_token" | "stop_sequence") => {
            (Ok(natural), false)
        }
        Some("length" | "max_tokens") => (Ok(StopReason::Length), false),
        Some("tool_calls" | "function_call") => (Ok(StopReason::ToolCalls), false),
        Some("content_filter") => (Err(CONTENT_FILTER_MESSAGE.to_string()), false),
        Some("error") => (Err(FINISH_ERROR_MESSAGE.to_string()), false),
        Some(_) => (Ok(natural), true),
    };
    Verdict { outcome, unknown }
}

/// Scrub the key, then wrap a context overflow recognised by alchemy-llm.
pub(super) fn final_error_message(
    message: &str,
    api_key: Option<&str>,
    context_window: Option<u64>,
    msg: &MessageState,
) -> String {
    let message = scrub_key(message, api_key);
    if is_overflow(&message, context_window, msg) {
        format!("context window exceeded: {message}")
    } else {
        message
    }
}

fn is_overflow(message: &str, context_window: Option<u64>, msg: &MessageState) -> bool {
    use alchemy_llm::types as a;
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let probe = a::AssistantMessage {
        content: Vec::new(),
        api: a::Api::OpenAICompletions,
        provider: a::Provider::Custom(msg.provider.clone()),
        model: msg.model.clone(),
        usage: a::Usage {
            input: clamp(msg.usage.input),
            output: clamp(msg.usage.output),
            cache_read: clamp(msg.usage.cache_read),
            cache_write: clamp(msg.usage.cache_write),
            total_tokens: clamp(msg.usage.total_tokens),
            cost: a::Cost::default(),
        },
        stop_reason: a::StopReason::Error,
        error_message: Some(message.to_string()),
        timestamp: msg.timestamp,
    };
    alchemy_llm::utils::is_context_overflow(&probe, context_window.map(clamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::delta::{parse_payload, Parsed};

    fn shape(text: &str, is_error: bool) -> Option<String> {
        match parse_payload(text) {
            Parsed::Object(p) => inband_error(&p.error_shape(), is_error, text),
            _ => panic!("not an object: {text}"),
        }
    }

    #[test]
    fn openai_error_object() {
        assert_eq!(
            shape(
                r#"{"error":{"message":"Rate limited","type":"x","code":429}}"#,
                false
            )
            .unwrap(),
            "provider error 429: Rate limited"
        );
        assert_eq!(
            shape(
                r#"{"error":{"message":"boom","type":"server_error","code":null}}"#,
                false
            )
            .unwrap(),
            "provider error: boom"
        );
    }

    #[test]
    fn vllm_object_error() {
        assert_eq!(
            shape(
                r#"{"object":"error","message":"bad","type":"BadRequestError","code":400}"#,
                false
            )
            .unwrap(),
            "provider error 400: bad"
        );
    }

    #[test]
    fn minimax_base_resp_non_zero_only() {
        assert_eq!(
            shape(
                r#"{"base_resp":{"status_code":1002,"status_msg":"rate limit"}}"#,
                false
            )
            .unwrap(),
            "provider error 1002: rate limit"
        );
        assert_eq!(
            shape(r#"{"base_resp":{"status_code":0,"status_msg":""}}"#, false),
            None
        );
    }

    #[test]
    fn any_payload_after_event_error() {
        assert_eq!(
            shape(r#"{"detail":"x"}"#, true).unwrap(),
            r#"provider error: {"detail":"x"}"#
        );
        assert_eq!(
            shape(r#"{"message":"overloaded","code":"E1"}"#, true).unwrap(),
            "provider error E1: overloaded"
        );
    }

    #[test]
    fn ordinary_chunks_and_null_error_are_not_errors() {
        assert_eq!(shape(r#"{"choices":[],"error":null}"#, false), None);
        assert_eq!(shape(r#"{"object":"chat.completion.chunk"}"#, false), None);
    }

    #[test]
    fn stop_reason_table() {
        let ok = |f: Option<&str>, tools: bool| stop_reason_for(f, tools).outcome.unwrap();
        assert_eq!(ok(Some("stop"), false), StopReason::Stop);
        assert_eq!(ok(Some("stop"), true), StopReason::ToolCalls);
        assert_eq!(ok(Some("end_turn"), false), StopReason::Stop);
        assert_eq!(ok(Some("max_tokens"), true), StopReason::Length);
        assert_eq!(ok(Some("function_call"), false), StopReason::ToolCalls);
        assert_eq!(ok(None, true), StopReason::ToolCalls);
        let v = stop_reason_for(Some("eos_token"), false);
        assert!(!v.unknown, "Hugging Face TGI's natural end is known");
        assert_eq!(v.outcome.unwrap(), StopReason::Stop);
        let v = stop_reason_for(Some("made_up_reason"), false);
        assert!(v.unknown);
        assert_eq!(v.outcome.unwrap(), StopReason::Stop);
        assert_eq!(
            stop_reason_for(Some("content_filter"), false)
                .outcome
                .unwrap_err(),
            CONTENT_FILTER_MESSAGE
        );
        assert!(stop_reason_for(Some("error"), false).outcome.is_err());
    }
}
