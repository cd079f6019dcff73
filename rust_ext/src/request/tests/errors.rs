//! Every input error and every start error (docs/wire.md#request), by its exact text.

use serde_json::{json, Value};

use super::*;
use crate::types::InputError;

fn input_error(model: &Value, context: &Value, options: &Value) -> String {
    plan_request(model, context, options, 0)
        .expect_err("the input is malformed")
        .to_string()
}

fn model_error(patch: Value) -> String {
    let mut m = model("local", "openai-completions");
    for (k, v) in patch.as_object().unwrap() {
        m[k] = v.clone();
    }
    input_error(&m, &ctx(json!([])), &Value::Null)
}

fn context_error(context: Value) -> String {
    input_error(
        &model("local", "openai-completions"),
        &context,
        &Value::Null,
    )
}

fn message_error(message: Value) -> String {
    context_error(ctx(json!([message])))
}

fn options_error(options: Value) -> String {
    input_error(
        &model("local", "openai-completions"),
        &ctx(json!([])),
        &options,
    )
}

fn start_error(model: &Value, options: &Value) -> Option<String> {
    plan(model, &ctx(json!([user("hi")])), options).start_error
}

#[test]
fn dicts_of_the_wrong_type_are_rejected_with_their_name() {
    let ok_model = model("local", "openai-completions");
    assert_eq!(
        plan_request(&json!([]), &ctx(json!([])), &Value::Null, 0).unwrap_err(),
        InputError::Model("model must be a dict".into())
    );
    assert_eq!(
        context_error(json!("hi")),
        "invalid context: context must be a dict"
    );
    assert_eq!(
        input_error(&ok_model, &ctx(json!([])), &json!([1])),
        "invalid options: options must be a dict"
    );
}

#[test]
fn model_fields_are_type_checked() {
    assert_eq!(
        model_error(json!({"id": 3})),
        "invalid model: 'id' must be a string"
    );
    assert_eq!(
        model_error(json!({"id": null})),
        "invalid model: 'id' must be a string"
    );
    assert_eq!(
        model_error(json!({"provider": []})),
        "invalid model: 'provider' must be a string"
    );
    assert_eq!(
        model_error(json!({"api": false})),
        "invalid model: 'api' must be a string"
    );
    assert_eq!(
        model_error(json!({"base_url": "   "})),
        "invalid model: 'base_url' must be a non-empty string"
    );
    assert_eq!(
        model_error(json!({"name": 1})),
        "invalid model: 'name' must be a string"
    );
    assert_eq!(
        model_error(json!({"headers": ["a"]})),
        "invalid model: 'headers' must be a dict of str to str"
    );
    assert_eq!(
        model_error(json!({"headers": {"X-A": 1}})),
        "invalid model: 'headers' value for 'X-A' must be a string"
    );
    assert_eq!(
        model_error(json!({"reasoning": 2})),
        "invalid model: 'reasoning' must be a bool or one of 'minimal', 'low', 'medium', 'high', 'xhigh'"
    );
    assert_eq!(
        model_error(json!({"context_window": -1})),
        "invalid model: 'context_window' must be an integer >= 0"
    );
    assert_eq!(
        model_error(json!({"max_tokens": 1.5})),
        "invalid model: 'max_tokens' must be an integer >= 0"
    );
    assert_eq!(
        model_error(json!({"compat": "x"})),
        "invalid model: 'compat' must be a dict"
    );
    assert_eq!(
        model_error(json!({"compat": {"supports_store": "yes"}})),
        "invalid model: 'compat.supports_store' must be a bool"
    );
    assert_eq!(
        model_error(json!({"compat": {"session_id_field": 1}})),
        "invalid model: 'compat.session_id_field' must be a string"
    );
    assert_eq!(
        model_error(json!({"compat": {"max_tokens_field": ""}})),
        "invalid model: 'compat.max_tokens_field' must be a non-empty field name"
    );
}

#[test]
fn unknown_keys_and_nulls_for_optional_fields_are_accepted() {
    let m = json!({"id": "m", "provider": "local", "api": "", "base_url": URL, "name": null,
                   "headers": null, "reasoning": null, "context_window": null, "max_tokens": null,
                   "compat": {"requires_thinking_as_text": true}, "cost": {"input": 1}});
    let o = json!({"api_key": null, "temperature": null, "max_tokens": null, "session_id": null,
                   "connect_timeout": null, "headers": null, "max_retries": null,
                   "extra_body": null, "signal": "ignored"});
    let c = json!({"system_prompt": null, "messages": null, "tools": null, "extra": 1});
    assert_eq!(plan(&m, &c, &o).start_error, None);
}

#[test]
fn options_are_type_and_range_checked() {
    assert_eq!(
        options_error(json!({"api_key": 5})),
        "invalid options: 'api_key' must be a string"
    );
    assert_eq!(
        options_error(json!({"temperature": "hot"})),
        "invalid options: 'temperature' must be a finite number"
    );
    assert_eq!(
        options_error(json!({"max_tokens": -1})),
        "invalid options: 'max_tokens' must be an integer >= 0"
    );
    assert_eq!(
        options_error(json!({"session_id": 7})),
        "invalid options: 'session_id' must be a string"
    );
    for key in ["connect_timeout", "first_byte_timeout", "idle_timeout"] {
        for bad in [json!(0), json!(-1.5), json!("5"), json!(1e300)] {
            assert_eq!(
                options_error(json!({key: bad})),
                format!("invalid options: '{key}' must be a number of seconds > 0")
            );
        }
    }
    assert_eq!(
        options_error(json!({"headers": {"X": null}})),
        "invalid options: 'headers' value for 'X' must be a string"
    );
    assert_eq!(
        options_error(json!({"max_retries": -1})),
        "invalid options: 'max_retries' must be an integer >= 0"
    );
    assert_eq!(
        options_error(json!({"max_retries": 1u64 << 40})),
        "invalid options: 'max_retries' is too large"
    );
    assert_eq!(
        options_error(json!({"extra_body": [1]})),
        "invalid options: 'extra_body' must be a dict"
    );
}

#[test]
fn context_shape_errors_name_the_field() {
    let base = |k: &str, v: Value| {
        let mut c = ctx(json!([]));
        c[k] = v;
        context_error(c)
    };
    assert_eq!(
        base("system_prompt", json!(1)),
        "invalid context: 'system_prompt' must be a string"
    );
    assert_eq!(
        base("messages", json!({})),
        "invalid context: 'messages' must be a list"
    );
    assert_eq!(
        base("tools", json!("t")),
        "invalid context: 'tools' must be a list or null"
    );
    assert_eq!(
        base("tools", json!([{"name": 1}])),
        "invalid context: tools[0]: 'name' must be a string"
    );
    assert_eq!(
        base("tools", json!([{"name": "t", "parameters": []}])),
        "invalid context: tools[0]: 'parameters' must be a dict"
    );
    assert_eq!(
        base("tools", json!([3])),
        "invalid context: tools[0]: a tool must be a dict"
    );
}

#[test]
fn message_errors_name_the_message_and_block() {
    assert_eq!(
        message_error(json!("hi")),
        "invalid context: messages[0]: a message must be a dict"
    );
    assert_eq!(
        message_error(json!({"content": []})),
        "invalid context: messages[0]: 'role' must be a string"
    );
    assert_eq!(
        message_error(json!({"role": "system", "content": []})),
        "invalid context: messages[0]: unsupported role 'system'"
    );
    assert_eq!(
        message_error(json!({"role": "user", "content": "hi"})),
        "invalid context: messages[0]: 'content' must be a list"
    );
    assert_eq!(
        message_error(json!({"role": "user", "content": [null, {"type": "text", "text": 1}]})),
        "invalid context: messages[0].content[1]: 'text' must be a string"
    );
    assert_eq!(
        message_error(json!({"role": "user", "content": [{"text": "a"}]})),
        "invalid context: messages[0].content[0]: 'type' must be a string"
    );
    assert_eq!(
        message_error(json!({"role": "user", "content": [7]})),
        "invalid context: messages[0].content[0]: a content block must be a dict or null"
    );
    assert_eq!(
        message_error(json!({"role": "user", "content": [{"type": "thinking", "thinking": "x"}]})),
        "invalid context: messages[0].content[0]: unsupported block type 'thinking' (expected 'text' or 'image')"
    );
    assert_eq!(
        message_error(
            json!({"role": "user", "content": [{"type": "text", "text": "a", "cache_control": "x"}]})
        ),
        "invalid context: messages[0].content[0]: 'cache_control' must be a dict"
    );
    assert_eq!(
        message_error(json!({"role": "tool_result", "tool_call_id": 5, "content": []})),
        "invalid context: messages[0]: 'tool_call_id' must be a string"
    );
    let assistant = |block: Value| message_error(json!({"role": "assistant", "content": [block]}));
    assert_eq!(
        assistant(json!({"type": "image", "url": "https://x/y.png"})),
        "invalid context: messages[0].content[0]: image blocks are not allowed in assistant messages"
    );
    assert_eq!(
        assistant(json!({"type": "tool_call", "name": "f", "arguments": {}})),
        "invalid context: messages[0].content[0]: tool_call 'id' must be a string"
    );
    assert_eq!(
        assistant(json!({"type": "tool_call", "id": "c", "arguments": {}})),
        "invalid context: messages[0].content[0]: tool_call 'name' must be a string"
    );
    assert_eq!(
        assistant(json!({"type": "tool_call", "id": "c", "name": "f", "arguments": "{}"})),
        "invalid context: messages[0].content[0]: tool_call 'arguments' must be a dict"
    );
    assert_eq!(
        assistant(json!({"type": "thinking", "thinking": 1})),
        "invalid context: messages[0].content[0]: 'thinking' must be a string"
    );
    assert_eq!(
        assistant(json!({"type": "audio"})),
        "invalid context: messages[0].content[0]: unsupported block type 'audio' (expected 'text', 'thinking' or 'tool_call')"
    );
}

#[test]
fn image_urls_are_checked_at_the_boundary() {
    let image = |url: Value| {
        message_error(
            json!({"role": "user", "content": [{"type": "text", "text": "a"},
                                                          {"type": "image", "url": url}]}),
        )
    };
    let at = |reason: &str| format!("invalid context: messages[0].content[1]: {reason}");
    let shape = at("image URL must be an http(s) URL or a data:<mime>;base64,... URL");
    for bad in [
        "ftp://x/y.png",
        "/tmp/y.png",
        "https:",
        "https://",
        "http:///path",
        "x",
    ] {
        assert_eq!(image(json!(bad)), shape, "{bad}");
    }
    let malformed = at("malformed data URL: expected data:<mime>;base64,<data>");
    assert_eq!(image(json!("data:image/png,raw")), malformed);
    assert_eq!(image(json!("data:;base64,aGk=")), malformed);
    assert_eq!(image(json!("data:image/png;base64")), malformed);
    assert_eq!(
        image(json!("data:text/plain;base64,aGk=")),
        at("data URL is not an image: text/plain")
    );
    assert_eq!(
        image(json!("data:image/png;base64,")),
        at("data URL has no image data")
    );
    for bad in ["aGk", "aG k", "a===", "aGk=\n", "aGk*"] {
        assert_eq!(
            image(json!(format!("data:image/png;base64,{bad}"))),
            at("data URL payload is not valid base64")
        );
    }
    assert_eq!(image(Value::Null), at("image block has no URL"));
    assert_eq!(image(json!(" ")), at("image block has no URL"));
    let in_tool_result = json!({"role": "tool_result", "tool_call_id": "c", "content": [
        {"type": "image", "url": "file:///etc/passwd"}]});
    assert_eq!(
        context_error(ctx(json!([user("a"), in_tool_result]))),
        "invalid context: messages[1].content[0]: image URL must be an http(s) URL or a data:<mime>;base64,... URL"
    );
}

#[test]
fn data_urls_with_parameters_and_padding_are_accepted() {
    for url in [
        "data:image/png;base64,iVBORw==",
        "DATA:Image/PNG;name=a.png;base64,iVBORw0=",
        "data:image/svg+xml;base64,PHN2Zz4=",
    ] {
        let c = ctx(json!([{"role": "user", "content": [{"type": "image", "url": url}]}]));
        assert_eq!(
            plan(&model("local", ""), &c, &Value::Null).start_error,
            None,
            "{url}"
        );
    }
}

#[test]
fn a_failed_assistant_turn_is_not_validated_beyond_its_text() {
    let failed = json!({"role": "assistant", "stop_reason": "aborted", "api": 42, "usage": "?",
                        "content": [{"type": "tool_call", "id": null}, {"type": "thinking", "thinking": 3}]});
    assert_eq!(
        plan(
            &model("local", ""),
            &ctx(json!([user("a"), failed])),
            &Value::Null
        )
        .start_error,
        None
    );
}

#[test]
fn start_errors_are_reported_in_the_plan() {
    assert_eq!(
        start_error(&model("local", "openai-responses"), &Value::Null).as_deref(),
        Some("unsupported api 'openai-responses'")
    );
    assert_eq!(
        start_error(&model("local", " Google-Vertex "), &Value::Null).as_deref(),
        Some("unsupported api 'google-vertex'")
    );
    let mut m = model("local", "openai-completions");
    m["reasoning"] = json!("extreme");
    assert_eq!(
        start_error(&m, &Value::Null).as_deref(),
        Some("invalid reasoning effort 'extreme' (expected one of minimal, low, medium, high, xhigh)")
    );
    m["reasoning"] = json!("off");
    assert_eq!(start_error(&m, &Value::Null), None);
    let mut m = model("local", "openai-completions");
    m["base_url"] = json!("llm.example/v1");
    assert_eq!(
        start_error(&m, &Value::Null).as_deref(),
        Some("invalid base_url 'llm.example/v1': relative URL without a base")
    );
    m["base_url"] = json!("ws://llm.example/v1");
    assert_eq!(
        start_error(&m, &Value::Null).as_deref(),
        Some("invalid base_url 'ws://llm.example/v1': expected an http(s) URL")
    );
}

#[test]
fn invalid_headers_are_start_errors_that_never_show_the_value() {
    let mut m = model("local", "openai-completions");
    m["headers"] = json!({"Bad Name": "v"});
    assert_eq!(
        start_error(&m, &Value::Null).as_deref(),
        Some("invalid header name 'Bad Name'")
    );
    let o = json!({"headers": {"X-Secret": "sk-live\nInjected: 1"}});
    let err = start_error(&model("local", "openai-completions"), &o).unwrap();
    assert_eq!(err, "invalid value for header 'X-Secret'");
    let o = json!({"api_key": "sk-bad\r\nkey"});
    assert_eq!(
        start_error(&model("local", "openai-completions"), &o).as_deref(),
        Some("invalid value for header 'Authorization'")
    );
}

#[test]
fn input_errors_win_over_start_errors() {
    let m = model("local", "no-such-api");
    let bad_ctx = ctx(json!([{"role": "robot"}]));
    assert_eq!(
        input_error(&m, &bad_ctx, &Value::Null),
        "invalid context: messages[0]: unsupported role 'robot'"
    );
}
