//! The endpoint URL (docs/wire.md#endpoint, docs/wire.md#keys): validation, the OpenAI-SDK-style
//! base, and whether the host is this machine or a private network (where a known provider's key
//! may be left unset).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

const CHAT_COMPLETIONS: &str = "/chat/completions";

/// The endpoint must be an absolute http(s) URL; caught here so the error names the field
/// instead of surfacing as a transport failure.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        Ok(_) => Err(format!("invalid base_url '{url}': expected an http(s) URL")),
        Err(e) => Err(format!("invalid base_url '{url}': {e}")),
    }
}

/// The chat-completions endpoint for `base_url`. Users copy the OpenAI SDK's `base_url`
/// (`https://api.groq.com/openai/v1`, `http://localhost:11434/v1/`), to which every
/// OpenAI-compatible server expects `/chat/completions` appended, so a path that does not already
/// end with it gets it; the query string (Azure's `?api-version=`) is kept. A URL that already
/// names the endpoint, with or without a trailing slash, is sent exactly as given.
pub(crate) fn chat_completions_url(base_url: &str) -> String {
    let Ok(mut url) = Url::parse(base_url) else {
        return base_url.to_string(); // not reached: check_url runs first
    };
    let path = url.path().trim_end_matches('/');
    if path.ends_with(CHAT_COMPLETIONS) {
        return base_url.to_string();
    }
    let full = format!("{path}{CHAT_COMPLETIONS}");
    url.set_path(&full);
    url.into()
}

/// True when `base_url`'s host is this machine or a private network: loopback (`127.0.0.0/8`,
/// `::1`, `localhost`, `*.localhost`), the unspecified address (`0.0.0.0`, `::`, which servers
/// print as their listen address and which connects to this machine), RFC 1918 (`10/8`,
/// `172.16/12`, `192.168/16`), IPv6 unique-local (`fc00::/7`), and mDNS names (`*.local`).
/// Such servers (vLLM, llama.cpp, Ollama on a workstation or LAN box) rarely check a key.
pub fn is_local_url(base_url: &str) -> bool {
    let Some(host) = Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    // An IPv6 host comes bracketed; a fully qualified name may end with a dot.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => is_local_v4(ip),
        Ok(IpAddr::V6(ip)) => is_local_v6(ip),
        Err(_) => {
            let name = host.trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local")
        }
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_private() || ip.is_unspecified()
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_local_v4(v4);
    }
    // fc00::/7 by hand: `Ipv6Addr::is_unique_local` needs Rust 1.84, above our rust-version.
    ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
}
