//! Event queues and presence streams, as the service offers them: a queue
//! is opened together with the snapshot it continues, and every queue
//! operation is done as its owner.

use std::collections::BTreeMap;
use std::sync::Arc;

use presence_types::endpoints::events::{PresenceStreamParams, RegisterParams};
use presence_types::endpoints::user_status::UserStatus;

use super::{Caller, Format, Reader, Service, SharedAnswer};
use crate::events::{
    Consumer, Entry, EventError, EventFormat, EventSettings, Polled, Queue, QueueSpec,
    STREAM_QUEUE_TIMEOUT_SECS, StreamSlot,
};
use crate::ids::UpdateId;

/// The event types this server produces (besides `heartbeat`).
const PRESENCE: &str = "presence";
const USER_STATUS: &str = "user_status";

/// What a new queue is for, as `POST /register` (or a stream) asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterOptions {
    /// The event types to receive; `None` means all.
    pub event_types: Option<Vec<String>>,
    /// The data to fetch, if not the same as `event_types`.
    pub fetch_event_types: Option<Vec<String>>,
    /// Modern snapshot, and legacy events without `email`.
    pub slim_presence: bool,
    /// Modern snapshot and modern events.
    pub simplified_presence_events: bool,
    /// The snapshot's history window, in days (default: the server's).
    pub history_limit_days: Option<i64>,
}

impl RegisterOptions {
    fn wants(list: Option<&Vec<String>>, kind: &str) -> bool {
        list.is_none_or(|types| types.iter().any(|t| t == kind))
    }

    fn fetches(&self, kind: &str) -> bool {
        let list = self
            .fetch_event_types
            .as_ref()
            .or(self.event_types.as_ref());
        Self::wants(list, kind)
    }

    /// Whether the answer includes presence (Zulip: `fetch_event_types`,
    /// else `event_types`, absent meaning everything).
    pub fn fetches_presence(&self) -> bool {
        self.fetches(PRESENCE)
    }

    /// Whether the answer includes the realm's statuses (as for presence).
    pub fn fetches_user_status(&self) -> bool {
        self.fetches(USER_STATUS)
    }

    /// Whether the queue receives `presence` events.
    pub fn receives_presence(&self) -> bool {
        Self::wants(self.event_types.as_ref(), PRESENCE)
    }

    /// Whether the queue receives `user_status` events.
    pub fn receives_user_status(&self) -> bool {
        Self::wants(self.event_types.as_ref(), USER_STATUS)
    }

    /// The shape of the queue's presence events.
    pub fn format(&self) -> EventFormat {
        if self.simplified_presence_events {
            EventFormat::Modern
        } else if self.slim_presence {
            EventFormat::Slim
        } else {
            EventFormat::Legacy
        }
    }
}

impl From<RegisterParams> for RegisterOptions {
    fn from(params: RegisterParams) -> Self {
        RegisterOptions {
            event_types: params.event_types,
            fetch_event_types: params.fetch_event_types,
            slim_presence: params.slim_presence,
            simplified_presence_events: params
                .client_capabilities
                .is_some_and(|c| c.simplified_presence_events),
            history_limit_days: params.presence_history_limit_days,
        }
    }
}

/// A stream's queue takes every event type and fetches presence and statuses.
impl From<PresenceStreamParams> for RegisterOptions {
    fn from(params: PresenceStreamParams) -> Self {
        RegisterOptions::from(RegisterParams {
            event_types: None,
            fetch_event_types: None,
            slim_presence: params.slim_presence,
            presence_history_limit_days: params.presence_history_limit_days,
            client_capabilities: params.client_capabilities,
        })
    }
}

/// Everyone's presence when a queue was opened.
#[derive(Debug, Clone)]
pub struct PresenceSnapshot {
    /// Legacy by email, or modern by user id.
    pub format: Format,
    /// The serialized presences (shared with other readers of the realm).
    pub answer: Arc<SharedAnswer>,
    /// The server's clock then.
    pub server_timestamp: f64,
}

impl PresenceSnapshot {
    /// The largest update id among the presences, or -1.
    pub fn presence_last_update_id(&self) -> i64 {
        self.answer
            .last_update_id
            .unwrap_or(UpdateId::NONE_ON_WIRE)
            .0
    }
}

/// A new queue and what it continues from.
#[derive(Debug)]
pub struct Registration {
    /// The queue.
    pub queue: Arc<Queue>,
    /// Everyone's presence, if it was asked for.
    pub snapshot: Option<PresenceSnapshot>,
    /// The realm's statuses, keyed by user id, if they were asked for.
    pub user_status: Option<BTreeMap<String, UserStatus>>,
}

/// Where a presence stream starts.
#[derive(Debug)]
pub struct StreamStart {
    /// The stream's hold on its queue.
    pub consumer: Consumer,
    /// The last event id the client has; the stream sends what follows.
    pub cursor: i64,
    /// Set when a new queue was opened: the client starts from this.
    pub registration: Option<Registration>,
    /// The stream's place in its owner's count of open streams.
    pub slot: StreamSlot,
}

impl Service {
    /// Opens an event queue for the caller and takes the snapshot it
    /// continues, both under the realm's read lock: every later change
    /// reaches the queue, and no earlier one does.
    pub fn register(
        &self,
        caller: &Caller,
        options: &RegisterOptions,
    ) -> Result<Registration, EventError> {
        let timeout = self.hub.settings().queue_timeout_secs;
        self.open_queue(Reader::User(caller), options, timeout)
    }

    /// Opens a queue that expires `timeout_secs` after its last use, with
    /// its snapshot (see [`Service::register`]).
    fn open_queue(
        &self,
        reader: Reader<'_>,
        options: &RegisterOptions,
        timeout_secs: i64,
    ) -> Result<Registration, EventError> {
        let realm = reader.realm().read();
        let snapshot = options.fetches_presence().then(|| {
            let format = if options.slim_presence || options.simplified_presence_events {
                Format::Modern
            } else {
                Format::Legacy
            };
            PresenceSnapshot {
                format,
                answer: self.realm_answer(&realm, format, None, options.history_limit_days),
                server_timestamp: self.now_f64(),
            }
        });
        let user_status = options
            .fetches_user_status()
            .then(|| super::status::snapshot(&realm));
        let queue = self.hub.open(QueueSpec {
            owner: reader.owner(),
            realm_id: realm.row().id,
            format: options.format(),
            wants_presence: options.receives_presence(),
            wants_user_status: options.receives_user_status(),
            start_seq: realm.event_seq,
            timeout_secs,
        })?;
        Ok(Registration {
            queue,
            snapshot,
            user_status,
        })
    }

    /// `GET /events` on one of the caller's queues (see [`crate::events::Hub::get_events`]).
    pub async fn get_events(
        &self,
        caller: &Caller,
        queue_id: &str,
        last_event_id: i64,
        dont_block: bool,
    ) -> Result<Polled, EventError> {
        self.hub
            .get_events(caller.owner(), queue_id, last_event_id, dont_block)
            .await
    }

    /// How many queues have a reader waiting on them (a long poll, or an
    /// open stream): what tests wait for before they make an event.
    pub fn waiting_readers(&self) -> usize {
        self.hub.waiting_readers()
    }

    /// What [`Service::get_events`] would answer without waiting, changing
    /// nothing: `HEAD /events`.
    pub fn peek_events(
        &self,
        caller: &Caller,
        queue_id: &str,
        last_event_id: i64,
    ) -> Result<Vec<Entry>, EventError> {
        self.hub
            .peek_events(caller.owner(), queue_id, last_event_id)
    }

    /// Deletes one of the caller's queues.
    pub fn delete_queue(&self, caller: &Caller, queue_id: &str) -> Result<(), EventError> {
        self.hub.delete(caller.owner(), queue_id)
    }

    /// Starts a presence stream: after `resume` (queue id and last event id
    /// the client has) on that queue if it is still there, else on a new
    /// queue registered with `options`, which outlives the stream only
    /// long enough for a resume. Refused when the caller has as many
    /// streams open as allowed.
    pub fn open_stream(
        &self,
        reader: Reader<'_>,
        options: &RegisterOptions,
        resume: Option<(String, i64)>,
    ) -> Result<StreamStart, EventError> {
        let slot = self.hub.stream_slot(reader.owner())?;
        if let Some((queue_id, last_event_id)) = resume {
            match self.hub.resume(reader.owner(), &queue_id, last_event_id) {
                Ok(queue) => {
                    return Ok(StreamStart {
                        consumer: self.hub.attach(&queue),
                        cursor: last_event_id,
                        registration: None,
                        slot,
                    });
                }
                Err(e) => tracing::debug!(error = %e, "stream not resumable; starting afresh"),
            }
        }
        let options = RegisterOptions {
            event_types: Some(vec![PRESENCE.to_owned(), USER_STATUS.to_owned()]),
            fetch_event_types: None,
            ..options.clone()
        };
        let timeout = STREAM_QUEUE_TIMEOUT_SECS.min(self.hub.settings().queue_timeout_secs);
        let registration = self.open_queue(reader, &options, timeout)?;
        Ok(StreamStart {
            consumer: self.hub.attach(&registration.queue),
            cursor: -1,
            registration: Some(registration),
            slot,
        })
    }

    /// The event system's settings.
    pub fn event_settings(&self) -> EventSettings {
        *self.hub.settings()
    }

    /// Ends every waiting poll and stream and takes no new queues: the
    /// first step of a graceful shutdown, so that open long-polls and
    /// streams do not hold it up.
    pub fn stop_events(&self) {
        self.hub.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|t| (*t).to_owned()).collect())
    }

    #[test]
    fn fetch_event_types_wins_over_event_types() {
        let mut options = RegisterOptions::default();
        assert!(options.fetches_presence() && options.receives_presence());
        options.event_types = types(&["message"]);
        assert!(!options.fetches_presence() && !options.receives_presence());
        options.fetch_event_types = types(&["presence"]);
        assert!(options.fetches_presence() && !options.receives_presence());
        options.event_types = types(&["presence"]);
        options.fetch_event_types = types(&[]);
        assert!(!options.fetches_presence() && options.receives_presence());
    }

    #[test]
    fn the_capability_beats_slim_presence() {
        let mut options = RegisterOptions {
            slim_presence: true,
            ..RegisterOptions::default()
        };
        assert_eq!(options.format(), EventFormat::Slim);
        options.simplified_presence_events = true;
        assert_eq!(options.format(), EventFormat::Modern);
    }
}
