//! `tinyagent._alchemy`: the streaming core of tinyagent.

pub mod request;
pub mod sse;
pub mod state;
pub mod types;

pub mod anthropic;
mod py;
pub mod transport;

use pyo3::prelude::*;

#[pymodule]
fn _alchemy(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    py::register(m)?;
    // The best-effort arguments rule, for tinyagent._partial (docs/architecture.md#partial).
    m.add_function(wrap_pyfunction!(py::partial_json::partial_arguments, m)?)?;
    Ok(())
}
