//! Conversions between Python objects and `serde_json::Value`, and the message dicts of
//! docs/architecture.md#core-surface, built by hand (the crate types have no usable serde form,
//! docs/wire.md#alchemy-llm).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::types::{scrub_key, Block, MessageState, Usage};

/// Convert one input dict (`what` = model / context / options) to JSON, or the
/// `ValueError("invalid <what>: ...")` of docs/architecture.md#core-surface.
pub fn input_dict(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(PyValueError::new_err(format!(
            "invalid {what}: {what} must be a dict"
        )));
    }
    to_json(obj).map_err(|(path, reason)| {
        PyValueError::new_err(format!("invalid {what}: {what}{path}: {reason}"))
    })
}

/// A JSON value, or (the path to the bad value, why it is bad).
fn to_json(obj: &Bound<'_, PyAny>) -> Result<Value, (String, String)> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str().map_err(|e| (String::new(), e.to_string()))?;
        return Ok(Value::String(s.to_owned()));
    }
    // bool before int: Python's bool is an int subclass.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        return obj
            .extract::<u64>()
            .map(Value::from)
            .map_err(|_| (String::new(), "integer out of range".to_string()));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| (String::new(), "float must be finite".to_string()));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err((String::new(), "dict keys must be strings".to_string()));
            };
            let key = key.to_str().map_err(|e| (String::new(), e.to_string()))?;
            let value = to_json(&v).map_err(|(p, r)| (format!(".{key}{p}"), r))?;
            map.insert(key.to_owned(), value);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in obj
            .try_iter()
            .map_err(|e| (String::new(), e.to_string()))?
            .enumerate()
        {
            let item = item.map_err(|e| (String::new(), e.to_string()))?;
            items.push(to_json(&item).map_err(|(p, r)| (format!("[{i}]{p}"), r))?);
        }
        return Ok(Value::Array(items));
    }
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string());
    Err((
        String::new(),
        format!("unsupported value of type {type_name} (expected JSON data)"),
    ))
}

/// A JSON value as a Python object.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(0.0).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A JSON object as a Python dict; anything else gives `{}` (tool arguments are objects).
pub fn object_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    if value.is_object() {
        to_py(py, value)
    } else {
        Ok(PyDict::new(py).into_any())
    }
}

/// The complete usage dict of docs/architecture.md#types (always every key).
pub fn usage_dict<'py>(py: Python<'py>, usage: &Usage) -> PyResult<Bound<'py, PyDict>> {
    let cost = PyDict::new(py);
    cost.set_item("input", usage.cost_input)?;
    cost.set_item("output", usage.cost_output)?;
    cost.set_item("cache_read", usage.cost_cache_read)?;
    cost.set_item("cache_write", usage.cost_cache_write)?;
    cost.set_item("total", usage.cost_total)?;
    let dict = PyDict::new(py);
    dict.set_item("input", usage.input)?;
    dict.set_item("output", usage.output)?;
    dict.set_item("cache_read", usage.cache_read)?;
    dict.set_item("cache_write", usage.cache_write)?;
    dict.set_item("total_tokens", usage.total_tokens)?;
    dict.set_item("cost", cost)?;
    Ok(dict)
}

/// `{"type":"tool_call","id","name","arguments"[,"partial_json"]}`.
pub fn tool_call_dict<'py>(
    py: Python<'py>,
    id: &str,
    name: &str,
    arguments: &Value,
    partial_json: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("type", "tool_call")?;
    dict.set_item("id", id)?;
    dict.set_item("name", name)?;
    dict.set_item("arguments", object_to_py(py, arguments)?)?;
    if let Some(raw) = partial_json {
        dict.set_item("partial_json", raw)?;
    }
    Ok(dict)
}

pub fn block_dict<'py>(py: Python<'py>, block: &Block) -> PyResult<Bound<'py, PyDict>> {
    match block {
        Block::Text { text } => {
            let dict = PyDict::new(py);
            dict.set_item("type", "text")?;
            dict.set_item("text", text)?;
            dict.set_item("text_signature", py.None())?;
            Ok(dict)
        }
        Block::Thinking {
            thinking,
            signature,
        } => {
            let dict = PyDict::new(py);
            dict.set_item("type", "thinking")?;
            dict.set_item("thinking", thinking)?;
            dict.set_item("thinking_signature", signature.as_str())?;
            Ok(dict)
        }
        Block::ToolCall {
            id,
            name,
            raw_args,
            arguments,
            invalid,
        } => {
            // An unfinalized call (error path) keeps its raw text, like an invalid one.
            let unparsed = *invalid || arguments.is_none();
            let empty = Value::Object(Map::new());
            tool_call_dict(
                py,
                id,
                name,
                arguments.as_ref().unwrap_or(&empty),
                unparsed.then_some(raw_args.as_str()),
            )
        }
    }
}

/// The fields every message dict shares (docs/architecture.md#core-surface), identical for the
/// partial.
pub struct MessageMeta {
    pub timestamp: i64,
    pub api: &'static str,
    pub provider: String,
    pub model: String,
}

/// The initial partial: empty content, `stop_reason` "stop", zero usage.
pub fn empty_message<'py>(py: Python<'py>, meta: &MessageMeta) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("role", "assistant")?;
    dict.set_item("content", PyList::empty(py))?;
    dict.set_item("stop_reason", "stop")?;
    dict.set_item("timestamp", meta.timestamp)?;
    dict.set_item("api", meta.api)?;
    dict.set_item("provider", &meta.provider)?;
    dict.set_item("model", &meta.model)?;
    dict.set_item("usage", usage_dict(py, &Usage::default())?)?;
    dict.set_item("error_message", py.None())?;
    Ok(dict)
}

/// The final message dict of docs/architecture.md#core-surface; the key is scrubbed from the
/// error text.
pub fn message_dict<'py>(
    py: Python<'py>,
    message: &MessageState,
    api_key: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let content = PyList::empty(py);
    for block in &message.blocks {
        content.append(block_dict(py, block)?)?;
    }
    let dict = PyDict::new(py);
    dict.set_item("role", "assistant")?;
    dict.set_item("content", content)?;
    dict.set_item("stop_reason", message.stop_reason.as_str())?;
    dict.set_item("timestamp", message.timestamp)?;
    dict.set_item("api", message.api.as_str())?;
    dict.set_item("provider", &message.provider)?;
    dict.set_item("model", &message.model)?;
    dict.set_item("usage", usage_dict(py, &message.usage)?)?;
    match &message.error_message {
        Some(text) => dict.set_item("error_message", scrub_key(text, api_key))?,
        None => dict.set_item("error_message", py.None())?,
    }
    Ok(dict)
}
