//! The transport's chunk state machine: built for one request, and the warnings it collected
//! logged once when the stream is over.

use super::log;
use crate::state::{ChunkProcessor, ProcessorConfig};
use crate::types::RequestPlan;

/// Tolerated irregularities are logged once per stream (docs/wire.md#chunks, R5).
pub fn log_diagnostics(machine: &ChunkProcessor) {
    let diag = machine.diagnostics();
    let who = format!(
        "{} stream ({})",
        machine.message().provider,
        machine.message().model
    );
    if diag.oddities > 0 {
        log::warn(format!(
            "{who}: ignored {} malformed optional field(s); first: {}",
            diag.oddities,
            diag.first_oddity.as_deref().unwrap_or("?")
        ));
    }
    if let Some(reason) = &diag.unknown_finish_reason {
        log::warn(format!(
            "{who}: unknown finish_reason {reason:?} read as \"stop\""
        ));
    }
    if diag.split_events > 0 {
        log::warn(format!(
            "{who}: {} SSE event(s) lacked their blank line and were split by line",
            diag.split_events
        ));
    }
    if diag.invalid_tool_arguments > 0 {
        log::warn(format!(
            "{who}: {} tool call(s) had arguments that are not a JSON object",
            diag.invalid_tool_arguments
        ));
    }
}

/// The state machine for one request of `plan`, started at `started` (epoch ms).
pub fn new_machine(plan: &RequestPlan, started: i64) -> ChunkProcessor {
    ChunkProcessor::new(ProcessorConfig {
        api: plan.api,
        provider: plan.provider.clone(),
        model: plan.model_id.clone(),
        timestamp: started,
        multi_choice: plan.multi_choice,
        context_window: plan.context_window,
        api_key: plan.api_key.clone(),
    })
}
