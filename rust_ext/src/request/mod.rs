//! The request builder: the three input dicts (as `serde_json::Value`) → a [`RequestPlan`]
//! (docs/wire.md#request, docs/architecture.md#core-surface). Pure Rust, no network, no Python.
//!
//! Malformed input is an [`InputError`] (raised synchronously as `ValueError`). Input that is
//! well formed but cannot start a stream — an unsupported api, a missing key, a bad reasoning
//! effort, an invalid header or URL — goes into `plan.start_error` instead
//! (docs/wire.md#request).

mod body;
mod context;
mod input;
mod messages;
#[cfg(test)]
mod tests;
mod url;

use std::str::FromStr;

use alchemy_llm::types::{Api, KnownProvider, Provider};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use self::body::{build_body, Endpoint, Reasoning};
use self::context::{parse_context, ImageSupport};
use self::input::{parse_model, parse_options, ReasoningInput};
pub use self::url::is_local_url;
use self::url::{chat_completions_url, check_url};
use crate::types::{ApiKind, InputError, RequestPlan};

const EFFORTS: [&str; 5] = ["minimal", "low", "medium", "high", "xhigh"];
const USER_AGENT: &str = concat!("tinyagent/", env!("CARGO_PKG_VERSION"));

/// Builds the plan for one request. Warnings (dropped tool results) are discarded; the binding
/// should call [`plan_request_with_warnings`] and log them.
pub fn plan_request(
    model: &Value,
    context: &Value,
    options: &Value,
    _now_ms: i64,
) -> Result<RequestPlan, InputError> {
    plan_request_with_warnings(model, context, options).map(|(plan, _)| plan)
}

/// [`plan_request`], plus the warnings to log under the `tinyagent` logger (docs/wire.md#messages:
/// a tool result whose id matches no open tool call is dropped with a warning).
pub fn plan_request_with_warnings(
    model: &Value,
    context: &Value,
    options: &Value,
) -> Result<(RequestPlan, Vec<String>), InputError> {
    let model_in = parse_model(model)?;
    let options_in = parse_options(options)?;
    let provider_lower = model_in.provider.to_lowercase();
    let api_name = normalize_api(model_in.api, &provider_lower);
    let api = api_kind(&api_name);
    let images = match api {
        Some(ApiKind::AnthropicMessages) => ImageSupport::DataOnly,
        _ => ImageSupport::Urls,
    };
    let context_in = parse_context(context, images)?;

    let api_key = options_in
        .api_key
        .map(str::to_owned)
        .or_else(|| env_api_key(&provider_lower));
    let reasoning = resolve_reasoning(model_in.reasoning);
    let headers = build_headers(
        api_key.as_deref(),
        &[&model_in.headers, &options_in.headers],
    );
    let start_error = match (api, &reasoning, &headers) {
        (None, _, _) => Some(format!("unsupported api '{api_name}'")),
        (Some(kind), _, _)
            if api_key.is_none() && key_required(kind, &provider_lower, model_in.base_url) =>
        {
            Some(format!(
                "No API key provided for provider: {}",
                model_in.provider
            ))
        }
        (Some(_), Err(e), _) | (Some(_), Ok(_), Err(e)) => Some(e.clone()),
        _ => check_url(model_in.base_url).err(),
    };
    let api = api.unwrap_or(ApiKind::OpenAiCompletions);

    let mut warnings = Vec::new();
    let mut body = Vec::new();
    let mut multi_choice = false;
    if start_error.is_none() && api != ApiKind::AnthropicMessages {
        let endpoint = Endpoint::resolve(api, &provider_lower, &model_in.compat);
        let built = build_body(
            &model_in,
            &context_in,
            &options_in,
            &endpoint,
            reasoning.clone().unwrap_or(Reasoning::Off),
        );
        body = built.bytes;
        multi_choice = built.multi_choice;
        warnings = built.warnings;
    }
    let plan = RequestPlan {
        api,
        provider: model_in.provider.clone(),
        model_id: model_in.id.to_string(),
        url: if start_error.is_none() && api != ApiKind::AnthropicMessages {
            chat_completions_url(model_in.base_url)
        } else {
            model_in.base_url.to_string()
        },
        headers: headers.unwrap_or_default(),
        body,
        api_key,
        timeouts: options_in.timeouts,
        max_retries: options_in.max_retries,
        multi_choice,
        context_window: model_in.context_window,
        start_error,
        raw_model: model.clone(),
        // The anthropic path converts the context itself; elsewhere the (possibly large) history
        // is not copied a second time.
        raw_context: if api == ApiKind::AnthropicMessages {
            context.clone()
        } else {
            Value::Null
        },
        raw_options: options.clone(),
    };
    Ok((plan, warnings))
}

/// `strip().lower()`, legacy aliases, and inference from the provider when empty
/// (docs/architecture.md#routing).
pub fn normalize_api(api: &str, provider_lower: &str) -> String {
    let api = api.trim().to_lowercase();
    match api.as_str() {
        "openai" | "openai-compatible" | "chat-completions" | "openrouter" => {
            "openai-completions".to_string()
        }
        "minimax" => "minimax-completions".to_string(),
        "" => match provider_lower {
            "minimax" | "minimax-cn" => "minimax-completions",
            "anthropic" | "kimi" => "anthropic-messages",
            _ => "openai-completions",
        }
        .to_string(),
        _ => api,
    }
}

/// The APIs this core dispatches; alchemy-llm knows more (`openai-responses`, …) than it has.
fn api_kind(api: &str) -> Option<ApiKind> {
    match Api::from_str(api).ok()? {
        Api::OpenAICompletions => Some(ApiKind::OpenAiCompletions),
        Api::MinimaxCompletions => Some(ApiKind::MiniMaxCompletions),
        Api::AnthropicMessages => Some(ApiKind::AnthropicMessages),
        _ => None,
    }
}

/// The providers of docs/architecture.md#api-keys that have an environment key: alchemy-llm's known
/// providers except Bedrock and Vertex (credential files, not keys), plus `chutes`.
fn contract_provider(provider_lower: &str) -> Option<Provider> {
    match KnownProvider::from_str(provider_lower) {
        Ok(KnownProvider::AmazonBedrock | KnownProvider::GoogleVertex) => None,
        Ok(known) => Some(Provider::Known(known)),
        Err(_) => None,
    }
}

fn is_known_provider(provider_lower: &str) -> bool {
    provider_lower == "chutes" || contract_provider(provider_lower).is_some()
}

/// Whether a stream on this route refuses to start without a key (the one owner of the rule; the
/// notebook's pre-flight check asks it through `api_key_required`). A known provider needs its
/// key, except on the owned transport toward this machine or a private network
/// ([`is_local_url`]): local servers rarely check one, and then no `Authorization` header is sent.
/// The anthropic path keeps the rule, since alchemy-llm's transport refuses to start keyless.
pub fn key_required(api: ApiKind, provider_lower: &str, base_url: &str) -> bool {
    is_known_provider(provider_lower)
        && (api == ApiKind::AnthropicMessages || !is_local_url(base_url))
}

/// [`key_required`] from the raw `provider`, `api` and `base_url` of a model dict, normalized as
/// the planner does; `false` for an api the core does not dispatch (that is the start error).
pub fn key_required_for(provider: &str, api: &str, base_url: &str) -> bool {
    let provider = provider.trim();
    let provider_lower = if provider.is_empty() {
        "openai".to_string()
    } else {
        provider.to_lowercase()
    };
    api_kind(&normalize_api(api, &provider_lower))
        .is_some_and(|kind| key_required(kind, &provider_lower, base_url.trim()))
}

/// The provider's environment key; an empty variable counts as unset.
pub fn env_api_key(provider_lower: &str) -> Option<String> {
    let key = if provider_lower == "chutes" {
        std::env::var("CHUTES_API_KEY").ok()
    } else {
        alchemy_llm::get_env_api_key(&contract_provider(provider_lower)?)
    };
    key.filter(|k| !k.is_empty())
}

fn resolve_reasoning(reasoning: ReasoningInput<'_>) -> Result<Reasoning, String> {
    match reasoning {
        ReasoningInput::Off => Ok(Reasoning::Off),
        ReasoningInput::On => Ok(Reasoning::On),
        ReasoningInput::Effort(raw) => {
            let effort = raw.trim().to_lowercase();
            // "off" is `ThinkingLevel.OFF`'s value: a caller passing the level through means off.
            if effort == "off" {
                return Ok(Reasoning::Off);
            }
            EFFORTS
                .iter()
                .find(|e| **e == effort)
                .map(|e| Reasoning::Effort(e))
                .ok_or_else(|| {
                    format!(
                        "invalid reasoning effort '{raw}' (expected one of {})",
                        EFFORTS.join(", ")
                    )
                })
        }
    }
}

/// Sets `name: value`, replacing an earlier header of the same name (any case) in its place.
fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) -> Result<(), String> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name '{}'", name.escape_debug()))?;
    // The value is never quoted: it may be a secret.
    HeaderValue::from_str(value).map_err(|_| format!("invalid value for header '{name}'"))?;
    match headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some(slot) => *slot = (name.to_string(), value.to_string()),
        None => headers.push((name.to_string(), value.to_string())),
    }
    Ok(())
}

/// The header list of docs/wire.md#headers, in order: defaults, `Authorization`, then each user
/// source.
fn build_headers(
    api_key: Option<&str>,
    sources: &[&Vec<(&str, &str)>],
) -> Result<Vec<(String, String)>, String> {
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Accept".to_string(), "text/event-stream".to_string()),
        ("User-Agent".to_string(), USER_AGENT.to_string()),
    ];
    if let Some(key) = api_key {
        set_header(&mut headers, "Authorization", &format!("Bearer {key}"))?;
    }
    for source in sources {
        for (name, value) in source.iter() {
            set_header(&mut headers, name, value)?;
        }
    }
    Ok(headers)
}
