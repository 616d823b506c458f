//! Which files of a flow to read, in which order, from where: the rotation decisions.
//!
//! A file is known by device and inode plus a fingerprint (CRC-32 of its first bytes), so a
//! reused inode is a new file. Each file the flow reads gets a sequence number when first
//! seen; files are read in that order, so a file rotated away by rename is finished before
//! the file created in its place. Copy-truncate rotation shows up as an unknown file whose
//! first bytes are those of a known file (the copy, kept aside as a "shadow" and not read)
//! and then the known file shrinking or changing its first bytes: the known file's position
//! moves to the copy, and the truncated file starts afresh.
//!
//! Pure: [`FileTracker::update`] takes what the file system showed ([`Observed`]) and a clock
//! reading, so every rotation case is a unit test.

use crate::config::InitialPosition;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Bytes at the start of a file that make its fingerprint.
pub const FINGERPRINT_BYTES: usize = 1024;

/// Device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// CRC-32 of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// How many bytes it covers (fewer than [`FINGERPRINT_BYTES`] while the file is short).
    pub len: usize,
    /// Their CRC-32.
    pub crc: u32,
}

impl Fingerprint {
    /// The fingerprint of `head` (at most [`FINGERPRINT_BYTES`] of it).
    pub fn of(head: &[u8]) -> Fingerprint {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        Fingerprint {
            len: head.len(),
            crc: crc32fast::hash(head),
        }
    }

    /// Whether a file starting with `head` starts with the bytes this fingerprint covers.
    pub fn matches(&self, head: &[u8]) -> bool {
        head.len() >= self.len && crc32fast::hash(&head[..self.len]) == self.crc
    }
}

/// One file matching the pattern, as the file system showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Its path.
    pub path: PathBuf,
    /// Its identity.
    pub id: FileId,
    /// Its size.
    pub size: u64,
    /// Its modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Its first bytes (up to [`FINGERPRINT_BYTES`]).
    pub head: Vec<u8>,
}

/// A file the flow reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its place in reading order.
    pub seq: u64,
    /// Where it was last seen.
    pub path: PathBuf,
    /// Its identity.
    pub id: FileId,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Its size when last seen.
    pub size: u64,
    /// Bytes handed to the sender (a record boundary).
    pub read: u64,
    /// Bytes whose records are all in the stream (what the checkpoint keeps).
    pub committed: u64,
    /// Whether reading started at byte 0 and header lines are still to skip.
    pub from_start: bool,
    /// Clock reading (ms) when its size last changed.
    pub changed_at_ms: u64,
    /// Its first bytes as last seen (empty after a restore), to recognise a copy still being
    /// written.
    pub head: Vec<u8>,
}

impl Entry {
    /// Whether `o`, another file, is a copy of this one (complete or still being written).
    fn is_copied_to(&self, o: &Observed) -> bool {
        if self.fingerprint.len == 0 || o.id == self.id {
            return false;
        }
        if o.head.len() >= self.fingerprint.len {
            self.fingerprint.matches(&o.head)
        } else {
            !o.head.is_empty() && self.head.starts_with(&o.head)
        }
    }
}

/// A file's saved position (what a checkpoint holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Place in reading order.
    pub seq: u64,
    /// Path when saved.
    pub path: PathBuf,
    /// Identity.
    pub id: FileId,
    /// Fingerprint.
    pub fingerprint: Fingerprint,
    /// Committed offset.
    pub offset: u64,
}

/// What an update found, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new file to read from `offset`.
    New {
        /// Path.
        path: PathBuf,
        /// Where reading starts.
        offset: u64,
    },
    /// A file was truncated or replaced under the same inode; it is read from the start.
    Truncated {
        /// Path.
        path: PathBuf,
    },
    /// A file was copied and truncated: its unread tail is read from the copy.
    CopyAdopted {
        /// The copy's path.
        copy: PathBuf,
        /// The truncated file's path.
        original: PathBuf,
    },
    /// A file vanished; `unread` bytes of it were never read.
    Vanished {
        /// Path.
        path: PathBuf,
        /// Bytes not read.
        unread: u64,
    },
}

/// The files of one flow.
#[derive(Debug, Clone)]
pub struct FileTracker {
    entries: BTreeMap<u64, Entry>,
    /// Unknown files whose first bytes are a known file's: copies, not read unless adopted.
    shadows: HashMap<FileId, (u64, Observed)>,
    next_seq: u64,
    started: bool,
    initial: InitialPosition,
}

impl FileTracker {
    /// A tracker that has never seen a file: the first update applies `initial` to the newest
    /// file and skips older ones (as the Java agent does).
    pub fn new(initial: InitialPosition) -> FileTracker {
        FileTracker {
            entries: BTreeMap::new(),
            shadows: HashMap::new(),
            next_seq: 1,
            started: false,
            initial,
        }
    }

    /// A tracker resuming from a checkpoint: known files continue at their offset, files not
    /// in it are new and read from their start.
    pub fn restore(initial: InitialPosition, saved: Vec<Saved>) -> FileTracker {
        let mut t = FileTracker::new(initial);
        t.started = true;
        for s in saved {
            t.next_seq = t.next_seq.max(s.seq + 1);
            t.entries.insert(
                s.seq,
                Entry {
                    seq: s.seq,
                    path: s.path,
                    id: s.id,
                    fingerprint: s.fingerprint,
                    size: s.offset,
                    read: s.offset,
                    committed: s.offset,
                    from_start: false,
                    changed_at_ms: 0,
                    head: Vec::new(),
                },
            );
        }
        t
    }

    /// Applies what the file system shows now.
    pub fn update(&mut self, observed: Vec<Observed>, now_ms: u64) -> Vec<Event> {
        let mut events = Vec::new();
        let by_id: HashMap<FileId, &Observed> = observed.iter().map(|o| (o.id, o)).collect();
        let known: HashMap<FileId, u64> = self.entries.values().map(|e| (e.id, e.seq)).collect();
        // Shadows: unknown files starting with a known file's first bytes.
        self.shadows.clear();
        for o in &observed {
            if known.contains_key(&o.id) {
                continue;
            }
            if let Some(e) = self.entries.values().find(|e| e.is_copied_to(o)) {
                self.shadows.insert(o.id, (e.seq, o.clone()));
            }
        }
        let mut fresh: Vec<Observed> = Vec::new();
        let seqs: Vec<u64> = self.entries.keys().copied().collect();
        for seq in seqs {
            let Some(entry) = self.entries.get(&seq) else {
                continue;
            };
            let current = by_id.get(&entry.id).copied();
            let intact =
                current.is_some_and(|o| entry.fingerprint.matches(&o.head) && o.size >= entry.read);
            if let (true, Some(o)) = (intact, current) {
                let e = self.entries.get_mut(&seq).expect("present");
                if o.size != e.size {
                    e.changed_at_ms = now_ms;
                }
                e.size = o.size;
                e.path = o.path.clone();
                if e.fingerprint.len < FINGERPRINT_BYTES && o.head.len() > e.fingerprint.len {
                    e.fingerprint = Fingerprint::of(&o.head);
                }
                if e.head.len() < o.head.len() {
                    e.head = o.head.clone();
                }
                continue;
            }
            // Truncated, replaced or gone: is there a copy to finish from? A copy still being
            // written (shorter than what was read) is waited for.
            if current.is_some()
                && self
                    .shadows
                    .values()
                    .any(|(of, o)| *of == seq && o.size < entry.read)
            {
                continue;
            }
            let copy = self
                .shadows
                .iter()
                .filter(|(_, (of, o))| *of == seq && o.size >= entry.read)
                .map(|(id, _)| *id)
                .next();
            let mut e = self.entries.remove(&seq).expect("present");
            if let Some(copy_id) = copy {
                let (_, o) = self.shadows.remove(&copy_id).expect("present");
                events.push(Event::CopyAdopted {
                    copy: o.path.clone(),
                    original: e.path.clone(),
                });
                e.id = o.id;
                e.path = o.path.clone();
                e.size = o.size;
                e.head = o.head.clone();
                e.changed_at_ms = now_ms;
                self.entries.insert(seq, e);
            } else if current.is_some() {
                events.push(Event::Truncated {
                    path: e.path.clone(),
                });
            } else {
                events.push(Event::Vanished {
                    path: e.path.clone(),
                    unread: e.size.saturating_sub(e.read),
                });
            }
            if let Some(o) = current {
                fresh.push(o.clone());
            }
        }
        let known: HashMap<FileId, u64> = self.entries.values().map(|e| (e.id, e.seq)).collect();
        for o in &observed {
            if !known.contains_key(&o.id)
                && !self.shadows.contains_key(&o.id)
                && !fresh.iter().any(|f| f.id == o.id)
            {
                fresh.push(o.clone());
            }
        }
        // New files are read oldest first. Timestamps are coarse (a few ms), so files written
        // in one burst tie: then the file at the live name (the shortest matching name, e.g.
        // `app.log` beside `app.log.1`) is the newest, since rotation moves data away from it;
        // among the others, the older inode first.
        let live = observed
            .iter()
            .min_by_key(|o| (o.path.as_os_str().len(), o.path.clone()))
            .map(|o| o.id);
        fresh.sort_by_key(|o| (o.mtime_ns, Some(o.id) == live, o.id.ino));
        let newest = fresh.last().map(|o| o.id);
        for o in fresh {
            // Before the first start the agent sends only what the newest file gets next
            // (from its start with START_OF_FILE); afterwards every new file is read whole.
            let whole = self.started
                || (Some(o.id) == newest && self.initial == InitialPosition::StartOfFile);
            let offset = if whole { 0 } else { o.size };
            let seq = self.next_seq;
            self.next_seq += 1;
            events.push(Event::New {
                path: o.path.clone(),
                offset,
            });
            self.entries.insert(
                seq,
                Entry {
                    seq,
                    path: o.path,
                    id: o.id,
                    fingerprint: Fingerprint::of(&o.head),
                    size: o.size,
                    read: offset,
                    committed: offset,
                    from_start: offset == 0,
                    changed_at_ms: now_ms,
                    head: o.head,
                },
            );
        }
        self.started = true;
        events
    }

    /// Whether the tracker has looked at the files once (or was restored): only then is its
    /// state worth a checkpoint.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Files in reading order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// One file.
    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    /// Whether a file after `seq` exists: `seq` was rotated away and gets no more lines.
    pub fn has_newer(&self, seq: u64) -> bool {
        self.entries.range(seq + 1..).next().is_some()
    }

    /// Records up to `read` of file `seq` were handed to the sender.
    pub fn advance(&mut self, seq: u64, read: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.read = e.read.max(read);
            e.from_start = false;
        }
    }

    /// Every record of file `seq` up to `offset` is in the stream.
    pub fn commit(&mut self, seq: u64, offset: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.committed = e.committed.max(offset);
        }
    }

    /// What the checkpoint keeps.
    pub fn saved(&self) -> Vec<Saved> {
        self.entries
            .values()
            .map(|e| Saved {
                seq: e.seq,
                path: e.path.clone(),
                id: e.id,
                fingerprint: e.fingerprint,
                offset: e.committed,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(path: &str, ino: u64, content: &[u8], mtime: i128) -> Observed {
        Observed {
            path: path.into(),
            id: FileId { dev: 1, ino },
            size: content.len() as u64,
            mtime_ns: mtime,
            head: content[..content.len().min(FINGERPRINT_BYTES)].to_vec(),
        }
    }

    fn order(t: &FileTracker) -> Vec<(String, u64)> {
        t.entries()
            .map(|e| (e.path.display().to_string(), e.read))
            .collect()
    }

    #[test]
    fn first_start_reads_only_the_newest_file() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        t.update(
            vec![obs("/l/a.1", 5, b"old\n", 1), obs("/l/a", 6, b"new\n", 2)],
            0,
        );
        assert_eq!(order(&t), [("/l/a.1".into(), 4), ("/l/a".into(), 0)]);
        let mut t = FileTracker::new(InitialPosition::EndOfFile);
        t.update(vec![obs("/l/a", 6, b"new\n", 2)], 0);
        assert_eq!(order(&t), [("/l/a".into(), 4)]);
        // A file created later is new: read from its start.
        t.update(
            vec![obs("/l/a", 6, b"new\n", 2), obs("/l/b", 7, b"b\n", 3)],
            1,
        );
        assert_eq!(order(&t), [("/l/a".into(), 4), ("/l/b".into(), 0)]);
    }

    #[test]
    fn rename_rotation_finishes_the_old_file_first() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        t.update(vec![obs("/l/a", 6, b"1\n2\n", 1)], 0);
        t.advance(1, 2);
        // a → a.1 (same inode, grew), new a created, with equal coarse timestamps.
        let ev = t.update(
            vec![obs("/l/a.1", 6, b"1\n2\n3\n", 5), obs("/l/a", 9, b"4\n", 5)],
            1,
        );
        assert_eq!(
            ev,
            [Event::New {
                path: "/l/a".into(),
                offset: 0
            }]
        );
        assert_eq!(order(&t), [("/l/a.1".into(), 2), ("/l/a".into(), 0)]);
        assert!(t.has_newer(1));
    }

    #[test]
    fn copy_truncate_moves_the_position_to_the_copy() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        let content = b"line 1\nline 2\nline 3\n";
        t.update(vec![obs("/l/a", 6, &content[..14], 1)], 0);
        t.advance(1, 7);
        // The copy appears first: it is not read.
        t.update(
            vec![obs("/l/a", 6, content, 2), obs("/l/a.1", 8, content, 2)],
            1,
        );
        assert_eq!(order(&t), [("/l/a".into(), 7)]);
        // Then the original is truncated and written again.
        let ev = t.update(
            vec![obs("/l/a", 6, b"line 4\n", 3), obs("/l/a.1", 8, content, 2)],
            2,
        );
        assert_eq!(
            ev,
            [
                Event::CopyAdopted {
                    copy: "/l/a.1".into(),
                    original: "/l/a".into()
                },
                Event::New {
                    path: "/l/a".into(),
                    offset: 0
                }
            ]
        );
        assert_eq!(order(&t), [("/l/a.1".into(), 7), ("/l/a".into(), 0)]);
    }

    #[test]
    fn unknown_copy_and_truncated_live_file_with_equal_timestamps() {
        // Both appeared between two looks, in the same clock tick: the live file (lower
        // inode, truncated and written again) must come after the copy of its old content.
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        t.update(vec![obs("/l/a.1", 5, b"1\n", 1)], 0);
        t.update(
            vec![
                obs("/l/a.1", 5, b"1\n", 1),
                obs("/l/a", 6, b"3\n", 7),
                obs("/l/a.2", 8, b"2\n", 7),
            ],
            1,
        );
        assert_eq!(
            order(&t),
            [
                ("/l/a.1".into(), 0),
                ("/l/a.2".into(), 0),
                ("/l/a".into(), 0)
            ]
        );
    }

    #[test]
    fn copy_and_truncate_seen_at_once() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        let content = b"line 1\nline 2\n";
        t.update(vec![obs("/l/a", 6, content, 1)], 0);
        t.advance(1, 7);
        t.update(
            vec![obs("/l/a", 6, b"", 3), obs("/l/a.1", 8, content, 2)],
            1,
        );
        assert_eq!(order(&t), [("/l/a.1".into(), 7), ("/l/a".into(), 0)]);
    }

    #[test]
    fn a_copy_still_being_written_is_waited_for() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        let content = b"line 1\nline 2\nline 3\n";
        t.update(vec![obs("/l/a", 6, content, 1)], 0);
        t.advance(1, 21);
        // The copy was seen half-written, the original already truncated.
        let mut partial = obs("/l/a.1", 8, &content[..14], 2);
        partial.size = 14;
        let ev = t.update(vec![obs("/l/a", 6, b"", 3), partial], 1);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(order(&t), [("/l/a".into(), 21)]);
        t.update(
            vec![obs("/l/a", 6, b"", 3), obs("/l/a.1", 8, content, 2)],
            2,
        );
        assert_eq!(order(&t), [("/l/a.1".into(), 21), ("/l/a".into(), 0)]);
    }

    #[test]
    fn reused_inode_is_a_new_file() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        t.update(vec![obs("/l/a", 6, b"aaaa\nbbbb\n", 1)], 0);
        t.advance(1, 10);
        // Deleted, and a new file got the same inode with other content, already longer.
        let ev = t.update(vec![obs("/l/a", 6, b"cccc\ndddd\neeee\n", 2)], 1);
        assert_eq!(
            ev,
            [
                Event::Truncated {
                    path: "/l/a".into()
                },
                Event::New {
                    path: "/l/a".into(),
                    offset: 0
                }
            ]
        );
        assert_eq!(order(&t), [("/l/a".into(), 0)]);
    }

    #[test]
    fn vanished_files_are_dropped() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        t.update(vec![obs("/l/a", 6, b"x\ny\n", 1)], 0);
        t.advance(1, 2);
        let ev = t.update(vec![], 1);
        assert_eq!(
            ev,
            [Event::Vanished {
                path: "/l/a".into(),
                unread: 2
            }]
        );
        assert!(t.saved().is_empty());
    }

    #[test]
    fn restore_resumes_known_files_and_reads_new_ones_from_the_start() {
        let mut t = FileTracker::new(InitialPosition::EndOfFile);
        t.update(vec![obs("/l/a", 6, b"1\n2\n", 1)], 0);
        t.commit(1, 4);
        let saved = t.saved();
        let mut r = FileTracker::restore(InitialPosition::EndOfFile, saved);
        r.update(
            vec![obs("/l/a.1", 6, b"1\n2\n3\n", 1), obs("/l/a", 9, b"4\n", 1)],
            0,
        );
        assert_eq!(order(&r), [("/l/a.1".into(), 4), ("/l/a".into(), 0)]);
    }

    #[test]
    fn fingerprint_grows_with_a_short_file() {
        let mut t = FileTracker::new(InitialPosition::StartOfFile);
        t.update(vec![obs("/l/a", 6, b"ab", 1)], 0);
        let long = vec![b'x'; 3000];
        let mut content = b"ab".to_vec();
        content.extend_from_slice(&long);
        t.update(vec![obs("/l/a", 6, &content, 2)], 1);
        let e = t.entry(1).unwrap();
        assert_eq!(e.fingerprint.len, FINGERPRINT_BYTES);
        assert_eq!(e.size, 3002);
    }
}

/// Whether file name `name` matches glob `pattern` (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`,
/// `{a,b}`), as the Java agent's `filePattern` (a Java `glob:` matcher) matches the last path
/// component.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if pattern.is_empty() {
        return name.is_empty();
    }
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // Returns (matched, length of the class in the pattern, brackets included).
        let mut i = 1;
        let negate = matches!(p.get(1), Some('!') | Some('^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                if p[i] <= c && c <= p[i + 2] {
                    matched = true;
                }
                i += 3;
            } else {
                if p[i] == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('{') => match p.iter().position(|&c| c == '}') {
                Some(close) => p[1..close].split(|&c| c == ',').any(|alt| {
                    let mut q = alt.to_vec();
                    q.extend_from_slice(&p[close + 1..]);
                    go(&q, n)
                }),
                // An unclosed brace is a literal.
                None => n.first() == Some(&'{') && go(&p[1..], &n[1..]),
            },
            Some('[') => match (n.first(), class(p, n.first().copied().unwrap_or('\0'))) {
                (Some(_), Some((true, len))) => go(&p[len..], &n[1..]),
                (Some(_), Some((false, _))) => false,
                // An unclosed bracket is a literal.
                (Some('['), None) => go(&p[1..], &n[1..]),
                _ => false,
            },
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Whether a file is a compressed archive the agent never reads (`.gz`, `.bz2`, `.zip`, any
/// case), as the Java agent skips them.
pub fn is_compressed(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".gz", ".bz2", ".zip"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Whether a path component holds glob characters.
pub fn has_glob(component: &str) -> bool {
    component.contains(['*', '?', '[', '{'])
}

#[cfg(test)]
mod glob_tests {
    use super::glob_match;
    use proptest::prelude::*;

    #[test]
    fn globs() {
        assert!(glob_match("app.log*", "app.log"));
        assert!(glob_match("app.log*", "app.log.1"));
        assert!(!glob_match("app.log*", "xapp.log"));
        assert!(glob_match("access_log.?", "access_log.3"));
        assert!(glob_match("*.[0-9]", "a.7"));
        assert!(!glob_match("*.[!0-9]", "a.7"));
        assert!(glob_match("*.[!0-9]", "a.x"));
        assert!(glob_match("[ab]*", "b1"));
        assert!(glob_match("*.{log,txt}", "a.txt"));
        assert!(glob_match("app.{log,out}*", "app.out.1"));
        assert!(!glob_match("*.{log,txt}", "a.csv"));
        assert!(!glob_match("a?", "a"));
    }

    proptest! {
        #[test]
        fn literal_names_match_themselves(name in "[a-zA-Z0-9._-]{1,20}") {
            prop_assert!(glob_match(&name, &name));
            let star = format!("{}*", &name[..name.len() / 2]);
            prop_assert!(glob_match(&star, &name));
        }
    }
}
