//! The chunk state machine as the transport's [`ChunkSink`], and the warnings it collected.

use super::{log, ChunkSink};
use crate::sse::SseEvent;
use crate::state::{ChunkProcessor, Flow, ProcessorConfig};
use crate::types::{ErrorReason, Event, MessageState, RequestPlan};

impl ChunkSink for ChunkProcessor {
    fn start(&mut self, out: &mut Vec<Event>) {
        ChunkProcessor::start(self, out);
    }

    fn on_sse_event(&mut self, event: &SseEvent, out: &mut Vec<Event>) -> bool {
        ChunkProcessor::on_sse_event(self, event, out) == Flow::Finished
    }

    fn on_json_body(&mut self, body: &[u8], out: &mut Vec<Event>) {
        ChunkProcessor::on_json_body(self, body, out);
    }

    fn on_end_of_body(&mut self, out: &mut Vec<Event>) {
        ChunkProcessor::on_end_of_body(self, out);
    }

    fn fail(&mut self, reason: ErrorReason, message: String, out: &mut Vec<Event>) {
        ChunkProcessor::fail(self, reason, message, out);
    }

    fn message(&self) -> &MessageState {
        ChunkProcessor::message(self)
    }

    /// Tolerated irregularities are logged once per stream (docs/wire.md#chunks, R5).
    fn log_diagnostics(&self) {
        let diag = self.diagnostics();
        let who = format!(
            "{} stream ({})",
            self.message().provider,
            self.message().model
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
}

/// The state machine for one request of `plan`, started at `started` (epoch ms).
pub fn new_sink(plan: &RequestPlan, started: i64) -> Box<dyn ChunkSink> {
    Box::new(ChunkProcessor::new(ProcessorConfig {
        api: plan.api,
        provider: plan.provider.clone(),
        model: plan.model_id.clone(),
        timestamp: started,
        multi_choice: plan.multi_choice,
        context_window: plan.context_window,
        api_key: plan.api_key.clone(),
    }))
}
