//! Terminal paths: malformed data, in-band and transport errors, abort, message formatting,
//! and the non-streaming body (docs/wire.md#payloads,
//! #stop-reasons, #error-messages, #json-replies).

use serde_json::json;

use super::tests::{delta, terminal, texts, MM, OAI};
use super::tool_tests::{call, calls};
use super::transcript_tests::{config, run, run_pieces};
use super::{ChunkProcessor, Flow};
use crate::types::{Block, ErrorReason, Event, StopReason};

#[test]
fn invalid_json_is_a_malformed_data_error_quoting_200_chars() {
    let long = format!("{{\"choices\": [{}", "x".repeat(500));
    let (events, _) = run(OAI, &format!("data: {long}\n\n"));
    let Event::Error { message, .. } = terminal(&events) else {
        panic!()
    };
    assert!(message.starts_with("malformed stream data: "), "{message}");
    assert!(
        message.ends_with(&format!(": {}", &long[..200])),
        "{message}"
    );
}

#[test]
fn invalid_utf8_ends_the_stream_with_malformed_data() {
    let (events, msg) = run_pieces(
        config(OAI),
        &[b"data: {\"choices\":[]}\n\ndata: \xc3\x28\n\n"],
    );
    let Event::Error { message, .. } = terminal(&events) else {
        panic!()
    };
    assert!(message.starts_with("malformed stream data: "));
    assert_eq!(msg.stop_reason, StopReason::Error);
}

#[test]
fn event_error_payload_is_an_error() {
    let s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"maybe\"}}]}\n\nevent: error\ndata: {\"error\":{\"message\":\"Tool choice is required\",\"code\":\"tool_use_failed\"}}\n\n";
    let (events, msg) = run(OAI, s);
    assert_eq!(
        terminal(&events),
        &Event::Error {
            reason: ErrorReason::Error,
            message: "provider error tool_use_failed: Tool choice is required".into()
        }
    );
    assert_eq!(texts(&msg.blocks), ["text:maybe"]);
}

#[test]
fn nothing_after_the_terminal_event() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    assert_eq!(p.on_sse_data("[DONE]", false, &mut out), Flow::Finished);
    assert_eq!(
        p.on_sse_data(
            &delta(json!({"content": "late"})).to_string(),
            false,
            &mut out
        ),
        Flow::Finished
    );
    p.on_end_of_body(&mut out);
    p.fail(ErrorReason::Aborted, "Request was aborted".into(), &mut out);
    assert_eq!(
        out,
        vec![
            Event::Start,
            Event::Done {
                reason: StopReason::Stop
            }
        ]
    );
}

#[test]
fn abort_keeps_text_and_ends_tool_calls_with_raw_partial_json() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    p.on_sse_data(
        &delta(json!({"reasoning": "r"})).to_string(),
        false,
        &mut out,
    );
    p.on_sse_data(
        &calls(vec![call(
            Some(0),
            Some("A"),
            Some("f"),
            json!("{\"a\":1}"),
        )])
        .to_string(),
        false,
        &mut out,
    );
    p.on_sse_data(
        &delta(json!({"content": "par"})).to_string(),
        false,
        &mut out,
    );
    p.fail(ErrorReason::Aborted, "Request was aborted".into(), &mut out);
    let tail = &out[out.len() - 3..];
    assert_eq!(
        tail[0],
        Event::TextEnd {
            ci: 2,
            content: "par".into()
        }
    );
    assert_eq!(
        tail[1],
        Event::ToolCallEnd {
            ci: 1,
            id: "A".into(),
            name: "f".into(),
            arguments: json!({"a": 1}),
            partial_json: Some("{\"a\":1}".into())
        }
    );
    assert_eq!(
        tail[2],
        Event::Error {
            reason: ErrorReason::Aborted,
            message: "Request was aborted".into()
        }
    );
    let msg = p.message();
    assert_eq!(
        (msg.stop_reason, msg.error_message.as_deref()),
        (StopReason::Aborted, Some("Request was aborted"))
    );
    assert!(matches!(
        msg.blocks[1],
        Block::ToolCall { invalid: true, .. }
    ));
    assert_eq!(texts(&msg.blocks)[0], "reasoning:r");
}

#[test]
fn failure_before_start_yields_only_the_error() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    p.fail(
        ErrorReason::Error,
        "connection to http://127.0.0.1:9 failed: refused".into(),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0], Event::Error { .. }));
}

#[test]
fn api_key_is_scrubbed_and_context_overflow_wrapped() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    p.fail(
        ErrorReason::Error,
        "HTTP 401 Unauthorized: bad key sk-secret".into(),
        &mut out,
    );
    assert_eq!(
        p.message().error_message.as_deref(),
        Some("HTTP 401 Unauthorized: bad key ***")
    );
    let p = ChunkProcessor::new(config(OAI));
    assert_eq!(
        p.final_error_message("provider error 400: This model's maximum context length is 8192 tokens"),
        "context window exceeded: provider error 400: This model's maximum context length is 8192 tokens"
    );
}

#[test]
fn non_streaming_completion_becomes_the_stream_sequence() {
    let body = json!({"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "reasoning_content": "plan", "content": "Calling.",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                                   {"id": "c2", "type": "function", "function": {"name": "g", "arguments": {"b": 2}}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4}});
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    p.start(&mut out);
    assert_eq!(
        p.on_json_body(body.to_string().as_bytes(), &mut out),
        Flow::Finished
    );
    assert_eq!(
        out[1..4],
        [
            Event::ThinkingStart { ci: 0 },
            Event::ThinkingDelta {
                ci: 0,
                delta: "plan".into()
            },
            Event::ThinkingEnd {
                ci: 0,
                content: "plan".into()
            },
        ]
    );
    assert_eq!(
        texts(&p.message().blocks),
        [
            "reasoning_content:plan",
            "text:Calling.",
            "tool:c1:f:{\"a\":1}",
            "tool:c2:g:{\"b\":2}"
        ]
    );
    assert_eq!(
        terminal(&out),
        &Event::Done {
            reason: StopReason::ToolCalls
        }
    );
    assert_eq!(p.message().usage.total_tokens, 13);
}

#[test]
fn non_streaming_think_tags_on_minimax() {
    let body = json!({"choices": [{"message": {"content": "<think>hm</think>\n\nYes."}, "finish_reason": "stop"}]});
    let mut p = ChunkProcessor::new(config(MM));
    let mut out = Vec::new();
    p.on_json_body(body.to_string().as_bytes(), &mut out);
    assert_eq!(texts(&p.message().blocks), ["think_tag:hm", "text:Yes."]);
}

#[test]
fn json_body_error_object_and_non_completion() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    p.on_json_body(br#"{"error":{"message":"nope","code":400}}"#, &mut out);
    assert_eq!(
        p.message().error_message.as_deref(),
        Some("provider error 400: nope")
    );
    let mut p = ChunkProcessor::new(config(OAI));
    p.on_json_body(br#"{"hello":"world"}"#, &mut out);
    let message = p.message().error_message.clone().unwrap();
    assert!(message.starts_with("malformed stream data: expected text/event-stream or a chat.completion, got application/json"));
}
