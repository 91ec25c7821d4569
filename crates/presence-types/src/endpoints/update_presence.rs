//! `POST /api/v1/users/me/presence`: report the caller's presence and fetch everyone's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Ref, Schema, Type};

use crate::envelope::SuccessTag;
use crate::presence::{LegacyPresence, ModernPresence, ReportedStatus};

/// The parameters of `POST /users/me/presence`, after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdatePresenceParams {
    /// The caller's status on the calling client. Required.
    pub status: ReportedStatus,
    /// Report only: answer with the bare envelope, without anyone's presence.
    #[serde(default)]
    pub ping_only: bool,
    /// Whether the user did something since the last report (accepted and
    /// not otherwise used, as in Zulip).
    #[serde(default)]
    pub new_user_input: bool,
    /// Deprecated: answer in the modern format keyed by user id.
    #[serde(default)]
    pub slim_presence: bool,
    /// Answer in the modern format; above 0, only with users changed after this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_update_id: Option<i64>,
    /// Only users with a report in this many days (default 14; 0 returns
    /// nobody, even with `last_update_id`; a very large number returns
    /// everyone with a report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub history_limit_days: Option<i64>,
}

/// Everyone's presence in one of the two formats.
///
/// Its schema is written by hand: an empty object is valid in both formats,
/// so the alternatives are `anyOf`, where a derived schema would say `oneOf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Presences {
    /// Modern format keyed by user id (as a string).
    Modern(BTreeMap<String, ModernPresence>),
    /// Legacy format keyed by email.
    Legacy(BTreeMap<String, LegacyPresence>),
}

impl utoipa::PartialSchema for Presences {
    fn schema() -> RefOr<Schema> {
        let map_of = |name: &str, description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(description))
                .additional_properties(Some(Ref::from_schema_name(name)))
                .build()
        };
        AnyOfBuilder::new()
            .description(Some(
                "Modern format keyed by user id (with `last_update_id` or `slim_presence`), \
                 or legacy format keyed by email.",
            ))
            .item(map_of("ModernPresence", "Modern format keyed by user id"))
            .item(map_of("LegacyPresence", "Legacy format keyed by email"))
            .into()
    }
}

impl ToSchema for Presences {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (name, schema) in [
            (
                "ModernPresence",
                <ModernPresence as utoipa::PartialSchema>::schema(),
            ),
            (
                "LegacyPresence",
                <LegacyPresence as utoipa::PartialSchema>::schema(),
            ),
        ] {
            schemas.push((name.to_owned(), schema));
        }
        <LegacyPresence as ToSchema>::schemas(schemas);
    }
}

/// The response of `POST /users/me/presence`.
///
/// With `ping_only=true` only the envelope is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdatePresenceResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// Parameters the request carried that this endpoint does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
    /// The server's clock when the answer was made (Unix seconds, fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server_timestamp: Option<f64>,
    /// The largest update id among the returned users; if none is returned,
    /// the `last_update_id` sent, or -1 when none was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presence_last_update_id: Option<i64>,
    /// Everyone's presence (absent with `ping_only=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presences: Option<Presences>,
}
