//! End-to-end tests: each starts a real server on `127.0.0.1:0` with a real
//! store (SQLite, or PostgreSQL for the several-node tests) and talks to it
//! over HTTP. One binary for all of them keeps link time down.

mod admin_live;
mod answer_cache;
mod client;
mod client_names;
mod conformance;
mod connections;
mod embed;
mod errors;
mod events;
mod health;
mod isolation;
mod isolation_property;
mod limits;
mod metrics;
mod nodes;
mod nodes_busy;
mod nodes_published;
mod realm_views;
mod restart;
mod settings_devices;
mod spec_requests;
mod status;
mod status_events;
mod store_transfer;
mod streams;
mod update_rule;
mod user_presence;
mod writer_panics;
