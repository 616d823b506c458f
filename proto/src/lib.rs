//! The Kinesis Data Streams wire, shared by the broker, the producer and the consumer.
//!
//! ```
//! use kinesis_proto::hash_key::{hash_key_for_partition_key, even_split};
//! // Route a partition key to one of three shards, as Kinesis does.
//! let key = hash_key_for_partition_key("pk-1");
//! let shards = even_split(3);
//! let shard = shards.iter().position(|r| r.contains(key)).unwrap();
//! assert_eq!(shard, 2);
//! ```

pub mod aggregation;
pub mod aws_date;
pub mod client;
pub mod codec;
mod config_setters;
pub mod error;
pub mod event_stream;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash_key;
pub mod json_out;
pub mod limits;
pub mod md5_lanes;
pub mod model;
pub mod operation_types;
pub mod put_records_json;
pub mod put_records_view;
pub mod sequence;
pub mod shape;
pub mod shard_id;
pub mod shared_config;

pub use error::{ErrorCode, KinesisError};
