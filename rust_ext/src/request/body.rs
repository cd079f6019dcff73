//! The JSON body of `POST /chat/completions` (docs/wire.md#body-fields,
//! docs/wire.md#provider-defaults, docs/wire.md#minimax).

use serde_json::{json, Map, Value};

use super::context::ContextInput;
use super::input::{Compat, ModelInput, OptionsInput};
use super::messages::{convert_messages, MessageStyle};
use crate::types::ApiKind;

/// The effective reasoning setting (docs/architecture.md#routing), with the effort already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reasoning {
    Off,
    On,
    Effort(&'static str),
}

impl Reasoning {
    fn is_on(self) -> bool {
        self != Reasoning::Off
    }
}

/// What one endpoint accepts: the defaults of docs/wire.md#provider-defaults with `model.compat`
/// applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint<'a> {
    pub minimax: bool,
    pub developer_role: bool,
    pub cap_field: &'a str,
    pub store: bool,
    pub cache_control: bool,
    /// `None` (or `Some("")` from compat): the session id is not sent.
    pub session_field: Option<&'a str>,
    pub reasoning_effort: bool,
    pub usage_in_streaming: bool,
    /// Tool messages may carry image parts (docs/wire.md#messages); no provider does by default.
    pub tool_result_images: bool,
}

impl<'a> Endpoint<'a> {
    pub(crate) fn resolve(api: ApiKind, provider_lower: &str, compat: &Compat<'a>) -> Self {
        let minimax = api == ApiKind::MiniMaxCompletions
            || matches!(provider_lower, "minimax" | "minimax-cn");
        let openai = provider_lower == "openai";
        let openrouter = provider_lower == "openrouter";
        let default_session = if openai {
            Some("prompt_cache_key")
        } else if openrouter {
            Some("session_id")
        } else {
            None
        };
        Endpoint {
            minimax: api == ApiKind::MiniMaxCompletions,
            developer_role: compat.supports_developer_role.unwrap_or(openai),
            cap_field: compat.max_tokens_field.unwrap_or(if openai {
                "max_completion_tokens"
            } else {
                "max_tokens"
            }),
            store: compat.supports_store.unwrap_or(openai),
            cache_control: compat.supports_cache_control.unwrap_or(openrouter),
            session_field: compat
                .session_id_field
                .or(default_session)
                .filter(|f| !f.is_empty()),
            reasoning_effort: compat
                .supports_reasoning_effort
                .unwrap_or(!minimax && provider_lower != "xai"),
            usage_in_streaming: compat.supports_usage_in_streaming.unwrap_or(true),
            tool_result_images: compat.supports_tool_result_images.unwrap_or(false),
        }
    }
}

/// MiniMax accepts temperatures in (0, 1] only (docs/wire.md#minimax).
fn clamp_minimax_temperature(t: f64) -> f64 {
    if t <= 0.0 {
        0.01
    } else {
        t.min(1.0)
    }
}

fn tools_field(ctx: &ContextInput<'_>) -> Value {
    let tools = ctx
        .tools
        .iter()
        .map(|tool| {
            let mut function = Map::new();
            function.insert("name".into(), tool.name.into());
            if let Some(description) = tool.description {
                function.insert("description".into(), description.into());
            }
            // An empty schema is written out in full, as the Python boundary does
            // (docs/architecture.md#payload):
            // several servers reject `"parameters": {}`.
            let parameters = match tool.parameters {
                Some(p) if !p.is_empty() => Value::Object(p.clone()),
                _ => json!({"type": "object", "properties": {}}),
            };
            function.insert("parameters".into(), parameters);
            json!({"type": "function", "function": function})
        })
        .collect();
    Value::Array(tools)
}

/// `extra_body` asks for several choices; only index 0 is read (docs/wire.md#chunks).
fn wants_several_choices(n: Option<&Value>) -> bool {
    n.and_then(Value::as_f64).is_some_and(|n| n > 1.0)
}

pub(crate) struct Body {
    pub bytes: Vec<u8>,
    pub multi_choice: bool,
    pub warnings: Vec<String>,
}

pub(crate) fn build_body(
    model: &ModelInput<'_>,
    ctx: &ContextInput<'_>,
    options: &OptionsInput<'_>,
    endpoint: &Endpoint<'_>,
    reasoning: Reasoning,
) -> Body {
    let style = MessageStyle {
        system_role: if reasoning.is_on() && endpoint.developer_role {
            "developer"
        } else {
            "system"
        },
        cache_markers: endpoint.cache_control,
        replay_thinking: endpoint.minimax,
        tool_result_images: endpoint.tool_result_images,
    };
    let (messages, warnings) = convert_messages(ctx, style);
    let mut body = Map::new();
    body.insert("model".into(), model.id.into());
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), true.into());
    if endpoint.usage_in_streaming {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(cap) = options.max_tokens.or(model.max_tokens) {
        body.insert(endpoint.cap_field.into(), cap.into());
    }
    if let Some(t) = options.temperature {
        let t = if endpoint.minimax {
            clamp_minimax_temperature(t)
        } else {
            t
        };
        body.insert("temperature".into(), t.into());
    }
    if let Reasoning::Effort(effort) = reasoning {
        if endpoint.reasoning_effort {
            body.insert("reasoning_effort".into(), effort.into());
        }
    }
    if endpoint.minimax && reasoning.is_on() {
        body.insert("reasoning_split".into(), true.into());
    }
    if endpoint.store {
        body.insert("store".into(), false.into());
    }
    if !ctx.tools.is_empty() {
        body.insert("tools".into(), tools_field(ctx));
    }
    if let (Some(id), Some(field)) = (options.session_id, endpoint.session_field) {
        body.insert(field.into(), id.into());
    }
    let mut multi_choice = false;
    if let Some(extra) = options.extra_body {
        for (key, value) in extra {
            // `null` removes a computed field: the body never carries a null such as
            // `"tool_choice": null`, which strict servers reject (docs/wire.md#body-fields).
            if value.is_null() {
                body.remove(key);
            } else {
                body.insert(key.clone(), value.clone());
            }
        }
        multi_choice = wants_several_choices(extra.get("n"));
    }
    let bytes = serde_json::to_vec(&Value::Object(body)).expect("a JSON value serializes");
    Body {
        bytes,
        multi_choice,
        warnings,
    }
}
