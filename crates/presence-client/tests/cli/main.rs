//! The `presence` binary against a real server started in the test: what it
//! prints and how it exits. One test binary for the crate keeps link time down.

mod config;
mod errors;
mod get;
mod help;
mod ping_and_set;
mod pipes;
mod python_client;
mod realm;
mod status;
mod support;
