//! Tool-call assembly (docs/wire.md#tool-calls): routing fragments to calls by `index`, id change,
//! `id` or recency; first non-empty `id`/`name` kept; arguments concatenated and parsed once at the
//! end.

use serde_json::{Map, Value};

use super::{ChunkProcessor, ToolSlot};
use crate::types::{Block, Event};

/// Above this many bytes of raw arguments, [`partial_arguments`] gives `{}`
/// (docs/architecture.md#partial).
pub const PARTIAL_ARGUMENTS_LIMIT: usize = 64 * 1024;

/// Best-effort arguments of a call still streaming (alchemy-llm's `parse_streaming_json`):
/// a JSON object, else `{}`; `{}` as well above [`PARTIAL_ARGUMENTS_LIMIT`] bytes.
pub fn partial_arguments(raw: &str) -> Value {
    if raw.len() > PARTIAL_ARGUMENTS_LIMIT || raw.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match alchemy_llm::utils::parse_streaming_json(raw) {
        v @ Value::Object(_) => v,
        _ => Value::Object(Map::new()),
    }
}

/// Final arguments (docs/wire.md#tool-calls): empty → `{}`; an object → itself; anything else →
/// `{}` and the raw text is reported as `partial_json` (the `bool` is true).
pub(super) fn final_arguments(raw: &str) -> (Value, bool) {
    if raw.trim().is_empty() {
        return (Value::Object(Map::new()), false);
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Object(_)) => (v, false),
        _ => (Value::Object(Map::new()), true),
    }
}

/// The fields of one `tool_calls[]` entry.
pub(super) struct Fragment {
    pub index: Option<i64>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub args: String,
}

fn non_empty_string(v: Option<&mut Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(std::mem::take(s)),
        _ => None,
    }
}

impl ChunkProcessor {
    pub(super) fn on_tool_fragments(&mut self, calls: &mut Value, out: &mut Vec<Event>) {
        match calls {
            Value::Array(calls) => {
                for call in calls.iter_mut() {
                    if let Some(fragment) = self.read_fragment(call) {
                        self.apply_fragment(fragment, out);
                    }
                }
            }
            Value::Null => {}
            _ => self.oddity(|| "a non-list delta.tool_calls".into()),
        }
    }

    pub(super) fn read_fragment(&mut self, call: &mut Value) -> Option<Fragment> {
        let Value::Object(call) = call else {
            self.oddity(|| "a non-object tool call fragment".into());
            return None;
        };
        let index = match call.get("index") {
            Some(Value::Number(n)) => n.as_i64(),
            None | Some(Value::Null) => None,
            Some(_) => {
                self.oddity(|| "a non-integer tool call index".into());
                None
            }
        };
        let id = non_empty_string(call.get_mut("id"));
        let (name, args) = match call.get_mut("function") {
            Some(Value::Object(function)) => {
                let name = non_empty_string(function.get_mut("name"));
                let args = match function.get_mut("arguments") {
                    Some(Value::String(s)) => std::mem::take(s),
                    // Some servers send the arguments as an object: keep them as JSON text.
                    Some(v @ (Value::Object(_) | Value::Array(_))) => v.to_string(),
                    None | Some(Value::Null) => String::new(),
                    Some(_) => {
                        self.oddity(|| "non-string tool call arguments".into());
                        String::new()
                    }
                };
                (name, args)
            }
            None | Some(Value::Null) => (None, String::new()),
            Some(_) => {
                self.oddity(|| "a non-object tool call function".into());
                (None, String::new())
            }
        };
        Some(Fragment {
            index,
            id,
            name,
            args,
        })
    }

    /// Which open call a fragment continues, or `None` for a new call (docs/wire.md#tool-calls).
    fn route(&self, f: &Fragment) -> Option<usize> {
        let id_of = |slot: &ToolSlot| match &self.msg.blocks[slot.ci] {
            Block::ToolCall { id, .. } => id.as_str(),
            _ => "",
        };
        if let Some(index) = f.index {
            // The latest call with this index: a server reusing `index: 0` for every call has
            // started a new one each time the id changed.
            let slot = self.tools.iter().rposition(|s| s.index == Some(index))?;
            let known = id_of(&self.tools[slot]);
            return match &f.id {
                // A different id at this index: an earlier call of that id continues (a server
                // that reuses `index: 0` may return to it), else a new call starts.
                Some(id) if !known.is_empty() && known != id => {
                    self.tools.iter().rposition(|s| id_of(s) == id)
                }
                _ => Some(slot),
            };
        }
        if let Some(id) = &f.id {
            return self.tools.iter().rposition(|s| id_of(s) == id);
        }
        self.tools.len().checked_sub(1)
    }

    pub(super) fn apply_fragment(&mut self, f: Fragment, out: &mut Vec<Event>) {
        match self.route(&f) {
            Some(slot) => {
                let ci = self.tools[slot].ci;
                if let Block::ToolCall { id, name, .. } = &mut self.msg.blocks[ci] {
                    // First non-empty value wins; repeats are never appended.
                    if id.is_empty() {
                        if let Some(new) = f.id {
                            *id = new;
                        }
                    }
                    if name.is_empty() {
                        if let Some(new) = f.name {
                            *name = new;
                        }
                    }
                }
                self.append_args(ci, f.args, out);
            }
            None => {
                if f.id.is_none() && f.name.is_none() && f.args.is_empty() {
                    return; // nothing to open a call with
                }
                self.close_open(out);
                let ci = self.msg.blocks.len();
                let id = f.id.unwrap_or_default();
                let name = f.name.unwrap_or_default();
                out.push(Event::ToolCallStart {
                    ci,
                    id: id.clone(),
                    name: name.clone(),
                });
                self.msg.blocks.push(Block::ToolCall {
                    id,
                    name,
                    raw_args: String::new(),
                    arguments: None,
                    invalid: false,
                });
                self.tools.push(ToolSlot { ci, index: f.index });
                self.append_args(ci, f.args, out);
            }
        }
    }

    fn append_args(&mut self, ci: usize, delta: String, out: &mut Vec<Event>) {
        if delta.is_empty() {
            return;
        }
        self.close_open(out);
        if let Block::ToolCall { raw_args, .. } = &mut self.msg.blocks[ci] {
            raw_args.push_str(&delta);
        }
        out.push(Event::ToolCallDelta { ci, delta });
    }

    /// End every tool call in content-index order. On success the arguments are parsed; on an
    /// error (`aborted_run`) the raw text is always kept as `partial_json` and the block is
    /// marked invalid, so it never runs. Missing ids become `call_<n>`.
    pub(super) fn end_tool_calls(&mut self, aborted_run: bool, out: &mut Vec<Event>) {
        let slots = std::mem::take(&mut self.tools);
        for (n, slot) in slots.iter().enumerate() {
            let needs_id =
                matches!(&self.msg.blocks[slot.ci], Block::ToolCall { id, .. } if id.is_empty());
            let synthesized = needs_id.then(|| self.synthesize_id(n));
            let Block::ToolCall {
                id,
                name,
                raw_args,
                arguments,
                invalid,
            } = &mut self.msg.blocks[slot.ci]
            else {
                continue;
            };
            if let Some(synthesized) = synthesized {
                *id = synthesized;
            }
            let (args, bad) = final_arguments(raw_args);
            let keep_raw = bad || aborted_run;
            if bad && !aborted_run {
                self.diag.invalid_tool_arguments += 1;
            }
            *arguments = Some(args.clone());
            *invalid = keep_raw;
            out.push(Event::ToolCallEnd {
                ci: slot.ci,
                id: id.clone(),
                name: name.clone(),
                arguments: args,
                partial_json: keep_raw.then(|| raw_args.clone()),
            });
        }
        // Keep the slots so `has_tool_calls` still answers after finalization.
        self.tools = slots;
    }

    /// `call_<n>` for the n-th call, skipping any id the stream itself used.
    fn synthesize_id(&self, n: usize) -> String {
        let used = |candidate: &str| {
            self.msg
                .blocks
                .iter()
                .any(|b| matches!(b, Block::ToolCall { id, .. } if id == candidate))
        };
        let mut k = n;
        loop {
            let candidate = format!("call_{k}");
            if !used(&candidate) {
                return candidate;
            }
            k += 1;
        }
    }
}
