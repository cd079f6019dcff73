//! Queued events as Python objects: the event dicts of docs/architecture.md#core-surface
//! (`next_event()`) and the compact 4-tuples of the batch interface (docs/design.md). Strings are
//! created once per event here, and nowhere else.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};

use super::convert::{empty_message, tool_call_dict, MessageMeta};
use crate::transport::queue::Queued;
use crate::types::Event;

/// The `type` string of an event, interned (it is looked up once per delta).
fn type_name<'py>(py: Python<'py>, event: &Event) -> &'py Bound<'py, PyString> {
    match event {
        Event::Start => intern!(py, "start"),
        Event::TextStart { .. } => intern!(py, "text_start"),
        Event::TextDelta { .. } => intern!(py, "text_delta"),
        Event::TextEnd { .. } => intern!(py, "text_end"),
        Event::ThinkingStart { .. } => intern!(py, "thinking_start"),
        Event::ThinkingDelta { .. } => intern!(py, "thinking_delta"),
        Event::ThinkingEnd { .. } => intern!(py, "thinking_end"),
        Event::ToolCallStart { .. } => intern!(py, "tool_call_start"),
        Event::ToolCallDelta { .. } => intern!(py, "tool_call_delta"),
        Event::ToolCallEnd { .. } => intern!(py, "tool_call_end"),
        Event::Done { .. } => intern!(py, "done"),
        Event::Error { .. } => intern!(py, "error"),
        Event::Retry { .. } => intern!(py, "retry"),
    }
}

/// The event dict of docs/architecture.md#core-surface.
pub fn event_dict<'py>(
    py: Python<'py>,
    item: Queued,
    partial: Option<&Bound<'py, PyDict>>,
    final_dict: impl FnOnce() -> PyResult<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let with_partial = |d: &Bound<'py, PyDict>| -> PyResult<()> {
        if let Some(p) = partial {
            d.set_item(intern!(py, "partial"), p)?;
        }
        Ok(())
    };
    let ci_key = intern!(py, "content_index");
    d.set_item(intern!(py, "type"), type_name(py, &item.event))?;
    match &item.event {
        Event::Start => {
            with_partial(&d)?;
        }
        Event::TextStart { ci } | Event::ThinkingStart { ci } => {
            d.set_item(ci_key, ci)?;
            with_partial(&d)?;
        }
        Event::TextDelta { ci, delta }
        | Event::ThinkingDelta { ci, delta }
        | Event::ToolCallDelta { ci, delta } => {
            d.set_item(ci_key, ci)?;
            d.set_item(intern!(py, "delta"), delta)?;
            with_partial(&d)?;
        }
        Event::TextEnd { ci, content } | Event::ThinkingEnd { ci, content } => {
            d.set_item(ci_key, ci)?;
            d.set_item(intern!(py, "content"), content)?;
            with_partial(&d)?;
        }
        Event::ToolCallStart { ci, id, name } => {
            d.set_item(ci_key, ci)?;
            let empty = serde_json::Value::Object(Default::default());
            d.set_item(
                intern!(py, "tool_call"),
                tool_call_dict(py, id, name, &empty, None)?,
            )?;
            with_partial(&d)?;
        }
        Event::ToolCallEnd {
            ci,
            id,
            name,
            arguments,
            partial_json,
        } => {
            d.set_item(ci_key, ci)?;
            d.set_item(
                intern!(py, "tool_call"),
                tool_call_dict(py, id, name, arguments, partial_json.as_deref())?,
            )?;
            with_partial(&d)?;
        }
        Event::Done { reason } => {
            d.set_item(intern!(py, "reason"), reason.as_str())?;
            d.set_item(intern!(py, "message"), final_dict()?)?;
        }
        Event::Error { reason, .. } => {
            d.set_item(intern!(py, "reason"), reason.as_str())?;
            d.set_item(intern!(py, "error"), final_dict()?)?;
        }
        Event::Retry {
            attempt,
            delay,
            reason,
        } => {
            d.set_item(intern!(py, "attempt"), attempt)?;
            d.set_item(intern!(py, "delay"), delay)?;
            d.set_item(intern!(py, "reason"), reason)?;
            with_partial(&d)?;
        }
    }
    Ok(d)
}

/// One compact tuple of the batch interface (docs/design.md).
pub fn batch_tuple<'py>(
    py: Python<'py>,
    item: Queued,
    meta: &MessageMeta,
    final_dict: impl FnOnce() -> PyResult<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let none = || py.None().into_bound(py);
    let kind = type_name(py, &item.event);
    let (ci, a, b): (Option<usize>, Bound<'py, PyAny>, Bound<'py, PyAny>) = match item.event {
        Event::Start => (None, empty_message(py, meta)?.into_any(), none()),
        Event::TextStart { ci } => (Some(ci), none(), none()),
        Event::ThinkingStart { ci } => (
            Some(ci),
            item.thinking_signature
                .map(|s| s.as_str())
                .into_bound_py_any(py)?,
            none(),
        ),
        Event::TextDelta { ci, delta: text }
        | Event::ThinkingDelta { ci, delta: text }
        | Event::ToolCallDelta { ci, delta: text }
        | Event::TextEnd { ci, content: text }
        | Event::ThinkingEnd { ci, content: text } => {
            (Some(ci), PyString::new(py, &text).into_any(), none())
        }
        Event::ToolCallStart { ci, id, name } => (
            Some(ci),
            PyString::new(py, &id).into_any(),
            PyString::new(py, &name).into_any(),
        ),
        Event::ToolCallEnd {
            ci,
            id,
            name,
            arguments,
            partial_json,
        } => (
            Some(ci),
            tool_call_dict(py, &id, &name, &arguments, partial_json.as_deref())?.into_any(),
            none(),
        ),
        Event::Done { reason } => (
            None,
            PyString::new(py, reason.as_str()).into_any(),
            final_dict()?.into_any(),
        ),
        Event::Error { reason, .. } => (
            None,
            PyString::new(py, reason.as_str()).into_any(),
            final_dict()?.into_any(),
        ),
        Event::Retry {
            attempt,
            delay,
            reason,
        } => (
            None,
            PyString::new(py, &reason).into_any(),
            (attempt, delay).into_bound_py_any(py)?,
        ),
    };
    PyTuple::new(
        py,
        [kind.clone().into_any(), ci.into_bound_py_any(py)?, a, b],
    )
}
