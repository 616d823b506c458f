#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kinesis_broker::fuzzing::token(data));
