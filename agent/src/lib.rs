//! A log-file shipper for Kinesis Data Streams that reads the Amazon Kinesis Agent's
//! `agent.json`: it tails files across rotation, checkpoints what is in the stream, and sends
//! through kpl with aggregation and back-pressure.
//!
//! Modules, one concept each: [`config`] (agent.json), [`file_tracker`] (which file, from
//! where: rotation decisions), [`record_splitter`] (bytes to records), [`processing`]
//! (dataProcessingOptions), [`sender`] (kpl and completion order), [`checkpoint`] (the file),
//! [`metrics`] (Prometheus), [`tailer`] (one flow's loop) and [`agent`] (wiring them).

#![warn(missing_docs)]

pub mod agent;
pub mod checkpoint;
pub mod config;
pub mod file_tracker;
pub mod metrics;
pub mod processing;
pub mod record_splitter;
pub mod sender;
pub mod tailer;
