//! Prompt-cache markers (docs/wire.md#cache-markers, docs/architecture.md#caching).

use serde_json::{json, Value};

use super::*;

const EPHEMERAL: &str = r#"{"type":"ephemeral"}"#;

fn marked(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text,
                                        "cache_control": {"type": "ephemeral"}}]})
}

fn marked_part(text: &str) -> Value {
    json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}})
}

fn openrouter() -> Value {
    model("openrouter", "")
}

#[test]
fn a_marked_user_message_marks_the_system_prompt_too() {
    let ttl = json!({"role": "user", "content": [{"type": "text", "text": "Summarise.",
                     "cache_control": {"type": "ephemeral", "ttl": "1h"}}]});
    let c = json!({"system_prompt": "You are terse.", "messages": [ttl]});
    assert_eq!(
        messages_of(&openrouter(), &c),
        json!([
            {"role": "system", "content": [{"type": "text", "text": "You are terse.",
                                            "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
            {"role": "user", "content": [{"type": "text", "text": "Summarise.",
                                          "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
        ])
    );
}

#[test]
fn the_marker_sits_on_the_last_text_part() {
    let m = json!({"role": "user", "content": [
        {"type": "text", "text": "first", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "second"}, {"type": "text", "text": ""},
        {"type": "image", "url": "https://img.example/x.png"}]});
    assert_eq!(
        messages_of(&openrouter(), &ctx(json!([m]))),
        json!([{"role": "user", "content": [
            {"type": "text", "text": "first"},
            marked_part("second"),
            {"type": "image_url", "image_url": {"url": "https://img.example/x.png"}}]}])
    );
}

#[test]
fn markers_outside_user_text_are_stripped_and_trigger_nothing() {
    let c = json!({"system_prompt": "S", "messages": [
        user("q"),
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
            {"type": "tool_call", "id": "c", "name": "f", "arguments": {}}]},
        {"role": "tool_result", "tool_call_id": "c", "content": [
            {"type": "text", "text": "r", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "text", "text": "", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "text", "text": "u", "cache_control": {}}]},
    ]});
    let body = String::from_utf8(plan(&openrouter(), &c, &with_key()).body).unwrap();
    assert!(!body.contains("cache_control"), "{body}");
    assert_eq!(
        messages_of(&openrouter(), &c)[0],
        json!({"role": "system", "content": "S"})
    );
}

#[test]
fn the_budget_keeps_the_system_prompt_and_the_three_most_recent() {
    let c = json!({"system_prompt": "S", "messages": [
        marked("m1"), marked("m2"), user("plain"), marked("m3"), marked("m4"), marked("m5")]});
    assert_eq!(
        messages_of(&openrouter(), &c),
        json!([
            {"role": "system", "content": [marked_part("S")]},
            {"role": "user", "content": "m1"},
            {"role": "user", "content": "m2"},
            {"role": "user", "content": "plain"},
            {"role": "user", "content": [marked_part("m3")]},
            {"role": "user", "content": [marked_part("m4")]},
            {"role": "user", "content": [marked_part("m5")]},
        ])
    );
    let body = String::from_utf8(plan(&openrouter(), &c, &with_key()).body).unwrap();
    assert_eq!(body.matches(EPHEMERAL).count(), 4);
}

#[test]
fn without_a_system_prompt_four_user_markers_fit() {
    let c = ctx(json!([
        marked("m1"),
        marked("m2"),
        marked("m3"),
        marked("m4"),
        marked("m5")
    ]));
    let messages = messages_of(&openrouter(), &c);
    assert_eq!(messages[0], json!({"role": "user", "content": "m1"}));
    for k in 1..5 {
        assert_eq!(
            messages[k]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
    }
}

#[test]
fn endpoints_that_ignore_markers_get_none_and_plain_strings() {
    let c = json!({"system_prompt": "S", "messages": [marked("m1"),
        {"role": "user", "content": [marked_part("a"), {"type": "text", "text": "b"}]}]});
    let expected = json!([
        {"role": "system", "content": "S"},
        {"role": "user", "content": "m1"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]);
    for m in [
        model("local", ""),
        model("openai", ""),
        model("minimax", ""),
    ] {
        assert_eq!(messages_of(&m, &c), expected, "{m}");
    }
    let mut opted_out = openrouter();
    opted_out["compat"] = json!({"supports_cache_control": false});
    assert_eq!(messages_of(&opted_out, &c), expected);
}

#[test]
fn compat_turns_markers_on_for_a_custom_endpoint() {
    let mut m = model("local", "");
    m["compat"] = json!({"supports_cache_control": true});
    let c = json!({"system_prompt": "S", "messages": [marked("m1")]});
    assert_eq!(
        messages_of(&m, &c),
        json!([{"role": "system", "content": [marked_part("S")]},
               {"role": "user", "content": [marked_part("m1")]}])
    );
}
