//! Incremental Server-Sent-Events reader (docs/wire.md#sse-framing).
//!
//! ```text
//! let mut reader = SseReader::new();
//! let mut events = Vec::new();
//! for read in body {                        // network reads, split anywhere
//!     match reader.feed(&read, &mut events) {
//!         Ok(stats) => { /* stats.comments > 0: a keep-alive arrived */ }
//!         Err(e) => { /* handle `events` first, then fail the stream with e.to_string() */ }
//!     }
//!     // hand `events` to the chunk processor, then events.clear()
//! }
//! reader.finish(&mut events)?;               // end of body
//! ```
//!
//! Bytes are split into lines on `\n`, `\r\n` or a lone `\r` with a carry-over buffer, so a line
//! (and a multi-byte character in it) may arrive across any number of reads; only complete lines
//! are decoded as UTF-8. A `\r` ending one read followed by `\n` starting the next is one line
//! break. Departure from WHATWG (deliberate, docs/wire.md#sse-framing): `finish` dispatches a
//! non-empty pending event whose closing blank line never arrived, because that event carries
//! `finish_reason` and usage in real LLM streams.

use std::fmt;

/// One dispatched event: its data lines joined with `\n`, and whether `event: error` was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub data: String,
    pub is_error: bool,
}

/// What one `feed`/`finish` call saw besides events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Comment lines (`: keep-alive`). They carry nothing, but prove the server is alive.
    pub comments: usize,
    /// Events appended to the caller's vector by this call.
    pub events: usize,
}

/// Data the reader cannot accept (a line that is not valid UTF-8, or a line or event larger
/// than [`MAX_EVENT_BYTES`]): the stream must end with a malformed-data error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError {
    /// What is wrong, e.g. `line is not valid UTF-8`.
    pub reason: String,
    /// The offending line, decoded lossily and cut to 200 characters, for the error message.
    pub excerpt: String,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed stream data: {}: {}",
            self.reason, self.excerpt
        )
    }
}

/// The largest line or event accepted. A server that keeps sending bytes without a line break
/// would otherwise grow the carry-over buffer without bound (the idle timer never fires while
/// bytes arrive); real chunks, even with megabyte tool arguments, stay far below this.
pub const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

impl std::error::Error for SseError {}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Longest excerpt (in characters) quoted by a malformed-data error (docs/wire.md#error-messages).
pub const EXCERPT_CHARS: usize = 200;

/// The incremental reader. Reuse one per response body.
#[derive(Debug, Default)]
pub struct SseReader {
    /// Bytes of a line whose end has not arrived yet.
    carry: Vec<u8>,
    /// The previous read ended with `\r`: a `\n` opening the next read belongs to that break.
    skip_lf: bool,
    /// No line has been completed yet (the BOM may only open the first line).
    at_start: bool,
    data: String,
    has_data: bool,
    is_error: bool,
    failed: bool,
}

impl SseReader {
    pub fn new() -> Self {
        SseReader {
            at_start: true,
            ..SseReader::default()
        }
    }

    /// Consume one network read. Events completed by it are appended to `out`. On `Err`, `out`
    /// still holds the events dispatched before the bad line (handle them first); the reader is
    /// then spent and ignores further input.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<FeedStats, SseError> {
        let mut stats = FeedStats::default();
        if self.failed {
            return Ok(stats);
        }
        let before = out.len();
        let mut rest = bytes;
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while !rest.is_empty() {
            let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.carry.extend_from_slice(rest);
                if self.carry.len() > MAX_EVENT_BYTES {
                    let excerpt = excerpt_of(&self.carry);
                    self.carry = Vec::new();
                    return Err(self.too_large("line", excerpt));
                }
                break;
            };
            let is_cr = rest[pos] == b'\r';
            let after = &rest[pos + 1..];
            let next = if is_cr {
                match after.first() {
                    Some(&b'\n') => &after[1..],
                    Some(_) => after,
                    None => {
                        // The matching `\n` (if any) opens the next read.
                        self.skip_lf = true;
                        after
                    }
                }
            } else {
                after
            };
            if self.carry.is_empty() {
                self.line(&rest[..pos], out, &mut stats)?;
            } else {
                self.carry.extend_from_slice(&rest[..pos]);
                let line = std::mem::take(&mut self.carry);
                let result = self.line(&line, out, &mut stats);
                self.carry = line;
                self.carry.clear();
                result?;
            }
            rest = next;
        }
        stats.events = out.len() - before;
        Ok(stats)
    }

    /// End of body: an unterminated last line is processed, and a non-empty pending event is
    /// dispatched even without its blank line (deliberate departure from WHATWG,
    /// docs/wire.md#sse-framing).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<FeedStats, SseError> {
        let mut stats = FeedStats::default();
        if self.failed {
            return Ok(stats);
        }
        let before = out.len();
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line, out, &mut stats)?;
        }
        self.dispatch(out);
        stats.events = out.len() - before;
        Ok(stats)
    }

    fn line(
        &mut self,
        raw: &[u8],
        out: &mut Vec<SseEvent>,
        stats: &mut FeedStats,
    ) -> Result<(), SseError> {
        let mut raw = raw;
        if self.at_start {
            self.at_start = false;
            raw = raw.strip_prefix(BOM).unwrap_or(raw);
        }
        let line = match std::str::from_utf8(raw) {
            Ok(line) => line,
            Err(_) => {
                self.failed = true;
                return Err(SseError {
                    reason: "line is not valid UTF-8".to_string(),
                    excerpt: excerpt_of(raw),
                });
            }
        };
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            stats.comments += 1;
            return Ok(());
        }
        // A line without a colon names a field with no value; none of those matter here.
        let Some((field, value)) = line.split_once(':') else {
            return Ok(());
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                if self.data.len() + value.len() > MAX_EVENT_BYTES {
                    return Err(self.too_large("event", excerpt_of(self.data.as_bytes())));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.is_error = value == "error",
            _ => {}
        }
        Ok(())
    }

    fn too_large(&mut self, what: &str, excerpt: String) -> SseError {
        self.failed = true;
        self.data = String::new();
        SseError {
            reason: format!("{what} longer than {MAX_EVENT_BYTES} bytes"),
            excerpt,
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                data: std::mem::take(&mut self.data),
                is_error: self.is_error,
            });
        }
        self.has_data = false;
        self.is_error = false;
    }
}

fn excerpt_of(raw: &[u8]) -> String {
    let head = &raw[..raw.len().min(EXCERPT_CHARS * 4)];
    String::from_utf8_lossy(head)
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_line_is_an_error_not_unbounded_memory() {
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        let piece = vec![b'x'; 1024 * 1024];
        let mut error = None;
        for _ in 0..(MAX_EVENT_BYTES / piece.len() + 2) {
            if let Err(e) = reader.feed(&piece, &mut out) {
                error = Some(e);
                break;
            }
        }
        let error = error.expect("the reader gave up");
        assert!(error.to_string().starts_with(&format!(
            "malformed stream data: line longer than {MAX_EVENT_BYTES} bytes: xxx"
        )));
        assert!(reader.carry.capacity() == 0, "the buffer was released");
        assert!(reader.feed(b"data: {}\n\n", &mut out).unwrap().events == 0);
    }

    fn read_all(pieces: &[&[u8]]) -> (Vec<SseEvent>, usize) {
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        let mut comments = 0;
        for piece in pieces {
            comments += reader.feed(piece, &mut out).unwrap().comments;
        }
        comments += reader.finish(&mut out).unwrap().comments;
        (out, comments)
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn all_three_line_endings_split_lines() {
        let (events, _) = read_all(&[b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n\n"]);
        assert_eq!(data(&events), ["a", "b", "c", "d"]);
    }

    #[test]
    fn cr_and_lf_in_separate_reads_are_one_line_break() {
        // "data: a\r" | "\n\r\n": had the \n been read as a second break, the blank line would
        // come one line early and "b" would still dispatch — so check the exact event split too.
        let (events, _) = read_all(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(data(&events), ["a\nb"]);
    }

    #[test]
    fn multibyte_character_split_across_reads_is_intact() {
        let body = "data: Checking both — one moment. 日本語 🎉\n\n".as_bytes();
        let pieces: Vec<&[u8]> = body.chunks(1).collect();
        let (events, _) = read_all(&pieces);
        assert_eq!(data(&events), ["Checking both — one moment. 日本語 🎉"]);
    }

    #[test]
    fn invalid_utf8_line_is_an_error_after_earlier_events() {
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        let err = reader
            .feed(b"data: ok\n\ndata: \xff\xfe bad\n\n", &mut out)
            .unwrap_err();
        assert_eq!(data(&out), ["ok"]);
        assert!(err.to_string().starts_with("malformed stream data: "));
        assert!(err.to_string().contains("bad"));
        // The reader is spent: nothing more is produced.
        reader.feed(b"data: late\n\n", &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn leading_bom_is_stripped_even_when_split() {
        let (events, _) = read_all(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]);
        assert_eq!(data(&events), ["x"]);
    }

    #[test]
    fn comments_are_counted_not_dispatched() {
        let (events, comments) = read_all(&[b": OPENROUTER PROCESSING\n\n:\n\ndata: x\n\n"]);
        assert_eq!(data(&events), ["x"]);
        assert_eq!(comments, 2);
    }

    #[test]
    fn one_leading_space_is_removed_and_no_space_is_fine() {
        let (events, _) = read_all(&[b"data:tight\n\ndata:  two\n\n"]);
        assert_eq!(data(&events), ["tight", " two"]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newline() {
        let (events, _) = read_all(&[b"data: {\"a\":\ndata: 1}\n\n"]);
        assert_eq!(data(&events), ["{\"a\":\n1}"]);
    }

    #[test]
    fn event_error_marks_only_its_own_event() {
        let (events, _) =
            read_all(&[b"event: error\ndata: {}\n\ndata: {}\n\nevent: ping\ndata: 1\n\n"]);
        let flags: Vec<bool> = events.iter().map(|e| e.is_error).collect();
        assert_eq!(flags, [true, false, false]);
    }

    #[test]
    fn other_fields_and_colonless_lines_are_ignored() {
        let (events, _) = read_all(&[b"id: 7\nretry: 10\nevent: message\nnonsense\ndata: x\n\n"]);
        assert_eq!(data(&events), ["x"]);
        assert!(!events[0].is_error);
    }

    #[test]
    fn blank_line_without_data_dispatches_nothing() {
        let (events, _) = read_all(&[b"\n\nevent: error\n\n\n"]);
        assert!(events.is_empty());
    }

    #[test]
    fn pending_event_is_dispatched_at_end_of_body() {
        // Both without the final blank line and without even the final line break.
        let (events, _) = read_all(&[b"data: a\n\ndata: last\n"]);
        assert_eq!(data(&events), ["a", "last"]);
        let (events, _) = read_all(&[b"data: a\n\ndata: last"]);
        assert_eq!(data(&events), ["a", "last"]);
    }

    #[test]
    fn feed_reports_events_it_dispatched() {
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        let stats = reader
            .feed(b"data: 1\n\ndata: 2\n\ndata: 3", &mut out)
            .unwrap();
        assert_eq!(stats.events, 2);
        let stats = reader.finish(&mut out).unwrap();
        assert_eq!(stats.events, 1);
    }
}

#[cfg(test)]
mod fragmentation {
    use super::*;
    use proptest::prelude::*;

    fn collect(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        for piece in pieces {
            reader.feed(piece, &mut out).unwrap();
        }
        reader.finish(&mut out).unwrap();
        out
    }

    proptest! {
        /// The events do not depend on how the body was cut into reads.
        #[test]
        fn events_do_not_depend_on_read_boundaries(
            lines in proptest::collection::vec("(data|event|: c|id)(: ?)[a-zé日🎉 ]{0,8}|", 1..30),
            endings in proptest::collection::vec(prop_oneof![Just("\n"), Just("\r\n"), Just("\r")], 30),
            mut cuts in proptest::collection::vec(0usize..600, 0..20),
        ) {
            let mut body = String::new();
            for (line, ending) in lines.iter().zip(&endings) {
                body.push_str(line);
                body.push_str(ending);
            }
            let bytes = body.as_bytes();
            for c in cuts.iter_mut() {
                *c %= bytes.len().max(1);
            }
            cuts.sort_unstable();
            cuts.dedup();
            let mut pieces = Vec::new();
            let mut start = 0;
            for &c in &cuts {
                pieces.push(&bytes[start..c]);
                start = c;
            }
            pieces.push(&bytes[start..]);
            prop_assert_eq!(collect(&pieces), collect(&[bytes]));
        }
    }
}
