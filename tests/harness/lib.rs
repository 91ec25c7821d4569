//! Helpers for the end-to-end tests: a real server on `127.0.0.1:0` over a
//! real store (SQLite in a temporary directory, or PostgreSQL in a schema of
//! its own), a controllable clock, and a small HTTP client that returns
//! status, headers and JSON. Several servers on one PostgreSQL schema are
//! several nodes.
//!
//! Every JSON body received goes through [`contract::check`], which holds
//! it to the committed OpenAPI spec, and to Zulip's own shapes for the
//! operations Zulip has too ([`zulip`]).
//!
//! Users are created the way an operator creates them, through the admin
//! functions on a second connection to the same database, and the helpers
//! wait until the running server has noticed them.
//!
//! Event queues and presence streams have helpers too ([`TestServer::poll`],
//! [`sse::EventStream`]); every wait they do is bounded, so a missing event
//! fails the test instead of hanging it.
//!
//! The harness's modules: [`server`] starts, restarts and stops servers
//! and knows their store; [`admin`] creates realms, users and embed keys
//! as an operator does; [`requests`] sends requests and checks answers;
//! [`events`] registers queues, polls them and opens streams;
//! [`failing`] wraps a store to fail on demand;
//! [`contract`] holds answers to the spec, and [`zulip`] to Zulip's
//! shapes; [`sse`] reads streams; [`raw`] speaks bytes to the server.

pub mod admin;
pub mod contract;
pub mod events;
pub mod failing;
pub mod raw;
pub mod requests;
pub mod schemas;
pub mod server;
pub mod sse;
pub mod zulip;

use std::path::{Path, PathBuf};
use std::time::Duration;

use presence_server::config::{Config, RateLimit};
use presence_server::store::Store;
use serde_json::Value;

pub use requests::Answer;
pub use server::{Backing, TestServer, import_realm};

/// The time test servers start at (2027-01-15).
pub const START: i64 = 1_800_000_000;

/// The longest any helper waits for the server before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A user's credentials.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: i64,
    /// The email.
    pub email: String,
    /// The API key.
    pub key: String,
}

/// How to start a test server.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's configuration (listen address and data dir are set by the harness).
    pub config: Config,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: Config {
                rate_limit: RateLimit::Off,
                ip_rate_limit: RateLimit::Off,
                directory_poll_ms: 20,
                // Short enough that a poll waiting for an event that never
                // comes ends well within a test's patience.
                event_heartbeat_ms: 5_000,
                ..Config::default()
            },
        }
    }
}

/// Whether a presence event, in any of its formats, is about this user.
pub fn event_is_about(event: &Value, user_id: i64) -> bool {
    event["user_id"] == user_id || event["presences"].get(user_id.to_string()).is_some()
}

/// The path of a file next to the test sources.
pub fn source_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Whether a store holds a user with this email in this realm.
pub fn store_has_user(store: &mut dyn Store, realm: &str, email: &str) -> bool {
    store
        .list_users(realm)
        .map(|users| users.iter().any(|u| u.email == email))
        .unwrap_or(false)
}
