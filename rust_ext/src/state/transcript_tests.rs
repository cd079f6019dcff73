//! The worked transcript of docs/wire.md#lifecycle and the in-band error, MiniMax and truncation
//! cases (docs/wire.md#in-band-errors, #minimax, #stop-reasons) as exact event lists, and the
//! fragmentation property (R16, R3): any split of the body bytes gives the same events and final
//! message.

use proptest::prelude::*;
use serde_json::json;

use super::{ChunkProcessor, Flow, ProcessorConfig};
use crate::sse::SseReader;
use crate::types::{ApiKind, Block, ErrorReason, Event, MessageState, StopReason, ThinkingSource};

pub(super) fn config(api: ApiKind) -> ProcessorConfig {
    ProcessorConfig {
        api,
        provider: "openrouter".into(),
        model: "m".into(),
        timestamp: 1_718_000_000_000,
        multi_choice: false,
        context_window: None,
        api_key: Some("sk-secret".into()),
    }
}

/// Drive reader + processor the way the transport does, one network read per piece.
pub(super) fn run_pieces(cfg: ProcessorConfig, pieces: &[&[u8]]) -> (Vec<Event>, MessageState) {
    let mut reader = SseReader::new();
    let mut p = ChunkProcessor::new(cfg);
    let mut out = Vec::new();
    let mut events = Vec::new();
    p.start(&mut out);
    for piece in pieces {
        let fed = reader.feed(piece, &mut events);
        for ev in events.drain(..) {
            if p.on_sse_event(&ev, &mut out) == Flow::Finished {
                return (out, p.message().clone());
            }
        }
        if let Err(e) = fed {
            p.fail(ErrorReason::Error, e.to_string(), &mut out);
            return (out, p.message().clone());
        }
    }
    match reader.finish(&mut events) {
        Ok(_) => {
            for ev in events.drain(..) {
                if p.on_sse_event(&ev, &mut out) == Flow::Finished {
                    return (out, p.message().clone());
                }
            }
            p.on_end_of_body(&mut out);
        }
        Err(e) => p.fail(ErrorReason::Error, e.to_string(), &mut out),
    }
    (out, p.message().clone())
}

pub(super) fn run(api: ApiKind, body: &str) -> (Vec<Event>, MessageState) {
    run_pieces(config(api), &[body.as_bytes()])
}

/// The worked transcript, byte for byte (CRLF line endings).
pub(super) fn transcript() -> String {
    let lines = [
        r#": OPENROUTER PROCESSING"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{"reasoning":"Two cities, two lookups."}}]}"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{"content":"Checking both — one moment."}}]}"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_time","arguments":""}}]}}]}"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"city\":"}}]}}]}"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Oslo\"}"}}]}}]}"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"Lima\"}"}}]}}]}"#,
        r#"data: {"id":"gen-7","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        r#"data: {"id":"gen-7","choices":[],"usage":{"prompt_tokens":812,"completion_tokens":64,"total_tokens":876,"prompt_tokens_details":{"cached_tokens":768},"cost":0.000412,"cost_details":{"upstream_inference_cost":null}}}"#,
        r#"data: [DONE]"#,
    ];
    let mut body = String::new();
    for line in lines {
        body.push_str(line);
        body.push_str("\r\n\r\n");
    }
    body
}

fn transcript_events() -> Vec<Event> {
    let thinking = "Two cities, two lookups.".to_string();
    let text = "Checking both — one moment.".to_string();
    vec![
        Event::Start,
        Event::ThinkingStart { ci: 0 },
        Event::ThinkingDelta {
            ci: 0,
            delta: thinking.clone(),
        },
        Event::ThinkingEnd {
            ci: 0,
            content: thinking,
        },
        Event::TextStart { ci: 1 },
        Event::TextDelta {
            ci: 1,
            delta: text.clone(),
        },
        Event::TextEnd {
            ci: 1,
            content: text,
        },
        Event::ToolCallStart {
            ci: 2,
            id: "call_a".into(),
            name: "get_time".into(),
        },
        Event::ToolCallStart {
            ci: 3,
            id: "call_b".into(),
            name: "get_time".into(),
        },
        Event::ToolCallDelta {
            ci: 3,
            delta: "{\"city\":".into(),
        },
        Event::ToolCallDelta {
            ci: 2,
            delta: "{\"city\":\"Oslo\"}".into(),
        },
        Event::ToolCallDelta {
            ci: 3,
            delta: "\"Lima\"}".into(),
        },
        Event::ToolCallEnd {
            ci: 2,
            id: "call_a".into(),
            name: "get_time".into(),
            arguments: json!({"city": "Oslo"}),
            partial_json: None,
        },
        Event::ToolCallEnd {
            ci: 3,
            id: "call_b".into(),
            name: "get_time".into(),
            arguments: json!({"city": "Lima"}),
            partial_json: None,
        },
        Event::Done {
            reason: StopReason::ToolCalls,
        },
    ]
}

#[test]
fn annotated_transcript_gives_the_documented_events_and_message() {
    let (events, msg) = run(ApiKind::OpenAiCompletions, &transcript());
    assert_eq!(events, transcript_events());
    assert_eq!(msg.stop_reason, StopReason::ToolCalls);
    assert_eq!(msg.error_message, None);
    assert_eq!(msg.timestamp, 1_718_000_000_000);
    assert_eq!(
        msg.blocks[0],
        Block::Thinking {
            thinking: "Two cities, two lookups.".into(),
            signature: ThinkingSource::Reasoning
        }
    );
    assert_eq!(
        msg.blocks[1],
        Block::Text {
            text: "Checking both — one moment.".into()
        }
    );
    assert!(
        matches!(&msg.blocks[3], Block::ToolCall { id, arguments: Some(a), invalid: false, .. }
        if id == "call_b" && *a == json!({"city": "Lima"}))
    );
    let u = &msg.usage;
    assert_eq!(
        (
            u.input,
            u.output,
            u.total_tokens,
            u.cache_read,
            u.cache_write
        ),
        (812, 64, 876, 768, 0)
    );
    assert_eq!(
        (u.cost_input, u.cost_output, u.cost_total),
        (0.0, 0.0, 0.000412)
    );
}

#[test]
fn inband_error_mid_stream_keeps_text() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The answer is\"}}]}\n\n",
        "data: {\"error\":{\"code\":502,\"message\":\"Upstream overloaded\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n",
    );
    let (events, msg) = run(ApiKind::OpenAiCompletions, body);
    let message = "provider error 502: Upstream overloaded".to_string();
    assert_eq!(
        events,
        vec![
            Event::Start,
            Event::TextStart { ci: 0 },
            Event::TextDelta {
                ci: 0,
                delta: "The answer is".into()
            },
            Event::TextEnd {
                ci: 0,
                content: "The answer is".into()
            },
            Event::Error {
                reason: ErrorReason::Error,
                message: message.clone()
            },
        ]
    );
    assert_eq!(msg.stop_reason, StopReason::Error);
    assert_eq!(msg.error_message, Some(message));
    assert_eq!(
        msg.blocks,
        vec![Block::Text {
            text: "The answer is".into()
        }]
    );
}

#[test]
fn minimax_inline_think_tags_split_across_chunks() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"<thi\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"nk>Add 2 and 3.</th\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ink>\\n\\nThe sum is 5.\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let (events, msg) = run(ApiKind::MiniMaxCompletions, body);
    assert_eq!(
        events,
        vec![
            Event::Start,
            Event::ThinkingStart { ci: 0 },
            Event::ThinkingDelta {
                ci: 0,
                delta: "Add 2 and 3.".into()
            },
            Event::ThinkingEnd {
                ci: 0,
                content: "Add 2 and 3.".into()
            },
            Event::TextStart { ci: 1 },
            Event::TextDelta {
                ci: 1,
                delta: "The sum is 5.".into()
            },
            Event::TextEnd {
                ci: 1,
                content: "The sum is 5.".into()
            },
            Event::Done {
                reason: StopReason::Stop
            },
        ]
    );
    assert!(matches!(
        msg.blocks[0],
        Block::Thinking {
            signature: ThinkingSource::ThinkTag,
            ..
        }
    ));
}

#[test]
fn truncated_stream_is_an_error_with_text_kept() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hal\"}}]}\n\n";
    let (events, msg) = run(ApiKind::OpenAiCompletions, body);
    let message = super::TRUNCATED_MESSAGE.to_string();
    assert_eq!(
        events,
        vec![
            Event::Start,
            Event::TextStart { ci: 0 },
            Event::TextDelta {
                ci: 0,
                delta: "Hal".into()
            },
            Event::TextEnd {
                ci: 0,
                content: "Hal".into()
            },
            Event::Error {
                reason: ErrorReason::Error,
                message: message.clone()
            },
        ]
    );
    assert_eq!(msg.error_message, Some(message));
    assert_eq!(msg.blocks, vec![Block::Text { text: "Hal".into() }]);
}

/// Cut `bytes` at the given (sorted, deduplicated) offsets.
fn split_at_offsets<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        if cut > start && cut < bytes.len() {
            pieces.push(&bytes[start..cut]);
            start = cut;
        }
    }
    pieces.push(&bytes[start..]);
    pieces
}

#[test]
fn transcript_split_inside_the_em_dash_and_between_cr_and_lf() {
    let body = transcript();
    let bytes = body.as_bytes();
    let dash = body.find('—').unwrap();
    let crlf = body.find("\r\n").unwrap();
    for cuts in [
        vec![dash + 1],
        vec![dash + 2],
        vec![crlf + 1],
        vec![dash + 1, crlf + 1, crlf + 3],
    ] {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let (events, _) = run_pieces(
            config(ApiKind::OpenAiCompletions),
            &split_at_offsets(bytes, &cuts),
        );
        assert_eq!(events, transcript_events(), "cuts {cuts:?}");
    }
    let one_byte: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(
        run_pieces(config(ApiKind::OpenAiCompletions), &one_byte).0,
        transcript_events()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_fragmentation_gives_identical_events_and_message(
        mut cuts in proptest::collection::vec(0usize..2000, 0..40)
    ) {
        let body = transcript();
        let bytes = body.as_bytes();
        let whole = run(ApiKind::OpenAiCompletions, &body);
        let len = bytes.len();
        for c in cuts.iter_mut() {
            *c %= len;
        }
        cuts.sort_unstable();
        cuts.dedup();
        let split = run_pieces(config(ApiKind::OpenAiCompletions), &split_at_offsets(bytes, &cuts));
        prop_assert_eq!(&split.0, &whole.0);
        prop_assert_eq!(&split.1, &whole.1);
        prop_assert_eq!(split.0.iter().filter(|e| e.is_terminal()).count(), 1);
    }
}

/// Split `bytes` at the cuts (any order, any values) reduced modulo its length.
fn cut_anywhere(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    for c in cuts.iter_mut() {
        *c %= bytes.len().max(1);
    }
    cuts.sort_unstable();
    cuts.dedup();
    split_at_offsets(bytes, &cuts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// R3: arbitrary text (CJK, emoji, control characters) under arbitrary line endings and
    /// arbitrary network reads comes out exactly as sent.
    #[test]
    fn any_text_survives_any_fragmentation_and_line_ending(
        fragments in proptest::collection::vec("\\PC{0,12}|[日本語🎉—é\\r\\n]{1,6}", 1..12),
        ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        cuts in proptest::collection::vec(0usize..4000, 0..30),
    ) {
        let mut body = String::new();
        for f in &fragments {
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": f}}]});
            body.push_str(&format!("data: {chunk}{ending}{ending}"));
        }
        body.push_str(&format!("data: [DONE]{ending}{ending}"));
        let (events, msg) = run_pieces(config(ApiKind::OpenAiCompletions), &cut_anywhere(body.as_bytes(), cuts));
        let want: String = fragments.concat();
        let got: String = msg.blocks.iter().map(|b| match b {
            Block::Text { text } => text.as_str(),
            _ => "",
        }).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(events.last(), Some(&Event::Done { reason: StopReason::Stop }));
    }
}
