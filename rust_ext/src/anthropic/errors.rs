//! alchemy-llm's results in our terms: its usage, and its error text parsed back into the
//! messages of docs/wire.md#error-messages and the retry decision of R17
//! (docs/wire.md#anthropic-path).

use alchemy_llm::types::AssistantMessage;

use crate::transport::errors as transport_errors;
use crate::types::Usage;

pub fn usage(message: &AssistantMessage) -> Usage {
    let u = &message.usage;
    Usage {
        input: u.input.into(),
        output: u.output.into(),
        cache_read: u.cache_read.into(),
        cache_write: u.cache_write.into(),
        total_tokens: u.total_tokens.into(),
        cost_input: u.cost.input,
        cost_output: u.cost.output,
        cost_cache_read: u.cost.cache_read,
        cost_cache_write: u.cost.cache_write,
        cost_total: u.cost.total,
    }
}

/// The crate's error text → (our message, retryable). Its HTTP errors read
/// `API returned error: <status> - <body>` (docs/wire.md#anthropic-path); anything before the first
/// event that is not an HTTP status is a connection failure, which R17 retries.
pub fn describe_error(raw: &str, started: bool) -> (String, bool) {
    let parsed = raw
        .strip_prefix("API returned error: ")
        .and_then(|rest| rest.split_once(" - "))
        .and_then(|(status, body)| {
            let status = reqwest::StatusCode::from_u16(status.trim().parse().ok()?).ok()?;
            Some((status, body))
        });
    match parsed {
        Some((status, body)) => (
            transport_errors::http_status(status, body.as_bytes()),
            transport_errors::is_retryable_status(status),
        ),
        None if !started => (raw.to_string(), true),
        None => (format!("stream interrupted: {raw}"), false),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_error;

    #[test]
    fn crate_errors_become_contract_messages() {
        let (message, retry) = describe_error(
            r#"API returned error: 429 - {"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}"#,
            false,
        );
        assert_eq!(message, "HTTP 429 Too Many Requests: Slow down");
        assert!(retry);
        let (message, retry) = describe_error("API returned error: 500 - boom", false);
        assert_eq!(message, "HTTP 500 Internal Server Error: boom");
        assert!(!retry);
        let (_, retry) = describe_error("HTTP error: connection refused", false);
        assert!(retry);
        let (message, retry) = describe_error("HTTP error: reset", true);
        assert_eq!(message, "stream interrupted: HTTP error: reset");
        assert!(!retry);
    }
}
