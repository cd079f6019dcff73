//! `Notifier`: the fd an asyncio loop watches for every stream attached to it (docs/design.md).

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::transport::queue::NotifierCore;

/// One per asyncio event loop: `fileno()` is readable while an attached handle has undrained
/// events (`wait()` returns then, for loops that cannot watch it); `take_ready()` returns their
/// tokens (each once) and clears the fd.
#[pyclass(frozen, module = "tinyagent._alchemy")]
pub struct Notifier {
    pub(crate) core: Arc<NotifierCore>,
}

#[pymethods]
impl Notifier {
    #[new]
    fn new() -> PyResult<Self> {
        let core = NotifierCore::new().map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(Notifier { core })
    }

    fn fileno(&self) -> i32 {
        self.core.fileno()
    }

    fn take_ready(&self) -> Vec<u64> {
        self.core.take_ready()
    }

    /// Block (GIL released) until a token is ready or `timeout` seconds pass; true if one is. For
    /// a loop that cannot watch `fileno()` (no `add_reader`, or no fd: -1 off Unix).
    fn wait(&self, py: Python<'_>, timeout: f64) -> bool {
        let core = self.core.clone();
        let timeout = Duration::try_from_secs_f64(timeout).unwrap_or(Duration::ZERO);
        py.detach(move || core.wait(timeout))
    }

    fn __repr__(&self) -> String {
        format!("<tinyagent._alchemy.Notifier fd={}>", self.core.fileno())
    }
}
