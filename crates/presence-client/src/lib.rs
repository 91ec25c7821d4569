//! A typed async client for the Zulip-compatible presence API.
//!
//! [`Client`] has one method per endpoint of the contract but events (server settings,
//! one user's presence, everyone's presence, reporting presence, users,
//! settings, push devices), each returning the `presence-types` value the
//! contract documents.
//!
//! ```no_run
//! use presence_client::{Client, Reachability, DEFAULT_OFFLINE_THRESHOLD, unix_now};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Or `ClientBuilder::from_env()?`: ZULIP_* variables, then ~/.zuliprc, as Zulip's Python client.
//! let client = Client::builder("chat.example.com", "pager@example.com", "0123456789abcdefghijABCDEFGHIJ01")
//!     .client_name("pager")
//!     .build()?;
//! let answer = client.user_presence("alice@example.com").await?;
//! match Reachability::of(&answer.presence, DEFAULT_OFFLINE_THRESHOLD, unix_now()) {
//!     Reachability::Active => println!("alice is at her desk"),
//!     Reachability::Idle => println!("alice is connected but away"),
//!     Reachability::Offline => println!("alice is offline: page her phone"),
//! }
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - [`Client`] (in `client`) sends requests; [`ClientBuilder`] sets it up
//!   from explicit values or from a zuliprc and the environment ([`config`]);
//! - [`Error`]: transport failure, documented API error, undecodable body,
//!   unexpected status; [`RetryPolicy`]: which GETs are retried, and when;
//! - [`Reachability`]: active, idle or offline, decided the way Zulip's
//!   web app decides it;
//! - [`types`]: the wire types, re-exported.
//!
//! Requests carry `User-Agent: PresenceClient/<version>`; GET parameters go in
//! the query string, others in a form body, non-string values as JSON text.

mod builder;
mod client;
pub mod config;
mod error;
mod params;
mod reachability;
mod response;
mod retry;
#[cfg(test)]
mod spec_examples;
mod user_ref;

pub use presence_types as types;

pub use builder::{ClientBuilder, DEFAULT_TIMEOUT, USER_AGENT};
pub use client::Client;
pub use config::{ConfigError, normalize_site};
pub use error::Error;
pub use reachability::{ActivityTimestamps, DEFAULT_OFFLINE_THRESHOLD, Reachability, unix_now};
pub use response::ResponseValue;
pub use retry::RetryPolicy;
pub use user_ref::UserRef;

/// The HTTP status type used in [`Error`] and [`ResponseValue`].
pub use reqwest::StatusCode;
