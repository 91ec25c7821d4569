//! A Zulip-compatible presence server.
//!
//! Layout, in the direction data flows:
//! - [`http`]: accept loop, routing, Basic auth, strict parameter parsing,
//!   rate limits, and every refusal as Zulip's JSON error body;
//! - [`service`]: the presence rules over in-memory state, and the writer
//!   thread that makes changes durable before anyone sees them and turns
//!   what others see change into events;
//! - [`events`]: event queues, their fan-out, long-polls and the presence
//!   stream;
//! - [`store`]: the durable `Store` trait and its two implementations,
//!   SQLite (embedded, one node) and PostgreSQL (several nodes).
//!
//! Beside them: [`ids`] (typed ids), [`json_out`] (JSON written by hand on
//! hot paths), [`words`] (bytes read eight at a time), [`config`]
//! (settings), [`clock`] (injectable time), [`server`] (load, serve, close:
//! the one way every server runs), [`compression`] (gzip that reuses shared
//! pieces), [`keys`] (API keys), [`admin`] (what the admin commands do),
//! [`cli`] (the `presence-server` command line), [`log_writer`] (the log's
//! bounded buffer, written by a thread of its own), [`logging`] (the log's
//! format and escaping), [`metrics`] (what the server counts, for
//! Prometheus), [`request_log`] (each request's line, written straight into
//! that buffer) and [`fuzzing`] (the fuzz targets' checks, shared with the
//! property tests).
//!
//! docs/ARCHITECTURE.md is the map of the code and of the rules it keeps;
//! docs/PROTOCOL.md is the wire contract.

pub mod admin;
pub mod cli;
pub mod clock;
pub mod compression;
pub mod config;
pub mod events;
pub mod fuzzing;
pub mod http;
pub mod ids;
pub mod json_out;
pub mod keys;
pub mod log_writer;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod request_log;
pub mod server;
pub mod service;
pub mod store;
pub mod transfer;
pub mod words;
