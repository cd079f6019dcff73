//! History → wire messages (docs/wire.md#messages, docs/wire.md#minimax).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

fn call(id: &str, name: &str, args: Value) -> Value {
    json!({"type": "tool_call", "id": id, "name": name, "arguments": args})
}

fn assistant(content: Value) -> Value {
    json!({"role": "assistant", "content": content, "stop_reason": "tool_calls",
           "api": "openai-completions", "provider": "x", "model": "y", "usage": {}})
}

fn result(id: &str, content: Value) -> Value {
    json!({"role": "tool_result", "tool_call_id": id, "tool_name": "read", "content": content,
           "details": {}, "is_error": false})
}

fn local() -> Value {
    model("local", "openai-completions")
}

#[test]
fn system_prompt_and_plain_user_text() {
    let c = json!({"system_prompt": "Be terse.", "messages": [user("hi")]});
    assert_eq!(
        messages_of(&local(), &c),
        json!([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}])
    );
    let empty = json!({"system_prompt": "", "messages": [user("hi")]});
    assert_eq!(
        messages_of(&local(), &empty),
        json!([{"role": "user", "content": "hi"}])
    );
}

#[test]
fn the_developer_role_needs_reasoning_and_an_endpoint_that_has_it() {
    let c = json!({"system_prompt": "S", "messages": []});
    let role = |provider: &str, reasoning: Value, compat: Value| {
        let mut m = model(provider, "");
        m["reasoning"] = reasoning;
        m["compat"] = compat;
        messages_of(&m, &c)[0]["role"].as_str().unwrap().to_string()
    };
    assert_eq!(role("openai", json!(true), Value::Null), "developer");
    assert_eq!(role("openai", json!("high"), Value::Null), "developer");
    assert_eq!(role("openai", json!(false), Value::Null), "system");
    assert_eq!(role("openrouter", json!(true), Value::Null), "system");
    assert_eq!(
        role(
            "local",
            json!("low"),
            json!({"supports_developer_role": true})
        ),
        "developer"
    );
    assert_eq!(
        role(
            "openai",
            json!(true),
            json!({"supports_developer_role": false})
        ),
        "system"
    );
}

#[test]
fn user_content_parts_and_images() {
    let c = ctx(json!([
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"}, {"type": "text", "text": ""}, null,
            {"type": "image", "url": "https://img.example/a.png", "mime_type": "image/png"},
            {"type": "image", "url": "data:image/jpeg;base64,/9j/4AAQ"}]},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "user", "content": []},
    ]));
    assert_eq!(
        messages_of(&local(), &c),
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "https://img.example/a.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": ""},
        ])
    );
}

#[test]
fn assistant_text_tool_calls_and_dropped_turns() {
    let c = ctx(json!([
        user("q"),
        assistant(
            json!([{"type": "thinking", "thinking": "hmm", "thinking_signature": "reasoning"},
                         {"type": "text", "text": "one", "text_signature": "s"}, null,
                         {"type": "text", "text": "two"}])
        ),
        user("q2"),
        assistant(json!([call("c1", "read", json!({"path": "a b", "n": 1})),
                         {"type": "tool_call", "id": "c2", "name": "ls", "arguments": {"pa": 1},
                          "partial_json": "{\"pa\": 1, \"q"}])),
        result(
            "c1",
            json!([{"type": "text", "text": "A"}, {"type": "text", "text": "B"}])
        ),
        result("c2", json!([])),
        assistant(
            json!([{"type": "thinking", "thinking": "only thoughts"}, {"type": "text", "text": ""}])
        ),
        user("q3"),
    ]));
    assert_eq!(
        messages_of(&local(), &c),
        json!([
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "one\ntwo"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "read", "arguments": "{\"path\":\"a b\",\"n\":1}"}},
                {"id": "c2", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "A\nB"},
            {"role": "tool", "tool_call_id": "c2", "content": "(no output)"},
            {"role": "user", "content": "q3"},
        ])
    );
}

#[test]
fn failed_assistant_turns_are_sanitized() {
    let c = ctx(json!([
        user("q"),
        {"role": "assistant", "stop_reason": "error", "error_message": "HTTP 500",
         "content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": "partial answer"},
                     call("c9", "read", json!({}))]},
        user("again"),
        {"role": "assistant", "stop_reason": "aborted",
         "content": [{"type": "thinking", "thinking": "t"}, call("c8", "read", json!({}))]},
        result("c8", json!([{"type": "text", "text": "late"}])),
        user("third"),
    ]));
    assert_eq!(
        messages_of(&local(), &c),
        json!([
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "partial answer"},
            {"role": "user", "content": "again"},
            {"role": "user", "content": "third"},
        ])
    );
    assert_eq!(
        warnings_of(&c),
        vec!["dropped tool result messages[4]: no preceding tool call has id 'c8'"]
    );
}

#[test]
fn orphan_calls_are_closed_and_tool_images_follow_the_run() {
    let c = ctx(json!([
        user("q"),
        assistant(json!([call("a", "shot", json!({})), call("b", "read", json!({})),
                         call("c", "grep", json!({}))])),
        result("b", json!([{"type": "text", "text": "B"},
                           {"type": "image", "url": "https://img.example/b.png"}])),
        {"role": "tool_result", "tool_call_id": "a", "content": [
            {"type": "image", "url": "data:image/png;base64,iVBO"}]},
        user("next"),
        assistant(json!([call("d", "read", json!({}))])),
    ]));
    assert_eq!(
        messages_of(&local(), &c),
        json!([
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "shot", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "read", "arguments": "{}"}},
                {"id": "c", "type": "function", "function": {"name": "grep", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "b", "content": "B"},
            {"role": "tool", "tool_call_id": "a", "content": "(no output)"},
            {"role": "tool", "tool_call_id": "c", "content": "No result: the tool call was not executed."},
            {"role": "user", "content": [
                {"type": "text", "text": "Images returned by tool read (b):"},
                {"type": "image_url", "image_url": {"url": "https://img.example/b.png"}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Images returned by tool shot (a):"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
            {"role": "user", "content": "next"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "d", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "d", "content": "No result: the tool call was not executed."},
        ])
    );
}

/// A turn whose results carry images: "b" with text, "a" with an image only, "c" text only.
fn tool_images_turn() -> Value {
    ctx(json!([
        user("q"),
        assistant(json!([call("a", "shot", json!({})), call("b", "read", json!({})),
                         call("c", "grep", json!({}))])),
        result("b", json!([{"type": "text", "text": "B1"},
                           {"type": "image", "url": "https://img.example/b.png"},
                           {"type": "text", "text": "B2"}])),
        {"role": "tool_result", "tool_call_id": "a", "tool_name": "shot", "content": [
            {"type": "image", "url": "data:image/png;base64,iVBO"},
            {"type": "image", "url": "https://img.example/a2.png"}]},
        result("c", json!([{"type": "text", "text": "C"}])),
        user("next"),
    ]))
}

#[test]
fn tool_result_images_follow_the_run_unless_the_endpoint_takes_them_inline() {
    let with = |provider: &str, compat: Value| {
        let mut m = model(provider, "");
        m["compat"] = compat;
        messages_of(&m, &tool_images_turn())
    };
    let follow_up = json!([
        {"role": "tool", "tool_call_id": "b", "content": "B1\nB2"},
        {"role": "tool", "tool_call_id": "a", "content": "(no output)"},
        {"role": "tool", "tool_call_id": "c", "content": "C"},
        {"role": "user", "content": [
            {"type": "text", "text": "Images returned by tool read (b):"},
            {"type": "image_url", "image_url": {"url": "https://img.example/b.png"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Images returned by tool shot (a):"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            {"type": "image_url", "image_url": {"url": "https://img.example/a2.png"}}]},
        {"role": "user", "content": "next"},
    ]);
    let tail = |messages: Value| Value::Array(messages.as_array().unwrap()[2..].to_vec());
    // Off by default for every provider, and when set to false.
    for provider in ["local", "openai", "openrouter", "minimax", "xai"] {
        assert_eq!(tail(with(provider, Value::Null)), follow_up, "{provider}");
    }
    assert_eq!(
        tail(with(
            "openrouter",
            json!({"supports_tool_result_images": false})
        )),
        follow_up
    );
    // On: one tool message per result, its text (or the placeholder) then its images.
    let inline = json!([
        {"role": "tool", "tool_call_id": "b", "content": [
            {"type": "text", "text": "B1\nB2"},
            {"type": "image_url", "image_url": {"url": "https://img.example/b.png"}}]},
        {"role": "tool", "tool_call_id": "a", "content": [
            {"type": "text", "text": "(no output)"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            {"type": "image_url", "image_url": {"url": "https://img.example/a2.png"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "C"},
        {"role": "user", "content": "next"},
    ]);
    for provider in ["local", "openrouter"] {
        assert_eq!(
            tail(with(provider, json!({"supports_tool_result_images": true}))),
            inline,
            "{provider}"
        );
    }
    let mut bad = local();
    bad["compat"] = json!({"supports_tool_result_images": "yes"});
    assert_eq!(
        plan_request(&bad, &tool_images_turn(), &Value::Null, 0)
            .expect_err("a string is not a bool")
            .to_string(),
        "invalid model: 'compat.supports_tool_result_images' must be a bool"
    );
}

#[test]
fn tool_results_without_an_open_call_are_dropped_with_a_warning() {
    let c = ctx(json!([
        user("q"),
        result("ghost", json!([{"type": "text", "text": "x"}])),
        assistant(json!([{"type": "text", "text": "calling"}, call("c1", "read", json!({}))])),
        result("c1", json!([{"type": "text", "text": "first"}])),
        result("c1", json!([{"type": "text", "text": "again"}])),
        {"role": "tool_result", "content": []},
    ]));
    assert_eq!(
        messages_of(&local(), &c),
        json!([
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "calling", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "first"},
        ])
    );
    assert_eq!(
        warnings_of(&c),
        vec![
            "dropped tool result messages[1]: no preceding tool call has id 'ghost'",
            "dropped tool result messages[4]: tool call 'c1' already has a result",
            "dropped tool result messages[5]: it has no tool_call_id",
        ]
    );
}

#[test]
fn minimax_replays_thinking_inside_the_content() {
    let c = ctx(json!([
        user("q"),
        assistant(json!([{"type": "thinking", "thinking": "plan"}, {"type": "text", "text": "answer"}])),
        user("q2"),
        assistant(json!([{"type": "thinking", "thinking": "use a tool"}, call("c", "read", json!({}))])),
        result("c", json!([{"type": "text", "text": "r"}])),
        {"role": "assistant", "stop_reason": "error",
         "content": [{"type": "thinking", "thinking": "lost"}, {"type": "text", "text": "cut"}]},
    ]));
    assert_eq!(
        messages_of(&model("minimax", ""), &c),
        json!([
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "<think>\nplan\n</think>\n\nanswer"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "<think>\nuse a tool\n</think>\n\n", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "r"},
            {"role": "assistant", "content": "cut"},
        ])
    );
}

#[test]
fn replacement_characters_are_scrubbed_from_outgoing_text() {
    let c = json!({"system_prompt": "sys\u{FFFD}", "messages": [user("a\u{FFFD}b"),
        assistant(json!([{"type": "text", "text": "\u{FFFD}ok"}]))]});
    assert_eq!(
        messages_of(&local(), &c),
        json!([{"role": "system", "content": "sys"}, {"role": "user", "content": "ab"},
               {"role": "assistant", "content": "ok"}])
    );
}

#[test]
fn a_megabyte_tool_argument_history_is_planned_quickly() {
    let big = "x".repeat(1 << 20);
    let mut messages = vec![user("start")];
    for k in 0..2_000 {
        let id = format!("c{k}");
        messages.push(assistant(json!([call(
            &id,
            "write",
            json!({"text": if k == 0 { &big } else { "y" }})
        )])));
        messages.push(result(&id, json!([{"type": "text", "text": "ok"}])));
    }
    let c = ctx(Value::Array(messages));
    let started = Instant::now();
    let p = plan(&local(), &c, &Value::Null);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(p.body.len() > big.len());
    let body = body_of(&p);
    assert_eq!(body["messages"].as_array().unwrap().len(), 4_001);
    let args = body["messages"][1]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(args.len(), big.len() + "{\"text\":\"\"}".len());
}
