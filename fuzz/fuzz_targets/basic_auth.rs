//! Fuzzes the HTTP Basic `Authorization` parser; the
//! checks are `presence_server::fuzzing::basic_auth`, shared with the property tests.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| presence_server::fuzzing::basic_auth(data));
