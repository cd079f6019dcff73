//! One SSE payload: `[DONE]`, JSON parsing (with the multi-line tolerance rule), error shapes,
//! choice selection and the fields of a `delta` (docs/wire.md#payloads,
//! docs/wire.md#chunks, docs/wire.md#minimax).

use serde::Deserialize;
use serde_json::Value;

use super::wire::{Lenient, WireChoice, WireChunk, WireDelta};
use super::{errors, usage, ChunkProcessor};
use crate::sse::EXCERPT_CHARS;
use crate::types::{ApiKind, ErrorReason, Event, ThinkingSource};

/// What a payload text turned out to be. Returned by value and consumed at once: boxing the
/// chunk would cost an allocation per chunk on the hot path.
#[allow(clippy::large_enum_variant)]
pub(super) enum Parsed {
    Object(WireChunk),
    /// Valid JSON, but not an object.
    NotObject,
    Invalid(serde_json::Error),
}

pub(super) fn parse_payload(text: &str) -> Parsed {
    let starts_object = text.trim_start().starts_with('{');
    if starts_object {
        if let Ok(chunk) = serde_json::from_str::<WireChunk>(text) {
            return Parsed::Object(chunk);
        }
    }
    // Slow path: tells invalid JSON from a duplicate key or a non-object value.
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => match WireChunk::deserialize(v) {
            Ok(chunk) => Parsed::Object(chunk),
            Err(e) => Parsed::Invalid(e),
        },
        Ok(_) => Parsed::NotObject,
        Err(e) => Parsed::Invalid(e),
    }
}

pub(super) fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

fn is_done(text: &str) -> bool {
    text.trim() == "[DONE]"
}

impl ChunkProcessor {
    pub(super) fn on_payload(&mut self, text: &str, is_error: bool, out: &mut Vec<Event>) {
        // `[DONE]` after `event: error` is still an error payload (docs/wire.md#payloads).
        if is_done(text) && !is_error {
            self.finalize(out);
            return;
        }
        if text.trim().is_empty() {
            if is_error {
                self.terminate(ErrorReason::Error, "provider error: (empty)".into(), out);
            } else {
                self.oddity(|| "an SSE event with empty data".into());
            }
            return;
        }
        match parse_payload(text) {
            Parsed::Object(p) => self.on_object(p, is_error, text, out),
            Parsed::NotObject if is_error => {
                let message = errors::provider_error(None, &excerpt(text));
                self.terminate(ErrorReason::Error, message, out);
            }
            Parsed::NotObject => self.oddity(|| format!("a non-object payload: {}", excerpt(text))),
            Parsed::Invalid(e) => {
                if text.contains('\n') && self.try_split_lines(text, is_error, out) {
                    return;
                }
                let message = if is_error {
                    errors::provider_error(None, &excerpt(text))
                } else {
                    format!("malformed stream data: {e}: {}", excerpt(text))
                };
                self.terminate(ErrorReason::Error, message, out);
            }
        }
    }

    /// Tolerance rule (docs/wire.md#payloads): a multi-line buffer that is not JSON as a whole, but
    /// whose every line is (or is `[DONE]`), is a run of events whose blank lines were left out.
    fn try_split_lines(&mut self, text: &str, is_error: bool, out: &mut Vec<Event>) -> bool {
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
        let mut parsed = Vec::with_capacity(lines.len());
        for line in &lines {
            if is_done(line) {
                parsed.push(None);
                continue;
            }
            match parse_payload(line) {
                Parsed::Object(p) => parsed.push(Some((p, *line))),
                _ => return false,
            }
        }
        self.diag.split_events += 1;
        for item in parsed {
            if self.finished {
                break;
            }
            match item {
                None => self.finalize(out),
                Some((p, line)) => self.on_object(p, is_error, line, out),
            }
        }
        true
    }

    fn on_object(&mut self, mut p: WireChunk, is_error: bool, raw: &str, out: &mut Vec<Event>) {
        if let Some(message) = errors::inband_error(&p.error_shape(), is_error, raw) {
            self.terminate(ErrorReason::Error, message, out);
            return;
        }
        match &p.usage {
            Value::Object(u) => self.msg.usage = usage::map_usage(u),
            Value::Null => {}
            _ => self.oddity(|| "a non-object usage".into()),
        }
        match &mut p.choices {
            Lenient::Present(choices) => {
                let index_of = |c: &Lenient<WireChoice>| match c {
                    Lenient::Present(c) => c.index.as_i64().unwrap_or(0),
                    _ => 0,
                };
                let indexes = choices.iter().map(index_of);
                if let Some(pos) = pick_choice(indexes, choices.len(), self.multi_choice) {
                    self.on_choice(&mut choices[pos], out);
                }
            }
            Lenient::Absent => {}
            Lenient::Wrong => self.oddity(|| "a non-array choices".into()),
        }
    }

    fn on_choice(&mut self, choice: &mut Lenient<WireChoice>, out: &mut Vec<Event>) {
        let Lenient::Present(choice) = choice else {
            if matches!(choice, Lenient::Wrong) {
                self.oddity(|| "a non-object choice".into());
            }
            return;
        };
        match &mut choice.delta {
            Lenient::Present(delta) => self.on_delta(delta, out),
            Lenient::Absent => {}
            Lenient::Wrong => self.oddity(|| "a non-object delta".into()),
        }
        match choice.finish_reason.take() {
            Lenient::Present(reason) if !reason.is_empty() => self.finish_reason = Some(reason),
            Lenient::Wrong => self.oddity(|| "a non-string finish_reason".into()),
            _ => {}
        }
    }

    /// Apply one delta. Each content field yields at most one delta event; on MiniMax the tool
    /// fragments go first (docs/wire.md#minimax).
    fn on_delta(&mut self, delta: &mut WireDelta, out: &mut Vec<Event>) {
        let minimax = self.msg.api == ApiKind::MiniMaxCompletions;
        if minimax {
            self.on_tool_fragments(&mut delta.tool_calls, out);
        }
        let reasoning = self.take_reasoning(delta);
        let has_reasoning = reasoning.is_some();
        if let Some((text, source)) = reasoning {
            self.push_thinking(text, source, out);
        }
        match &mut delta.content {
            Value::String(s) if !s.is_empty() => {
                if minimax && !has_reasoning {
                    let s = std::mem::take(s);
                    self.push_think_tagged(&s, out);
                } else {
                    self.push_text(std::mem::take(s), out);
                }
            }
            Value::Array(parts) => self.on_content_parts(parts, out),
            Value::Null | Value::String(_) => {}
            _ => self.oddity(|| "a non-string, non-list delta.content".into()),
        }
        match delta.refusal.take() {
            Lenient::Present(s) => self.push_text(s, out),
            Lenient::Absent => {}
            Lenient::Wrong => self.oddity(|| "a non-string delta.refusal".into()),
        }
        if !minimax {
            self.on_tool_fragments(&mut delta.tool_calls, out);
        }
    }

    /// The reasoning text of a delta and the field it came from (docs/wire.md#reasoning-fields).
    fn take_reasoning(&mut self, delta: &mut WireDelta) -> Option<(String, ThinkingSource)> {
        if self.msg.api == ApiKind::MiniMaxCompletions {
            if let Value::Array(details) = &delta.reasoning_details {
                let text: String = details
                    .iter()
                    .filter_map(|d| d.get("text").and_then(Value::as_str))
                    .collect();
                if !text.is_empty() {
                    return Some((text, ThinkingSource::ReasoningDetails));
                }
            }
        }
        let fields = [
            (
                "reasoning_content",
                &mut delta.reasoning_content,
                ThinkingSource::ReasoningContent,
            ),
            ("reasoning", &mut delta.reasoning, ThinkingSource::Reasoning),
            (
                "reasoning_text",
                &mut delta.reasoning_text,
                ThinkingSource::ReasoningText,
            ),
        ];
        let mut found = None;
        let mut odd = None;
        for (name, field, source) in fields {
            match field {
                Lenient::Present(s) if !s.is_empty() => {
                    found = Some((std::mem::take(s), source));
                    break;
                }
                Lenient::Wrong => odd = odd.or(Some(name)),
                _ => {}
            }
        }
        if let Some(name) = odd {
            self.oddity(|| format!("a non-string delta.{name}"));
        }
        found
    }

    /// List-typed content (Mistral, Databricks): `text` parts are text, `thinking`/`reasoning`
    /// parts are reasoning. Consecutive parts of one kind make one delta.
    fn on_content_parts(&mut self, parts: &mut [Value], out: &mut Vec<Event>) {
        let mut pending = String::new();
        let mut pending_thinking = false;
        for part in parts.iter_mut() {
            let Some((text, thinking)) = self.read_part(part) else {
                continue;
            };
            if thinking != pending_thinking && !pending.is_empty() {
                self.emit_part_run(std::mem::take(&mut pending), pending_thinking, out);
            }
            pending_thinking = thinking;
            pending.push_str(&text);
        }
        self.emit_part_run(pending, pending_thinking, out);
    }

    fn emit_part_run(&mut self, text: String, thinking: bool, out: &mut Vec<Event>) {
        if thinking {
            self.push_thinking(text, ThinkingSource::ContentParts, out);
        } else {
            self.push_text(text, out);
        }
    }

    pub(super) fn read_part(&mut self, part: &mut Value) -> Option<(String, bool)> {
        let Value::Object(part) = part else {
            self.oddity(|| "a non-object content part".into());
            return None;
        };
        match part.get("type").and_then(Value::as_str) {
            Some("text") => match part.get_mut("text") {
                Some(Value::String(s)) => Some((std::mem::take(s), false)),
                _ => {
                    self.oddity(|| "a text part without a string text".into());
                    None
                }
            },
            Some(kind @ ("thinking" | "reasoning")) => {
                let kind = kind.to_string();
                let text = ["thinking", "summary", "reasoning", "text"]
                    .iter()
                    .find_map(|key| part.get(*key).and_then(nested_text));
                if text.is_none() {
                    self.oddity(|| format!("a {kind} part without text"));
                }
                text.map(|t| (t, true))
            }
            other => {
                let other = other.unwrap_or("<none>").to_string();
                self.oddity(|| format!("a content part of type {other}"));
                None
            }
        }
    }
}

/// A reasoning part's value: its own string, or the `text` values of its nested list.
fn nested_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// Choice selection (docs/wire.md#chunks). Without `n > 1`, the first choice whatever its `index`
/// (TGI numbers them one per chunk), or index 0 among several; with `n > 1`, index 0 only.
/// A choice without an `index` counts as index 0.
pub(super) fn pick_choice(
    mut indexes: impl Iterator<Item = i64>,
    len: usize,
    multi_choice: bool,
) -> Option<usize> {
    if len == 0 {
        return None;
    }
    if !multi_choice && len == 1 {
        return Some(0);
    }
    match indexes.position(|i| i == 0) {
        Some(pos) => Some(pos),
        None if !multi_choice => Some(0),
        None => None,
    }
}
