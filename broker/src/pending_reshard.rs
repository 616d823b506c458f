//! A reshard the broker has accepted but not yet carried out, kept as its
//! request said so that it can be saved with the stream and completed after a
//! restart: once SplitShard, MergeShards or UpdateShardCount has answered 200,
//! the update happens, whatever happens to the process (docs/durable-store.md).

use serde::{Deserialize, Serialize};

/// An accepted reshard, by the shards and keys its request named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PendingReshard {
    /// SplitShard of shard `shard` at hash key `key` (decimal, as on the wire).
    Split {
        /// Index of the shard to split.
        shard: u32,
        /// The new starting hash key, decimal.
        key: String,
    },
    /// MergeShards of `shard` with `adjacent`, the one just above it.
    Merge {
        /// Index of the lower shard.
        shard: u32,
        /// Index of the shard just above it.
        adjacent: u32,
    },
    /// UpdateShardCount with UNIFORM_SCALING to `target` shards.
    Rescale {
        /// The target number of open shards.
        target: u32,
    },
}
