//! Real-time presence events: Zulip's event queues, and the same events as
//! a Server-Sent Events stream.
//!
//! How an event travels:
//! 1. The writer thread (`service::writer`) applies a committed batch to
//!    memory, or notices on its periodic tick that a user crossed the
//!    offline threshold. Where what others see of a user changed, it takes
//!    the realm's next event sequence number under the realm's write lock
//!    and describes the change ([`encode::PresenceChange`]).
//! 2. After releasing the lock it encodes the change once per event shape
//!    ([`encode::PresenceEvents`]) and hands it to the [`Hub`], which
//!    appends the same bytes to every queue of that realm, each under the
//!    queue's own next id, and wakes whoever waits on them.
//! 3. A `GET /events` long-poll or a presence stream ([`sse`]) takes the
//!    queue's events and writes `{"type":...,"id":N}` from the shared bytes
//!    and the queue's id.
//!
//! Consistency with `POST /register`: a queue is created under the realm's
//! read lock, at the same moment as the answer's snapshot, and remembers the
//! realm's sequence number then; it receives only events numbered after it.
//! So every change is either in the snapshot or arrives as an event, never
//! both and never neither.
//!
//! Time: queue expiry and presence transitions are judged by the service's
//! clock (tests move a manual clock), while waiting (the heartbeat, stream
//! keep-alives) is real time, since it is about connections.
//!
//! Several nodes: queues live in one process. Each node produces events for
//! its own queues from every change it applies to memory, its own and those
//! it learns of from other nodes, through the same writer path (see
//! `service::writer`); a `queue_id` is only good on the node that made it,
//! so a load balancer keeps a client on one node.
//!
//! Owners: a queue belongs to a user, or to an embed key (a page's stream,
//! see `service::embed`); only its owner may read, resume or delete it.

pub mod encode;
pub mod hub;
pub mod queue;
pub mod sse;

use std::time::Duration;

use thiserror::Error;

use crate::config::Config;
use crate::ids::{EmbedKeyId, UserId};
pub use encode::{EncodedEvent, PresenceChange, PresenceEvents};
pub use hub::{Hub, Polled, QueueSpec, StreamSlot};
pub use queue::{Consumer, Entry, Queue, Wake};

/// Who an event queue belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A user.
    User(UserId),
    /// An embed key: the streams of the pages that use it.
    EmbedKey(EmbedKeyId),
}

/// The longest a queue opened by a presence stream outlives its stream:
/// enough for a client to reconnect and resume, short enough that pages
/// that went away free their queues soon.
pub const STREAM_QUEUE_TIMEOUT_SECS: i64 = 120;

/// The event system's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSettings {
    /// Seconds (service clock) without a poll after which a queue is dropped.
    pub queue_timeout_secs: i64,
    /// How long a long-poll waits before it answers with a heartbeat.
    pub heartbeat: Duration,
    /// How long a stream stays silent before a keep-alive comment.
    pub stream_keepalive: Duration,
    /// How long a stream lasts before the server ends it, if at all.
    pub stream_max: Option<Duration>,
    /// The most queues per user.
    pub max_queues_per_user: usize,
    /// The most presence streams one user may have open at once.
    pub max_streams_per_user: usize,
    /// The most events per queue.
    pub max_events_per_queue: usize,
}

impl EventSettings {
    /// The event settings of a configuration.
    pub fn from_config(config: &Config) -> Self {
        EventSettings {
            queue_timeout_secs: config.event_queue_timeout_secs,
            heartbeat: Duration::from_millis(config.event_heartbeat_ms),
            stream_keepalive: Duration::from_millis(config.event_stream_keepalive_ms),
            stream_max: (config.event_stream_max_ms > 0)
                .then(|| Duration::from_millis(config.event_stream_max_ms)),
            max_queues_per_user: config.max_queues_per_user,
            max_streams_per_user: config.max_streams_per_user,
            max_events_per_queue: config.max_events_per_queue,
        }
    }

    /// The `event_queue_longpoll_timeout_seconds` to tell clients: the
    /// heartbeat interval, rounded up, with room for a slow network.
    pub fn longpoll_timeout_secs(&self) -> i64 {
        let heartbeat = self.heartbeat.as_millis().div_ceil(1000);
        i64::try_from(heartbeat).unwrap_or(i64::MAX / 2) + 40
    }
}

/// The shape of the `presence` events a queue receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventFormat {
    /// `user_id`, `email`, `server_timestamp` and `presence` keyed by client.
    Legacy,
    /// The legacy shape without `email` (queues registered with `slim_presence`).
    Slim,
    /// `presences` keyed by user id (the `simplified_presence_events` capability).
    Modern,
}

/// Why an event queue request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    /// The queue is unknown, expired, deleted, dropped, or another user's.
    #[error("Bad event queue ID: {0}")]
    BadQueueId(String),
    /// `last_event_id` is older than events already dropped from the queue.
    #[error("An event newer than {0} has already been pruned!")]
    Pruned(i64),
    /// `last_event_id` names no event this queue ever handed out.
    #[error("Event {0} was not in this queue")]
    NotInQueue(i64),
    /// The server is stopping and takes no new queues.
    #[error("The server is shutting down; try again")]
    ShuttingDown,
    /// The caller has as many presence streams open as it may.
    #[error("Too many open presence streams")]
    TooManyStreams,
}
