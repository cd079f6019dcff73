//! The endpoint URL from an OpenAI-SDK-style base, and the key rule for loopback and
//! private-network hosts (docs/wire.md#endpoint, docs/wire.md#keys, README "base_url").

use serde_json::{json, Value};

use super::*;
use crate::request::{is_local_url, key_required_for};

fn url_for(provider: &str, api: &str, base_url: &str) -> String {
    let mut m = model(provider, api);
    m["base_url"] = json!(base_url);
    let p = plan(&m, &ctx(json!([user("hi")])), &with_key());
    assert_eq!(p.start_error, None, "{base_url}");
    p.url
}

#[test]
fn an_sdk_style_base_gets_chat_completions_appended() {
    let cases = [
        (
            "https://api.groq.com/openai/v1",
            "https://api.groq.com/openai/v1/chat/completions",
        ),
        (
            "http://localhost:11434/v1/",
            "http://localhost:11434/v1/chat/completions",
        ),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        ),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/chat/completions"),
        (
            "https://res.openai.azure.com/openai/deployments/gpt/?api-version=2024-06-01",
            "https://res.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-06-01",
        ),
    ];
    for api in ["openai-completions", "minimax-completions"] {
        for (base, endpoint) in cases {
            assert_eq!(url_for("local", api, base), endpoint, "{api} {base}");
        }
    }
}

#[test]
fn a_url_that_names_the_endpoint_is_sent_exactly_as_given() {
    for given in [
        "https://llm.example/v1/chat/completions",
        "https://llm.example/v1/chat/completions/",
        "https://llm.example/v1/chat/completions?api-version=2024-06-01",
        "http://LOCALHOST:8000/proxy/chat/completions",
    ] {
        assert_eq!(url_for("local", "openai-completions", given), given);
    }
}

#[test]
fn the_anthropic_path_keeps_its_api_root() {
    // alchemy-llm appends /v1/messages to the root itself (docs/wire.md#endpoint).
    let root = "https://api.anthropic.com";
    assert_eq!(url_for("anthropic", "anthropic-messages", root), root);
    let kimi = "https://api.kimi.com/coding/";
    assert_eq!(url_for("kimi", "", kimi), kimi);
}

#[test]
fn loopback_and_private_hosts_are_local() {
    for url in [
        "http://127.0.0.1:8000/v1",
        "http://127.8.9.10/v1",
        "http://localhost:11434/v1",
        "http://LocalHost./v1",
        "http://api.localhost/v1",
        "http://[::1]:8000/v1",
        "http://[::ffff:127.0.0.1]:8000/v1",
        "http://0.0.0.0:8000/v1",
        "http://10.1.2.3/v1",
        "http://172.16.0.1/v1",
        "http://172.31.255.254/v1",
        "https://192.168.1.20:8443/v1",
        "http://[fd12:3456::1]/v1",
        "http://gpu-box.local:8000/v1",
    ] {
        assert!(is_local_url(url), "{url}");
    }
    for url in [
        "https://api.openai.com/v1",
        "http://172.32.0.1/v1",
        "http://172.15.255.255/v1",
        "http://192.169.0.1/v1",
        "http://11.0.0.1/v1",
        "http://localhost.example.com/v1",
        "http://10.example/v1",
        "http://[2001:db8::1]/v1",
        "http://[::ffff:8.8.8.8]/v1",
        "http://notlocal/v1",
        "not a url",
    ] {
        assert!(!is_local_url(url), "{url}");
    }
}

#[test]
fn a_known_provider_without_a_key_may_talk_to_a_local_server() {
    // Only this test touches FEATHERLESS_API_KEY; an empty variable counts as unset.
    std::env::set_var("FEATHERLESS_API_KEY", "");
    let start_error = |api: &str, base_url: &str| {
        let mut m = model("Featherless", api);
        m["base_url"] = json!(base_url);
        let p = plan(&m, &ctx(json!([user("hi")])), &Value::Null);
        if p.start_error.is_none() {
            assert_eq!(p.api_key, None);
            assert!(p.headers.iter().all(|(n, _)| n != "Authorization"));
            assert!(!p.body.is_empty());
        }
        p.start_error
    };
    let missing = Some("No API key provided for provider: Featherless".to_string());
    for api in ["openai-completions", "minimax-completions"] {
        assert_eq!(start_error(api, "http://127.0.0.1:8000/v1"), None);
        assert_eq!(start_error(api, "http://192.168.1.20:8000/v1"), None);
        assert_eq!(
            start_error(api, "https://api.featherless.ai/v1"),
            missing,
            "a hosted URL still needs the key"
        );
    }
    // alchemy-llm's anthropic transport refuses to start without a key: keep the clear error.
    assert_eq!(
        start_error("anthropic-messages", "http://127.0.0.1:8000"),
        missing
    );
    std::env::remove_var("FEATHERLESS_API_KEY");
}

#[test]
fn key_required_for_normalizes_like_the_planner() {
    assert!(key_required_for(
        "  OpenAI ",
        "",
        "https://api.openai.com/v1"
    ));
    assert!(key_required_for(
        "",
        "openai",
        " https://api.openai.com/v1 "
    ));
    assert!(!key_required_for("", "", " http://localhost:8000/v1 "));
    assert!(!key_required_for(
        "local-vllm",
        "",
        "https://vllm.example/v1"
    ));
    assert!(key_required_for("kimi", "", "http://127.0.0.1:9"));
    assert!(
        !key_required_for("openai", "google-generative-ai", "https://x.example"),
        "an unsupported api is its own start error"
    );
}
