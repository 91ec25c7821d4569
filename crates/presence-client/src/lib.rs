//! A typed async client for the Zulip-compatible presence API.
//!
//! This crate will hold the reqwest-based `Client` and the `presence`
//! command-line tool; for now it re-exports the wire types it will speak, so
//! dependants can already share one vocabulary with the server.

pub use presence_types as types;
