//! The `result` field that opens every response body.
//!
//! Zulip clients branch on `result` before anything else, so each body type
//! carries a tag type that can only serialize to the right word: a success
//! body cannot claim to be an error by accident.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `result` of a successful response: always `"success"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuccessTag {
    /// The only value.
    #[default]
    Success,
}

/// The `result` of an error response: always `"error"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorTag {
    /// The only value.
    #[default]
    Error,
}
