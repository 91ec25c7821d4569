//! One module per endpoint of docs/PROTOCOL.md §6: its parameters and its
//! response.
//!
//! Parameter structs hold values after the server's strict parsing (see
//! `docs/PROTOCOL.md` §1.3): non-string values travel as JSON inside form
//! fields, so a client encodes `ping_only: true` as `ping_only=true`.

pub mod events;
pub mod get_realm_presence;
pub mod get_user_presence;
pub mod push_devices;
pub mod server_settings;
pub mod settings;
pub mod update_presence;
pub mod user_status;
pub mod users;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::SuccessTag;

/// A success body with nothing but the envelope, for endpoints that only act.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmptySuccess {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// Parameters the request carried that this endpoint does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
}
