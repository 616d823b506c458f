//! Cuts the bytes read from a file into records: one per line, or with
//! `multiLineStartPattern` one per group of lines starting at a matching line; skips
//! `skipHeaderLines` at the start of a file; cuts a record longer than the largest Kinesis
//! record and ends it with `truncatedRecordTerminator`, dropping the rest of it.
//!
//! Pure: it sees a buffer and a little state, never a file, so every case is a unit test.

use regex::Regex;
use std::ops::Range;

/// How much of an unfinished tail to give out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flush {
    /// Only records known to be complete: the file may still grow.
    None,
    /// Also end a pending multi-line record at the last complete line (the file is idle).
    Records,
    /// Also give out a last line without a newline (the file was rotated and is done).
    All,
}

/// State carried from one buffer of a file to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitState {
    /// Header lines still to skip.
    pub header_left: usize,
    /// Inside the dropped rest of a truncated line.
    pub skipping: bool,
}

/// One record found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Bytes of the buffer kept for the record.
    pub keep: Range<usize>,
    /// Where the record ends in the buffer (past its newline, or past its dropped rest).
    pub end: usize,
    /// Whether the record was cut: the terminator follows the kept bytes.
    pub truncated: bool,
}

/// The result of one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Records in order.
    pub pieces: Vec<Piece>,
    /// Bytes of the buffer done with (records, skipped headers and dropped tails); the rest
    /// must be offered again with more data.
    pub consumed: usize,
}

/// The splitter of one flow.
#[derive(Debug, Clone)]
pub struct RecordSplitter {
    start: Option<Regex>,
    max_record: usize,
    terminator: Vec<u8>,
}

impl RecordSplitter {
    /// A splitter; `max_record` is the largest record in bytes, terminator included.
    pub fn new(start: Option<Regex>, max_record: usize, terminator: &[u8]) -> RecordSplitter {
        RecordSplitter {
            start,
            max_record: max_record.max(terminator.len() + 1),
            terminator: terminator.to_vec(),
        }
    }

    /// The bytes to send for `piece` of `buf`.
    pub fn data(&self, buf: &[u8], piece: &Piece) -> Vec<u8> {
        let mut v = buf[piece.keep.clone()].to_vec();
        if piece.truncated {
            v.extend_from_slice(&self.terminator);
        }
        v
    }

    /// The largest record, terminator included.
    pub fn max_record(&self) -> usize {
        self.max_record
    }

    fn piece(&self, range: Range<usize>) -> Piece {
        if range.len() > self.max_record {
            Piece {
                keep: range.start..range.start + self.max_record - self.terminator.len(),
                end: range.end,
                truncated: true,
            }
        } else {
            Piece {
                keep: range.clone(),
                end: range.end,
                truncated: false,
            }
        }
    }

    fn is_start(&self, line: &[u8]) -> bool {
        match &self.start {
            None => true,
            Some(re) => {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                re.is_match(&String::from_utf8_lossy(line))
            }
        }
    }

    /// Splits `buf` (the unconsumed bytes of a file, starting at a record boundary).
    pub fn split(&self, buf: &[u8], flush: Flush, state: &mut SplitState) -> Split {
        let mut pieces = Vec::new();
        let mut pos = 0;
        if state.skipping {
            match memchr::memchr(b'\n', buf) {
                Some(nl) => {
                    pos = nl + 1;
                    state.skipping = false;
                }
                None => {
                    return Split {
                        pieces,
                        consumed: buf.len(),
                    };
                }
            }
        }
        while state.header_left > 0 {
            match memchr::memchr(b'\n', &buf[pos..]) {
                Some(nl) => {
                    pos += nl + 1;
                    state.header_left -= 1;
                }
                None => {
                    return Split {
                        pieces,
                        consumed: pos,
                    };
                }
            }
        }
        let mut consumed = pos;
        // Start of the record being collected (multi-line mode).
        let mut pending: Option<usize> = None;
        loop {
            let (line_end, complete) = match memchr::memchr(b'\n', &buf[pos..]) {
                Some(nl) => (pos + nl + 1, true),
                None if flush == Flush::All && pos < buf.len() => (buf.len(), false),
                None => break,
            };
            let line = &buf[pos..line_end];
            if self.start.is_none() {
                pieces.push(self.piece(pos..line_end));
                consumed = line_end;
            } else {
                if self.is_start(line)
                    && let Some(s) = pending.take()
                {
                    pieces.push(self.piece(s..pos));
                    consumed = pos;
                }
                let s = *pending.get_or_insert(pos);
                if line_end - s > self.max_record {
                    // A group already too long: send it cut, and start afresh after it.
                    pieces.push(self.piece(s..line_end));
                    pending = None;
                    consumed = line_end;
                }
            }
            pos = line_end;
            if !complete {
                break;
            }
        }
        if let Some(s) = pending
            && flush >= Flush::Records
        {
            pieces.push(self.piece(s..pos));
            consumed = pos;
        } else if pending.is_none() && buf.len() - consumed >= self.max_record {
            // A line longer than any record, its end not read yet: send its start, drop the rest.
            let piece = Piece {
                keep: consumed..consumed + self.max_record - self.terminator.len(),
                end: buf.len(),
                truncated: true,
            };
            pieces.push(piece);
            consumed = buf.len();
            state.skipping = true;
        }
        Split { pieces, consumed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(s: &RecordSplitter, buf: &[u8], split: &Split) -> Vec<String> {
        split
            .pieces
            .iter()
            .map(|p| String::from_utf8(s.data(buf, p)).unwrap())
            .collect()
    }

    #[test]
    fn lines_and_partial_tail() {
        let s = RecordSplitter::new(None, 100, b"\n");
        let buf = b"a\nbb\ncc";
        let mut st = SplitState::default();
        let r = s.split(buf, Flush::None, &mut st);
        assert_eq!(texts(&s, buf, &r), ["a\n", "bb\n"]);
        assert_eq!(r.consumed, 5);
        let r = s.split(buf, Flush::Records, &mut st);
        assert_eq!(
            r.consumed, 5,
            "a partial line waits unless the file is done"
        );
        let r = s.split(buf, Flush::All, &mut st);
        assert_eq!(texts(&s, buf, &r), ["a\n", "bb\n", "cc"]);
        assert_eq!(r.consumed, 7);
    }

    #[test]
    fn header_lines_are_skipped() {
        let s = RecordSplitter::new(None, 100, b"\n");
        let mut st = SplitState {
            header_left: 2,
            skipping: false,
        };
        let r = s.split(b"h1\nh2", Flush::None, &mut st);
        assert!(r.pieces.is_empty());
        assert_eq!((r.consumed, st.header_left), (3, 1));
        let buf = b"h2\nv1\n";
        let r = s.split(buf, Flush::None, &mut st);
        assert_eq!(texts(&s, buf, &r), ["v1\n"]);
        assert_eq!(st.header_left, 0);
    }

    #[test]
    fn java_stack_trace_is_one_record() {
        let s = RecordSplitter::new(
            Some(Regex::new(r"^\d{4}-\d{2}-\d{2} ").unwrap()),
            10_000,
            b"\n",
        );
        let buf = b"2024-05-01 10:00:00 ERROR failed\njava.lang.IllegalStateException: boom\n\tat com.example.App.run(App.java:42)\n\tat com.example.App.main(App.java:7)\n2024-05-01 10:00:01 INFO next\n";
        let mut st = SplitState::default();
        let r = s.split(buf, Flush::None, &mut st);
        assert_eq!(
            texts(&s, buf, &r),
            [
                "2024-05-01 10:00:00 ERROR failed\njava.lang.IllegalStateException: boom\n\tat com.example.App.run(App.java:42)\n\tat com.example.App.main(App.java:7)\n"
            ]
        );
        // The last record may still get continuation lines: it waits.
        assert_eq!(&buf[r.consumed..], b"2024-05-01 10:00:01 INFO next\n");
        let rest = &buf[r.consumed..];
        let r = s.split(rest, Flush::Records, &mut st);
        assert_eq!(texts(&s, rest, &r), ["2024-05-01 10:00:01 INFO next\n"]);
    }

    #[test]
    fn long_records_are_truncated_with_the_terminator() {
        let s = RecordSplitter::new(None, 8, b"...\n");
        let buf = b"0123456789abc\nok\n";
        let mut st = SplitState::default();
        let r = s.split(buf, Flush::None, &mut st);
        assert_eq!(texts(&s, buf, &r), ["0123...\n", "ok\n"]);
        assert_eq!(r.consumed, buf.len());
        // A long line whose end is not read yet: its start goes out, the rest is dropped.
        let mut st = SplitState::default();
        let r = s.split(b"0123456789", Flush::None, &mut st);
        assert_eq!(texts(&s, b"0123456789", &r), ["0123...\n"]);
        assert!(st.skipping);
        let buf = b"zz\nnext\n";
        let r = s.split(buf, Flush::None, &mut st);
        assert_eq!(texts(&s, buf, &r), ["next\n"]);
        assert!(!st.skipping);
    }

    proptest! {
        #[test]
        fn lines_concatenate_back(lines in proptest::collection::vec("[a-z ]{0,20}", 0..30), cut in 0usize..400) {
            let s = RecordSplitter::new(None, 1000, b"\n");
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let buf = text.as_bytes();
            let cut = cut.min(buf.len());
            let mut st = SplitState::default();
            // Two reads, the first ending at an arbitrary byte.
            let first = s.split(&buf[..cut], Flush::None, &mut st);
            let mut out: Vec<String> = texts(&s, &buf[..cut], &first);
            let rest = &buf[first.consumed..];
            let second = s.split(rest, Flush::None, &mut st);
            out.extend(texts(&s, rest, &second));
            prop_assert_eq!(first.consumed + second.consumed, buf.len());
            let expected: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn multi_line_groups_keep_every_byte(lines in proptest::collection::vec("(S|c)[a-z]{0,5}", 1..30)) {
            let s = RecordSplitter::new(Some(Regex::new("^S").unwrap()), 10_000, b"\n");
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let buf = text.as_bytes();
            let mut st = SplitState::default();
            let r = s.split(buf, Flush::Records, &mut st);
            prop_assert_eq!(r.consumed, buf.len());
            let joined: String = texts(&s, buf, &r).concat();
            prop_assert_eq!(&joined, &text);
            for t in texts(&s, buf, &r).iter().skip(1) {
                prop_assert!(t.starts_with('S'));
            }
        }
    }
}
