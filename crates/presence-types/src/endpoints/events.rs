//! Real-time presence: `POST /api/v1/register`, `GET` and `DELETE
//! /api/v1/events` (Zulip's event queues), and `GET /api/v1/presence/stream`
//! (the same events as Server-Sent Events).
//!
//! A client registers a queue and gets everyone's presence at that moment;
//! from then on the server puts a `presence` event in the queue whenever a
//! user of the realm comes online or what others see of them changes, and
//! the client long-polls `GET /events` for them. Event ids count from 0 in
//! each queue; a poll's `last_event_id` acknowledges every event up to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

use crate::endpoints::update_presence::Presences;
use crate::endpoints::user_status::{UserStatus, UserStatusEvent};
use crate::envelope::SuccessTag;
use crate::presence::{ClientPresence, ModernPresence};

/// The parameters of `POST /register`, as form fields.
///
/// List and object values are JSON inside the field
/// (`event_types=["presence"]`). Zulip's other register parameters
/// (`narrow`, `apply_markdown`, `client_gravatar`, `include_subscribers`,
/// `all_public_streams`) are accepted and have no effect: they concern
/// messages, which this server does not have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterParams {
    /// A JSON list of the event types the queue should receive, e.g.
    /// `["presence"]`; absent (or `null`) means every type. Types this
    /// server never produces are accepted and simply never occur.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::json_text::JsonStringList>, nullable = false, example = json!("[\"presence\"]"))]
    pub event_types: Option<Vec<String>>,
    /// A JSON list of the data to include in the answer, if different from
    /// `event_types`; presence is fetched when it names `presence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::json_text::JsonStringList>, nullable = false, example = json!("[\"presence\"]"))]
    pub fetch_event_types: Option<Vec<String>>,
    /// Answer `presences` in the modern format keyed by user id, and leave
    /// `email` out of legacy `presence` events.
    #[serde(default)]
    pub slim_presence: bool,
    /// Only users with a report in this many days (default 14; 0 returns nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presence_history_limit_days: Option<i64>,
    /// A JSON object of the client's capabilities. `simplified_presence_events`
    /// (boolean) asks for `presence` events in the modern format, and the
    /// modern format in the answer too; other keys are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::json_text::JsonCapabilities>, nullable = false, example = json!("{\"simplified_presence_events\": true}"))]
    pub client_capabilities: Option<ClientCapabilities>,
}

/// The value of `client_capabilities` after parsing: the capabilities
/// that concern presence. Keys this server does not know are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCapabilities {
    /// `presence` events in the modern shape, and the modern format in
    /// the answer to `POST /register` (or a stream's first message).
    #[serde(default)]
    pub simplified_presence_events: bool,
}

/// The response of `POST /register`.
///
/// `presences`, `presence_last_update_id`, `server_timestamp` and the two
/// `server_presence_*` settings are present when presence is fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// Parameters the request carried that this endpoint does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
    /// The new queue's id, for `GET /events` and `DELETE /events`.
    pub queue_id: String,
    /// The id to acknowledge in the first `GET /events`: always -1, since
    /// the answer already reflects everything before the queue existed.
    pub last_event_id: i64,
    /// The server's name and version.
    pub zulip_version: String,
    /// The Zulip release this server's behaviour follows.
    pub zulip_merge_base: String,
    /// The highest Zulip API feature level whose presence behaviour this server implements.
    pub zulip_feature_level: i64,
    /// Seconds a client should wait for a `GET /events` answer before it
    /// gives up: longer than the heartbeat interval.
    pub event_queue_longpoll_timeout_seconds: i64,
    /// The largest update id among `presences`, or -1 if there is none; a
    /// later `POST /users/me/presence` may pass it as `last_update_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presence_last_update_id: Option<i64>,
    /// The server's clock when the answer was made (Unix seconds, fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server_timestamp: Option<f64>,
    /// How often the client should report its presence, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server_presence_ping_interval_seconds: Option<i64>,
    /// Seconds without a report after which a user is offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server_presence_offline_threshold_seconds: Option<i64>,
    /// The statuses of the realm's active users that have one, keyed by
    /// user id, when `user_status` is fetched; users whose status is empty
    /// and who are not away are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub user_status: Option<BTreeMap<String, UserStatus>>,
    /// Everyone's presence when the queue was made: legacy format keyed by
    /// email, or modern keyed by user id with `slim_presence` or
    /// `simplified_presence_events`. Written last, so that a server can
    /// send a shared, already serialized object in its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presences: Option<Presences>,
}

/// The query parameters of `GET /events`.
///
/// The options Zulip's view reads for a queue it would make itself
/// (`event_types`, `narrow`, `apply_markdown`, `lifespan_secs`, ...) are
/// accepted and checked for their JSON type, and have no effect: this
/// server makes queues with `POST /register` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GetEventsParams {
    /// The queue, as `POST /register` answered it.
    pub queue_id: String,
    /// The largest event id the client has received: it and every earlier
    /// event are acknowledged and dropped from the queue. -1 before any.
    pub last_event_id: i64,
    /// Answer at once, even with no events, instead of waiting.
    #[serde(default)]
    pub dont_block: bool,
}

/// The response of `GET /events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GetEventsResponse {
    /// Always `"success"`.
    pub result: SuccessTag,
    /// Always empty on success.
    pub msg: String,
    /// Parameters the request carried that this endpoint does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_parameters_unsupported: Option<Vec<String>>,
    /// The queue's events after `last_event_id`, oldest first; empty only
    /// with `dont_block` (or when another poll of the same queue took over).
    pub events: Vec<Event>,
    /// The queue the events come from, in an answer that waited for them
    /// (Zulip names the queue when it finishes a waiting poll, and not in
    /// an answer given at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub queue_id: Option<String>,
}

/// The parameters of `DELETE /events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeleteQueueParams {
    /// The queue to delete.
    pub queue_id: String,
}

/// One event of a queue, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A user's presence changed in a way others see.
    Presence(PresenceEvent),
    /// A user's custom status changed.
    UserStatus(UserStatusEvent),
    /// Nothing happened for a while: the server answers a waiting poll with
    /// this so that connections stay alive. Acknowledge it like any event.
    Heartbeat(HeartbeatEvent),
}

/// A `presence` event.
///
/// Sent when a user comes online (Zulip's rule: the user's first report,
/// or an active report after none for the offline threshold less the ping
/// interval and 10 s), and whenever what others see of the user changes:
/// offline to idle or active, idle to active, active to idle, and to
/// offline, the last two noticed by the server itself at the threshold.
///
/// Two shapes: by default the legacy one (`user_id`, `email`,
/// `server_timestamp`, `presence`; no `email` for a queue registered with
/// `slim_presence`), and with the `simplified_presence_events` capability
/// the modern one (`presences` only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PresenceEvent {
    /// Legacy shape: the user whose presence changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub user_id: Option<i64>,
    /// Legacy shape: that user's email (absent with `slim_presence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub email: Option<String>,
    /// Legacy shape: the server's clock when the change was seen (Unix
    /// seconds, fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server_timestamp: Option<f64>,
    /// Legacy shape: the user's entry for each of their clients, keyed by
    /// client name (statuses are `active` or `idle`; the reader decides
    /// offline from the timestamps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presence: Option<BTreeMap<String, ClientPresence>>,
    /// Modern shape: the changed users' presence keyed by user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presences: Option<BTreeMap<String, ModernPresence>>,
    /// The event's id in its queue.
    pub id: i64,
}

/// A `heartbeat` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatEvent {
    /// The event's id in its queue.
    pub id: i64,
}

/// The query parameters of `GET /presence/stream`: those of `POST
/// /register` that shape presence, with the same encodings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresenceStreamParams {
    /// Modern format keyed by user id in the first message, and no `email`
    /// in legacy events.
    #[serde(default)]
    pub slim_presence: bool,
    /// Only users with a report in this many days in the first message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presence_history_limit_days: Option<i64>,
    /// A JSON object; `{"simplified_presence_events": true}` selects the
    /// modern event shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::json_text::JsonCapabilities>, nullable = false)]
    pub client_capabilities: Option<ClientCapabilities>,
}

/// One message of the presence stream, as a Server-Sent Events reader
/// reports it: OpenAPI 3.1 gives a `text/event-stream` response the schema
/// of one message.
///
/// Its schema is written by hand, to say what `data` holds for each kind
/// of message (`contentMediaType` and `contentSchema`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMessage {
    /// `QUEUE:EVENT`; send the last one back as `Last-Event-ID` to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `register` (the first message of a new queue), `presence` or `user_status`.
    pub event: String,
    /// JSON: a [`RegisterResponse`] for `register`, an [`Event`] otherwise.
    pub data: String,
    /// Milliseconds to wait before reconnecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
}

impl StreamMessage {
    fn variant(event: &str, data: &str, description: &str) -> ObjectBuilder {
        // utoipa has no builder for `contentSchema`; it is a plain JSON
        // Schema keyword, added beside `contentMediaType` as such.
        let content_schema: Extensions = [(
            "contentSchema",
            serde_json::json!({"$ref": format!("#/components/schemas/{data}")}),
        )]
        .into_iter()
        .collect();
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("`QUEUE:EVENT`")),
            )
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([event])),
            )
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .extensions(Some(content_schema)),
            )
            .property(
                "retry",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .description(Some("Milliseconds to wait before reconnecting")),
            )
            .required("event")
            .required("data")
    }
}

impl utoipa::PartialSchema for StreamMessage {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "One message of the presence stream: `register`, whose data is what \
                 `POST /register` answers, or `presence` or `user_status`, whose data is \
                 an event as `GET /events` gives it.",
            ))
            .item(StreamMessage::variant(
                "register",
                "RegisterResponse",
                "The first message of a stream on a new queue",
            ))
            .item(StreamMessage::variant(
                "presence",
                "Event",
                "An event of the stream's queue",
            ))
            .item(StreamMessage::variant(
                "user_status",
                "Event",
                "A status event of the stream's queue",
            ))
            .into()
    }
}

impl ToSchema for StreamMessage {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        // `contentSchema` names these by reference, which utoipa cannot see.
        schemas.push((
            "RegisterResponse".to_owned(),
            <RegisterResponse as utoipa::PartialSchema>::schema(),
        ));
        <RegisterResponse as ToSchema>::schemas(schemas);
        schemas.push((
            "Event".to_owned(),
            <Event as utoipa::PartialSchema>::schema(),
        ));
        <Event as ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_apart_by_type() {
        let heartbeat: Event = serde_json::from_str(r#"{"type":"heartbeat","id":3}"#).unwrap();
        assert_eq!(heartbeat, Event::Heartbeat(HeartbeatEvent { id: 3 }));
        let modern: Event = serde_json::from_str(
            r#"{"type":"presence","presences":{"7":{"active_timestamp":5,"idle_timestamp":6}},"id":4}"#,
        )
        .unwrap();
        let Event::Presence(event) = modern else {
            panic!("a presence event")
        };
        assert_eq!(event.id, 4);
        assert!(event.user_id.is_none());
        assert_eq!(event.presences.unwrap()["7"].idle_timestamp, 6);
    }

    #[test]
    fn the_id_is_the_last_field_written() {
        // The server shares one encoding of an event among all queues and
        // appends each queue's id; that relies on `id` coming last.
        let event = Event::Presence(PresenceEvent {
            user_id: Some(1),
            email: None,
            server_timestamp: Some(1.5),
            presence: Some(BTreeMap::new()),
            presences: None,
            id: 0,
        });
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.starts_with(r#"{"type":"presence","#), "{json}");
        assert!(json.ends_with(r#","id":0}"#), "{json}");
    }
}
