//! A PutRecords JSON body read in place, for the broker's hottest request.
//!
//! The generic decoder makes a string per partition key and a buffer per
//! record's data, and the broker copies both again into its log. This reader
//! decodes every entry's data into one buffer and leaves the keys where they
//! are in the body, so a request of 500 records costs a handful of
//! allocations instead of a thousand or more.
//!
//! It reads only the plain form every SDK sends: an object with `Records`,
//! `StreamName` and `StreamARN`, entries with `Data`, `PartitionKey` and
//! `ExplicitHashKey`, string values, each member at most once. Anything else
//! (unknown members, `null`, duplicates, malformed JSON or base64) makes it
//! answer `None`, and the caller decodes the body with the generic decoder,
//! which accepts or refuses it with the service's message. What it does read
//! is exactly what the generic decoder would have made of the body
//! ([`PutRecordsView::to_input`] is property-tested and fuzzed against it).

use crate::codec::{BASE64, Blob};
use crate::model::{PutRecordsInput, PutRecordsRequestEntry, StreamRef};
use base64::Engine as _;
use bytes::Bytes;
use std::ops::Range;

/// A string member: a range of the body (no escapes in it, checked to be
/// UTF-8), or its unescaped text.
#[derive(Debug, Clone)]
enum Text {
    InBody(Range<usize>),
    Unescaped(Box<str>),
}

/// One entry's members, as ranges of the body or of the decoded data.
#[derive(Debug, Clone, Default)]
struct EntryView {
    data: Option<Range<usize>>,
    partition_key: Option<Text>,
    explicit_hash_key: Option<Text>,
}

/// A PutRecords body whose entries point into the body and into one buffer
/// of decoded data.
#[derive(Debug, Clone)]
pub struct PutRecordsView {
    body: Bytes,
    data: Bytes,
    stream_name: Option<Text>,
    stream_arn: Option<Text>,
    entries: Vec<EntryView>,
}

/// One entry of a [`PutRecordsView`].
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    view: &'a PutRecordsView,
    entry: &'a EntryView,
}

impl PutRecordsView {
    /// Read `body`, or `None` when it is not in the plain form (see the
    /// module's doc); the generic decoder then has the last word.
    pub fn read(body: &Bytes) -> Option<PutRecordsView> {
        let mut view = Reader::new(body).put_records()?;
        view.body = body.clone();
        Some(view)
    }

    /// `StreamName`, if given.
    pub fn stream_name(&self) -> Option<&str> {
        self.text(self.stream_name.as_ref())
    }

    /// `StreamARN`, if given.
    pub fn stream_arn(&self) -> Option<&str> {
        self.text(self.stream_arn.as_ref())
    }

    /// The stream members as the model has them.
    pub fn stream_ref(&self) -> StreamRef {
        StreamRef {
            stream_name: self.stream_name().map(str::to_owned),
            stream_arn: self.stream_arn().map(str::to_owned),
        }
    }

    /// The entries, in request order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = EntryRef<'_>> {
        self.entries
            .iter()
            .map(|entry| EntryRef { view: self, entry })
    }

    /// What the generic decoder makes of the same body.
    pub fn to_input(&self) -> PutRecordsInput {
        PutRecordsInput {
            records: Some(
                self.entries()
                    .map(|e| PutRecordsRequestEntry {
                        data: e.data().map(Blob),
                        explicit_hash_key: e.explicit_hash_key().map(str::to_owned),
                        partition_key: e.partition_key().map(str::to_owned),
                    })
                    .collect(),
            ),
            stream: self.stream_ref(),
        }
    }

    fn text<'a>(&'a self, t: Option<&'a Text>) -> Option<&'a str> {
        match t? {
            // Checked to be UTF-8 when read.
            Text::InBody(r) => std::str::from_utf8(&self.body[r.clone()]).ok(),
            Text::Unescaped(s) => Some(s),
        }
    }
}

impl<'a> EntryRef<'a> {
    /// `Data`, decoded; shares the request's one buffer of decoded data.
    pub fn data(&self) -> Option<Bytes> {
        self.entry.data.clone().map(|r| self.view.data.slice(r))
    }

    /// Length of `Data` once decoded.
    pub fn data_len(&self) -> Option<usize> {
        self.entry.data.as_ref().map(|r| r.len())
    }

    /// `PartitionKey`.
    pub fn partition_key(&self) -> Option<&'a str> {
        self.view.text(self.entry.partition_key.as_ref())
    }

    /// `PartitionKey`'s UTF-8 bytes, sharing the request body when they
    /// appear in it unescaped.
    pub fn partition_key_bytes(&self) -> Option<Bytes> {
        match self.entry.partition_key.as_ref()? {
            Text::InBody(r) => Some(self.view.body.slice(r.clone())),
            Text::Unescaped(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        }
    }

    /// `ExplicitHashKey`.
    pub fn explicit_hash_key(&self) -> Option<&'a str> {
        self.view.text(self.entry.explicit_hash_key.as_ref())
    }
}

/// The members the reader knows, so each is taken at most once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Records,
    StreamName,
    StreamArn,
    Data,
    PartitionKey,
    ExplicitHashKey,
}

struct Reader<'b> {
    body: &'b [u8],
    at: usize,
    /// Every entry's data, decoded end to end.
    data: Vec<u8>,
}

impl<'b> Reader<'b> {
    fn new(body: &'b [u8]) -> Reader<'b> {
        Reader {
            body,
            at: 0,
            // Decoded data is at most three quarters of the body.
            data: Vec::with_capacity(body.len() / 4 * 3 + 3),
        }
    }

    fn put_records(mut self) -> Option<PutRecordsView> {
        let mut records = None;
        let mut stream_name = None;
        let mut stream_arn = None;
        self.object(
            &[Member::Records, Member::StreamName, Member::StreamArn],
            |r, m| {
                match m {
                    Member::Records => records = Some(r.entries()?),
                    Member::StreamName => stream_name = Some(r.text()?),
                    _ => stream_arn = Some(r.text()?),
                }
                Some(())
            },
        )?;
        self.skip_space();
        if self.at != self.body.len() {
            return None;
        }
        Some(PutRecordsView {
            // Set by the caller, which has the body as `Bytes`.
            body: Bytes::new(),
            data: Bytes::from(self.data),
            stream_name,
            stream_arn,
            // `Records` absent is a model violation: the generic path words it.
            entries: records?,
        })
    }

    fn entries(&mut self) -> Option<Vec<EntryView>> {
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(out);
        }
        loop {
            let mut e = EntryView::default();
            self.object(
                &[Member::Data, Member::PartitionKey, Member::ExplicitHashKey],
                |r, m| {
                    match m {
                        Member::Data => e.data = Some(r.data()?),
                        Member::PartitionKey => e.partition_key = Some(r.text()?),
                        _ => e.explicit_hash_key = Some(r.text()?),
                    }
                    Some(())
                },
            )?;
            out.push(e);
            match self.next_byte()? {
                b',' => continue,
                b']' => return Some(out),
                _ => return None,
            }
        }
    }

    /// An object whose members are among `known`, each at most once; `value`
    /// reads each member's value.
    fn object(
        &mut self,
        known: &[Member],
        mut value: impl FnMut(&mut Self, Member) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        let mut seen = [false; 6];
        loop {
            let (name, escaped) = self.string()?;
            if escaped {
                return None;
            }
            let member = match &self.body[name] {
                b"Records" => Member::Records,
                b"StreamName" => Member::StreamName,
                b"StreamARN" => Member::StreamArn,
                b"Data" => Member::Data,
                b"PartitionKey" => Member::PartitionKey,
                b"ExplicitHashKey" => Member::ExplicitHashKey,
                _ => return None,
            };
            if !known.contains(&member) || std::mem::replace(&mut seen[member as usize], true) {
                return None;
            }
            self.expect(b':')?;
            value(self, member)?;
            match self.next_byte()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string value.
    fn text(&mut self) -> Option<Text> {
        let (r, escaped) = self.string()?;
        if escaped {
            // The quotes around it too: serde_json unescapes exactly as the
            // generic decoder does.
            let quoted = &self.body[r.start - 1..r.end + 1];
            return serde_json::from_slice::<String>(quoted)
                .ok()
                .map(|s| Text::Unescaped(s.into_boxed_str()));
        }
        std::str::from_utf8(&self.body[r.clone()]).ok()?;
        Some(Text::InBody(r))
    }

    /// A base64 string value, decoded onto the end of `data`.
    fn data(&mut self) -> Option<Range<usize>> {
        let (r, escaped) = self.string()?;
        if escaped {
            return None;
        }
        let start = self.data.len();
        // The same engine as the generic decoder's `Blob`: padding required.
        BASE64.decode_vec(&self.body[r], &mut self.data).ok()?;
        Some(start..self.data.len())
    }

    /// The next string's contents (without quotes), and whether it has escapes.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            // Eight bytes at a time while none ends the string or needs a look: base64 data
            // is long, and a byte at a time cost a quarter of the broker's ingest CPU.
            self.at += plain_prefix(&self.body[self.at.min(self.body.len())..]);
            match *self.body.get(self.at)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                // Control characters must be escaped in JSON.
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let end = self.at;
        self.at += 1;
        Some((start..end, escaped))
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.body.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.body.get(self.at).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next_byte()? == want).then_some(())
    }
}

/// How many leading whole 8-byte words of `bytes` hold no `"`, no `\\` and no control
/// character (SWAR: each test sets a byte's high bit where it matches).
fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Bytes below 0x20, or equal to a quote or a backslash.
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let special = has_zero(x ^ (ONES * b'"' as u64)) | has_zero(x ^ (ONES * b'\\' as u64));
        if below_space | special != 0 {
            break;
        }
        n += 8;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encoding;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    fn read(body: &str) -> Option<PutRecordsView> {
        PutRecordsView::read(&Bytes::copy_from_slice(body.as_bytes()))
    }

    /// Whatever the reader reads, the generic decoder reads the same way.
    fn agrees(body: &[u8]) -> Result<bool, TestCaseError> {
        let Some(view) = PutRecordsView::read(&Bytes::copy_from_slice(body)) else {
            return Ok(false);
        };
        let generic = Encoding::Json.decode::<PutRecordsInput>(body);
        prop_assert!(
            generic.is_ok(),
            "the reader read what the decoder refuses: {generic:?}"
        );
        prop_assert_eq!(view.to_input(), generic.unwrap_or_default());
        Ok(true)
    }

    #[test]
    fn reads_what_the_sdks_send() {
        let v = read(
            r#"{"Records":[{"Data":"aGVsbG8=","PartitionKey":"k1"},{"Data":"","PartitionKey":"k\u00e9","ExplicitHashKey":"7"}],"StreamName":"s"}"#,
        )
        .unwrap();
        assert_eq!(v.stream_name(), Some("s"));
        assert_eq!(v.stream_arn(), None);
        let e: Vec<_> = v.entries().collect();
        assert_eq!(e[0].data().as_deref(), Some(&b"hello"[..]));
        assert_eq!(e[0].partition_key(), Some("k1"));
        assert_eq!(e[1].partition_key(), Some("k\u{e9}"));
        assert_eq!(
            e[1].partition_key_bytes().as_deref(),
            Some("k\u{e9}".as_bytes())
        );
        assert_eq!(e[1].explicit_hash_key(), Some("7"));
        assert_eq!(e[1].data_len(), Some(0));
    }

    #[test]
    fn leaves_anything_unusual_to_the_generic_decoder() {
        for body in [
            r#"{"Records":[],"StreamName":"s","Extra":1}"#,
            r#"{"Records":[{"Data":null,"PartitionKey":"k"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"aGVsbG8","PartitionKey":"k"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"YQ==","PartitionKey":"k","PartitionKey":"j"}]}"#,
            r#"{"StreamName":"s","StreamName":"t","Records":[]}"#,
            r#"{"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"YQ==","PartitionKey":"k"}]} x"#,
            r#"{"Records":[{"Data":"YQ==","PartitionKey":"k"},]}"#,
            "{\"Records\":[{\"Data\":\"YQ==\",\"PartitionKey\":\"a\tb\"}]}",
            r#"{"Records":[{"Data":"YQ==","PartitionKey":"k"}"#,
        ] {
            assert!(read(body).is_none(), "{body}");
        }
    }

    fn member(name: &str, value: String) -> String {
        format!("{}\"{name}\" :{}", ws(name.len()), value)
    }

    /// Some JSON whitespace, chosen by `n`.
    fn ws(n: usize) -> &'static str {
        ["", " ", "\n\t", "", "\r\n  "][n % 5]
    }

    fn entry() -> impl Strategy<Value = String> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of("[a-zA-Z0-9\u{e9}\u{1F600}\"\\\\/]{0,12}"),
            proptest::option::of("[0-9]{1,5}"),
            any::<bool>(),
        )
            .prop_map(|(data, key, hash, flip)| {
                let mut members = Vec::new();
                if let Some(d) = data {
                    members.push(member("Data", format!("\"{}\"", STANDARD.encode(d))));
                }
                if let Some(k) = key {
                    members.push(member("PartitionKey", serde_json::to_string(&k).unwrap()));
                }
                if let Some(h) = hash {
                    members.push(member("ExplicitHashKey", format!("\"{h}\"")));
                }
                if flip {
                    members.reverse();
                }
                format!("{{{}}}", members.join(","))
            })
    }

    fn body() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(entry(), 0..12),
            proptest::option::of("[a-zA-Z0-9_.-]{1,20}"),
            proptest::option::of("arn:aws:kinesis:[a-z0-9-]{1,12}:[0-9]{12}:stream/[a-z]{1,8}"),
            any::<bool>(),
        )
            .prop_map(|(entries, name, arn, flip)| {
                let mut members = vec![member("Records", format!("[ {} ]", entries.join(" , ")))];
                if let Some(n) = name {
                    members.push(member("StreamName", format!("\"{n}\"")));
                }
                if let Some(a) = arn {
                    members.push(member("StreamARN", serde_json::to_string(&a).unwrap()));
                }
                if flip {
                    members.reverse();
                }
                format!(" {{{}}}\n", members.join(","))
            })
    }

    proptest! {
        #[test]
        fn the_word_scan_stops_where_a_byte_scan_would(
            bytes in proptest::collection::vec(prop_oneof![
                4 => 0x20u8..=0x7f, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\')
            ], 0..80)
        ) {
            let first = bytes
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .unwrap_or(bytes.len());
            prop_assert_eq!(plain_prefix(&bytes), first / 8 * 8);
        }
    }

    proptest! {
        #[test]
        fn reads_plain_bodies_as_the_generic_decoder_does(body in body()) {
            prop_assert!(agrees(body.as_bytes())?, "plain body not read: {body}");
        }

        #[test]
        fn never_disagrees_on_altered_bodies(
            body in body(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = body.into_bytes();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            agrees(&bytes)?;
        }
    }
}
