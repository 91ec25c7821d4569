//! The real-time endpoints: `POST /register`, `GET` and `DELETE /events`,
//! and `GET /presence/stream`.
//!
//! Parameters are Zulip's, read strictly into the wire types' parameter
//! structs (see [`super::params::FromParams`]); the queue work is the
//! service's. `GET /events` answers are assembled from the events' shared
//! encodings (see [`crate::events::encode`]) rather than re-serialized per
//! queue.

use std::collections::BTreeMap;

use http::{HeaderMap, Response, StatusCode};
use presence_types::endpoints::EmptySuccess;
use presence_types::endpoints::events::{
    DeleteQueueParams, GetEventsParams, GetEventsResponse, PresenceStreamParams, RegisterParams,
    RegisterResponse, StreamMessage,
};
use presence_types::endpoints::update_presence::Presences;
use presence_types::json_text::JsonCapabilities;
use presence_types::{ErrorBody, SuccessTag};

use super::body::Body;
use super::handlers::{
    FEATURE_LEVEL, HandlerResult, empty_success, json, json_response, server_version,
    with_presences,
};
use super::params::Params;
use crate::events::sse::{self, EventStreamBody, StreamTiming};
use crate::events::{Entry, Polled};
use crate::service::realtime::{PresenceSnapshot, RegisterOptions, Registration};
use crate::service::{Caller, Format, Reader, Service};

/// The register answer for a new queue (also the data of a new stream's
/// first message), with the snapshot's shared presences in their place.
fn register_answer(
    service: &Service,
    registration: &Registration,
    ignored: Option<Vec<String>>,
) -> Response<Body> {
    let version = server_version();
    let rules = service.rules();
    let snapshot = registration.snapshot.as_ref();
    let envelope = RegisterResponse {
        result: SuccessTag::Success,
        msg: String::new(),
        ignored_parameters_unsupported: ignored,
        queue_id: registration.queue.id().to_string(),
        last_event_id: -1,
        zulip_version: version.clone(),
        zulip_merge_base: version,
        zulip_feature_level: FEATURE_LEVEL,
        event_queue_longpoll_timeout_seconds: service.event_settings().longpoll_timeout_secs(),
        presence_last_update_id: snapshot.map(PresenceSnapshot::presence_last_update_id),
        server_timestamp: snapshot.map(|s| s.server_timestamp),
        server_presence_ping_interval_seconds: snapshot.map(|_| rules.ping_interval_secs),
        server_presence_offline_threshold_seconds: snapshot.map(|_| rules.offline_threshold_secs),
        user_status: registration.user_status.clone(),
        presences: snapshot.map(|s| match s.format {
            Format::Legacy => Presences::Legacy(BTreeMap::new()),
            Format::Modern => Presences::Modern(BTreeMap::new()),
        }),
    };
    match snapshot {
        Some(snapshot) => with_presences(&envelope, snapshot.answer.clone()),
        None => json(StatusCode::OK, &envelope),
    }
}

/// `POST /register`.
#[utoipa::path(
    post,
    path = "/api/v1/register",
    tag = "events",
    operation_id = "register_queue",
    summary = "Open an event queue, and get everyone's presence as of its start",
    description = "The queue receives a `presence` event whenever a user of the caller's realm comes online (Zulip's rule) or what others see of them changes (active, idle, offline), and a `heartbeat` after a silence. Everything before the queue is in the answer; everything after arrives as events. `event_types` chooses the events (absent: all; types this server never produces are accepted), `fetch_event_types` (else `event_types`) whether presence is in the answer. The legacy format keyed by email is the default; `slim_presence` or the `simplified_presence_events` capability give the modern format keyed by user id, and the capability also the modern event shape. A user holds at most a configured number of queues (32); a new one drops the least recently used. Queues unused for 10 minutes expire.",
    request_body(content = Option<RegisterParams>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The queue, and everyone's presence when presence is fetched", body = RegisterResponse,
         links(
             ("poll" = (operation_id = "get_events",
                 parameters(("queue_id" = "$response.body#/queue_id"), ("last_event_id" = "$response.body#/last_event_id")),
                 description = "The new queue's events, from the first")),
             ("delete" = (operation_id = "delete_queue",
                 request_body = json!({"queue_id": "$response.body#/queue_id"}),
                 description = "Deletes the new queue"))
         ),
         example = json!({"result": "success", "msg": "", "queue_id": "fb67bf8a-c031-47cc-84cf-ed80accacda8",
             "last_event_id": -1, "zulip_version": "presence-server 0.1.0", "zulip_merge_base": "presence-server 0.1.0",
             "zulip_feature_level": 497, "event_queue_longpoll_timeout_seconds": 90,
             "presences": {"alice@acme.test": {
                 "aggregated": {"client": "website", "status": "active", "timestamp": 1795915346},
                 "website": {"client": "website", "status": "active", "timestamp": 1795915346, "pushable": false}}},
             "presence_last_update_id": 3, "server_timestamp": 1795915346.574311,
             "server_presence_ping_interval_seconds": 60, "server_presence_offline_threshold_seconds": 200})),
        (status = 400, description = "A parameter that does not parse: `event_types is not a list`, `client_capabilities is not a dict`, ...", body = ErrorBody,
         example = json!({"result": "error", "msg": "event_types is not a list", "code": "BAD_REQUEST"})),
    )
)]
pub fn register(service: &Service, caller: &Caller, params: &Params) -> HandlerResult {
    let options = RegisterOptions::from(params.read::<RegisterParams>()?);
    let registration = service.register(caller, &options)?;
    Ok(register_answer(service, &registration, params.ignored()))
}

/// What follows the events in a `GET /events` answer, as Zulip shapes it.
enum EventsTail<'a> {
    /// A poll answered at once (Zulip's view returning): the parameters no
    /// one read, if any.
    Ignored(Option<&'a [String]>),
    /// A poll that waited (Zulip's `finish_handler` answering it later):
    /// the queue's id, and no list of parameters.
    QueueId(&'a str),
}

/// The `GET /events` answer, assembled from the events' shared encodings.
fn events_body(events: &[Entry], tail: EventsTail<'_>) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.event.shared_len() + 24).sum();
    let mut out = Vec::with_capacity(size + 128);
    out.extend_from_slice(br#"{"result":"success","msg":"","events":["#);
    for (i, entry) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        entry.event.write_json(entry.id, &mut out);
    }
    out.push(b']');
    match tail {
        EventsTail::Ignored(None) => {}
        EventsTail::Ignored(Some(ignored)) => {
            out.extend_from_slice(br#","ignored_parameters_unsupported":"#);
            serde_json::to_writer(&mut out, ignored).expect("strings serialize");
        }
        EventsTail::QueueId(queue_id) => {
            out.extend_from_slice(br#","queue_id":"#);
            serde_json::to_writer(&mut out, queue_id).expect("a string serializes");
        }
    }
    out.push(b'}');
    out
}

/// `GET /events`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "get_events",
    summary = "Wait for a queue's next events",
    description = "Acknowledges every event up to `last_event_id` (they are dropped), then answers the queue's remaining events, oldest first. If there are none it waits until one comes, or answers a `heartbeat` event after about 50 s; with `dont_block=true` (and for HEAD) it answers at once. Event ids count from 0 in each queue. A new request on a queue ends a request still waiting on it, which answers what it has. An unknown, expired, deleted or dropped queue (or another user's) is `BAD_EVENT_QUEUE_ID`: register again. The options Zulip reads here for a queue it would make itself (`event_types`, `narrow`, `apply_markdown`, `lifespan_secs`, ...) are accepted, checked for their JSON type and without effect; other parameters are listed in `ignored_parameters_unsupported`. As in Zulip, an answer that waited (Zulip finishes it later) names its queue in `queue_id` and lists no parameters; one given at once does not name the queue.",
    params(
        ("queue_id" = String, Query, description = "The queue, as `POST /register` answered it", example = "fb67bf8a-c031-47cc-84cf-ed80accacda8"),
        ("last_event_id" = i64, Query, description = "The largest event id received so far (-1 before any): it and all earlier events are acknowledged", example = -1),
        ("dont_block" = Option<bool>, Query, description = "Answer at once, even with no events (default false)"),
    ),
    responses(
        (status = 200, description = "The queue's events after `last_event_id`", body = GetEventsResponse,
         links(
             ("delete" = (operation_id = "delete_queue",
                 request_body = json!({"queue_id": "$request.query.queue_id"}),
                 description = "Deletes the queue polled"))
         ),
         example = json!({"result": "success", "msg": "", "events": [
             {"type": "presence", "user_id": 2, "email": "bob@acme.test", "server_timestamp": 1795915346.574311,
              "presence": {"website": {"client": "website", "status": "active", "timestamp": 1795915346, "pushable": false}}, "id": 0},
             {"type": "heartbeat", "id": 1}],
             "queue_id": "fb67bf8a-c031-47cc-84cf-ed80accacda8"})),
        (status = 400, description = "`Bad event queue ID: {queue_id}` (code `BAD_EVENT_QUEUE_ID`, with `queue_id`), `Missing 'queue_id' argument`, `Missing 'last_event_id' argument`, `An event newer than {last_event_id} has already been pruned!`, or `Event {last_event_id} was not in this queue`", body = ErrorBody,
         example = json!({"result": "error", "msg": "Bad event queue ID: fb67bf8a-c031-47cc-84cf-ed80accacda8",
             "code": "BAD_EVENT_QUEUE_ID", "queue_id": "fb67bf8a-c031-47cc-84cf-ed80accacda8"})),
    )
)]
pub async fn get_events(
    service: &Service,
    caller: &Caller,
    params: &Params,
    head: bool,
) -> HandlerResult {
    let GetEventsParams {
        queue_id,
        last_event_id,
        dont_block,
    } = params.read()?;
    // HEAD is safe in HTTP: it says what a GET would answer now, and
    // neither acknowledges events nor takes over a waiting poll.
    let polled = if head {
        Polled {
            events: service.peek_events(caller, &queue_id, last_event_id)?,
            waited: false,
        }
    } else {
        service
            .get_events(caller, &queue_id, last_event_id, dont_block)
            .await?
    };
    let ignored = params.ignored();
    let tail = if polled.waited {
        EventsTail::QueueId(&queue_id)
    } else {
        EventsTail::Ignored(ignored.as_deref())
    };
    Ok(json_response(
        StatusCode::OK,
        Body::from_vec(events_body(&polled.events, tail)),
    ))
}

/// `DELETE /events`.
#[utoipa::path(
    delete,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "delete_queue",
    summary = "Delete an event queue",
    description = "A request still waiting on the queue answers what it has.",
    request_body(content = DeleteQueueParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The queue is gone", body = EmptySuccess, example = json!({"result": "success", "msg": ""})),
        (status = 400, description = "`Missing 'queue_id' argument`, or `Bad event queue ID: {queue_id}` (code `BAD_EVENT_QUEUE_ID`)", body = ErrorBody,
         example = json!({"result": "error", "msg": "Bad event queue ID: fb67bf8a-c031-47cc-84cf-ed80accacda8",
             "code": "BAD_EVENT_QUEUE_ID", "queue_id": "fb67bf8a-c031-47cc-84cf-ed80accacda8"})),
    )
)]
pub fn delete_queue(service: &Service, caller: &Caller, params: &Params) -> HandlerResult {
    let DeleteQueueParams { queue_id } = params.read()?;
    service.delete_queue(caller, &queue_id)?;
    empty_success(params)
}

/// `GET /presence/stream`.
#[utoipa::path(
    get,
    path = "/api/v1/presence/stream",
    tag = "events",
    operation_id = "presence_stream",
    summary = "The same presence events as Server-Sent Events, for browsers and `curl -N`",
    description = "A stream is an event queue read as it fills. It starts with `retry: 3000`; on a new queue, a `register` message whose data is what `POST /register` answers; then a `presence` message per event, whose data is the event as `GET /events` gives it. Every message's id is `QUEUE:EVENT`. Send the last one back as `Last-Event-ID` (a browser's `EventSource` does so when it reconnects) to resume after it on the same queue: nothing is lost and nothing repeated. If that queue is gone, the stream starts afresh with a new `register` message, whose snapshot replaces the client's state. A `: keep-alive` comment comes after 15 s of silence; the server ends a stream after 30 minutes, for the client to resume. Takes `slim_presence`, `presence_history_limit_days` and `client_capabilities` as `POST /register` does.",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "`QUEUE:EVENT`, the id of the last message received, to resume after it"),
        ("slim_presence" = Option<bool>, Query, description = "Modern format keyed by user id in the `register` message, and no `email` in legacy events"),
        ("presence_history_limit_days" = Option<i64>, Query, description = "Only users with a report in this many days in the `register` message"),
        ("client_capabilities" = Option<JsonCapabilities>, Query, description = "A JSON object; `{\"simplified_presence_events\": true}` selects the modern event shape"),
    ),
    responses(
        (status = 200, description = "The event stream, one message after another", content_type = "text/event-stream", body = StreamMessage,
         example = json!("retry: 3000\n\nid: fb67bf8a-c031-47cc-84cf-ed80accacda8:-1\nevent: register\ndata: {\"result\":\"success\",\"msg\":\"\",\"queue_id\":\"fb67bf8a-c031-47cc-84cf-ed80accacda8\",\"last_event_id\":-1,\"zulip_version\":\"presence-server 0.1.0\",\"zulip_merge_base\":\"presence-server 0.1.0\",\"zulip_feature_level\":497,\"event_queue_longpoll_timeout_seconds\":90,\"presences\":{\"1\":{\"active_timestamp\":1795915346,\"idle_timestamp\":1795915346}},\"presence_last_update_id\":3,\"server_timestamp\":1795915346.574311,\"server_presence_ping_interval_seconds\":60,\"server_presence_offline_threshold_seconds\":200}\n\nid: fb67bf8a-c031-47cc-84cf-ed80accacda8:0\nevent: presence\ndata: {\"type\":\"presence\",\"presences\":{\"2\":{\"active_timestamp\":1795915400,\"idle_timestamp\":1795915400}},\"id\":0}\n\n: keep-alive\n\n")),
        (status = 400, description = "A parameter that does not parse", body = ErrorBody,
         example = json!({"result": "error", "msg": "client_capabilities is not a dict", "code": "BAD_REQUEST"})),
        (status = 503, description = "The server is shutting down", body = ErrorBody,
         example = json!({"result": "error", "msg": "The server is shutting down; try again", "code": "SERVICE_UNAVAILABLE"})),
    )
)]
pub fn presence_stream(
    service: &Service,
    reader: Reader<'_>,
    params: &Params,
    headers: &HeaderMap,
    head: bool,
) -> HandlerResult {
    let options = RegisterOptions::from(params.read::<PresenceStreamParams>()?);
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-cache")
        // Tells nginx-like proxies not to hold the stream back in a buffer.
        .header("x-accel-buffering", "no");
    if head {
        return Ok(response.body(Body::default()).expect("a valid response"));
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(sse::parse_last_event_id);
    let start = service.open_stream(reader, &options, resume)?;
    let mut first = vec![sse::preamble()];
    if let Some(registration) = &start.registration {
        // The snapshot goes out as the realm's shared answer, never copied.
        let chunks = register_answer(service, registration, None)
            .into_body()
            .into_chunks();
        first.extend(sse::register_frames(registration.queue.id(), chunks));
    }
    let settings = service.event_settings();
    let timing = StreamTiming {
        keepalive: settings.stream_keepalive,
        max: settings.stream_max,
    };
    let body = EventStreamBody::new(start.consumer, start.cursor, first, timing, start.slot);
    Ok(response.body(Body::stream(body)).expect("a valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EncodedEvent;

    #[test]
    fn the_assembled_answer_is_the_documented_type() {
        let events = [
            Entry {
                id: 3,
                event: EncodedEvent::heartbeat(),
            },
            Entry {
                id: 4,
                event: EncodedEvent::heartbeat(),
            },
        ];
        let body = events_body(&events, EventsTail::QueueId("q\"1"));
        let answer: GetEventsResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer.queue_id.as_deref(), Some("q\"1"));
        assert_eq!(answer.events.len(), 2);
        assert_eq!(answer.ignored_parameters_unsupported, None);
        let ignored = ["a".to_owned(), "b\"".to_owned()];
        let body = events_body(&[], EventsTail::Ignored(Some(&ignored)));
        let empty: GetEventsResponse = serde_json::from_slice(&body).unwrap();
        assert!(empty.events.is_empty());
        assert_eq!(empty.queue_id, None);
        assert_eq!(
            empty.ignored_parameters_unsupported.as_deref(),
            Some(&ignored[..])
        );
        let bare: serde_json::Value =
            serde_json::from_slice(&events_body(&[], EventsTail::Ignored(None))).unwrap();
        assert_eq!(
            bare,
            serde_json::json!({"result": "success", "msg": "", "events": []})
        );
    }
}
