//! Routing, keys, headers and the plan's scalar fields (docs/wire.md#headers,
//! docs/wire.md#keys, docs/architecture.md#routing).

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::request::normalize_api;
use crate::types::{ApiKind, Timeouts, DEFAULT_MAX_RETRIES};

fn headers(plan: &RequestPlan) -> Vec<(&str, &str)> {
    plan.headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn api_strings_are_normalized_and_inferred() {
    for alias in [
        "openai",
        "OpenAI-Compatible",
        " chat-completions ",
        "openrouter",
        "openai-completions",
    ] {
        assert_eq!(
            normalize_api(alias, "local"),
            "openai-completions",
            "{alias}"
        );
    }
    assert_eq!(normalize_api("MiniMax", "openai"), "minimax-completions");
    assert_eq!(normalize_api("", "minimax"), "minimax-completions");
    assert_eq!(normalize_api(" ", "minimax-cn"), "minimax-completions");
    assert_eq!(normalize_api("", "anthropic"), "anthropic-messages");
    assert_eq!(normalize_api("", "kimi"), "anthropic-messages");
    assert_eq!(normalize_api("", "openrouter"), "openai-completions");
    assert_eq!(normalize_api("Custom-API", "x"), "custom-api");
}

#[test]
fn the_plan_routes_to_the_api_kind() {
    let c = ctx(json!([user("hi")]));
    let cases = [
        (model("openrouter", "openai"), ApiKind::OpenAiCompletions),
        (model("minimax", ""), ApiKind::MiniMaxCompletions),
        (model("local", "minimax"), ApiKind::MiniMaxCompletions),
        (model("kimi", ""), ApiKind::AnthropicMessages),
    ];
    for (m, api) in cases {
        assert_eq!(plan(&m, &c, &with_key()).api, api, "{m}");
    }
}

#[test]
fn plan_scalars_come_from_the_inputs() {
    let mut m = model("  OpenRouter ", "openai-completions");
    m["id"] = json!("moonshotai/kimi-k2.5");
    m["base_url"] = json!("  http://127.0.0.1:8000/v1/chat/completions ");
    m["context_window"] = json!(128_000);
    let o = json!({"api_key": "k", "connect_timeout": 1.5, "idle_timeout": 30, "max_retries": 0});
    let p = plan(&m, &ctx(json!([user("hi")])), &o);
    assert_eq!(p.provider, "OpenRouter");
    assert_eq!(p.model_id, "moonshotai/kimi-k2.5");
    assert_eq!(p.url, "http://127.0.0.1:8000/v1/chat/completions");
    assert_eq!(p.context_window, Some(128_000));
    assert_eq!(p.max_retries, 0);
    assert_eq!(
        p.timeouts,
        Timeouts {
            connect: Duration::from_millis(1500),
            first_byte: Timeouts::default().first_byte,
            idle: Duration::from_secs(30),
        }
    );
    assert!(!p.multi_choice);
    assert_eq!(p.raw_model, m);
    assert_eq!(
        p.raw_context,
        Value::Null,
        "the history is not copied on the owned path"
    );

    let d = plan(
        &model("", "openai-completions"),
        &ctx(json!([])),
        &with_key(),
    );
    assert_eq!(d.provider, "openai", "a blank provider is openai");
    assert_eq!(d.timeouts, Timeouts::default());
    assert_eq!(d.max_retries, DEFAULT_MAX_RETRIES);
    assert_eq!(d.context_window, None);
}

#[test]
fn the_anthropic_path_keeps_the_raw_input_and_builds_no_body() {
    let m = model("anthropic", "anthropic-messages");
    let c = ctx(json!([user("hi")]));
    let o = json!({"api_key": "sk-ant", "temperature": 0.2});
    let p = plan(&m, &c, &o);
    assert_eq!(p.api, ApiKind::AnthropicMessages);
    assert_eq!(p.start_error, None);
    assert!(p.body.is_empty());
    assert_eq!((p.raw_model, p.raw_context, p.raw_options), (m, c, o));
    assert_eq!(p.api_key.as_deref(), Some("sk-ant"));
}

#[test]
fn the_explicit_key_wins_and_is_sent_as_bearer() {
    let p = plan(
        &model("openai", "openai-completions"),
        &ctx(json!([])),
        &json!({"api_key": "sk-1"}),
    );
    assert_eq!(p.api_key.as_deref(), Some("sk-1"));
    assert_eq!(
        headers(&p),
        vec![
            ("Content-Type", "application/json"),
            ("Accept", "text/event-stream"),
            (
                "User-Agent",
                concat!("tinyagent/", env!("CARGO_PKG_VERSION"))
            ),
            ("Authorization", "Bearer sk-1"),
        ]
    );
}

#[test]
fn a_known_provider_falls_back_to_its_environment_key() {
    // Only this test touches CHUTES_API_KEY (chutes is in our key table, not
    // the crate's: docs/wire.md#keys).
    std::env::set_var("CHUTES_API_KEY", "chutes-env");
    let p = plan(
        &model("Chutes", ""),
        &ctx(json!([])),
        &json!({"api_key": ""}),
    );
    assert_eq!(p.api_key.as_deref(), Some("chutes-env"));
    assert_eq!(p.start_error, None);
    std::env::remove_var("CHUTES_API_KEY");
}

#[test]
fn anthropic_prefers_the_oauth_token() {
    // Only this test touches the ANTHROPIC_* variables.
    std::env::set_var("ANTHROPIC_API_KEY", "ant-key");
    std::env::set_var("ANTHROPIC_OAUTH_TOKEN", "ant-oauth");
    let p = plan(&model("anthropic", ""), &ctx(json!([])), &Value::Null);
    assert_eq!(p.api_key.as_deref(), Some("ant-oauth"));
    std::env::remove_var("ANTHROPIC_OAUTH_TOKEN");
    let p = plan(&model("anthropic", ""), &ctx(json!([])), &Value::Null);
    assert_eq!(p.api_key.as_deref(), Some("ant-key"));
    std::env::remove_var("ANTHROPIC_API_KEY");
}

#[test]
fn a_known_provider_without_a_key_is_a_start_error() {
    // Only this test touches CEREBRAS_API_KEY; an empty variable counts as unset.
    std::env::set_var("CEREBRAS_API_KEY", "");
    let p = plan(
        &model("Cerebras", ""),
        &ctx(json!([user("hi")])),
        &json!({"api_key": null}),
    );
    assert_eq!(
        p.start_error.as_deref(),
        Some("No API key provided for provider: Cerebras")
    );
    assert!(p.body.is_empty());
    std::env::remove_var("CEREBRAS_API_KEY");
}

#[test]
fn a_custom_provider_without_a_key_sends_no_authorization() {
    // Bedrock and Vertex use credential files, not keys: we treat them as custom
    // (docs/wire.md#keys).
    for provider in ["local-vllm", "amazon-bedrock"] {
        let p = plan(
            &model(provider, ""),
            &ctx(json!([user("hi")])),
            &Value::Null,
        );
        assert_eq!(p.start_error, None, "{provider}");
        assert_eq!(p.api_key, None);
        assert!(p.headers.iter().all(|(n, _)| n != "Authorization"));
        assert_eq!(p.headers.len(), 3);
    }
}

#[test]
fn later_header_sources_replace_earlier_ones_case_insensitively_in_place() {
    let mut m = model("local", "");
    m["headers"] =
        json!({"accept": "application/json", "HTTP-Referer": "https://app", "X-Title": "t"});
    let o = json!({"api_key": "k", "headers": {"authorization": "Token other", "x-title": "u",
                                               "X-Extra": "1"}});
    let p = plan(&m, &ctx(json!([])), &o);
    assert_eq!(
        headers(&p),
        vec![
            ("Content-Type", "application/json"),
            ("accept", "application/json"),
            (
                "User-Agent",
                concat!("tinyagent/", env!("CARGO_PKG_VERSION"))
            ),
            ("authorization", "Token other"),
            ("HTTP-Referer", "https://app"),
            ("x-title", "u"),
            ("X-Extra", "1"),
        ]
    );
    assert!(
        p.headers
            .iter()
            .all(|(n, _)| !n.eq_ignore_ascii_case("accept-encoding")),
        "compression is never requested"
    );
}

#[test]
fn header_values_may_be_utf8() {
    let o = json!({"headers": {"X-User": "José"}});
    let p = plan(&model("local", ""), &ctx(json!([])), &o);
    assert_eq!(p.start_error, None);
    assert_eq!(
        p.headers.last().unwrap(),
        &("X-User".to_string(), "José".to_string())
    );
}
