//! Context → the `messages` array of the OpenAI-compatible body (docs/wire.md#messages,
//! docs/wire.md#cache-markers, docs/wire.md#minimax).

use std::collections::HashMap;

use alchemy_llm::sanitize_surrogates;
use serde_json::{json, Map, Value};

use super::context::{AssistantBlock, ContextInput, Message, UserPart};

/// How the selected endpoint wants history written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageStyle {
    /// `"system"` or `"developer"` (docs/wire.md#messages).
    pub system_role: &'static str,
    /// The endpoint honours `cache_control` (docs/wire.md#provider-defaults); otherwise every
    /// marker is stripped.
    pub cache_markers: bool,
    /// MiniMax replays thinking inside the assistant content (docs/wire.md#minimax).
    pub replay_thinking: bool,
    /// The endpoint accepts image parts inside a tool message (`compat.supports_tool_result_images`);
    /// otherwise they follow the run of tool messages in a user message.
    pub tool_result_images: bool,
}

/// Anthropic accepts at most 4 breakpoints per request (docs/wire.md#cache-markers).
const MARKER_BUDGET: usize = 4;
const ORPHAN_RESULT: &str = "No result: the tool call was not executed.";
const EMPTY_RESULT: &str = "(no output)";

/// Outgoing text, with alchemy-llm's surrogate clean-up applied only when it could change
/// anything (it drops U+FFFD, the mark a lossy conversion of a lone surrogate leaves).
pub(crate) fn clean_text(text: &str) -> String {
    if text.contains('\u{FFFD}') {
        sanitize_surrogates(text)
    } else {
        text.to_owned()
    }
}

/// [`clean_text`] for text already owned: no copy unless something is dropped.
fn clean_owned(text: String) -> String {
    if text.contains('\u{FFFD}') {
        sanitize_surrogates(&text)
    } else {
        text
    }
}

/// The `cache_control` a user message carries, if any: the marker of its last marked text block,
/// provided it has some non-empty text to hang it on.
fn user_marker<'a>(parts: &[UserPart<'a>]) -> Option<&'a Value> {
    let has_text = parts
        .iter()
        .any(|p| matches!(p, UserPart::Text { text, .. } if !text.is_empty()));
    if !has_text {
        return None;
    }
    parts.iter().rev().find_map(|p| match p {
        UserPart::Text { marker, .. } => *marker,
        UserPart::Image { .. } => None,
    })
}

/// Per message index, the marker that survives the budget: the most recent marked user messages,
/// three of them when the system prompt takes the first slot, four otherwise.
fn markers_within_budget<'a>(ctx: &ContextInput<'a>) -> Vec<Option<&'a Value>> {
    let mut kept = vec![None; ctx.messages.len()];
    let mut budget = if ctx.system_prompt.is_empty() {
        MARKER_BUDGET
    } else {
        MARKER_BUDGET - 1
    };
    for (i, message) in ctx.messages.iter().enumerate().rev() {
        if budget == 0 {
            break;
        }
        if let Message::User(parts) = message {
            if let Some(marker) = user_marker(parts) {
                kept[i] = Some(marker);
                budget -= 1;
            }
        }
    }
    kept
}

fn image_part(url: &str) -> Value {
    json!({"type": "image_url", "image_url": {"url": url}})
}

fn text_part(text: String) -> Value {
    json!({"type": "text", "text": text})
}

fn user_message(parts: &[UserPart<'_>], marker: Option<&Value>) -> Value {
    let mut wire: Vec<Value> = Vec::with_capacity(parts.len());
    let mut last_text = None;
    for part in parts {
        match part {
            UserPart::Text { text: "", .. } => {}
            UserPart::Text { text, .. } => {
                last_text = Some(wire.len());
                wire.push(text_part(clean_text(text)));
            }
            UserPart::Image { url } => wire.push(image_part(url)),
        }
    }
    let content = match (marker, last_text) {
        (Some(marker), Some(k)) => {
            wire[k]["cache_control"] = marker.clone();
            Value::Array(wire)
        }
        _ if wire.is_empty() => Value::String(String::new()),
        _ if wire.len() == 1 && last_text.is_some() => wire.pop().expect("one part")["text"].take(),
        _ => Value::Array(wire),
    };
    json!({"role": "user", "content": content})
}

fn push_joined(buf: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !buf.is_empty() {
        buf.push('\n');
    }
    buf.push_str(text);
}

/// The tool calls of the latest assistant message that are still waiting for their results.
#[derive(Default)]
struct OpenTurn<'a> {
    calls: Vec<(&'a str, &'a str)>,
    answered: Vec<bool>,
    by_id: HashMap<&'a str, usize>,
    /// Extra user messages carrying tool-result images, sent after the run of tool messages
    /// (only where the endpoint does not take images in a tool message).
    image_messages: Vec<Value>,
    /// [`MessageStyle::tool_result_images`]: images stay inside their tool message.
    inline_images: bool,
}

impl<'a> OpenTurn<'a> {
    fn open(&mut self, calls: Vec<(&'a str, &'a str)>) {
        for (k, (id, _)) in calls.iter().enumerate() {
            self.by_id.entry(id).or_insert(k);
        }
        self.answered = vec![false; calls.len()];
        self.calls = calls;
    }

    /// Ends the turn: closes orphan calls, then appends the image messages.
    fn close(&mut self, out: &mut Vec<Value>) {
        for (k, (id, _)) in self.calls.iter().enumerate() {
            if !self.answered[k] {
                out.push(json!({"role": "tool", "tool_call_id": id, "content": ORPHAN_RESULT}));
            }
        }
        out.append(&mut self.image_messages);
        self.calls.clear();
        self.answered.clear();
        self.by_id.clear();
    }
}

/// Converts the history. Returns the wire messages and one warning per dropped tool result.
pub(crate) fn convert_messages(
    ctx: &ContextInput<'_>,
    style: MessageStyle,
) -> (Vec<Value>, Vec<String>) {
    let markers = if style.cache_markers {
        markers_within_budget(ctx)
    } else {
        vec![None; ctx.messages.len()]
    };
    let mut out = Vec::with_capacity(ctx.messages.len() + 1);
    let mut warnings = Vec::new();
    if !ctx.system_prompt.is_empty() {
        let text = clean_text(ctx.system_prompt);
        // The system prompt takes the marker of the oldest surviving user marker, so it never
        // introduces a longer-lived (ttl) breakpoint after a shorter one.
        let content = match markers.iter().flatten().next() {
            Some(m) => json!([{"type": "text", "text": text, "cache_control": m}]),
            None => Value::String(text),
        };
        out.push(json!({"role": style.system_role, "content": content}));
    }
    let mut turn = OpenTurn {
        inline_images: style.tool_result_images,
        ..OpenTurn::default()
    };
    for (i, message) in ctx.messages.iter().enumerate() {
        match message {
            Message::ToolResult {
                call_id,
                tool_name,
                parts,
            } => tool_result(
                &mut turn,
                &mut out,
                &mut warnings,
                i,
                *call_id,
                *tool_name,
                parts,
            ),
            Message::User(parts) => {
                turn.close(&mut out);
                out.push(user_message(parts, markers[i]));
            }
            Message::Assistant { blocks, failed } => {
                turn.close(&mut out);
                if let Some((wire, calls)) = assistant_message(blocks, *failed, style) {
                    out.push(wire);
                    turn.open(calls);
                }
            }
        }
    }
    turn.close(&mut out);
    (out, warnings)
}

type AssistantWire<'a> = (Value, Vec<(&'a str, &'a str)>);

fn assistant_message<'a>(
    blocks: &[AssistantBlock<'a>],
    failed: bool,
    style: MessageStyle,
) -> Option<AssistantWire<'a>> {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    let mut wire_calls = Vec::new();
    for block in blocks {
        match block {
            AssistantBlock::Text(t) => push_joined(&mut text, t),
            // Failed turns are sanitized (docs/wire.md#messages): only their text is replayed.
            _ if failed => {}
            AssistantBlock::Thinking(t) if style.replay_thinking => push_joined(&mut thinking, t),
            AssistantBlock::Thinking(_) => {}
            AssistantBlock::ToolCall(call) => {
                let arguments = match call.arguments {
                    Some(args) if !call.unparsed => {
                        serde_json::to_string(args).expect("a JSON map serializes")
                    }
                    _ => "{}".to_string(),
                };
                wire_calls.push(json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": arguments},
                }));
                calls.push((call.id, call.name));
            }
        }
    }
    let content = match (thinking.is_empty(), text.is_empty()) {
        (false, _) => clean_owned(format!("<think>\n{thinking}\n</think>\n\n{text}")),
        (true, false) => clean_owned(text),
        (true, true) if wire_calls.is_empty() => return None,
        (true, true) => String::new(),
    };
    let mut wire = Map::new();
    wire.insert("role".into(), "assistant".into());
    wire.insert(
        "content".into(),
        if content.is_empty() {
            Value::Null
        } else {
            content.into()
        },
    );
    if !wire_calls.is_empty() {
        wire.insert("tool_calls".into(), Value::Array(wire_calls));
    }
    Some((Value::Object(wire), calls))
}

fn tool_result<'a>(
    turn: &mut OpenTurn<'a>,
    out: &mut Vec<Value>,
    warnings: &mut Vec<String>,
    index: usize,
    call_id: Option<&'a str>,
    tool_name: Option<&'a str>,
    parts: &[UserPart<'a>],
) {
    let Some(id) = call_id else {
        warnings.push(format!(
            "dropped tool result messages[{index}]: it has no tool_call_id"
        ));
        return;
    };
    let k = match turn.by_id.get(id) {
        Some(&k) if !turn.answered[k] => k,
        Some(_) => {
            warnings.push(format!(
                "dropped tool result messages[{index}]: tool call '{id}' already has a result"
            ));
            return;
        }
        None => {
            warnings.push(format!(
                "dropped tool result messages[{index}]: no preceding tool call has id '{id}'"
            ));
            return;
        }
    };
    turn.answered[k] = true;
    let mut text = String::new();
    let mut images = Vec::new();
    for part in parts {
        match part {
            UserPart::Text { text: t, .. } => push_joined(&mut text, t),
            UserPart::Image { url } => images.push(image_part(url)),
        }
    }
    let content = if text.is_empty() {
        EMPTY_RESULT.to_string()
    } else {
        clean_owned(text)
    };
    if turn.inline_images && !images.is_empty() {
        let mut parts = Vec::with_capacity(images.len() + 1);
        parts.push(text_part(content));
        parts.extend(images);
        out.push(json!({"role": "tool", "tool_call_id": id, "content": parts}));
        return;
    }
    out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
    if !images.is_empty() {
        let name = tool_name.unwrap_or(turn.calls[k].1);
        let mut parts = Vec::with_capacity(images.len() + 1);
        parts.push(text_part(format!("Images returned by tool {name} ({id}):")));
        parts.extend(images);
        turn.image_messages
            .push(json!({"role": "user", "content": parts}));
    }
}
