//! Validation of the `model` and `options` dicts (docs/architecture.md#core-surface) into
//! borrowed, typed views.
//!
//! Every malformed value becomes an [`InputError`] naming the field; values that are well-typed
//! but unusable at start time (an unknown reasoning effort, an invalid header) are kept raw here
//! and turned into start errors by the planner.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::types::{InputError, Timeouts, DEFAULT_MAX_RETRIES};

pub(crate) type Obj = Map<String, Value>;

/// `obj[key]`, with JSON `null` treated as absent (the boundary uses `exclude_none`, but direct
/// callers pass explicit `None`s).
pub(crate) fn field<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn opt_str<'a>(obj: &'a Obj, key: &str) -> Result<Option<&'a str>, String> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

fn opt_u64(obj: &Obj, key: &str) -> Result<Option<u64>, String> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("'{key}' must be an integer >= 0")),
    }
}

fn opt_bool(obj: &Obj, key: &str, what: &str) -> Result<Option<bool>, String> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("'{what}' must be a bool")),
    }
}

/// A `{str: str}` dict, in its given order. `what` names the field in the error.
fn opt_headers<'a>(obj: &'a Obj, key: &str) -> Result<Vec<(&'a str, &'a str)>, String> {
    let Some(v) = field(obj, key) else {
        return Ok(Vec::new());
    };
    let Value::Object(map) = v else {
        return Err(format!("'{key}' must be a dict of str to str"));
    };
    map.iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name.as_str(), s.as_str())),
            _ => Err(format!("'{key}' value for '{name}' must be a string")),
        })
        .collect()
}

/// `model.reasoning` as given; the effort string is checked later (a bad one is a start error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReasoningInput<'a> {
    Off,
    On,
    Effort(&'a str),
}

/// `model.compat`: each `Some` overrides a cell of docs/wire.md#provider-defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Compat<'a> {
    pub supports_store: Option<bool>,
    pub supports_developer_role: Option<bool>,
    pub supports_reasoning_effort: Option<bool>,
    pub supports_usage_in_streaming: Option<bool>,
    pub supports_cache_control: Option<bool>,
    /// Images of a tool result go inside its tool message instead of a follow-up user message.
    pub supports_tool_result_images: Option<bool>,
    pub max_tokens_field: Option<&'a str>,
    /// `Some("")` disables the session id field.
    pub session_id_field: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub(crate) struct ModelInput<'a> {
    pub id: &'a str,
    /// `provider.strip()`, `"openai"` when blank (docs/architecture.md#routing).
    pub provider: String,
    pub api: &'a str,
    /// `base_url.strip()`.
    pub base_url: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub reasoning: ReasoningInput<'a>,
    pub context_window: Option<u64>,
    pub max_tokens: Option<u64>,
    pub compat: Compat<'a>,
}

fn required_str<'a>(obj: &'a Obj, key: &str) -> Result<&'a str, String> {
    opt_str(obj, key)?.ok_or_else(|| format!("'{key}' must be a string"))
}

fn parse_compat(obj: &Obj) -> Result<Compat<'_>, String> {
    let Some(v) = field(obj, "compat") else {
        return Ok(Compat::default());
    };
    let Value::Object(c) = v else {
        return Err("'compat' must be a dict".to_string());
    };
    let flag = |key: &str| opt_bool(c, key, &format!("compat.{key}"));
    let text = |key: &str| match field(c, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("'compat.{key}' must be a string")),
    };
    let max_tokens_field = text("max_tokens_field")?;
    if max_tokens_field.is_some_and(|f| f.trim().is_empty()) {
        return Err("'compat.max_tokens_field' must be a non-empty field name".to_string());
    }
    Ok(Compat {
        supports_store: flag("supports_store")?,
        supports_developer_role: flag("supports_developer_role")?,
        supports_reasoning_effort: flag("supports_reasoning_effort")?,
        supports_usage_in_streaming: flag("supports_usage_in_streaming")?,
        supports_cache_control: flag("supports_cache_control")?,
        supports_tool_result_images: flag("supports_tool_result_images")?,
        max_tokens_field,
        session_id_field: text("session_id_field")?,
    })
}

pub(crate) fn parse_model(model: &Value) -> Result<ModelInput<'_>, InputError> {
    let Value::Object(obj) = model else {
        return Err(InputError::Model("model must be a dict".to_string()));
    };
    parse_model_obj(obj).map_err(InputError::Model)
}

fn parse_model_obj(obj: &Obj) -> Result<ModelInput<'_>, String> {
    let id = required_str(obj, "id")?;
    let provider = required_str(obj, "provider")?.trim();
    let api = required_str(obj, "api")?;
    let base_url = required_str(obj, "base_url")?.trim();
    if base_url.is_empty() {
        return Err("'base_url' must be a non-empty string".to_string());
    }
    opt_str(obj, "name")?;
    let reasoning =
        match field(obj, "reasoning") {
            None | Some(Value::Bool(false)) => ReasoningInput::Off,
            Some(Value::Bool(true)) => ReasoningInput::On,
            Some(Value::String(s)) => ReasoningInput::Effort(s),
            Some(_) => return Err(
                "'reasoning' must be a bool or one of 'minimal', 'low', 'medium', 'high', 'xhigh'"
                    .to_string(),
            ),
        };
    Ok(ModelInput {
        id,
        provider: if provider.is_empty() {
            "openai"
        } else {
            provider
        }
        .to_string(),
        api,
        base_url,
        headers: opt_headers(obj, "headers")?,
        reasoning,
        context_window: opt_u64(obj, "context_window")?,
        max_tokens: opt_u64(obj, "max_tokens")?,
        compat: parse_compat(obj)?,
    })
}

#[derive(Debug, Clone)]
pub(crate) struct OptionsInput<'a> {
    /// Only a non-empty key counts ("when truthy", docs/architecture.md#api-keys).
    pub api_key: Option<&'a str>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    /// Only a non-empty id is forwarded.
    pub session_id: Option<&'a str>,
    pub timeouts: Timeouts,
    pub headers: Vec<(&'a str, &'a str)>,
    pub max_retries: u32,
    pub extra_body: Option<&'a Obj>,
}

/// A timeout in seconds: finite and > 0, and representable as a `Duration`.
fn opt_timeout(obj: &Obj, key: &str, default: Duration) -> Result<Duration, String> {
    let Some(v) = field(obj, key) else {
        return Ok(default);
    };
    v.as_f64()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("'{key}' must be a number of seconds > 0"))
}

pub(crate) fn parse_options(options: &Value) -> Result<OptionsInput<'_>, InputError> {
    static EMPTY: std::sync::OnceLock<Obj> = std::sync::OnceLock::new();
    let obj = match options {
        Value::Null => EMPTY.get_or_init(Obj::new),
        Value::Object(obj) => obj,
        _ => return Err(InputError::Options("options must be a dict".to_string())),
    };
    parse_options_obj(obj).map_err(InputError::Options)
}

fn parse_options_obj(obj: &Obj) -> Result<OptionsInput<'_>, String> {
    let temperature = match field(obj, "temperature") {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|t| t.is_finite())
                .ok_or("'temperature' must be a finite number")?,
        ),
    };
    let max_retries = match opt_u64(obj, "max_retries")? {
        None => DEFAULT_MAX_RETRIES,
        Some(n) => u32::try_from(n).map_err(|_| "'max_retries' is too large".to_string())?,
    };
    let extra_body = match field(obj, "extra_body") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err("'extra_body' must be a dict".to_string()),
    };
    let defaults = Timeouts::default();
    Ok(OptionsInput {
        api_key: opt_str(obj, "api_key")?.filter(|k| !k.is_empty()),
        temperature,
        max_tokens: opt_u64(obj, "max_tokens")?,
        session_id: opt_str(obj, "session_id")?.filter(|s| !s.is_empty()),
        timeouts: Timeouts {
            connect: opt_timeout(obj, "connect_timeout", defaults.connect)?,
            first_byte: opt_timeout(obj, "first_byte_timeout", defaults.first_byte)?,
            idle: opt_timeout(obj, "idle_timeout", defaults.idle)?,
        },
        headers: opt_headers(obj, "headers")?,
        max_retries,
        extra_body,
    })
}
