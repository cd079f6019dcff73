//! The experimental `anthropic-messages` path (wire.md §5.4).
use crate::transport::queue::StreamQueue;
use crate::types::RequestPlan;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
pub fn spawn(
    _plan: RequestPlan,
    _started: i64,
    _queue: Arc<StreamQueue>,
    _token: CancellationToken,
) -> Result<(), String> {
    Err("anthropic-messages path not available in this build".to_string())
}
