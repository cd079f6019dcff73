//! Tool-call assembly (docs/wire.md#tool-calls) and block closing around tool calls
//! (docs/wire.md#lifecycle).

use serde_json::json;

use super::tests::{body, delta, finish, texts, MM, OAI};
use super::transcript_tests::{config, run};
use super::{partial_arguments, ChunkProcessor};
use crate::types::{Block, Event, StopReason};

pub(super) fn call(
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

pub(super) fn calls(list: Vec<serde_json::Value>) -> serde_json::Value {
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
        calls(vec![call(Some(0), Some("A"), None, json!(""))]),
        calls(vec![call(Some(0), Some("B"), None, json!(""))]),
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
