//! Tests of the request builder: exact bodies, headers and error texts.

mod body_fields;
mod endpoint_url;
mod errors;
mod history;
mod markers;
mod routing;

use serde_json::{json, Value};

use super::{plan_request, plan_request_with_warnings};
use crate::types::RequestPlan;

const URL: &str = "https://llm.example/v1/chat/completions";

fn model(provider: &str, api: &str) -> Value {
    json!({"id": "m-1", "provider": provider, "api": api, "base_url": URL})
}

fn with_key() -> Value {
    json!({"api_key": "sk-test"})
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}]})
}

fn ctx(messages: Value) -> Value {
    json!({"system_prompt": "", "messages": messages, "tools": null})
}

fn plan(model: &Value, context: &Value, options: &Value) -> RequestPlan {
    plan_request(model, context, options, 1_718_000_000_000).expect("valid input")
}

fn body_of(plan: &RequestPlan) -> Value {
    assert_eq!(plan.start_error, None);
    serde_json::from_slice(&plan.body).expect("the body is JSON")
}

/// The body for `messages` on a custom OpenAI-compatible endpoint, with a key.
fn body(model: &Value, context: &Value, options: &Value) -> Value {
    body_of(&plan(model, context, options))
}

fn messages_of(model: &Value, context: &Value) -> Value {
    body(model, context, &with_key())["messages"].take()
}

fn warnings_of(context: &Value) -> Vec<String> {
    plan_request_with_warnings(&model("local", "openai-completions"), context, &Value::Null)
        .expect("valid input")
        .1
}
