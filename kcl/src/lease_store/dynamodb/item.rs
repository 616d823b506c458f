//! A lease as a DynamoDB item, attribute for attribute as the Java KCL writes it
//! (docs/kcl-leases.md, "The DynamoDB item").
//!
//! Pure conversion, no I/O: the store builds its requests from these names and
//! reads every scanned or returned item through [`lease_from_item`].

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use kinesis_proto::hash_key::{HashRange, parse_hash_key};

use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease::Lease;

/// `leaseKey` (S, the table's hash key).
pub(crate) const LEASE_KEY: &str = "leaseKey";
/// `leaseOwner` (S, absent when unowned).
pub(crate) const LEASE_OWNER: &str = "leaseOwner";
/// `leaseCounter` (N).
pub(crate) const LEASE_COUNTER: &str = "leaseCounter";
/// `ownerSwitchesSinceCheckpoint` (N).
pub(crate) const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
/// `checkpoint` (S: a sequence number or a sentinel).
pub(crate) const CHECKPOINT: &str = "checkpoint";
/// `checkpointSubSequenceNumber` (N).
pub(crate) const CHECKPOINT_SUB: &str = "checkpointSubSequenceNumber";
/// `pendingCheckpoint` (S, optional).
pub(crate) const PENDING_CHECKPOINT: &str = "pendingCheckpoint";
/// `pendingCheckpointSubSequenceNumber` (N, optional).
pub(crate) const PENDING_CHECKPOINT_SUB: &str = "pendingCheckpointSubSequenceNumber";
/// `pendingCheckpointState` (B, optional).
pub(crate) const PENDING_CHECKPOINT_STATE: &str = "pendingCheckpointState";
/// `parentShardId` (SS, absent when there are no parents; singular, as the KCL names it).
pub(crate) const PARENT_SHARD_ID: &str = "parentShardId";
/// `childShardIds` (SS, absent until the shard ends).
pub(crate) const CHILD_SHARD_IDS: &str = "childShardIds";
/// `startingHashKey` (S, decimal).
pub(crate) const STARTING_HASH_KEY: &str = "startingHashKey";
/// `endingHashKey` (S, decimal).
pub(crate) const ENDING_HASH_KEY: &str = "endingHashKey";
/// `streamName` (S, multi-stream leases: the serialized stream identifier).
pub(crate) const STREAM_NAME: &str = "streamName";
/// `shardId` (S, multi-stream leases).
pub(crate) const SHARD_ID: &str = "shardId";
/// `throughputKBps` (N, KCL 3.x; the owner's measured rate in KiB/s).
pub(crate) const THROUGHPUT_KBPS: &str = "throughputKBps";
/// `checkpointOwner` (S, KCL 3.x; present only during a graceful hand-off).
pub(crate) const CHECKPOINT_OWNER: &str = "checkpointOwner";

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A number attribute.
pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A decimal number attribute (finite values only; others are written as 0).
pub(crate) fn decimal(value: f64) -> AttributeValue {
    AttributeValue::N(if value.is_finite() {
        value.to_string()
    } else {
        "0".to_string()
    })
}

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The key of the item holding `lease_key`.
pub(crate) fn key(lease_key: &str) -> Item {
    HashMap::from([(LEASE_KEY.to_string(), s(lease_key))])
}

/// The whole item for a new lease, as the KCL's serializer writes one: optional
/// attributes are left out rather than written empty (DynamoDB refuses empty sets).
pub(crate) fn item_from_lease(lease: &Lease) -> Item {
    let mut item = key(&lease.lease_key);
    item.insert(LEASE_COUNTER.into(), n(lease.lease_counter));
    if let Some(owner) = &lease.lease_owner {
        item.insert(LEASE_OWNER.into(), s(owner));
    }
    if let Some(owner) = &lease.checkpoint_owner {
        item.insert(CHECKPOINT_OWNER.into(), s(owner));
    }
    if let Some(ids) = &lease.multi_stream {
        item.insert(STREAM_NAME.into(), s(&ids.stream_identifier));
        item.insert(SHARD_ID.into(), s(&ids.shard_id));
    }
    if let Some(kbps) = lease.throughput_kbps {
        item.insert(THROUGHPUT_KBPS.into(), decimal(kbps));
    }
    item.insert(
        OWNER_SWITCHES.into(),
        n(lease.owner_switches_since_checkpoint),
    );
    item.insert(CHECKPOINT.into(), s(lease.checkpoint.checkpoint_str()));
    item.insert(
        CHECKPOINT_SUB.into(),
        n(lease.checkpoint.sub_sequence_number()),
    );
    if let Some(pending) = &lease.pending_checkpoint {
        item.insert(PENDING_CHECKPOINT.into(), s(pending.checkpoint_str()));
        item.insert(
            PENDING_CHECKPOINT_SUB.into(),
            n(pending.sub_sequence_number()),
        );
    }
    if let Some(state) = &lease.pending_checkpoint_state {
        item.insert(
            PENDING_CHECKPOINT_STATE.into(),
            AttributeValue::B(Blob::new(state.clone())),
        );
    }
    if let Some(parents) = string_set(&lease.parent_shard_ids) {
        item.insert(PARENT_SHARD_ID.into(), parents);
    }
    if let Some(children) = string_set(&lease.child_shard_ids) {
        item.insert(CHILD_SHARD_IDS.into(), children);
    }
    if let Some(range) = lease.hash_key_range {
        item.insert(STARTING_HASH_KEY.into(), s(range.start.to_string()));
        item.insert(ENDING_HASH_KEY.into(), s(range.end.to_string()));
    }
    item
}

/// A string-set attribute, `None` for an empty set (which DynamoDB cannot store).
pub(crate) fn string_set(ids: &BTreeSet<String>) -> Option<AttributeValue> {
    (!ids.is_empty()).then(|| AttributeValue::Ss(ids.iter().cloned().collect()))
}

/// Read an item back into a [`Lease`]; attributes this library does not know are ignored
/// here and left untouched in the table (every write names only the attributes it changes).
pub(crate) fn lease_from_item(item: &Item) -> Result<Lease, Error> {
    let lease_key = match item.get(LEASE_KEY) {
        Some(AttributeValue::S(k)) => k.clone(),
        _ => {
            return Err(Error::corrupt(
                "<unknown>",
                "an item of the lease table has no string leaseKey",
            ));
        }
    };
    let key = lease_key.as_str();
    let string = |name: &str| -> Result<Option<&str>, Error> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
            Some(other) => Err(Error::corrupt(
                key,
                format!("{name} is not a string: {other:?}"),
            )),
        }
    };
    let number = |name: &str| -> Result<Option<u64>, Error> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| Error::corrupt(key, format!("{name} is not a whole number: {v:?}"))),
            Some(other) => Err(Error::corrupt(
                key,
                format!("{name} is not a number: {other:?}"),
            )),
        }
    };
    let set = |name: &str| -> Result<BTreeSet<String>, Error> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(BTreeSet::new()),
            Some(AttributeValue::Ss(v)) => Ok(v.iter().cloned().collect()),
            // A list of strings is what some hand-written tools put there; accept it.
            Some(AttributeValue::L(v)) => v
                .iter()
                .map(|e| match e {
                    AttributeValue::S(s) => Ok(s.clone()),
                    other => Err(Error::corrupt(
                        key,
                        format!("{name} holds a non-string: {other:?}"),
                    )),
                })
                .collect(),
            Some(other) => Err(Error::corrupt(
                key,
                format!("{name} is not a string set: {other:?}"),
            )),
        }
    };
    let position = |name: &str, sub_name: &str| -> Result<Option<ExtendedSequenceNumber>, Error> {
        match string(name)? {
            // The KCL treats an empty pending checkpoint as none.
            None | Some("") => Ok(None),
            Some(c) => ExtendedSequenceNumber::parse(c, number(sub_name)?.unwrap_or(0))
                .map(Some)
                .map_err(|e| Error::corrupt(key, format!("{name}: {e}"))),
        }
    };
    let checkpoint = position(CHECKPOINT, CHECKPOINT_SUB)?
        .ok_or_else(|| Error::corrupt(key, "the item has no checkpoint"))?;
    let hash_key = |v: &str| {
        parse_hash_key(v).ok_or_else(|| Error::corrupt(key, format!("{v:?} is not a hash key")))
    };
    let hash_key_range = match (string(STARTING_HASH_KEY)?, string(ENDING_HASH_KEY)?) {
        (Some(start), Some(end)) if !start.is_empty() && !end.is_empty() => {
            Some(HashRange::new(hash_key(start)?, hash_key(end)?))
        }
        // The KCL ignores a half-written range the same way.
        _ => None,
    };
    // KCL 2.x/3.x write the state as B on updates; an item it created with a prepared
    // checkpoint carries a number there instead (its serializer's slip), which the KCL
    // itself reads as "no state": so do we.
    let pending_checkpoint_state = match item.get(PENDING_CHECKPOINT_STATE) {
        Some(AttributeValue::B(b)) => Some(b.as_ref().to_vec()),
        _ => None,
    };
    Ok(Lease {
        lease_owner: string(LEASE_OWNER)?.map(str::to_string),
        checkpoint_owner: string(CHECKPOINT_OWNER)?.map(str::to_string),
        multi_stream: match (string(STREAM_NAME)?, string(SHARD_ID)?) {
            (Some(stream), Some(shard)) => Some(crate::lease::MultiStreamIds {
                stream_identifier: stream.to_string(),
                shard_id: shard.to_string(),
            }),
            _ => None,
        },
        throughput_kbps: match item.get(THROUGHPUT_KBPS) {
            // A value we cannot read is only a missing measurement, never a broken lease.
            Some(AttributeValue::N(v)) => v.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        },
        lease_counter: number(LEASE_COUNTER)?.unwrap_or(0),
        checkpoint,
        pending_checkpoint: position(PENDING_CHECKPOINT, PENDING_CHECKPOINT_SUB)?,
        pending_checkpoint_state,
        owner_switches_since_checkpoint: number(OWNER_SWITCHES)?.unwrap_or(0),
        parent_shard_ids: set(PARENT_SHARD_ID)?,
        child_shard_ids: set(CHILD_SHARD_IDS)?,
        hash_key_range,
        lease_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQ: &str = "49600871682957036442365024926191073437251060580128653314";

    fn full() -> Lease {
        let mut l = Lease::new(
            "shardId-000000000007",
            ExtendedSequenceNumber::parse(SEQ, 3).expect("seq"),
        )
        .with_parent_shard_ids(["shardId-000000000001", "shardId-000000000002"])
        .with_hash_key_range(HashRange::new(1 << 100, u128::MAX));
        l.lease_owner = Some("worker-a".into());
        l.lease_counter = 41;
        l.pending_checkpoint = Some(ExtendedSequenceNumber::ShardEnd);
        l.pending_checkpoint_state = Some(vec![0, 1, 255]);
        l.owner_switches_since_checkpoint = 5;
        l.child_shard_ids = ["shardId-000000000009".to_string()].into();
        l
    }

    #[test]
    fn a_lease_round_trips_through_its_item() {
        let lease = full();
        assert_eq!(
            lease_from_item(&item_from_lease(&lease)).expect("reads"),
            lease
        );
        let plain = Lease::new("shardId-000000000000", ExtendedSequenceNumber::TrimHorizon);
        let item = item_from_lease(&plain);
        assert_eq!(lease_from_item(&item).expect("reads"), plain);
        // Optional attributes are absent, not empty.
        for absent in [
            LEASE_OWNER,
            PARENT_SHARD_ID,
            CHILD_SHARD_IDS,
            PENDING_CHECKPOINT,
        ] {
            assert!(
                !item.contains_key(absent),
                "{absent} written for a plain lease"
            );
        }
    }

    #[test]
    fn the_item_uses_the_kcl_attribute_names_and_types() {
        let item = item_from_lease(&full());
        assert_eq!(item[LEASE_KEY], s("shardId-000000000007"));
        assert_eq!(item["leaseCounter"], AttributeValue::N("41".into()));
        assert_eq!(item["checkpoint"], s(SEQ));
        assert_eq!(
            item["checkpointSubSequenceNumber"],
            AttributeValue::N("3".into())
        );
        assert_eq!(item["pendingCheckpoint"], s("SHARD_END"));
        assert!(matches!(item["parentShardId"], AttributeValue::Ss(ref v) if v.len() == 2));
        assert!(matches!(item["childShardIds"], AttributeValue::Ss(ref v) if v.len() == 1));
        assert!(matches!(
            item["pendingCheckpointState"],
            AttributeValue::B(_)
        ));
        assert_eq!(
            item["endingHashKey"],
            s("340282366920938463463374607431768211455")
        );
    }

    fn position() -> impl proptest::strategy::Strategy<Value = ExtendedSequenceNumber> {
        use proptest::prelude::*;
        prop_oneof![
            Just(ExtendedSequenceNumber::TrimHorizon),
            Just(ExtendedSequenceNumber::Latest),
            Just(ExtendedSequenceNumber::AtTimestamp),
            Just(ExtendedSequenceNumber::ShardEnd),
            ("[1-9][0-9]{0,55}", any::<u64>()).prop_map(|(seq, sub)| {
                ExtendedSequenceNumber::parse(&seq, sub).expect("decimal")
            }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_lease_round_trips(
            key in "[a-zA-Z0-9:_-]{1,60}",
            owner in proptest::option::of("[ -~]{1,40}"),
            counter in proptest::num::u64::ANY,
            switches in proptest::num::u64::ANY,
            checkpoint in position(),
            pending in proptest::option::of(position()),
            state in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..64)),
            parents in proptest::collection::btree_set("shardId-[0-9]{12}", 0..3),
            children in proptest::collection::btree_set("shardId-[0-9]{12}", 0..3),
            range in proptest::option::of((proptest::num::u128::ANY, proptest::num::u128::ANY)),
        ) {
            let mut lease = Lease::new(key, checkpoint);
            lease.lease_owner = owner;
            lease.lease_counter = counter;
            lease.owner_switches_since_checkpoint = switches;
            lease.pending_checkpoint = pending;
            lease.pending_checkpoint_state = state;
            lease.parent_shard_ids = parents;
            lease.child_shard_ids = children;
            lease.hash_key_range = range.map(|(a, b)| HashRange::new(a.min(b), a.max(b)));
            proptest::prop_assert_eq!(lease_from_item(&item_from_lease(&lease)).expect("reads"), lease);
        }
    }

    #[test]
    fn odd_items_are_reported_not_panicked_on() {
        let mut item = item_from_lease(&full());
        item.insert(LEASE_COUNTER.into(), s("not a number"));
        assert!(matches!(
            lease_from_item(&item),
            Err(Error::CorruptLease { .. })
        ));
        let mut item = item_from_lease(&full());
        item.insert(CHECKPOINT.into(), s("garbage"));
        assert!(matches!(
            lease_from_item(&item),
            Err(Error::CorruptLease { .. })
        ));
        let mut item = item_from_lease(&full());
        item.remove(LEASE_KEY);
        assert!(matches!(
            lease_from_item(&item),
            Err(Error::CorruptLease { .. })
        ));
        // The KCL's numeric pendingCheckpointState on created items reads as no state.
        let mut item = item_from_lease(&full());
        item.insert(PENDING_CHECKPOINT_STATE.into(), n(3));
        assert_eq!(
            lease_from_item(&item)
                .expect("reads")
                .pending_checkpoint_state,
            None
        );
    }
}
