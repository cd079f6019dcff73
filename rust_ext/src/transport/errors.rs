//! The error texts of docs/wire.md#error-messages that the transport produces, and the retry
//! policy of R17 (docs/wire.md#retries).

use std::time::Duration;

/// At most this much of a non-2xx body is read (docs/wire.md#transport).
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Characters of a non-JSON error body quoted in the message.
const ERROR_BODY_CHARS: usize = 1000;
/// `Retry-After` values above this are not honoured (R17); back-off is used instead.
const MAX_RETRY_AFTER: f64 = 30.0;
const BACKOFF_BASE: f64 = 0.5;
const BACKOFF_CAP: f64 = 8.0;

/// Seconds as people write them: `10`, `0.5`, `300`.
pub fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// The innermost cause of an error chain (reqwest wraps hyper wraps io), which is the part a
/// user can act on ("Connection refused (os error 111)").
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `scheme://host:port` of a URL, for connection messages.
pub fn origin(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

pub fn connect_failed(url: &reqwest::Url, err: &reqwest::Error) -> String {
    format!("connection to {} failed: {}", origin(url), root_cause(err))
}

pub fn connect_timeout(url: &reqwest::Url, timeout: Duration) -> String {
    format!(
        "connect timeout after {}s ({})",
        secs(timeout),
        url.host_str().unwrap_or("")
    )
}

pub fn first_byte_timeout(url: &reqwest::Url, timeout: Duration) -> String {
    format!(
        "no response from {} within {}s (first-byte timeout)",
        url.host_str().unwrap_or(""),
        secs(timeout)
    )
}

pub fn idle_timeout(timeout: Duration) -> String {
    format!("stream idle for {}s (idle timeout)", secs(timeout))
}

pub fn interrupted(err: &reqwest::Error) -> String {
    format!("stream interrupted: {}", root_cause(err))
}

/// `HTTP <status> <reason>[: <error.message or the first 1000 chars of the body>]`.
pub fn http_status(status: reqwest::StatusCode, body: &[u8]) -> String {
    let head = match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {}", status.as_u16(), reason),
        None => format!("HTTP {}", status.as_u16()),
    };
    let detail = json_error_message(body).unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(ERROR_BODY_CHARS)
            .collect()
    });
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// `error.message` (or a string `error`, or a top-level `message`) of a JSON error body.
fn json_error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = match value.get("error") {
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(err) => err.get("message").and_then(|m| m.as_str()),
        None => None,
    }
    .or_else(|| value.get("message").and_then(|m| m.as_str()))?;
    Some(message.chars().take(ERROR_BODY_CHARS).collect())
}

/// The statuses R17 retries. 500 is deliberately absent: it is usually deterministic.
pub fn is_retryable_status(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds, when present, numeric and within the honoured bound.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && (0.0..=MAX_RETRY_AFTER).contains(&secs)).then_some(secs)
}

/// Exponential back-off with ±20 % jitter for retry `attempt` (1-based).
pub fn backoff(attempt: u32) -> f64 {
    let exp = BACKOFF_BASE * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let jitter = 0.8 + 0.4 * fastrand::f64();
    exp.min(BACKOFF_CAP) * jitter
}

/// The INFO line logged before each retry wait (R17).
pub fn retry_log_line(reason: &str, delay: f64, attempt: u32, max: u32) -> String {
    format!("{reason}; retrying in {delay:.1} s (attempt {attempt} of {max})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn http_messages() {
        let body = br#"{"error":{"message":"Rate limit exceeded","code":429}}"#;
        assert_eq!(
            http_status(StatusCode::TOO_MANY_REQUESTS, body),
            "HTTP 429 Too Many Requests: Rate limit exceeded"
        );
        assert_eq!(
            http_status(StatusCode::INTERNAL_SERVER_ERROR, b"  boom \n"),
            "HTTP 500 Internal Server Error: boom"
        );
        assert_eq!(
            http_status(StatusCode::BAD_GATEWAY, b""),
            "HTTP 502 Bad Gateway"
        );
        let long = "x".repeat(5000);
        let msg = http_status(StatusCode::BAD_REQUEST, long.as_bytes());
        assert_eq!(msg.len(), "HTTP 400 Bad Request: ".len() + 1000);
    }

    #[test]
    fn retry_policy() {
        assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_retryable_status(StatusCode::INTERNAL_SERVER_ERROR));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "1".parse().unwrap());
        assert_eq!(retry_after(&h), Some(1.0));
        h.insert("retry-after", "120".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        for attempt in 1..6 {
            let d = backoff(attempt);
            assert!(d > 0.0 && d <= BACKOFF_CAP * 1.2, "{d}");
        }
        assert_eq!(
            retry_log_line("HTTP 503 Service Unavailable", 1.0, 1, 2),
            "HTTP 503 Service Unavailable; retrying in 1.0 s (attempt 1 of 2)"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(secs(Duration::from_millis(500)), "0.5");
        assert_eq!(secs(Duration::from_secs(300)), "300");
    }
}
