//! The one `partial` dict per stream of the `next_event()` path (docs/architecture.md#partial).
//!
//! Deltas are appended to Rust strings as events are taken from the queue; the Python dict is
//! refreshed once per batch, and only for the blocks that changed, so the partial may run ahead
//! of an event within its batch but never lags behind it.

use super::convert::{empty_message, object_to_py, MessageMeta};
use crate::state::partial_arguments;
use crate::types::{Event, ThinkingSource};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    ToolCall,
}

struct MirrorBlock {
    kind: Kind,
    /// The text, thinking or raw argument text so far.
    text: String,
    dict: Py<PyDict>,
    dirty: bool,
    /// A tool call that has been finalized: its dict is final.
    closed: bool,
}

pub struct Partial {
    dict: Py<PyDict>,
    content: Py<PyList>,
    blocks: Vec<MirrorBlock>,
    any_dirty: bool,
}

impl Partial {
    pub fn new(py: Python<'_>, meta: &MessageMeta) -> PyResult<Self> {
        let dict = empty_message(py, meta)?;
        let content = dict
            .get_item("content")?
            .expect("empty_message sets content")
            .cast_into::<PyList>()?;
        Ok(Partial {
            dict: dict.unbind(),
            content: content.unbind(),
            blocks: Vec::new(),
            any_dirty: false,
        })
    }

    pub fn dict<'py>(&self, py: Python<'py>) -> &Bound<'py, PyDict> {
        self.dict.bind(py)
    }

    fn open(&mut self, py: Python<'_>, kind: Kind, dict: Bound<'_, PyDict>) -> PyResult<()> {
        self.content.bind(py).append(&dict)?;
        self.blocks.push(MirrorBlock {
            kind,
            text: String::new(),
            dict: dict.unbind(),
            dirty: false,
            closed: false,
        });
        Ok(())
    }

    fn touch(&mut self, ci: usize) -> Option<&mut MirrorBlock> {
        let block = self.blocks.get_mut(ci)?;
        block.dirty = true;
        self.any_dirty = true;
        Some(block)
    }

    /// Apply one event to the mirror (the dict itself changes only for opened/closed blocks).
    pub fn apply(
        &mut self,
        py: Python<'_>,
        event: &Event,
        signature: Option<ThinkingSource>,
    ) -> PyResult<()> {
        match event {
            Event::TextStart { .. } => {
                let d = PyDict::new(py);
                d.set_item("type", "text")?;
                d.set_item("text", "")?;
                d.set_item("text_signature", py.None())?;
                self.open(py, Kind::Text, d)?;
            }
            Event::ThinkingStart { .. } => {
                let d = PyDict::new(py);
                d.set_item("type", "thinking")?;
                d.set_item("thinking", "")?;
                d.set_item("thinking_signature", signature.map(ThinkingSource::as_str))?;
                self.open(py, Kind::Thinking, d)?;
            }
            Event::ToolCallStart { id, name, .. } => {
                let d = PyDict::new(py);
                d.set_item("type", "tool_call")?;
                d.set_item("id", id)?;
                d.set_item("name", name)?;
                d.set_item("arguments", PyDict::new(py))?;
                d.set_item("partial_json", "")?;
                self.open(py, Kind::ToolCall, d)?;
            }
            Event::TextDelta { ci, delta }
            | Event::ThinkingDelta { ci, delta }
            | Event::ToolCallDelta { ci, delta } => {
                if let Some(block) = self.touch(*ci) {
                    block.text.push_str(delta);
                }
            }
            Event::TextEnd { ci, content } | Event::ThinkingEnd { ci, content } => {
                if let Some(block) = self.touch(*ci) {
                    if block.text != *content {
                        block.text.clone_from(content);
                    }
                }
            }
            Event::ToolCallEnd {
                ci,
                id,
                name,
                arguments,
                partial_json,
            } => {
                if let Some(block) = self.blocks.get_mut(*ci) {
                    let d = block.dict.bind(py);
                    d.set_item("id", id)?;
                    d.set_item("name", name)?;
                    d.set_item("arguments", object_to_py(py, arguments)?)?;
                    match partial_json {
                        Some(raw) => d.set_item("partial_json", raw)?,
                        None => {
                            if d.contains("partial_json")? {
                                d.del_item("partial_json")?;
                            }
                        }
                    }
                    block.closed = true;
                    block.dirty = false;
                    block.text = String::new();
                }
            }
            Event::Start | Event::Done { .. } | Event::Error { .. } | Event::Retry { .. } => {}
        }
        Ok(())
    }

    /// Write the changed blocks into their dicts (once per batch).
    pub fn refresh(&mut self, py: Python<'_>) -> PyResult<()> {
        if !self.any_dirty {
            return Ok(());
        }
        self.any_dirty = false;
        for block in self.blocks.iter_mut().filter(|b| b.dirty) {
            block.dirty = false;
            let d = block.dict.bind(py);
            match block.kind {
                Kind::Text => d.set_item("text", &block.text)?,
                Kind::Thinking => d.set_item("thinking", &block.text)?,
                Kind::ToolCall if !block.closed => {
                    d.set_item("partial_json", &block.text)?;
                    // Parsed only up to 64 KiB, `{}` above (docs/architecture.md#partial): long
                    // calls stay O(n) overall.
                    let arguments = partial_arguments(&block.text);
                    d.set_item("arguments", object_to_py(py, &arguments)?)?;
                }
                Kind::ToolCall => {}
            }
        }
        Ok(())
    }
}
