//! One test per rule of wire.md §2.2–§3.7.

use serde_json::json;

use super::transcript_tests::{config, run, run_pieces};
use super::{partial_arguments, ChunkProcessor, Flow, CONTENT_FILTER_MESSAGE};
use crate::types::{ApiKind, Block, ErrorReason, Event, StopReason, ThinkingSource};

const OAI: ApiKind = ApiKind::OpenAiCompletions;
const MM: ApiKind = ApiKind::MiniMaxCompletions;

/// An SSE body from chunk JSON values, ending with `[DONE]`.
fn body(chunks: &[serde_json::Value]) -> String {
    let mut s = String::new();
    for c in chunks {
        s.push_str(&format!("data: {c}\n\n"));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

fn delta(d: serde_json::Value) -> serde_json::Value {
    json!({"choices": [{"index": 0, "delta": d}]})
}

fn finish(reason: &str) -> serde_json::Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

fn texts(blocks: &[Block]) -> Vec<String> {
    blocks
        .iter()
        .map(|b| match b {
            Block::Text { text } => format!("text:{text}"),
            Block::Thinking {
                thinking,
                signature,
            } => format!("{}:{thinking}", signature.as_str()),
            Block::ToolCall {
                id, name, raw_args, ..
            } => format!("tool:{id}:{name}:{raw_args}"),
        })
        .collect()
}

fn terminal(events: &[Event]) -> &Event {
    assert_eq!(
        events.iter().filter(|e| e.is_terminal()).count(),
        1,
        "{events:?}"
    );
    events.last().unwrap()
}

#[test]
fn tgi_choice_index_changing_every_chunk_is_one_reply() {
    let chunks = [
        json!({"choices": [{"index": 1, "delta": {"content": "a"}}]}),
        json!({"choices": [{"index": 2, "delta": {"content": "b"}}]}),
        json!({"choices": [{"index": 3, "delta": {}, "finish_reason": "stop"}]}),
    ];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["text:ab"]);
}

#[test]
fn several_choices_read_index_zero_and_multi_choice_reads_only_zero() {
    let chunks = [
        json!({"choices": [{"index": 1, "delta": {"content": "x"}}, {"index": 0, "delta": {"content": "a"}}]}),
        json!({"choices": [{"index": 1, "delta": {"content": "y"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "b"}}]}),
    ];
    let mut cfg = config(OAI);
    cfg.multi_choice = true;
    let (_, msg) = run_pieces(cfg, &[body(&chunks).as_bytes()]);
    assert_eq!(texts(&msg.blocks), ["text:ab"]);
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["text:ayb"]);
}

#[test]
fn wrong_typed_field_is_counted_and_the_rest_of_the_chunk_read() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    let chunk = json!({"choices": [{"index": 0, "delta": {"reasoning": 5, "content": "kept", "tool_calls": "x"}}]});
    p.on_sse_data(&chunk.to_string(), false, &mut out);
    assert_eq!(texts(&p.message().blocks), ["text:kept"]);
    assert_eq!(p.diagnostics().oddities, 2);
    assert!(p
        .diagnostics()
        .first_oddity
        .as_deref()
        .unwrap()
        .contains("reasoning"));
}

#[test]
fn list_content_parts_give_text_and_content_parts_reasoning() {
    let chunks = [
        delta(
            json!({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}]}),
        ),
        delta(
            json!({"content": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": " more"}]}]}),
        ),
        delta(json!({"content": [{"type": "text", "text": "4"}, {"type": "image_url"}]})),
    ];
    let (events, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["content_parts:hmm more", "text:4"]);
    assert!(events.contains(&Event::ThinkingDelta {
        ci: 0,
        delta: " more".into()
    }));
}

#[test]
fn reasoning_field_precedence_and_details_ignored_on_openai_path() {
    let chunks = [delta(json!({
        "reasoning_content": "rc", "reasoning": "r", "reasoning_text": "rt",
        "reasoning_details": [{"type": "reasoning.text", "text": "rd"}]
    }))];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["reasoning_content:rc"]);
    let chunks = [delta(json!({"reasoning": "", "reasoning_text": "rt"}))];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["reasoning_text:rt"]);
}

#[test]
fn minimax_reasoning_details_win_and_content_is_plain_then() {
    let chunks = [
        delta(
            json!({"reasoning_details": [{"type": "reasoning.text", "text": "think"}], "reasoning_content": "dup"}),
        ),
        delta(json!({"content": "answer"})),
    ];
    let (_, msg) = run(MM, &body(&chunks));
    assert_eq!(
        texts(&msg.blocks),
        ["reasoning_details:think", "text:answer"]
    );
}

#[test]
fn whitespace_after_close_tag_is_dropped_even_in_a_later_chunk() {
    let chunks = [
        delta(json!({"content": "<think>a</think>"})),
        delta(json!({"content": "\n"})),
        delta(json!({"content": "\n Hi  there"})),
    ];
    let (_, msg) = run(MM, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["think_tag:a", "text:Hi  there"]);
}

#[test]
fn held_back_tag_prefix_is_flushed_at_the_end() {
    let chunks = [delta(json!({"content": "x <thi"})), finish("stop")];
    let (_, msg) = run(MM, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["text:x <thi"]);
}

#[test]
fn think_tags_are_text_on_the_openai_path() {
    let chunks = [delta(json!({"content": "<think>a</think>b"}))];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["text:<think>a</think>b"]);
}

#[test]
fn refusal_is_text() {
    let chunks = [delta(json!({"content": null, "refusal": "I can't."}))];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["text:I can't."]);
}

fn call(
    index: Option<i64>,
    id: Option<&str>,
    name: Option<&str>,
    args: serde_json::Value,
) -> serde_json::Value {
    let mut c = json!({"function": {"arguments": args}});
    if let Some(i) = index {
        c["index"] = json!(i);
    }
    if let Some(id) = id {
        c["id"] = json!(id);
        c["type"] = json!("function");
    }
    if let Some(n) = name {
        c["function"]["name"] = json!(n);
    }
    c
}

fn calls(list: Vec<serde_json::Value>) -> serde_json::Value {
    delta(json!({"tool_calls": list}))
}

#[test]
fn repeated_ids_and_names_are_not_concatenated() {
    let chunks = [
        calls(vec![call(
            Some(0),
            Some("functions.add:0"),
            Some("add"),
            json!("{\"a\":"),
        )]),
        calls(vec![call(
            Some(0),
            Some("functions.add:0"),
            Some("add"),
            json!("1}"),
        )]),
        finish("tool_calls"),
    ];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["tool:functions.add:0:add:{\"a\":1}"]);
}

#[test]
fn index_less_fragments_are_routed_by_id_and_neither_continues_the_last() {
    let chunks = [
        calls(vec![call(None, Some("A"), Some("f"), json!("{\"x\""))]),
        calls(vec![call(None, Some("B"), Some("g"), json!("{}"))]),
        calls(vec![call(None, Some("A"), None, json!(":1}"))]),
        calls(vec![call(None, None, None, json!(""))]),
        calls(vec![call(None, Some("C"), Some("h"), json!("{\"y\":"))]),
        calls(vec![call(None, None, None, json!("2}"))]),
    ];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(
        texts(&msg.blocks),
        ["tool:A:f:{\"x\":1}", "tool:B:g:{}", "tool:C:h:{\"y\":2}"]
    );
}

#[test]
fn new_id_at_a_reused_index_starts_a_new_call() {
    let chunks = [
        calls(vec![call(Some(0), Some("A"), Some("f"), json!("{}"))]),
        calls(vec![call(Some(0), Some("B"), Some("g"), json!("{\"k\":"))]),
        calls(vec![call(Some(0), None, None, json!("3}"))]),
    ];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["tool:A:f:{}", "tool:B:g:{\"k\":3}"]);
}

#[test]
fn first_index_one_gets_content_index_in_opening_order() {
    let chunks = [
        delta(json!({"content": "hi"})),
        calls(vec![call(Some(1), Some("A"), Some("f"), json!("{}"))]),
    ];
    let (events, _) = run(OAI, &body(&chunks));
    assert!(events.contains(&Event::ToolCallStart {
        ci: 1,
        id: "A".into(),
        name: "f".into()
    }));
}

#[test]
fn object_arguments_are_serialized_and_missing_ids_synthesized() {
    let chunks = [
        calls(vec![call(Some(0), None, Some("f"), json!({"a": 1}))]),
        finish("tool_calls"),
    ];
    let (events, msg) = run(OAI, &body(&chunks));
    assert!(events.contains(&Event::ToolCallEnd {
        ci: 0,
        id: "call_0".into(),
        name: "f".into(),
        arguments: json!({"a": 1}),
        partial_json: None
    }));
    assert_eq!(msg.stop_reason, StopReason::ToolCalls);
}

#[test]
fn final_arguments_empty_object_invalid_and_non_object() {
    let chunks = [
        calls(vec![call(Some(0), Some("A"), Some("f"), json!(""))]),
        calls(vec![call(
            Some(1),
            Some("B"),
            Some("g"),
            json!("{\"a\": tru"),
        )]),
        calls(vec![call(Some(2), Some("C"), Some("h"), json!("[1]"))]),
        finish("length"),
    ];
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    p.on_sse_data(
        &body(&chunks).replace("data: ", "").replace("\n\n", "\n"),
        false,
        &mut out,
    );
    let ends: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Event::ToolCallEnd {
                arguments,
                partial_json,
                ..
            } => Some((arguments.clone(), partial_json.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        ends,
        vec![
            (json!({}), None),
            (json!({}), Some("{\"a\": tru".to_string())),
            (json!({}), Some("[1]".to_string())),
        ]
    );
    assert_eq!(p.diagnostics().invalid_tool_arguments, 2);
    assert_eq!(
        p.diagnostics().split_events,
        1,
        "read through the tolerance rule"
    );
    assert_eq!(p.message().stop_reason, StopReason::Length);
    assert!(matches!(
        p.message().blocks[1],
        Block::ToolCall { invalid: true, .. }
    ));
}

#[test]
fn text_and_thinking_close_when_another_block_gets_a_fragment() {
    let chunks = [
        delta(json!({"content": "a"})),
        calls(vec![call(Some(0), Some("A"), Some("f"), json!("{"))]),
        delta(json!({"content": "b"})),
        calls(vec![call(Some(0), None, None, json!("}"))]),
    ];
    let (events, msg) = run(OAI, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["text:a", "tool:A:f:{}", "text:b"]);
    let pos = |e: &Event| events.iter().position(|x| x == e).unwrap();
    assert!(
        pos(&Event::TextEnd {
            ci: 0,
            content: "a".into()
        }) < pos(&Event::ToolCallStart {
            ci: 1,
            id: "A".into(),
            name: "f".into()
        })
    );
    assert!(
        pos(&Event::TextEnd {
            ci: 2,
            content: "b".into()
        }) < pos(&Event::ToolCallDelta {
            ci: 1,
            delta: "}".into()
        })
    );
}

#[test]
fn minimax_applies_tool_fragments_before_text() {
    let chunk = delta(
        json!({"content": "after", "tool_calls": [call(Some(0), Some("A"), Some("f"), json!("{}"))]}),
    );
    let (_, msg) = run(MM, &body(std::slice::from_ref(&chunk)));
    assert_eq!(texts(&msg.blocks), ["tool:A:f:{}", "text:after"]);
    let (_, msg) = run(OAI, &body(&[chunk]));
    assert_eq!(texts(&msg.blocks), ["text:after", "tool:A:f:{}"]);
}

#[test]
fn finish_reason_then_end_of_body_without_done_is_success_with_trailing_usage() {
    let s = format!(
        "data: {}\n\ndata: {}\n\ndata: {}\n\n",
        delta(json!({"content": "ok"})),
        finish("stop"),
        json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    );
    let (events, msg) = run(OAI, &s);
    assert_eq!(
        terminal(&events),
        &Event::Done {
            reason: StopReason::Stop
        }
    );
    assert_eq!((msg.usage.input, msg.usage.total_tokens), (3, 4));
}

#[test]
fn last_usage_object_wins_whole() {
    let chunks = [
        json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 2}}}),
        json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
    ];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(
        (msg.usage.input, msg.usage.output, msg.usage.cache_read),
        (5, 2, 0)
    );
}

#[test]
fn done_without_finish_reason_is_stop_and_no_usage_is_all_zero() {
    let (events, msg) = run(OAI, &body(&[delta(json!({"content": "x"}))]));
    assert_eq!(
        terminal(&events),
        &Event::Done {
            reason: StopReason::Stop
        }
    );
    assert_eq!(msg.usage, crate::types::Usage::default());
}

#[test]
fn content_filter_is_an_error() {
    let (events, msg) = run(
        OAI,
        &body(&[delta(json!({"content": "x"})), finish("content_filter")]),
    );
    assert_eq!(
        terminal(&events),
        &Event::Error {
            reason: ErrorReason::Error,
            message: CONTENT_FILTER_MESSAGE.into()
        }
    );
    assert_eq!(msg.stop_reason, StopReason::Error);
    assert_eq!(texts(&msg.blocks), ["text:x"]);
}

#[test]
fn unknown_finish_reason_is_stop_with_a_warning() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    p.on_sse_data(&finish("eos_token").to_string(), false, &mut out);
    p.on_sse_data("[DONE]", false, &mut out);
    assert_eq!(
        terminal(&out),
        &Event::Done {
            reason: StopReason::Stop
        }
    );
    assert_eq!(
        p.diagnostics().unknown_finish_reason.as_deref(),
        Some("eos_token")
    );
}

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

#[test]
fn thinking_signature_is_kept_from_the_first_field() {
    let chunks = [
        delta(json!({"reasoning_content": "a"})),
        delta(json!({"reasoning": "b"})),
    ];
    let (_, msg) = run(OAI, &body(&chunks));
    assert_eq!(
        msg.blocks,
        vec![Block::Thinking {
            thinking: "ab".into(),
            signature: ThinkingSource::ReasoningContent
        }]
    );
}

#[test]
fn partial_arguments_are_best_effort_objects() {
    assert_eq!(partial_arguments("{\"a\": 1"), json!({"a": 1}));
    assert_eq!(partial_arguments("[1,"), json!({}));
    assert_eq!(partial_arguments(""), json!({}));
    let huge = format!(
        "{{\"a\": \"{}\"",
        "x".repeat(super::PARTIAL_ARGUMENTS_LIMIT)
    );
    assert_eq!(partial_arguments(&huge), json!({}));
}
