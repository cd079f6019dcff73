//! One SSE payload: `[DONE]`, JSON parsing (with the multi-line tolerance rule), error shapes,
//! choice selection and the fields of a `delta` (wire.md §2.1, §2.2, §2.5).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{errors, usage, ChunkProcessor};
use crate::sse::EXCERPT_CHARS;
use crate::types::{ApiKind, ErrorReason, Event, ThinkingSource};

/// The top-level keys the core reads. Every other key (`id`, `model`, `created`, `provider`,
/// `x_groq`, padding …) is skipped by serde without being materialised, which keeps the hot path
/// (one small text delta per chunk) cheap. A missing key is `Null`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Payload {
    #[serde(default)]
    pub choices: Value,
    #[serde(default)]
    pub usage: Value,
    #[serde(default)]
    pub error: Value,
    #[serde(default)]
    pub object: Value,
    #[serde(default)]
    pub message: Value,
    #[serde(default)]
    pub code: Value,
    #[serde(default)]
    pub base_resp: Value,
}

impl Payload {
    /// Build from an already parsed object (the slow path: duplicate keys, non-streaming body).
    pub(super) fn from_object(mut obj: Map<String, Value>) -> Self {
        let mut take = |k: &str| obj.remove(k).unwrap_or(Value::Null);
        Payload {
            choices: take("choices"),
            usage: take("usage"),
            error: take("error"),
            object: take("object"),
            message: take("message"),
            code: take("code"),
            base_resp: take("base_resp"),
        }
    }
}

/// What a payload text turned out to be. Returned by value and consumed at once: boxing the
/// payload would cost an allocation per chunk on the hot path.
#[allow(clippy::large_enum_variant)]
pub(super) enum Parsed {
    Object(Payload),
    /// Valid JSON, but not an object.
    NotObject,
    Invalid(serde_json::Error),
}

pub(super) fn parse_payload(text: &str) -> Parsed {
    let starts_object = text.trim_start().starts_with('{');
    if starts_object {
        if let Ok(p) = serde_json::from_str::<Payload>(text) {
            return Parsed::Object(p);
        }
    }
    // Slow path: tells invalid JSON from a duplicate key or a non-object value.
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Parsed::Object(Payload::from_object(obj)),
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
        // `[DONE]` after `event: error` is still an error payload (wire.md §2.4).
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

    /// Tolerance rule (wire.md §2.1): a multi-line buffer that is not JSON as a whole, but whose
    /// every line is (or is `[DONE]`), is a run of events whose blank lines were left out.
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

    fn on_object(&mut self, mut p: Payload, is_error: bool, raw: &str, out: &mut Vec<Event>) {
        if let Some(message) = errors::inband_error(&p, is_error, raw) {
            self.terminate(ErrorReason::Error, message, out);
            return;
        }
        match &p.usage {
            Value::Object(u) => self.msg.usage = usage::map_usage(u),
            Value::Null => {}
            _ => self.oddity(|| "a non-object usage".into()),
        }
        match &mut p.choices {
            Value::Array(choices) => {
                if let Some(choice) = select_choice(choices, self.multi_choice) {
                    self.on_choice(choice, out);
                }
            }
            Value::Null => {}
            _ => self.oddity(|| "a non-array choices".into()),
        }
    }

    fn on_choice(&mut self, choice: &mut Value, out: &mut Vec<Event>) {
        let Value::Object(choice) = choice else {
            self.oddity(|| "a non-object choice".into());
            return;
        };
        match choice.get_mut("delta") {
            Some(Value::Object(delta)) => self.on_delta(delta, out),
            None | Some(Value::Null) => {}
            Some(_) => self.oddity(|| "a non-object delta".into()),
        }
        match choice.get_mut("finish_reason") {
            Some(Value::String(reason)) if !reason.is_empty() => {
                self.finish_reason = Some(std::mem::take(reason));
            }
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => self.oddity(|| "a non-string finish_reason".into()),
        }
    }

    /// Apply one delta. Each content field yields at most one delta event; on MiniMax the tool
    /// fragments go first (wire.md §2.5).
    pub(super) fn on_delta(&mut self, delta: &mut Map<String, Value>, out: &mut Vec<Event>) {
        let minimax = self.msg.api == ApiKind::MiniMaxCompletions;
        if minimax {
            self.on_tool_fragments(delta.get_mut("tool_calls"), out);
        }
        let reasoning = self.take_reasoning(delta);
        let has_reasoning = reasoning.is_some();
        if let Some((text, source)) = reasoning {
            self.push_thinking(text, source, out);
        }
        match delta.get_mut("content") {
            Some(Value::String(s)) if !s.is_empty() => {
                if minimax && !has_reasoning {
                    let s = std::mem::take(s);
                    self.push_think_tagged(&s, out);
                } else {
                    self.push_text(std::mem::take(s), out);
                }
            }
            Some(Value::Array(parts)) => self.on_content_parts(parts, out),
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => self.oddity(|| "a non-string, non-list delta.content".into()),
        }
        match delta.get_mut("refusal") {
            Some(Value::String(s)) => self.push_text(std::mem::take(s), out),
            None | Some(Value::Null) => {}
            Some(_) => self.oddity(|| "a non-string delta.refusal".into()),
        }
        if !minimax {
            self.on_tool_fragments(delta.get_mut("tool_calls"), out);
        }
    }

    /// The reasoning text of a delta and the field it came from (wire.md §2.2, §2.5).
    fn take_reasoning(
        &mut self,
        delta: &mut Map<String, Value>,
    ) -> Option<(String, ThinkingSource)> {
        if self.msg.api == ApiKind::MiniMaxCompletions {
            if let Some(Value::Array(details)) = delta.get("reasoning_details") {
                let text: String = details
                    .iter()
                    .filter_map(|d| d.get("text").and_then(Value::as_str))
                    .collect();
                if !text.is_empty() {
                    return Some((text, ThinkingSource::ReasoningDetails));
                }
            }
        }
        const FIELDS: [(&str, ThinkingSource); 3] = [
            ("reasoning_content", ThinkingSource::ReasoningContent),
            ("reasoning", ThinkingSource::Reasoning),
            ("reasoning_text", ThinkingSource::ReasoningText),
        ];
        for (field, source) in FIELDS {
            match delta.get_mut(field) {
                Some(Value::String(s)) if !s.is_empty() => {
                    return Some((std::mem::take(s), source));
                }
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(_) => self.oddity(|| format!("a non-string delta.{field}")),
            }
        }
        None
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

/// Choice selection (wire.md §2.2). Without `n > 1`, the first choice whatever its `index`
/// (TGI numbers them one per chunk), or index 0 among several; with `n > 1`, index 0 only.
pub(super) fn select_choice(choices: &mut [Value], multi_choice: bool) -> Option<&mut Value> {
    let index_of = |c: &Value| c.get("index").and_then(Value::as_i64).unwrap_or(0);
    if !multi_choice && choices.len() == 1 {
        return choices.first_mut();
    }
    let pos = choices.iter().position(|c| index_of(c) == 0);
    match pos {
        Some(pos) => choices.get_mut(pos),
        None if !multi_choice => choices.first_mut(),
        None => None,
    }
}
