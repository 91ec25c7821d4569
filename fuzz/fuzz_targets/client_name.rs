//! Fuzzes the client name from a `client` parameter or a User-Agent; the
//! checks are `presence_server::fuzzing::client_names`, shared with the property tests.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| presence_server::fuzzing::client_names(data));
