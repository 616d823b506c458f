//! One application consuming several streams (KCL `MultiStreamTracker`,
//! docs/kcl3-coordination.md "Multi-stream"): which streams, how often the list is
//! re-read, and when the leases of a stream no longer listed are deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::stream_identifier::StreamIdentifier;

type StreamList = dyn Fn() -> Vec<String> + Send + Sync;

/// The streams a multi-stream [`Scheduler`](crate::scheduler::Scheduler) consumes.
#[derive(Clone)]
pub struct MultiStreamTracker {
    streams: Arc<StreamList>,
    /// How often the list is re-read (default 60 s, the KCL's new-stream check interval).
    pub refresh_interval: Duration,
    /// `FormerStreamsLeasesDeletionStrategy`: `None` keeps a dropped stream's leases
    /// (`NoLeaseDeletionStrategy`, the KCL's default); `Some(wait)` deletes them once the
    /// stream has been missing from the list for `wait`
    /// (`AutoDetectionAndDeferredDeletionStrategy.waitPeriodToDeleteFormerStreams`).
    pub former_streams_deletion_wait: Option<Duration>,
}

impl std::fmt::Debug for MultiStreamTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiStreamTracker")
            .field("refresh_interval", &self.refresh_interval)
            .field(
                "former_streams_deletion_wait",
                &self.former_streams_deletion_wait,
            )
            .finish_non_exhaustive()
    }
}

impl MultiStreamTracker {
    /// A fixed list of stream names.
    pub fn list<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        Self::callback(move || names.clone())
    }

    /// Stream names from `streams`, called again every [`refresh_interval`](Self::refresh_interval).
    pub fn callback(streams: impl Fn() -> Vec<String> + Send + Sync + 'static) -> Self {
        MultiStreamTracker {
            streams: Arc::new(streams),
            refresh_interval: Duration::from_secs(60),
            former_streams_deletion_wait: None,
        }
    }

    /// Set [`refresh_interval`](Self::refresh_interval).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Delete a dropped stream's leases once it has been missing for `wait`.
    pub fn delete_former_streams_after(mut self, wait: Duration) -> Self {
        self.former_streams_deletion_wait = Some(wait);
        self
    }

    /// The stream names now, de-duplicated and without empty names.
    pub fn stream_names(&self) -> BTreeSet<String> {
        (self.streams)()
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect()
    }
}

/// Streams that have leases in the table but are no longer listed, and since when.
#[derive(Debug, Clone, Default)]
pub struct FormerStreams {
    missing_since: BTreeMap<StreamIdentifier, u64>,
}

impl FormerStreams {
    /// Given the streams listed now and those with leases in the table, at `now_ms`:
    /// the streams whose leases are due for deletion after `wait_ms`. A stream listed
    /// again is forgotten; a due stream is returned once.
    pub fn due(
        &mut self,
        listed: &BTreeSet<StreamIdentifier>,
        leased: &BTreeSet<StreamIdentifier>,
        now_ms: u64,
        wait_ms: u64,
    ) -> Vec<StreamIdentifier> {
        self.missing_since
            .retain(|s, _| !listed.contains(s) && leased.contains(s));
        for stream in leased.difference(listed) {
            self.missing_since.entry(stream.clone()).or_insert(now_ms);
        }
        let due: Vec<StreamIdentifier> = self
            .missing_since
            .iter()
            .filter(|(_, since)| now_ms.saturating_sub(**since) >= wait_ms)
            .map(|(s, _)| s.clone())
            .collect();
        for s in &due {
            self.missing_since.remove(s);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> StreamIdentifier {
        StreamIdentifier::parse(&format!("000000000000:{name}:1")).expect("valid")
    }

    fn set(names: &[&str]) -> BTreeSet<StreamIdentifier> {
        names.iter().map(|n| id(n)).collect()
    }

    #[test]
    fn a_dropped_streams_leases_are_due_after_the_wait() {
        let mut f = FormerStreams::default();
        let leased = set(&["a", "b"]);
        assert!(f.due(&set(&["a", "b"]), &leased, 0, 1_000).is_empty());
        assert!(f.due(&set(&["a"]), &leased, 100, 1_000).is_empty());
        assert!(f.due(&set(&["a"]), &leased, 1_099, 1_000).is_empty());
        assert_eq!(f.due(&set(&["a"]), &leased, 1_100, 1_000), [id("b")]);
        assert!(
            f.due(&set(&["a"]), &set(&["a"]), 1_200, 1_000).is_empty(),
            "once"
        );
    }

    #[test]
    fn a_stream_listed_again_is_kept() {
        let mut f = FormerStreams::default();
        let leased = set(&["a", "b"]);
        assert!(f.due(&set(&["a"]), &leased, 0, 1_000).is_empty());
        assert!(f.due(&set(&["a", "b"]), &leased, 500, 1_000).is_empty());
        assert!(
            f.due(&set(&["a"]), &leased, 1_000, 1_000).is_empty(),
            "clock restarted"
        );
        assert_eq!(f.due(&set(&["a"]), &leased, 2_000, 1_000), [id("b")]);
    }

    #[test]
    fn the_tracker_lists_names_from_its_callback() {
        let t = MultiStreamTracker::list(["x", "", "y", "x"])
            .refresh_interval(Duration::from_secs(1))
            .delete_former_streams_after(Duration::from_secs(5));
        assert_eq!(t.stream_names().into_iter().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(t.refresh_interval, Duration::from_secs(1));
        assert_eq!(t.former_streams_deletion_wait, Some(Duration::from_secs(5)));
        let d = MultiStreamTracker::callback(Vec::new);
        assert_eq!(d.refresh_interval, Duration::from_secs(60));
        assert_eq!(d.former_streams_deletion_wait, None);
    }
}
