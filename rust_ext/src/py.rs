//! The Python surface of `tinyagent._alchemy` (docs/architecture.md#core-surface) and the batch
//! interface of docs/design.md.
//!
//! Blocking calls wait with the GIL released, in slices of [`POLL`], and check for signals
//! between slices (R15): Ctrl-C cancels the stream and raises `KeyboardInterrupt`.

mod convert;
mod events;
mod notifier;
mod partial;
pub(crate) mod partial_json;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList};
use tokio_util::sync::CancellationToken;

use crate::transport::{self, log, queue::Queued, queue::StreamQueue};
use crate::types::{ApiKind, RequestPlan};
use convert::{input_dict, message_dict, MessageMeta};
pub use notifier::Notifier;
use partial::Partial;

/// Longest stretch a blocking call waits without checking for Ctrl-C (R15: ≤ 100 ms).
const POLL: Duration = Duration::from_millis(50);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Emit the log records queued by I/O threads on the `tinyagent._alchemy` logger.
fn flush_logs(py: Python<'_>) {
    let records = log::take();
    if records.is_empty() {
        return;
    }
    let Ok(logger) = py
        .import("logging")
        .and_then(|m| m.call_method1("getLogger", ("tinyagent._alchemy",)))
    else {
        return;
    };
    for (level, message) in records {
        // A failing handler must not break the stream; logging reports its own errors.
        let _ = logger.call_method1("log", (level.python_level(), message));
    }
}

struct Consumer {
    /// Events taken from the queue and not returned yet.
    pending: VecDeque<Queued>,
    /// The shared partial of `next_event()` (None for `collect`, which omits it).
    partial: Option<Partial>,
    with_partial: bool,
    /// The terminal event has been handed out.
    finished: bool,
    final_dict: Option<Py<PyDict>>,
}

/// A running stream. Dropping it cancels the stream.
#[pyclass(frozen, module = "tinyagent._alchemy")]
pub struct StreamHandle {
    /// `failed to start <api> stream: <reason>`, raised by every consuming call.
    start_error: Option<String>,
    api_key: Option<String>,
    queue: Arc<StreamQueue>,
    token: CancellationToken,
    meta: MessageMeta,
    consumer: Mutex<Consumer>,
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl StreamHandle {
    fn start(
        py: Python<'_>,
        model: &Bound<'_, PyAny>,
        context: &Bound<'_, PyAny>,
        options: &Bound<'_, PyAny>,
        with_partial: bool,
    ) -> PyResult<Self> {
        flush_logs(py);
        let model = input_dict(model, "model")?;
        let context = input_dict(context, "context")?;
        let options = input_dict(options, "options")?;
        let started = now_ms();
        let (plan, warnings) =
            crate::request::plan_request_with_warnings(&model, &context, &options)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        for warning in warnings {
            log::warn(warning);
        }
        flush_logs(py);
        let api_name = requested_api(&model, &plan);
        let queue = StreamQueue::new();
        let token = CancellationToken::new();
        let meta = MessageMeta {
            timestamp: started,
            api: plan.api.as_str(),
            provider: plan.provider.clone(),
            model: plan.model_id.clone(),
        };
        let api_key = plan.api_key.clone();
        let start_error = launch(plan, started, queue.clone(), token.clone())
            .err()
            .map(|reason| format!("failed to start {api_name} stream: {reason}"));
        Ok(StreamHandle {
            start_error,
            api_key,
            queue,
            token,
            meta,
            consumer: Mutex::new(Consumer {
                pending: VecDeque::new(),
                partial: None,
                with_partial,
                finished: false,
                final_dict: None,
            }),
        })
    }

    fn check_started(&self) -> PyResult<()> {
        match &self.start_error {
            Some(message) => Err(PyRuntimeError::new_err(message.clone())),
            None => Ok(()),
        }
    }

    fn lock<'a>(&'a self, py: Python<'_>) -> MutexGuard<'a, Consumer> {
        self.consumer
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Wait (GIL released) for one slice; on Ctrl-C cancel the stream and raise.
    fn wait_slice<T: Send>(&self, py: Python<'_>, wait: impl FnOnce() -> T + Send) -> PyResult<T> {
        let result = py.detach(wait);
        if let Err(err) = py.check_signals() {
            self.token.cancel();
            return Err(err);
        }
        flush_logs(py);
        Ok(result)
    }

    fn final_dict<'py>(&self, py: Python<'py>, c: &mut Consumer) -> PyResult<Bound<'py, PyDict>> {
        if let Some(d) = &c.final_dict {
            return Ok(d.bind(py).clone());
        }
        let message = self
            .queue
            .final_message()
            .ok_or_else(|| PyRuntimeError::new_err("stream ended without a final message"))?;
        let dict = message_dict(py, &message, self.api_key.as_deref())?;
        c.final_dict = Some(dict.clone().unbind());
        Ok(dict)
    }

    fn next_event_impl<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        flush_logs(py);
        self.check_started()?;
        loop {
            {
                let mut c = self.lock(py);
                if let Some(item) = c.pending.pop_front() {
                    let terminal = item.event.is_terminal();
                    let partial = c.partial.as_ref().map(|p| p.dict(py).clone());
                    let dict = events::event_dict(py, item, partial.as_ref(), || {
                        self.final_dict(py, &mut c)
                    })?;
                    if terminal {
                        c.finished = true;
                        c.pending.clear();
                    }
                    return Ok(Some(dict));
                }
                if c.finished {
                    return Ok(None);
                }
                self.queue.take_all(&mut c.pending);
                if !c.pending.is_empty() {
                    if c.with_partial {
                        let c = &mut *c;
                        let partial = match &mut c.partial {
                            Some(p) => p,
                            None => c.partial.insert(Partial::new(py, &self.meta)?),
                        };
                        for item in &c.pending {
                            partial.apply(py, &item.event, item.thinking_signature)?;
                        }
                        partial.refresh(py)?;
                    }
                    continue;
                }
            }
            let queue = self.queue.clone();
            self.wait_slice(py, move || queue.wait_for_event(POLL))?;
        }
    }

    fn result_impl<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        flush_logs(py);
        self.check_started()?;
        loop {
            if self.queue.final_message().is_some() {
                let mut c = self.lock(py);
                return self.final_dict(py, &mut c);
            }
            let queue = self.queue.clone();
            self.wait_slice(py, move || queue.wait_for_final(POLL))?;
        }
    }
}

/// The api named in start errors: the normalized request (an unsupported api has no `ApiKind`).
fn requested_api(model: &serde_json::Value, plan: &RequestPlan) -> String {
    let raw = model.get("api").and_then(|v| v.as_str()).unwrap_or("");
    let provider = plan.provider.trim().to_lowercase();
    let provider = if provider.is_empty() {
        "openai".to_string()
    } else {
        provider
    };
    let name = crate::request::normalize_api(raw, &provider);
    if name.is_empty() {
        plan.api.as_str().to_string()
    } else {
        name
    }
}

/// Start the request in the background, or return the start-error reason.
fn launch(
    plan: RequestPlan,
    started: i64,
    queue: Arc<StreamQueue>,
    token: CancellationToken,
) -> Result<(), String> {
    if let Some(reason) = &plan.start_error {
        return Err(reason.clone());
    }
    match plan.api {
        ApiKind::OpenAiCompletions | ApiKind::MiniMaxCompletions => {
            transport::spawn(plan, started, queue, token);
            Ok(())
        }
        ApiKind::AnthropicMessages => crate::anthropic::spawn(plan, started, queue, token),
    }
}

#[pymethods]
impl StreamHandle {
    /// The next event dict (GIL released while waiting); `None` after the terminal event.
    fn next_event<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.next_event_impl(py)
    }

    /// The final message dict; blocks (GIL released) until the stream has ended.
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.result_impl(py)
    }

    /// Stop the stream: closes the connection; a running stream ends with error/aborted.
    fn cancel(&self) {
        self.token.cancel();
    }

    /// Mark `token` ready on `notifier` whenever new events arrive (and now, if some wait).
    fn attach(&self, notifier: &Notifier, token: u64) {
        if self.start_error.is_some() {
            // Nothing will ever be pushed: wake the loop now so `drain()` raises the error.
            notifier.core.mark(token);
            return;
        }
        self.queue.attach(notifier.core.clone(), token);
    }

    /// Every event produced so far as `(type, content_index, a, b)` tuples; never blocks.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        flush_logs(py);
        self.check_started()?;
        let mut c = self.lock(py);
        let list = PyList::empty(py);
        if c.finished {
            return Ok(list);
        }
        self.queue.take_all(&mut c.pending);
        while let Some(item) = c.pending.pop_front() {
            let terminal = item.event.is_terminal();
            list.append(events::batch_tuple(py, item, &self.meta, || {
                self.final_dict(py, &mut c)
            })?)?;
            if terminal {
                c.finished = true;
                c.pending.clear();
            }
        }
        Ok(list)
    }

    /// True once the terminal event has been handed out.
    #[getter]
    fn finished(&self, py: Python<'_>) -> bool {
        self.lock(py).finished
    }

    /// From now on hand out only the events that open, retry or end the stream (`drain()` and
    /// `next_event()` alike): the tokens are never queued, so they wake nobody. For readers that
    /// want the final message only, such as batch rows (docs/batch.md#cpu).
    fn deliver_ends_only(&self) {
        self.queue.deliver_ends_only();
    }

    fn __repr__(&self) -> String {
        format!(
            "<tinyagent._alchemy.StreamHandle {} {}/{}>",
            self.meta.api, self.meta.provider, self.meta.model
        )
    }
}

/// Start a stream (any supported api, despite the name); returns at once.
#[pyfunction]
fn openai_completions_stream(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    context: &Bound<'_, PyAny>,
    options: &Bound<'_, PyAny>,
) -> PyResult<StreamHandle> {
    StreamHandle::start(py, model, context, options, true)
}

/// Run one stream to completion: `{"events": [...without partial...], "final_message": {...}}`.
#[pyfunction]
#[pyo3(signature = (model, context, options=None))]
fn collect_openai_completions<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    context: &Bound<'py, PyAny>,
    options: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let empty = PyDict::new(py).into_any();
    let handle = StreamHandle::start(py, model, context, options.unwrap_or(&empty), false)?;
    let events = PyList::empty(py);
    while let Some(event) = handle.next_event_impl(py)? {
        events.append(event)?;
    }
    let out = PyDict::new(py);
    out.set_item("events", events)?;
    out.set_item("final_message", handle.result_impl(py)?)?;
    Ok(out)
}

/// Whether a stream on this route would fail to start without a key ("No API key provided for
/// provider: <p>"): the core's rule, exposed so the notebook's pre-flight check cannot drift
/// from it.
#[pyfunction]
fn api_key_required(provider: &str, api: &str, base_url: &str) -> bool {
    crate::request::key_required_for(provider, api, base_url)
}

/// The api a model dict routes to: lowercased, legacy aliases mapped, a blank api inferred from
/// the provider. Exposed so Python's routing table can be checked against the core's.
#[pyfunction]
fn normalize_api(api: &str, provider: &str) -> String {
    crate::request::normalize_api(api, &provider.trim().to_lowercase())
}

/// Register the classes and functions on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StreamHandle>()?;
    m.add_class::<Notifier>()?;
    m.add_function(wrap_pyfunction!(openai_completions_stream, m)?)?;
    m.add_function(wrap_pyfunction!(collect_openai_completions, m)?)?;
    m.add_function(wrap_pyfunction!(api_key_required, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_api, m)?)?;
    Ok(())
}
