//! The per-stream event queue between the I/O task (producer) and Python (consumer), and the
//! fd-based wake-up shared by the streams of one asyncio loop.
//!
//! The producer appends a batch under one lock acquisition; the consumer swaps the whole queue
//! out at once. Blocking readers wait on a condvar; asyncio readers are woken through a
//! [`NotifierCore`], which writes one byte per empty → non-empty transition (docs/design.md).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::types::{Event, MessageState, ThinkingSource};

/// One queued event. `thinking_signature` is set on `ThinkingStart` only: the consumer needs it
/// for the block it opens, and the producer is the one that knows it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub event: Event,
    pub thinking_signature: Option<ThinkingSource>,
}

impl Queued {
    pub fn plain(event: Event) -> Self {
        Queued {
            event,
            thinking_signature: None,
        }
    }
}

#[derive(Default)]
struct QueueInner {
    events: VecDeque<Queued>,
    /// The final message, published together with the terminal event.
    final_message: Option<Arc<MessageState>>,
    /// The notifier and token of `attach`, if any.
    waker: Option<(Arc<NotifierCore>, u64)>,
    /// True when the next push must mark the token ready (cleared by marking, set by draining).
    armed: bool,
    /// `deliver_ends_only`: keep only the events that open, retry or end the stream.
    ends_only: bool,
}

/// The events an ends-only reader still gets: the message opens, a retry, the end.
fn opens_retries_or_ends(item: &Queued) -> bool {
    matches!(item.event, Event::Start | Event::Retry { .. }) || item.event.is_terminal()
}

/// The queue of one stream.
#[derive(Default)]
pub struct StreamQueue {
    inner: Mutex<QueueInner>,
    ready: Condvar,
}

impl StreamQueue {
    pub fn new() -> Arc<Self> {
        Arc::new(StreamQueue::default())
    }

    fn lock(&self) -> MutexGuard<'_, QueueInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append a batch. `final_message` is given with the batch holding the terminal event.
    ///
    /// The token is marked on the empty → non-empty transition only: a reader wakes once per
    /// drain, however many events arrived meanwhile.
    pub fn push(
        &self,
        batch: impl IntoIterator<Item = Queued>,
        final_message: Option<MessageState>,
    ) {
        let mut inner = self.lock();
        let before = inner.events.len();
        if inner.ends_only {
            inner
                .events
                .extend(batch.into_iter().filter(opens_retries_or_ends));
        } else {
            inner.events.extend(batch);
        }
        if let Some(message) = final_message {
            inner.final_message = Some(Arc::new(message));
        }
        if inner.events.len() == before && inner.final_message.is_none() {
            return;
        }
        if inner.armed {
            if let Some((notifier, token)) = &inner.waker {
                notifier.mark(*token);
                inner.armed = false;
            }
        }
        drop(inner);
        self.ready.notify_all();
    }

    /// From now on keep only the events that open, retry or end the stream (and drop the
    /// others already queued): for readers that want the final message, not its tokens. The
    /// stream state still sees every event; nothing per token is queued, woken or drained.
    pub fn deliver_ends_only(&self) {
        let mut inner = self.lock();
        inner.ends_only = true;
        inner.events.retain(opens_retries_or_ends);
    }

    /// Move every queued event into `into`; re-arms the notifier hook.
    pub fn take_all(&self, into: &mut VecDeque<Queued>) {
        let mut inner = self.lock();
        inner.armed = true;
        if into.is_empty() {
            std::mem::swap(into, &mut inner.events);
        } else {
            into.append(&mut inner.events);
        }
    }

    /// Wait up to `timeout` for a queued event; true when one is there.
    pub fn wait_for_event(&self, timeout: Duration) -> bool {
        let inner = self.lock();
        if !inner.events.is_empty() {
            return true;
        }
        let (inner, _) = self
            .ready
            .wait_timeout_while(inner, timeout, |i| i.events.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        !inner.events.is_empty()
    }

    /// Wait up to `timeout` for the final message.
    pub fn wait_for_final(&self, timeout: Duration) -> Option<Arc<MessageState>> {
        let inner = self.lock();
        if let Some(m) = &inner.final_message {
            return Some(m.clone());
        }
        let (inner, _) = self
            .ready
            .wait_timeout_while(inner, timeout, |i| i.final_message.is_none())
            .unwrap_or_else(|e| e.into_inner());
        inner.final_message.clone()
    }

    /// The final message if the stream has ended.
    pub fn final_message(&self) -> Option<Arc<MessageState>> {
        self.lock().final_message.clone()
    }

    /// From now on, new events mark `token` ready on `notifier`; pending events mark it at once.
    pub fn attach(&self, notifier: Arc<NotifierCore>, token: u64) {
        let mut inner = self.lock();
        if inner.events.is_empty() {
            inner.armed = true;
        } else {
            notifier.mark(token);
            inner.armed = false;
        }
        inner.waker = Some((notifier, token));
    }
}

/// The shared half of a `Notifier`: an fd readable while tokens are ready, and the tokens.
pub struct NotifierCore {
    wake: WakeFd,
    state: Mutex<NotifierState>,
    /// Signalled with the fd, for a loop that cannot watch the fd ([`NotifierCore::wait`]).
    ready: Condvar,
}

#[derive(Default)]
struct NotifierState {
    tokens: Vec<u64>,
    /// The fd has been written since the last `take_ready`.
    signalled: bool,
    /// Threads blocked in `wait`: the condvar is notified only then, so the fd-watching loops
    /// (the usual case) pay no extra syscall per wake-up.
    waiters: usize,
}

impl NotifierCore {
    pub fn new() -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(NotifierCore {
            wake: WakeFd::new()?,
            state: Mutex::new(NotifierState::default()),
            ready: Condvar::new(),
        }))
    }

    pub fn fileno(&self) -> i32 {
        self.wake.read_fd()
    }

    pub fn mark(&self, token: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.tokens.push(token);
        if !state.signalled {
            state.signalled = true;
            self.wake.signal();
            if state.waiters > 0 {
                self.ready.notify_all();
            }
        }
    }

    /// Block until a token is ready (now or within `timeout`); true if one is. The wake-up of a
    /// loop without `add_reader` (asyncio's Proactor): one watcher thread per loop waits here
    /// instead of the selector watching the fd. Stays true until `take_ready` clears it.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.waiters += 1;
        let (mut state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |s| !s.signalled)
            .unwrap_or_else(|e| e.into_inner());
        state.waiters -= 1;
        state.signalled
    }

    /// The ready tokens, each once; clears the fd.
    pub fn take_ready(&self) -> Vec<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.signalled {
            self.wake.clear();
            state.signalled = false;
        }
        std::mem::take(&mut state.tokens)
    }
}

#[cfg(target_os = "linux")]
mod wake_fd {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// An eventfd: one fd, readable while its counter is non-zero.
    pub struct WakeFd(OwnedFd);

    impl WakeFd {
        pub fn new() -> std::io::Result<Self> {
            // SAFETY: plain syscall; the returned fd is owned by us from here on.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh, valid descriptor nobody else owns.
            Ok(WakeFd(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        pub fn read_fd(&self) -> i32 {
            self.0.as_raw_fd()
        }

        pub fn signal(&self) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. A full counter
            // (EAGAIN) still leaves the fd readable, which is all we need.
            unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }

        pub fn clear(&self) {
            let mut value: u64 = 0;
            // SAFETY: reads 8 bytes into a valid u64; non-blocking, EAGAIN when already clear.
            unsafe { libc::read(self.0.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        }
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
mod wake_fd {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A non-blocking pipe: readable while it holds bytes.
    pub struct WakeFd {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl WakeFd {
        pub fn new() -> std::io::Result<Self> {
            let mut fds = [0i32; 2];
            // SAFETY: `fds` has room for the two descriptors pipe() writes.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for fd in fds {
                // SAFETY: fcntl on descriptors we just created.
                unsafe {
                    libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            // SAFETY: fresh descriptors, owned from here on.
            Ok(unsafe {
                WakeFd {
                    read: OwnedFd::from_raw_fd(fds[0]),
                    write: OwnedFd::from_raw_fd(fds[1]),
                }
            })
        }

        pub fn read_fd(&self) -> i32 {
            self.read.as_raw_fd()
        }

        pub fn signal(&self) {
            let byte = 1u8;
            // SAFETY: one byte from a valid buffer to our own pipe.
            unsafe { libc::write(self.write.as_raw_fd(), (&byte as *const u8).cast(), 1) };
        }

        pub fn clear(&self) {
            let mut buf = [0u8; 64];
            // SAFETY: reads into a valid buffer until the non-blocking pipe is empty.
            while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
                > 0
            {}
        }
    }
}

#[cfg(not(unix))]
mod wake_fd {
    /// No fd off Unix (`fileno()` is -1): the loop is woken through `NotifierCore::wait`.
    pub struct WakeFd;

    impl WakeFd {
        pub fn new() -> std::io::Result<Self> {
            Ok(WakeFd)
        }
        pub fn read_fd(&self) -> i32 {
            -1
        }
        pub fn signal(&self) {}
        pub fn clear(&self) {}
    }
}

use wake_fd::WakeFd;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StopReason, Usage};

    fn readable(notifier: &NotifierCore) -> bool {
        let mut fd = libc::pollfd {
            fd: notifier.fileno(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut fd, 1, 0) == 1 }
    }

    fn delta(text: &str) -> Queued {
        Queued::plain(Event::TextDelta {
            ci: 0,
            delta: text.to_string(),
        })
    }

    fn final_message() -> MessageState {
        MessageState {
            blocks: Vec::new(),
            stop_reason: StopReason::Stop,
            error_message: None,
            usage: Usage::default(),
            timestamp: 0,
            api: crate::types::ApiKind::OpenAiCompletions,
            provider: "p".into(),
            model: "m".into(),
        }
    }

    #[test]
    fn one_wake_per_empty_to_non_empty_transition() {
        let queue = StreamQueue::new();
        let notifier = NotifierCore::new().unwrap();
        queue.attach(notifier.clone(), 3);
        assert!(!readable(&notifier));
        queue.push([delta("a")], None);
        queue.push([delta("b")], None);
        assert!(readable(&notifier));
        assert_eq!(notifier.take_ready(), vec![3]);
        assert!(!readable(&notifier));
        // Not drained yet: further pushes do not report the token again.
        queue.push([delta("c")], None);
        assert!(notifier.take_ready().is_empty());
        let mut taken = VecDeque::new();
        queue.take_all(&mut taken);
        assert_eq!(taken.len(), 3);
        // Drained: the next push re-arms the wake-up.
        queue.push([delta("d")], None);
        assert!(readable(&notifier));
        assert_eq!(notifier.take_ready(), vec![3]);
    }

    #[test]
    fn ends_only_queues_start_retries_and_the_end_and_wakes_for_nothing_else() {
        let queue = StreamQueue::new();
        let notifier = NotifierCore::new().unwrap();
        queue.attach(notifier.clone(), 5);
        queue.push([Queued::plain(Event::Start), delta("a")], None);
        queue.deliver_ends_only(); // drops the queued delta, keeps the start
        assert_eq!(notifier.take_ready(), vec![5]);
        let mut taken = VecDeque::new();
        queue.take_all(&mut taken);
        assert!(matches!(taken[0].event, Event::Start));
        assert_eq!(taken.len(), 1);
        queue.push([delta("b"), delta("c")], None);
        assert!(notifier.take_ready().is_empty()); // no wake-up for tokens
        assert!(!readable(&notifier));
        let retry = Queued::plain(Event::Retry {
            attempt: 1,
            delay: 0.5,
            reason: "HTTP 429".into(),
        });
        queue.push([retry], None);
        assert_eq!(notifier.take_ready(), vec![5]);
        let done = Queued::plain(Event::Done {
            reason: StopReason::Stop,
        });
        queue.push([delta("d"), done], Some(final_message()));
        assert!(notifier.take_ready().is_empty()); // marked once until the reader drains
        taken.clear();
        queue.take_all(&mut taken);
        assert!(matches!(taken[0].event, Event::Retry { .. }));
        assert!(taken[1].event.is_terminal());
        assert_eq!(taken.len(), 2);
        assert!(queue.final_message().is_some());
    }

    #[test]
    fn attach_with_pending_events_marks_at_once_and_tokens_are_per_stream() {
        let notifier = NotifierCore::new().unwrap();
        let first = StreamQueue::new();
        let second = StreamQueue::new();
        first.push([delta("a")], None);
        first.attach(notifier.clone(), 1);
        second.attach(notifier.clone(), 2);
        second.push([delta("b")], None);
        let mut tokens = notifier.take_ready();
        tokens.sort();
        assert_eq!(tokens, vec![1, 2]);
    }

    #[test]
    fn notifier_wait_returns_once_a_token_is_ready_until_taken() {
        let notifier = NotifierCore::new().unwrap();
        let queue = StreamQueue::new();
        queue.attach(notifier.clone(), 7);
        assert!(!notifier.wait(Duration::from_millis(10)));
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                queue.push([delta("x")], None);
            })
        };
        assert!(notifier.wait(Duration::from_secs(3)));
        // Still ready until the loop takes the tokens; then waiting times out again.
        assert!(notifier.wait(Duration::from_millis(1)));
        assert_eq!(notifier.take_ready(), vec![7]);
        assert!(!notifier.wait(Duration::from_millis(10)));
        producer.join().unwrap();
    }

    #[test]
    fn waits_end_with_events_or_the_final_message() {
        let queue = StreamQueue::new();
        assert!(!queue.wait_for_event(Duration::from_millis(10)));
        assert!(queue.wait_for_final(Duration::from_millis(10)).is_none());
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let done = Queued::plain(Event::Done {
                    reason: StopReason::Stop,
                });
                queue.push([delta("x"), done], Some(final_message()));
            })
        };
        assert!(queue
            .wait_for_final(Duration::from_secs(3))
            .is_some_and(|m| m.model == "m"));
        assert!(queue.wait_for_event(Duration::from_millis(1)));
        producer.join().unwrap();
    }
}
