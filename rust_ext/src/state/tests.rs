//! One test per rule of docs/wire.md, from #chunks to #json-replies.

use serde_json::json;

use super::transcript_tests::{config, run, run_pieces};
use super::{ChunkProcessor, CONTENT_FILTER_MESSAGE};
use crate::types::{ApiKind, Block, ErrorReason, Event, StopReason, ThinkingSource};

pub(super) const OAI: ApiKind = ApiKind::OpenAiCompletions;
pub(super) const MM: ApiKind = ApiKind::MiniMaxCompletions;

/// An SSE body from chunk JSON values, ending with `[DONE]`.
pub(super) fn body(chunks: &[serde_json::Value]) -> String {
    let mut s = String::new();
    for c in chunks {
        s.push_str(&format!("data: {c}\n\n"));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

pub(super) fn delta(d: serde_json::Value) -> serde_json::Value {
    json!({"choices": [{"index": 0, "delta": d}]})
}

pub(super) fn finish(reason: &str) -> serde_json::Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

pub(super) fn texts(blocks: &[Block]) -> Vec<String> {
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

pub(super) fn terminal(events: &[Event]) -> &Event {
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
fn with_multi_choice_the_other_choices_finish_reasons_and_tool_calls_are_ignored() {
    // OpenAI's n = 3 interleaving: choice 1 calls a tool and finishes first, choice 2 outlives
    // choice 0. Only choice 0 may shape the message and its stop reason.
    let tool = json!({"index": 0, "id": "call_1", "type": "function",
                      "function": {"name": "f", "arguments": "{}"}});
    let chunks = [
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        json!({"choices": [{"index": 1, "delta": {"tool_calls": [tool]}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "It is "}}]}),
        json!({"choices": [{"index": 1, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [{"index": 2, "delta": {"content": "Es ist "}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "noon."}, "finish_reason": "stop"}]}),
        json!({"choices": [{"index": 2, "delta": {"content": "Mittag."}, "finish_reason": "length"}]}),
    ];
    let mut cfg = config(OAI);
    cfg.multi_choice = true;
    let (events, msg) = run_pieces(cfg, &[body(&chunks).as_bytes()]);
    assert_eq!(texts(&msg.blocks), ["text:It is noon."]);
    assert_eq!(msg.stop_reason, StopReason::Stop);
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::ToolCallStart { .. })));
}

#[test]
fn a_json_completion_with_several_choices_reads_index_zero() {
    let body = json!({"choices": [
        {"index": 1, "message": {"content": "second"}, "finish_reason": "length"},
        {"index": 0, "message": {"content": "first"}, "finish_reason": "stop"},
        {"index": 2, "message": {"content": "third"}, "finish_reason": "stop"}]});
    for multi_choice in [true, false] {
        let mut cfg = config(OAI);
        cfg.multi_choice = multi_choice;
        let mut p = ChunkProcessor::new(cfg);
        let mut out = Vec::new();
        p.on_json_body(body.to_string().as_bytes(), &mut out);
        assert_eq!(texts(&p.message().blocks), ["text:first"], "{multi_choice}");
        assert_eq!(p.message().stop_reason, StopReason::Stop);
    }
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
fn whitespace_after_an_empty_think_block_is_dropped() {
    let chunks = [
        delta(json!({"content": "<think></th"})),
        delta(json!({"content": "ink>\n\nHi"})),
    ];
    let (_, msg) = run(MM, &body(&chunks));
    assert_eq!(texts(&msg.blocks), ["text:Hi"]);
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
    p.on_sse_data(&finish("made_up_reason").to_string(), false, &mut out);
    p.on_sse_data("[DONE]", false, &mut out);
    assert_eq!(
        terminal(&out),
        &Event::Done {
            reason: StopReason::Stop
        }
    );
    assert_eq!(
        p.diagnostics().unknown_finish_reason.as_deref(),
        Some("made_up_reason")
    );
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
fn duplicate_keys_and_non_object_payloads_do_not_end_the_stream() {
    let mut p = ChunkProcessor::new(config(OAI));
    let mut out = Vec::new();
    // serde's derive rejects a repeated key; the slow path reads it like a JSON parser (last wins).
    let dup =
        r#"{"choices":[{"delta":{"content":"lost"}}],"choices":[{"delta":{"content":"kept"}}]}"#;
    p.on_sse_data(dup, false, &mut out);
    p.on_sse_data("[1, 2]", false, &mut out);
    p.on_sse_data("\"hello\"", false, &mut out);
    assert!(!p.is_finished());
    assert_eq!(texts(&p.message().blocks), ["text:kept"]);
    assert_eq!(p.diagnostics().oddities, 2);
}
