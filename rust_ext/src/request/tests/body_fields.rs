//! Body fields other than `messages` (docs/wire.md#body-fields, #provider-defaults, #minimax), as
//! whole bodies.

use serde_json::{json, Value};

use super::*;

fn hi() -> Value {
    ctx(json!([user("hi")]))
}

fn hi_messages() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

#[test]
fn a_minimal_custom_endpoint_body() {
    assert_eq!(
        body(&model("local", ""), &hi(), &Value::Null),
        json!({"model": "m-1", "messages": hi_messages(), "stream": true,
               "stream_options": {"include_usage": true}})
    );
}

#[test]
fn openai_defaults_cap_store_effort_and_session() {
    let mut m = model("openai", "");
    m["reasoning"] = json!("high");
    m["max_tokens"] = json!(4096);
    let o = json!({"api_key": "k", "max_tokens": 100, "temperature": 0.5, "session_id": "s-1"});
    assert_eq!(
        body(&m, &hi(), &o),
        json!({"model": "m-1", "messages": hi_messages(), "stream": true,
               "stream_options": {"include_usage": true}, "max_completion_tokens": 100,
               "temperature": 0.5, "reasoning_effort": "high", "store": false,
               "prompt_cache_key": "s-1"})
    );
}

#[test]
fn openrouter_defaults() {
    let mut m = model("openrouter", "");
    m["max_tokens"] = json!(2048);
    m["reasoning"] = json!(true);
    let o = json!({"api_key": "k", "session_id": "s-2"});
    assert_eq!(
        body(&m, &hi(), &o),
        json!({"model": "m-1", "messages": hi_messages(), "stream": true,
               "stream_options": {"include_usage": true}, "max_tokens": 2048,
               "session_id": "s-2"})
    );
}

#[test]
fn xai_and_custom_endpoints_differ_only_in_reasoning_effort() {
    let effort = |provider: &str| {
        let mut m = model(provider, "");
        m["reasoning"] = json!(" Medium ");
        body(&m, &hi(), &with_key())
            .get("reasoning_effort")
            .cloned()
    };
    assert_eq!(effort("xai"), None);
    assert_eq!(effort("local"), Some(json!("medium")));
    assert_eq!(effort("groq"), Some(json!("medium")));
}

#[test]
fn minimax_body_differences() {
    let mut m = model("minimax", "");
    m["reasoning"] = json!("high");
    let o = json!({"api_key": "k", "max_tokens": 50, "temperature": 0.0, "session_id": "s"});
    let c = json!({"system_prompt": "S", "messages": [user("hi")]});
    assert_eq!(
        body(&m, &c, &o),
        json!({"model": "m-1", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
               "max_tokens": 50, "temperature": 0.01, "reasoning_split": true})
    );
    let temperature =
        |t: f64| body(&m, &hi(), &json!({"api_key": "k", "temperature": t}))["temperature"].clone();
    assert_eq!(temperature(-3.0), json!(0.01));
    assert_eq!(temperature(0.7), json!(0.7));
    assert_eq!(temperature(1.0), json!(1.0));
    assert_eq!(temperature(1.8), json!(1.0));
    m["reasoning"] = json!(false);
    assert_eq!(body(&m, &hi(), &with_key()).get("reasoning_split"), None);
}

#[test]
fn temperature_is_not_clamped_off_minimax() {
    let o = json!({"temperature": 1.8});
    assert_eq!(
        body(&model("local", ""), &hi(), &o)["temperature"],
        json!(1.8)
    );
}

#[test]
fn reasoning_true_alone_sends_no_effort() {
    let mut m = model("openai", "");
    m["reasoning"] = json!(true);
    assert_eq!(body(&m, &hi(), &with_key()).get("reasoning_effort"), None);
}

#[test]
fn the_options_cap_wins_over_the_model_cap_and_zero_is_a_value() {
    let mut m = model("local", "");
    m["max_tokens"] = json!(4096);
    assert_eq!(
        body(&m, &hi(), &json!({"max_tokens": 0}))["max_tokens"],
        json!(0)
    );
    assert_eq!(
        body(&m, &hi(), &json!({"max_tokens": null}))["max_tokens"],
        json!(4096)
    );
}

#[test]
fn tools_are_sent_without_strict_and_omitted_when_empty() {
    let c = json!({"system_prompt": "", "messages": [user("hi")], "tools": [
        {"name": "sum", "description": "Add numbers", "label": "Sum",
         "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}},
        {"name": "now"}, {"name": "ping", "description": "", "parameters": {}}]});
    assert_eq!(
        body(&model("local", ""), &c, &Value::Null)["tools"],
        json!([
            {"type": "function", "function": {"name": "sum", "description": "Add numbers",
             "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}},
            {"type": "function", "function": {"name": "now",
             "parameters": {"type": "object", "properties": {}}}},
            {"type": "function", "function": {"name": "ping", "description": "",
             "parameters": {"type": "object", "properties": {}}}},
        ])
    );
    let empty = json!({"system_prompt": "", "messages": [user("hi")], "tools": []});
    assert_eq!(
        body(&model("local", ""), &empty, &Value::Null).get("tools"),
        None
    );
    assert_eq!(
        body(&model("local", ""), &empty, &Value::Null).get("tool_choice"),
        None
    );
}

#[test]
fn compat_overrides_every_default() {
    let mut m = model("openai", "");
    m["reasoning"] = json!("low");
    m["compat"] = json!({"supports_store": false, "supports_reasoning_effort": false,
                         "supports_usage_in_streaming": false, "max_tokens_field": "max_tokens",
                         "session_id_field": ""});
    let o = json!({"api_key": "k", "max_tokens": 10, "session_id": "s"});
    assert_eq!(
        body(&m, &hi(), &o),
        json!({"model": "m-1", "messages": hi_messages(), "stream": true, "max_tokens": 10})
    );
    let mut custom = model("local", "");
    custom["compat"] = json!({"supports_store": true, "max_tokens_field": "max_completion_tokens",
                              "session_id_field": "session_id"});
    let o = json!({"max_tokens": 10, "session_id": "s"});
    assert_eq!(
        body(&custom, &hi(), &o),
        json!({"model": "m-1", "messages": hi_messages(), "stream": true,
               "stream_options": {"include_usage": true}, "max_completion_tokens": 10,
               "store": false, "session_id": "s"})
    );
}

#[test]
fn an_empty_session_id_is_not_sent() {
    let o = json!({"api_key": "k", "session_id": ""});
    assert_eq!(
        body(&model("openrouter", ""), &hi(), &o).get("session_id"),
        None
    );
}

#[test]
fn extra_body_is_merged_last_key_by_key() {
    let o = json!({"api_key": "k", "temperature": 0.2, "max_tokens": 5, "extra_body": {
        "temperature": 0.9, "top_p": 0.5, "stop": ["\n"], "seed": 7,
        "tool_choice": {"type": "function", "function": {"name": "sum"}},
        "provider": {"order": ["a"]}, "store": null}});
    assert_eq!(
        body(&model("openai", ""), &hi(), &o),
        json!({"model": "m-1", "messages": hi_messages(), "stream": true,
               "stream_options": {"include_usage": true}, "max_completion_tokens": 5,
               "temperature": 0.9, "top_p": 0.5, "stop": ["\n"], "seed": 7,
               "tool_choice": {"type": "function", "function": {"name": "sum"}},
               "provider": {"order": ["a"]}})
    );
}

#[test]
fn extra_body_n_above_one_reads_only_the_first_choice() {
    let multi = |n: Value| {
        let o = json!({"extra_body": {"n": n}});
        let p = plan(&model("local", ""), &hi(), &o);
        assert_eq!(body_of(&p)["n"], o["extra_body"]["n"]);
        p.multi_choice
    };
    assert!(multi(json!(3)));
    assert!(multi(json!(2.0)));
    assert!(!multi(json!(1)));
    assert!(!multi(json!("4")));
}

#[test]
fn the_body_is_compact_json() {
    let p = plan(&model("local", ""), &hi(), &Value::Null);
    let text = std::str::from_utf8(&p.body).unwrap();
    assert!(
        !text.contains(": ") && !text.contains(", ") && !text.contains('\n'),
        "{text}"
    );
}
