//! Wire types of the Zulip-compatible presence API.
//!
//! This crate is the one place that says what goes over the wire: every
//! request parameter set, response body and error body of the contract
//! (`docs/PROTOCOL.md` §6, with the error body of §1.2), with serde for the
//! JSON and utoipa for the OpenAPI schema. It does no I/O and knows nothing
//! of hyper, tokio or storage, so the server, the client and any third party
//! can share it.
//!
//! Layout:
//! - [`envelope`]: the `result`/`msg` envelope every body carries;
//! - [`error`]: the error body and its machine-readable codes;
//! - [`presence`]: the presence formats (legacy per-client, `aggregated`, modern);
//! - [`endpoints`]: one module per endpoint, each with its parameters and response;
//! - [`json_text`]: the schemas of parameters whose value is JSON text.

pub mod endpoints;
pub mod envelope;
pub mod error;
pub mod json_text;
pub mod presence;

pub use envelope::{ErrorTag, SuccessTag};
pub use error::{ErrorBody, ErrorCode};
pub use presence::{
    AggregatedPresence, ClientPresence, LegacyPresence, ModernPresence, PresenceStatus,
    RESERVED_CLIENT_NAMES, ReportedStatus, UserPresence, is_reserved_client_name,
};
