//! Log records produced on I/O threads, handed to Python's `logging` later.
//!
//! The I/O threads never take the GIL (R10): they append the record here, and the next Python
//! call into the extension (which already holds the GIL) emits it on the `tinyagent._alchemy`
//! logger. The flag keeps that check to one relaxed atomic load on the hot path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The `logging` levels used by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
}

impl Level {
    /// The numeric level of Python's `logging` module.
    pub fn python_level(self) -> i32 {
        match self {
            Level::Info => 20,
            Level::Warning => 30,
        }
    }
}

/// Records are bounded so a process that never calls back into the extension cannot grow
/// without limit; the oldest are kept because they explain what came after.
const MAX_PENDING: usize = 10_000;

static PENDING: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());
static HAS_PENDING: AtomicBool = AtomicBool::new(false);

fn push(level: Level, message: String) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if pending.len() < MAX_PENDING {
        pending.push((level, message));
    }
    HAS_PENDING.store(true, Ordering::Release);
}

/// Queue an INFO record for the `tinyagent._alchemy` logger.
pub fn info(message: impl Into<String>) {
    push(Level::Info, message.into());
}

/// Queue a WARNING record for the `tinyagent._alchemy` logger.
pub fn warn(message: impl Into<String>) {
    push(Level::Warning, message.into());
}

/// Take every queued record (empty and lock-free when there is none).
pub fn take() -> Vec<(Level, String)> {
    if !HAS_PENDING.load(Ordering::Acquire) {
        return Vec::new();
    }
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    HAS_PENDING.store(false, Ordering::Release);
    std::mem::take(&mut *pending)
}
