//! The process-wide tokio runtime and the shared HTTP clients (R12), with the proxy rules of
//! docs/wire.md#proxies (environment honoured, loopback never proxied: R13).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::Runtime;

/// One worker: it only moves bytes and parses JSON (everything else runs in Python), and with a
/// second one every readable socket could also wake the idle sibling: at 1,000 paced streams a
/// second worker cost ~12 % more I/O CPU, most of it in the kernel (bench/README.md, batch runs).
const WORKER_THREADS: usize = 1;

/// Idle keep-alive connections older than this are closed by the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Destinations that never go through a proxy, whatever the environment says.
const LOOPBACK: &str = "127.0.0.0/8,::1,localhost";

/// The runtime and clients of this process.
struct Shared {
    pid: u32,
    runtime: &'static Runtime,
    clients: HashMap<ClientKey, reqwest::Client>,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// Run `f` on this process's shared state, creating it on first use. A child made by `fork()`
/// (multiprocessing's default on Linux) inherits the parent's runtime without its threads: that
/// runtime and its clients must be neither used (streams would hang) nor dropped (it would
/// wait for threads that do not exist), so the child leaks them and starts its own.
fn with_shared<T>(f: impl FnOnce(&mut Shared) -> T) -> T {
    let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if guard.as_ref().is_none_or(|shared| shared.pid != pid) {
        if let Some(inherited) = guard.take() {
            std::mem::forget(inherited.clients);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("tinyagent-io")
            .enable_all()
            .build()
            .expect("tinyagent: cannot start the I/O runtime");
        *guard = Some(Shared {
            pid,
            runtime: Box::leak(Box::new(runtime)),
            clients: HashMap::new(),
        });
    }
    f(guard.as_mut().expect("initialised above"))
}

/// The shared multi-thread runtime of this process (R12).
pub fn runtime() -> &'static Runtime {
    with_shared(|shared| shared.runtime)
}

/// The proxy environment plus the connect timeout: everything a client is built from. The
/// connect timeout is a client setting in reqwest, so each distinct value gets its own client
/// (in practice one: the default or the model's value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    http: Option<String>,
    https: Option<String>,
    all: Option<String>,
    no_proxy: Option<String>,
    connect_timeout_ms: u128,
}

fn env_var(upper: &str) -> Option<String> {
    let lower = upper.to_ascii_lowercase();
    std::env::var(upper)
        .ok()
        .or_else(|| std::env::var(lower).ok())
        .filter(|v| !v.trim().is_empty())
}

impl ClientKey {
    fn from_env(connect_timeout: Duration) -> Self {
        ClientKey {
            http: env_var("HTTP_PROXY"),
            https: env_var("HTTPS_PROXY"),
            all: env_var("ALL_PROXY"),
            no_proxy: env_var("NO_PROXY"),
            connect_timeout_ms: connect_timeout.as_millis(),
        }
    }

    fn build(&self, connect_timeout: Duration) -> Result<reqwest::Client, String> {
        let no_proxy = match &self.no_proxy {
            Some(list) => format!("{list},{LOOPBACK}"),
            None => LOOPBACK.to_string(),
        };
        let exempt = || reqwest::NoProxy::from_string(&no_proxy);
        // Setting any proxy (or `no_proxy()`) turns reqwest's own environment lookup off, so
        // the loopback exemption below cannot be bypassed by it.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::custom(follow_method_preserving))
            .connect_timeout(connect_timeout);
        let proxies = [
            ("HTTP_PROXY", &self.http),
            ("HTTPS_PROXY", &self.https),
            ("ALL_PROXY", &self.all),
        ];
        for (name, url) in proxies {
            if let Some(url) = url {
                let proxy = match name {
                    "HTTP_PROXY" => reqwest::Proxy::http(url.as_str()),
                    "HTTPS_PROXY" => reqwest::Proxy::https(url.as_str()),
                    _ => reqwest::Proxy::all(url.as_str()),
                }
                .map_err(|e| format!("invalid proxy URL in {name}: {e}"))?
                .no_proxy(exempt());
                builder = builder.proxy(proxy);
            }
        }
        builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }
}

/// Only 307/308 keep the method and body of a POST; a 301/302/303 would silently turn the
/// request into a GET, so it is reported as the HTTP status it is instead.
fn follow_method_preserving(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    const MAX_REDIRECTS: usize = 5;
    if matches!(attempt.status().as_u16(), 307 | 308) && attempt.previous().len() < MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// The shared client for the current proxy environment and this connect timeout.
pub fn shared_client(connect_timeout: Duration) -> Result<reqwest::Client, String> {
    let key = ClientKey::from_env(connect_timeout);
    with_shared(|shared| {
        if let Some(client) = shared.clients.get(&key) {
            return Ok(client.clone());
        }
        let client = key.build(connect_timeout)?;
        shared.clients.insert(key, client.clone());
        Ok(client)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_per_configuration() {
        let a = ClientKey::from_env(Duration::from_secs(10));
        let b = ClientKey::from_env(Duration::from_secs(10));
        let c = ClientKey::from_env(Duration::from_millis(500));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn invalid_proxy_url_is_reported() {
        let key = ClientKey {
            http: Some("http://exa mple:1".into()),
            https: None,
            all: None,
            no_proxy: None,
            connect_timeout_ms: 1000,
        };
        let err = key.build(Duration::from_secs(1)).unwrap_err();
        assert!(err.starts_with("invalid proxy URL in HTTP_PROXY"), "{err}");
    }
}
