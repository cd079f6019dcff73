//! Queued events as Python objects: the event dicts of api-contract §10.3 (`next_event()`) and
//! the compact 4-tuples of the batch interface (docs/design.md). Strings are created once per
//! event here, and nowhere else.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};

use super::convert::{empty_message, tool_call_dict, MessageMeta};
use crate::transport::queue::Queued;
use crate::types::Event;

/// The event dict of api-contract §10.3.
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
    let type_key = intern!(py, "type");
    match &item.event {
        Event::Start => {
            d.set_item(type_key, intern!(py, "start"))?;
            with_partial(&d)?;
        }
        Event::TextStart { ci } | Event::ThinkingStart { ci } => {
            let kind = if matches!(item.event, Event::TextStart { .. }) {
                intern!(py, "text_start")
            } else {
                intern!(py, "thinking_start")
            };
            d.set_item(type_key, kind)?;
            d.set_item(ci_key, ci)?;
            with_partial(&d)?;
        }
        Event::TextDelta { ci, delta }
        | Event::ThinkingDelta { ci, delta }
        | Event::ToolCallDelta { ci, delta } => {
            let kind = match item.event {
                Event::TextDelta { .. } => intern!(py, "text_delta"),
                Event::ThinkingDelta { .. } => intern!(py, "thinking_delta"),
                _ => intern!(py, "tool_call_delta"),
            };
            d.set_item(type_key, kind)?;
            d.set_item(ci_key, ci)?;
            d.set_item(intern!(py, "delta"), delta)?;
            with_partial(&d)?;
        }
        Event::TextEnd { ci, content } | Event::ThinkingEnd { ci, content } => {
            let kind = if matches!(item.event, Event::TextEnd { .. }) {
                intern!(py, "text_end")
            } else {
                intern!(py, "thinking_end")
            };
            d.set_item(type_key, kind)?;
            d.set_item(ci_key, ci)?;
            d.set_item(intern!(py, "content"), content)?;
            with_partial(&d)?;
        }
        Event::ToolCallStart { ci, id, name } => {
            d.set_item(type_key, intern!(py, "tool_call_start"))?;
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
            d.set_item(type_key, intern!(py, "tool_call_end"))?;
            d.set_item(ci_key, ci)?;
            d.set_item(
                intern!(py, "tool_call"),
                tool_call_dict(py, id, name, arguments, partial_json.as_deref())?,
            )?;
            with_partial(&d)?;
        }
        Event::Done { reason } => {
            d.set_item(type_key, intern!(py, "done"))?;
            d.set_item(intern!(py, "reason"), reason.as_str())?;
            d.set_item(intern!(py, "message"), final_dict()?)?;
        }
        Event::Error { reason, .. } => {
            d.set_item(type_key, intern!(py, "error"))?;
            d.set_item(intern!(py, "reason"), reason.as_str())?;
            d.set_item(intern!(py, "error"), final_dict()?)?;
        }
        Event::Retry {
            attempt,
            delay,
            reason,
        } => {
            d.set_item(type_key, intern!(py, "retry"))?;
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
    let (kind, ci, a, b): (
        &Bound<'py, PyString>,
        Option<usize>,
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
    ) = match item.event {
        Event::Start => (
            intern!(py, "start"),
            None,
            empty_message(py, meta)?.into_any(),
            none(),
        ),
        Event::TextStart { ci } => (intern!(py, "text_start"), Some(ci), none(), none()),
        Event::ThinkingStart { ci } => (
            intern!(py, "thinking_start"),
            Some(ci),
            item.thinking_signature
                .map(|s| s.as_str())
                .into_bound_py_any(py)?,
            none(),
        ),
        Event::TextDelta { ci, delta } => (
            intern!(py, "text_delta"),
            Some(ci),
            PyString::new(py, &delta).into_any(),
            none(),
        ),
        Event::ThinkingDelta { ci, delta } => (
            intern!(py, "thinking_delta"),
            Some(ci),
            PyString::new(py, &delta).into_any(),
            none(),
        ),
        Event::ToolCallDelta { ci, delta } => (
            intern!(py, "tool_call_delta"),
            Some(ci),
            PyString::new(py, &delta).into_any(),
            none(),
        ),
        Event::TextEnd { ci, content } => (
            intern!(py, "text_end"),
            Some(ci),
            PyString::new(py, &content).into_any(),
            none(),
        ),
        Event::ThinkingEnd { ci, content } => (
            intern!(py, "thinking_end"),
            Some(ci),
            PyString::new(py, &content).into_any(),
            none(),
        ),
        Event::ToolCallStart { ci, id, name } => (
            intern!(py, "tool_call_start"),
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
            intern!(py, "tool_call_end"),
            Some(ci),
            tool_call_dict(py, &id, &name, &arguments, partial_json.as_deref())?.into_any(),
            none(),
        ),
        Event::Done { reason } => (
            intern!(py, "done"),
            None,
            PyString::new(py, reason.as_str()).into_any(),
            final_dict()?.into_any(),
        ),
        Event::Error { reason, .. } => (
            intern!(py, "error"),
            None,
            PyString::new(py, reason.as_str()).into_any(),
            final_dict()?.into_any(),
        ),
        Event::Retry {
            attempt,
            delay,
            reason,
        } => (
            intern!(py, "retry"),
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
