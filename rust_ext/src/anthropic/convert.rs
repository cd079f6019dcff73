//! The input dicts (docs/architecture.md#core-surface) → alchemy-llm's `Model`, `Context` and
//! options, for the experimental `anthropic-messages` path (docs/wire.md#anthropic-path). The
//! request planner has already validated the dicts; what remains here is shape mapping.

use std::collections::HashMap;
use std::str::FromStr;

use alchemy_llm::types::{
    AnthropicMessages, Api, AssistantMessage, Content, Context, ImageContent, InputType, Message,
    Model, ModelCost, Provider, StopReason, TextContent, Tool, ToolResultContent,
    ToolResultMessage, Usage, UserContent, UserContentBlock, UserMessage,
};
use alchemy_llm::OpenAICompletionsOptions;
use serde_json::Value;

use crate::types::RequestPlan;

/// The crate needs an output cap on this API; this is used when neither the options nor the
/// model set one.
const DEFAULT_MAX_TOKENS: u32 = 4096;

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn headers_of(v: &Value, key: &str) -> Option<HashMap<String, String>> {
    let map = v.get(key)?.as_object()?;
    let headers: HashMap<String, String> = map
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    (!headers.is_empty()).then_some(headers)
}

fn u32_field(v: &Value, key: &str) -> Option<u32> {
    v.get(key)?.as_u64().map(|n| n.min(u32::MAX as u64) as u32)
}

pub fn model(plan: &RequestPlan) -> Model<AnthropicMessages> {
    let raw = &plan.raw_model;
    let reasoning = match raw.get("reasoning") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    Model {
        id: plan.model_id.clone(),
        name: str_field(raw, "name").unwrap_or(&plan.model_id).to_string(),
        api: AnthropicMessages,
        provider: Provider::from_str(&plan.provider.trim().to_lowercase())
            .unwrap_or_else(|_| Provider::Custom(plan.provider.clone())),
        base_url: plan.url.trim_end_matches('/').to_string(),
        reasoning,
        input: vec![InputType::Text, InputType::Image],
        cost: ModelCost {
            input: 0.0,
            output: 0.0,
            cache_read: 0.0,
            cache_write: 0.0,
        },
        context_window: plan
            .context_window
            .map(|n| n.min(u32::MAX as u64) as u32)
            .unwrap_or(200_000),
        max_tokens: u32_field(raw, "max_tokens").unwrap_or(DEFAULT_MAX_TOKENS),
        headers: headers_of(raw, "headers"),
        compat: None,
    }
}

pub fn options(plan: &RequestPlan) -> OpenAICompletionsOptions {
    let raw = &plan.raw_options;
    OpenAICompletionsOptions {
        api_key: plan.api_key.clone(),
        temperature: raw.get("temperature").and_then(Value::as_f64),
        max_tokens: u32_field(raw, "max_tokens"),
        headers: headers_of(raw, "headers"),
        ..OpenAICompletionsOptions::default()
    }
}

fn image(block: &Value) -> Result<ImageContent, String> {
    let url = str_field(block, "url").unwrap_or("");
    let rest = url
        .strip_prefix("data:")
        .ok_or("anthropic-messages carries only data: image URLs")?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or("image data URL without a comma")?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or("image data URL must be base64")?;
    let mime = str_field(block, "mime_type").unwrap_or(mime).to_string();
    ImageContent::from_base64(data, mime).map_err(|e| format!("invalid base64 image data: {e}"))
}

fn text(block: &Value, key: &str) -> String {
    str_field(block, key).unwrap_or("").to_string()
}

fn blocks(message: &Value) -> impl Iterator<Item = &Value> {
    message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| !b.is_null())
}

fn user(message: &Value) -> Result<Message, String> {
    let mut parts = Vec::new();
    for block in blocks(message) {
        match str_field(block, "type") {
            Some("text") => parts.push(UserContentBlock::Text(TextContent {
                text: text(block, "text"),
                text_signature: None,
            })),
            Some("image") => parts.push(UserContentBlock::Image(image(block)?)),
            _ => {}
        }
    }
    Ok(Message::User(UserMessage {
        content: UserContent::Multi(parts),
        timestamp: 0,
    }))
}

/// A failed turn is sanitized like on the owned path (docs/wire.md#messages): only its text
/// survives.
fn assistant(message: &Value, plan: &RequestPlan) -> Option<Message> {
    let failed = matches!(
        str_field(message, "stop_reason"),
        Some("error") | Some("aborted")
    );
    let mut content = Vec::new();
    for block in blocks(message) {
        match str_field(block, "type") {
            Some("text") => content.push(Content::text(text(block, "text"))),
            Some("thinking") if !failed => content.push(Content::Thinking {
                inner: alchemy_llm::types::ThinkingContent {
                    thinking: text(block, "thinking"),
                    thinking_signature: str_field(block, "thinking_signature").map(str::to_string),
                },
            }),
            Some("tool_call") if !failed => {
                let arguments = match block.get("arguments") {
                    Some(v @ Value::Object(_)) => v.clone(),
                    _ => Value::Object(Default::default()),
                };
                content.push(Content::tool_call(
                    text(block, "id"),
                    text(block, "name"),
                    arguments,
                ));
            }
            _ => {}
        }
    }
    if failed {
        content.retain(|c| matches!(c, Content::Text { inner } if !inner.text.is_empty()));
    }
    (!content.is_empty()).then(|| {
        Message::Assistant(AssistantMessage {
            content,
            api: Api::AnthropicMessages,
            provider: Provider::Custom(plan.provider.clone()),
            model: plan.model_id.clone(),
            usage: Usage::default(),
            stop_reason: StopReason::Stop,
            error_message: None,
            timestamp: 0,
        })
    })
}

fn tool_result(message: &Value) -> Result<Message, String> {
    let mut content = Vec::new();
    for block in blocks(message) {
        match str_field(block, "type") {
            Some("text") => content.push(ToolResultContent::Text(TextContent {
                text: text(block, "text"),
                text_signature: None,
            })),
            Some("image") => content.push(ToolResultContent::Image(image(block)?)),
            _ => {}
        }
    }
    if content.is_empty() {
        content.push(ToolResultContent::Text(TextContent {
            text: "(no output)".to_string(),
            text_signature: None,
        }));
    }
    Ok(Message::ToolResult(ToolResultMessage {
        tool_call_id: text(message, "tool_call_id").into(),
        tool_name: text(message, "tool_name"),
        content,
        details: None,
        is_error: message
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        timestamp: 0,
    }))
}

pub fn context(plan: &RequestPlan) -> Result<Context, String> {
    let raw = &plan.raw_context;
    let mut messages = Vec::new();
    for (i, message) in raw
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let converted = match str_field(message, "role") {
            Some("user") => Some(user(message)),
            Some("assistant") => assistant(message, plan).map(Ok),
            Some("tool_result") => Some(tool_result(message)),
            _ => None,
        };
        if let Some(m) = converted {
            messages.push(m.map_err(|e| format!("context.messages[{i}]: {e}"))?);
        }
    }
    let tools: Vec<Tool> = raw
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| Tool {
            name: text(t, "name"),
            description: text(t, "description"),
            parameters: t
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        })
        .collect();
    let system_prompt = str_field(raw, "system_prompt").filter(|s| !s.is_empty());
    Ok(Context {
        system_prompt: system_prompt.map(str::to_string),
        messages,
        tools: (!tools.is_empty()).then_some(tools),
    })
}
