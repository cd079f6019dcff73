//! Validation of the `context` dict (docs/architecture.md#core-surface) into borrowed, typed
//! messages.
//!
//! Nothing is copied here: the 1 MB tool-argument histories the core must handle are only read.
//! History metadata (`api`, `provider`, `model`, `usage`, `timestamp`, signatures) is never
//! looked at, so a message produced by any provider is accepted.

use serde_json::Value;

use super::input::{field, opt_str, Obj};
use crate::types::InputError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UserPart<'a> {
    Text {
        text: &'a str,
        /// The block's `cache_control` object, forwarded as is when honoured
        /// (docs/wire.md#cache-markers).
        marker: Option<&'a Value>,
    },
    Image {
        url: &'a str,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCallInput<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub arguments: Option<&'a Obj>,
    /// `partial_json` was kept: the arguments never parsed, and the call goes out with `"{}"`
    /// whatever best-effort `arguments` it carries (docs/wire.md#messages).
    pub unparsed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AssistantBlock<'a> {
    Text(&'a str),
    Thinking(&'a str),
    ToolCall(ToolCallInput<'a>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message<'a> {
    User(Vec<UserPart<'a>>),
    Assistant {
        blocks: Vec<AssistantBlock<'a>>,
        /// `stop_reason` is `error`/`aborted`: only text survives (docs/wire.md#messages).
        failed: bool,
    },
    ToolResult {
        call_id: Option<&'a str>,
        tool_name: Option<&'a str>,
        parts: Vec<UserPart<'a>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolInput<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub parameters: Option<&'a Obj>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContextInput<'a> {
    pub system_prompt: &'a str,
    pub messages: Vec<Message<'a>>,
    pub tools: Vec<ToolInput<'a>>,
}

/// Which image URLs the selected API can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageSupport {
    /// http(s) and `data:` URLs (the OpenAI-compatible wire).
    Urls,
    /// Only `data:` URLs: alchemy-llm's `ImageContent` holds bytes, with no URL form.
    DataOnly,
}

pub(crate) fn parse_context(
    context: &Value,
    images: ImageSupport,
) -> Result<ContextInput<'_>, InputError> {
    let Value::Object(obj) = context else {
        return Err(InputError::Context("context must be a dict".to_string()));
    };
    parse_context_obj(obj, images).map_err(InputError::Context)
}

fn parse_context_obj(obj: &Obj, images: ImageSupport) -> Result<ContextInput<'_>, String> {
    let system_prompt = opt_str(obj, "system_prompt")?.unwrap_or("");
    let messages = match field(obj, "messages") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, m)| parse_message(m, images).map_err(|e| format!("messages[{i}]{e}")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("'messages' must be a list".to_string()),
    };
    let tools = match field(obj, "tools") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(k, t)| parse_tool(t).map_err(|e| format!("tools[{k}]: {e}")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("'tools' must be a list or null".to_string()),
    };
    Ok(ContextInput {
        system_prompt,
        messages,
        tools,
    })
}

fn parse_tool(tool: &Value) -> Result<ToolInput<'_>, String> {
    let Value::Object(obj) = tool else {
        return Err("a tool must be a dict".to_string());
    };
    let name = opt_str(obj, "name")?.ok_or("'name' must be a string")?;
    let parameters = match field(obj, "parameters") {
        None => None,
        Some(Value::Object(p)) => Some(p),
        Some(_) => return Err("'parameters' must be a dict".to_string()),
    };
    Ok(ToolInput {
        name,
        description: opt_str(obj, "description")?,
        parameters,
    })
}

/// Errors start with the suffix of the message path (`: ...` or `.content[j]: ...`).
fn parse_message(message: &Value, images: ImageSupport) -> Result<Message<'_>, String> {
    let Value::Object(obj) = message else {
        return Err(": a message must be a dict".to_string());
    };
    let role = match field(obj, "role") {
        Some(Value::String(r)) => r.as_str(),
        _ => return Err(": 'role' must be a string".to_string()),
    };
    let blocks: &[Value] = match field(obj, "content") {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(_) => return Err(": 'content' must be a list".to_string()),
    };
    let at = |j: usize, e: String| format!(".content[{j}]: {e}");
    match role {
        "user" => Ok(Message::User(parse_user_parts(blocks, images, at)?)),
        "tool_result" => {
            let call_id = opt_str(obj, "tool_call_id").map_err(|e| format!(": {e}"))?;
            let tool_name = opt_str(obj, "tool_name").map_err(|e| format!(": {e}"))?;
            Ok(Message::ToolResult {
                call_id,
                tool_name,
                parts: parse_user_parts(blocks, images, at)?,
            })
        }
        "assistant" => {
            let failed = matches!(
                field(obj, "stop_reason").and_then(Value::as_str),
                Some("error" | "aborted")
            );
            let mut out = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                if let Some(b) = parse_assistant_block(block, failed).map_err(|e| at(j, e))? {
                    out.push(b);
                }
            }
            Ok(Message::Assistant {
                blocks: out,
                failed,
            })
        }
        other => Err(format!(": unsupported role '{other}'")),
    }
}

/// `(type, object)` of a content block, `None` for a `null` entry (skipped).
fn block_kind(block: &Value) -> Result<Option<(&str, &Obj)>, String> {
    match block {
        Value::Null => Ok(None),
        Value::Object(obj) => match field(obj, "type") {
            Some(Value::String(t)) => Ok(Some((t.as_str(), obj))),
            _ => Err("'type' must be a string".to_string()),
        },
        _ => Err("a content block must be a dict or null".to_string()),
    }
}

fn text_of(obj: &Obj) -> Result<&str, String> {
    Ok(opt_str(obj, "text")?.unwrap_or(""))
}

fn parse_user_parts(
    blocks: &[Value],
    images: ImageSupport,
    at: impl Fn(usize, String) -> String,
) -> Result<Vec<UserPart<'_>>, String> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let Some((kind, obj)) = block_kind(block).map_err(|e| at(j, e))? else {
            continue;
        };
        let part = match kind {
            "text" => {
                let marker = match field(obj, "cache_control") {
                    // `CacheControl()` with no type dumps as `{}`: not a breakpoint.
                    None => None,
                    Some(Value::Object(m)) if m.is_empty() => None,
                    Some(m @ Value::Object(_)) => Some(m),
                    Some(_) => return Err(at(j, "'cache_control' must be a dict".to_string())),
                };
                UserPart::Text {
                    text: text_of(obj).map_err(|e| at(j, e))?,
                    marker,
                }
            }
            "image" => UserPart::Image {
                url: image_url(obj, images).map_err(|e| at(j, e))?,
            },
            other => {
                return Err(at(
                    j,
                    format!("unsupported block type '{other}' (expected 'text' or 'image')"),
                ))
            }
        };
        parts.push(part);
    }
    Ok(parts)
}

/// The same checks, with the same reasons, as the Python boundary (`alchemy_provider`), which
/// normally catches these first.
fn image_url(obj: &Obj, images: ImageSupport) -> Result<&str, String> {
    opt_str(obj, "mime_type")?;
    let url = opt_str(obj, "url")?
        .filter(|u| !u.trim().is_empty())
        .ok_or("image block has no URL")?;
    let scheme_end = url.find(':').unwrap_or(0);
    let scheme = &url[..scheme_end];
    if scheme.eq_ignore_ascii_case("data") {
        check_data_url(url)?;
        return Ok(url);
    }
    let after = &url[scheme_end + 1..];
    let has_host = after
        .strip_prefix("//")
        .is_some_and(|rest| !rest.starts_with(['/', '?', '#']) && !rest.is_empty());
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) || !has_host {
        return Err("image URL must be an http(s) URL or a data:<mime>;base64,... URL".to_string());
    }
    if images == ImageSupport::DataOnly {
        return Err(
            "the anthropic-messages API cannot carry image URLs; use a data: URL".to_string(),
        );
    }
    Ok(url)
}

/// `data:<mime>[;param...];base64,<payload>` with an `image/` mime and strict base64.
fn check_data_url(url: &str) -> Result<(), String> {
    let malformed = || "malformed data URL: expected data:<mime>;base64,<data>".to_string();
    let (header, payload) = url[5..].split_once(',').ok_or_else(malformed)?;
    let params = header.strip_suffix(";base64").ok_or_else(malformed)?;
    let mime = params.split(';').next().unwrap_or("");
    if mime.is_empty() {
        return Err(malformed());
    }
    let mime = mime.trim().to_lowercase();
    if !mime.starts_with("image/") {
        return Err(format!("data URL is not an image: {mime}"));
    }
    if payload.is_empty() {
        return Err("data URL has no image data".to_string());
    }
    if !is_strict_base64(payload.as_bytes()) {
        return Err("data URL payload is not valid base64".to_string());
    }
    Ok(())
}

/// Alphabet, padding and length check without decoding (the payload can be megabytes).
fn is_strict_base64(data: &[u8]) -> bool {
    let body = data
        .strip_suffix(b"==")
        .or_else(|| data.strip_suffix(b"="))
        .unwrap_or(data);
    data.len() % 4 == 0
        && body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn parse_assistant_block(
    block: &Value,
    failed: bool,
) -> Result<Option<AssistantBlock<'_>>, String> {
    let Some((kind, obj)) = block_kind(block)? else {
        return Ok(None);
    };
    match kind {
        "text" => Ok(Some(AssistantBlock::Text(text_of(obj)?))),
        // A failed turn keeps only its text (docs/wire.md#messages), so whatever else it holds is
        // never read: a half-streamed block must not make every later request invalid
        // (docs/architecture.md#differences #14).
        _ if failed => Ok(None),
        "thinking" => Ok(Some(AssistantBlock::Thinking(
            opt_str(obj, "thinking")?.unwrap_or(""),
        ))),
        "tool_call" => {
            let id = opt_str(obj, "id")?.ok_or("tool_call 'id' must be a string")?;
            let name = opt_str(obj, "name")?.ok_or("tool_call 'name' must be a string")?;
            let arguments = match field(obj, "arguments") {
                None => None,
                Some(Value::Object(a)) => Some(a),
                Some(_) => return Err("tool_call 'arguments' must be a dict".to_string()),
            };
            Ok(Some(AssistantBlock::ToolCall(ToolCallInput {
                id,
                name,
                arguments,
                unparsed: field(obj, "partial_json").is_some(),
            })))
        }
        "image" => Err("image blocks are not allowed in assistant messages".to_string()),
        other => Err(format!(
            "unsupported block type '{other}' (expected 'text', 'thinking' or 'tool_call')"
        )),
    }
}
