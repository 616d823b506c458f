//! The Kinesis producer library (in progress).
