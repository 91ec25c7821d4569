//! Fuzzes the query string and form parser (split at a place chosen by the first byte); the
//! checks are `presence_server::fuzzing::params`, shared with the property tests.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| presence_server::fuzzing::params(data));
