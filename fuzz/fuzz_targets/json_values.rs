//! Fuzzes the JSON-in-form values: booleans and integers only when they are that JSON; the
//! checks are `presence_server::fuzzing::json_values`, shared with the property tests.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| presence_server::fuzzing::json_values(data));
