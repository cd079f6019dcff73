//! A 2xx `application/json` reply (docs/wire.md#json-replies): a `chat.completion` converted into
//! the events a stream would have produced, an in-band error object, or a malformed-data error.

use alchemy_llm::utils::{ThinkFragment, ThinkTagParser};
use serde_json::{Map, Value};

use super::delta::{excerpt, pick_choice};
use super::errors::ErrorShape;
use super::{errors, usage, ChunkProcessor, Flow};
use crate::types::{ApiKind, ErrorReason, Event, ThinkingSource};

const NOT_A_COMPLETION: &str =
    "malformed stream data: expected text/event-stream or a chat.completion, got application/json";

impl ChunkProcessor {
    /// Convert a whole JSON body. Always ends the stream.
    pub fn on_json_body(&mut self, body: &[u8], out: &mut Vec<Event>) -> Flow {
        if self.finished {
            return Flow::Finished;
        }
        self.start(out);
        let quoted = || excerpt(&String::from_utf8_lossy(body));
        let obj = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => obj,
            _ => {
                let message = format!("{NOT_A_COMPLETION}: {}", quoted());
                self.terminate(ErrorReason::Error, message, out);
                return Flow::Finished;
            }
        };
        let mut obj = obj;
        if let Some(message) = errors::inband_error(&ErrorShape::of_object(&obj), false, &quoted())
        {
            self.terminate(ErrorReason::Error, message, out);
            return Flow::Finished;
        }
        let choice = match obj.get_mut("choices") {
            Some(Value::Array(choices)) => {
                let index_of = |c: &Value| c.get("index").and_then(Value::as_i64).unwrap_or(0);
                let indexes = choices.iter().map(index_of);
                pick_choice(indexes, choices.len(), self.multi_choice).map(|i| choices[i].take())
            }
            _ => None,
        };
        let Some(Value::Object(mut choice)) = choice else {
            let message = format!("{NOT_A_COMPLETION}: {}", quoted());
            self.terminate(ErrorReason::Error, message, out);
            return Flow::Finished;
        };
        if let Some(Value::Object(u)) = obj.get("usage") {
            self.msg.usage = usage::map_usage(u);
        }
        if let Some(Value::Object(message)) = choice.get_mut("message") {
            self.convert_message(message, out);
        }
        if let Some(Value::String(reason)) = choice.remove("finish_reason") {
            if !reason.is_empty() {
                self.finish_reason = Some(reason);
            }
        }
        // A reply without `finish_reason` is complete all the same: like `[DONE]` without one.
        self.finalize(out);
        Flow::Finished
    }

    /// Reasoning, then text, then each tool call, each as start / one whole delta / end.
    fn convert_message(&mut self, m: &mut Map<String, Value>, out: &mut Vec<Event>) {
        let mut thinking = String::new();
        let mut source = None;
        if self.msg.api == ApiKind::MiniMaxCompletions {
            if let Some(Value::Array(details)) = m.get("reasoning_details") {
                thinking = details
                    .iter()
                    .filter_map(|d| d.get("text").and_then(Value::as_str))
                    .collect();
                source = (!thinking.is_empty()).then_some(ThinkingSource::ReasoningDetails);
            }
        }
        let fields = [
            ("reasoning_content", ThinkingSource::ReasoningContent),
            ("reasoning", ThinkingSource::Reasoning),
            ("reasoning_text", ThinkingSource::ReasoningText),
        ];
        for (field, field_source) in fields {
            if source.is_some() {
                break;
            }
            if let Some(Value::String(s)) = m.get_mut(field) {
                if !s.is_empty() {
                    thinking = std::mem::take(s);
                    source = Some(field_source);
                }
            }
        }
        let mut text = String::new();
        match m.get_mut("content") {
            Some(Value::String(s)) => {
                if self.msg.api == ApiKind::MiniMaxCompletions && source.is_none() {
                    let mut parser = ThinkTagParser::new();
                    let mut fragments = parser.feed(s);
                    fragments.extend(parser.flush());
                    for fragment in fragments {
                        match fragment {
                            ThinkFragment::Thinking(t) => {
                                thinking.push_str(&t);
                                source = Some(ThinkingSource::ThinkTag);
                            }
                            ThinkFragment::Text(t) => text.push_str(&t),
                        }
                    }
                    if source == Some(ThinkingSource::ThinkTag) {
                        text = text.trim_start().to_string();
                    }
                } else {
                    text = std::mem::take(s);
                }
            }
            Some(Value::Array(parts)) => {
                for part in parts.iter_mut() {
                    match self.read_part(part) {
                        Some((t, true)) => {
                            thinking.push_str(&t);
                            source.get_or_insert(ThinkingSource::ContentParts);
                        }
                        Some((t, false)) => text.push_str(&t),
                        None => {}
                    }
                }
            }
            _ => {}
        }
        if let Some(Value::String(refusal)) = m.get("refusal") {
            text.push_str(refusal);
        }
        if let Some(source) = source {
            self.push_thinking(thinking, source, out);
        }
        self.push_text(text, out);
        self.close_open(out);
        if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
            for call in calls.iter_mut() {
                // Each entry is a whole call: give it its own index so it never continues another.
                if let Some(mut fragment) = self.read_fragment(call) {
                    fragment.index = Some(self.tools.len() as i64);
                    self.apply_fragment(fragment, out);
                }
            }
        }
    }
}
