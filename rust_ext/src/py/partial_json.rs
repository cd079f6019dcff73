//! `partial_arguments(text)`: the best-effort arguments of an unfinished tool call, for Python.
//!
//! The rule is `state::partial_arguments` (alchemy-llm's `parse_streaming_json`, `{}` above
//! 64 KiB), the one the `next_event()` partial applies. The package's own partial
//! (`tinyagent._partial.best_effort_arguments`) calls this function instead of parsing in
//! Python, so the two partials cannot disagree (docs/architecture.md#partial).

use super::convert::object_to_py;
use crate::state;
use pyo3::prelude::*;

/// The object an unfinished argument text stands for so far; `{}` when it stands for none.
#[pyfunction]
pub(crate) fn partial_arguments<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    object_to_py(py, &state::partial_arguments(text))
}
