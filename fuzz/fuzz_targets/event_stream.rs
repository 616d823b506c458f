#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kinesis_proto::fuzzing::event_stream(data));
