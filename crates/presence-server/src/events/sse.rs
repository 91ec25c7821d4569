//! The presence stream (`GET /presence/stream`) as Server-Sent Events.
//!
//! A stream is an event queue read as it fills. Every message carries
//! `id: QUEUE:EVENT`; a browser's `EventSource` sends the last one back as
//! `Last-Event-ID` when it reconnects, which acknowledges everything up to
//! it, and the stream resumes after it: nothing sent but not received is
//! lost, and nothing received is sent twice. If the queue is gone by then
//! (expired, or dropped for falling behind), the new stream starts like a
//! first one, with a fresh snapshot that replaces the client's state.
//!
//! The frames:
//! - `retry: 3000` first, so that clients reconnect after 3 s;
//! - on a new queue, `event: register` whose data is what `POST /register`
//!   answers (`id: QUEUE:-1`);
//! - `event: presence` or `event: user_status` with the event's JSON, as
//!   `GET /events` gives it (the event's `type` names the frame);
//! - `: keep-alive` comments when nothing happened for a while, so that
//!   proxies keep the connection open and a vanished client is noticed;
//! - `retry: 0` last, when the stream ends because its caller may no
//!   longer read (a user or realm deactivated, an embed key revoked): the
//!   client asks again at once and is told why, in the refusal's JSON.
//!
//! What a stream may hold is bounded by design: the snapshot of its first
//! message is the realm's shared answer, handed to the connection as the
//! same bytes every other reader gets; a frame is made only when the
//! connection asks for the next one (see [`EventStreamBody`]), so nothing
//! piles up ahead of a reader; a queue that a reader does not empty is
//! closed once it holds its maximum, and the stream then ends. The
//! connection's own timers (see `http::connection`) close a stream that
//! makes no progress, and one that outlives its hard deadline.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::time::Instant;

use super::hub::StreamSlot;
use super::queue::{Closed, Consumer, Entry, Wake};

/// How long clients wait before reconnecting, in milliseconds.
pub const RETRY_MS: u64 = 3000;

/// The comment sent after a silence.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// The last frame of a stream whose caller may no longer read.
pub const ASK_AGAIN_NOW: &[u8] = b"retry: 0\n\n";

/// Parses a `Last-Event-ID` value, `QUEUE:EVENT`.
pub fn parse_last_event_id(value: &str) -> Option<(String, i64)> {
    let (queue_id, event_id) = value.trim().rsplit_once(':')?;
    if queue_id.is_empty() {
        return None;
    }
    Some((queue_id.to_owned(), event_id.parse().ok()?))
}

/// The first frame of every stream.
pub fn preamble() -> Bytes {
    Bytes::from(format!("retry: {RETRY_MS}\n\n"))
}

/// The `register` message of a new queue, whose data is the JSON in
/// `chunks` (one line, in pieces that may be shared with other readers),
/// as frames that reuse those pieces.
pub fn register_frames(queue_id: &str, chunks: Vec<Bytes>) -> Vec<Bytes> {
    let mut frames = Vec::with_capacity(chunks.len() + 2);
    frames.push(Bytes::from(format!(
        "id: {queue_id}:-1\nevent: register\ndata: "
    )));
    frames.extend(chunks);
    frames.push(Bytes::from_static(b"\n\n"));
    frames
}

/// One event's message.
pub fn event_frame(queue_id: &str, entry: &Entry) -> Bytes {
    let mut out = Vec::with_capacity(entry.event.shared_len() + queue_id.len() + 48);
    out.extend_from_slice(
        format!(
            "id: {queue_id}:{}\nevent: {}\ndata: ",
            entry.id,
            entry.event.kind()
        )
        .as_bytes(),
    );
    entry.event.write_json(entry.id, &mut out);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// How a stream runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTiming {
    /// Silence before a keep-alive comment.
    pub keepalive: Duration,
    /// When the server ends the stream, if ever.
    pub max: Option<Duration>,
}

/// A stream's waiting for its queue, boxed so that the body can hold it
/// between polls.
type Waiting = Pin<Box<dyn Future<Output = Wake> + Send>>;

/// The response body of a stream: `first`, then the queue's events after
/// `cursor` as they come, until the queue is closed or taken over, or the
/// stream's time is up.
///
/// Frames are made only when the connection asks for the next one, that
/// is when the client has taken the previous ones: nothing is produced
/// ahead of a reader, and there is no task or buffer beside the queue
/// itself. Dropping the body (the client went away, or the connection was
/// closed for making no progress) releases the queue and the stream's
/// place in its owner's count.
pub struct EventStreamBody {
    first: VecDeque<Bytes>,
    consumer: Consumer,
    queue_id: Arc<str>,
    cursor: i64,
    /// Events taken from the queue and not yet sent.
    pending: VecDeque<Entry>,
    waiting: Option<Waiting>,
    timing: StreamTiming,
    end: Option<Instant>,
    done: bool,
    _slot: StreamSlot,
}

impl std::fmt::Debug for EventStreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStreamBody")
            .field("queue", &self.queue_id)
            .field("cursor", &self.cursor)
            .finish()
    }
}

impl EventStreamBody {
    /// A stream of `first`, then the events of `consumer`'s queue after
    /// `cursor`; `slot` is its place in its owner's count of streams.
    pub fn new(
        consumer: Consumer,
        cursor: i64,
        first: Vec<Bytes>,
        timing: StreamTiming,
        slot: StreamSlot,
    ) -> Self {
        EventStreamBody {
            first: first.into(),
            queue_id: consumer.queue().id().clone(),
            consumer,
            cursor,
            pending: VecDeque::new(),
            waiting: None,
            timing,
            end: timing.max.map(|max| Instant::now() + max),
            done: false,
            _slot: slot,
        }
    }

    /// How long to wait for events before a keep-alive (or the end).
    fn wait_time(&self) -> Duration {
        match self.end {
            Some(end) => self
                .timing
                .keepalive
                .min(end.saturating_duration_since(Instant::now())),
            None => self.timing.keepalive,
        }
    }

    /// The next frame, if one is ready.
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some(frame) = self.first.pop_front() {
                return Poll::Ready(Some(frame));
            }
            if let Some(entry) = self.pending.pop_front() {
                self.cursor = entry.id;
                return Poll::Ready(Some(event_frame(&self.queue_id, &entry)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            let wait = self.wait_time();
            let cursor = self.cursor;
            let waiting = self
                .waiting
                .get_or_insert_with(|| Box::pin(self.consumer.wait_owned(cursor, wait)));
            let wake = std::task::ready!(waiting.as_mut().poll(cx));
            self.waiting = None;
            match wake {
                Wake::Events => {
                    let events = self.consumer.queue().with_state(|s| s.since(cursor));
                    self.pending.extend(events);
                }
                Wake::TimedOut if self.end.is_some_and(|end| Instant::now() >= end) => {
                    self.done = true;
                }
                Wake::TimedOut => return Poll::Ready(Some(Bytes::from_static(KEEPALIVE))),
                Wake::Closed(Closed::Deactivated) => {
                    self.done = true;
                    return Poll::Ready(Some(Bytes::from_static(ASK_AGAIN_NOW)));
                }
                Wake::Superseded | Wake::Closed(_) => self.done = true,
            }
        }
    }
}

impl Body for EventStreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .next_frame(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::events::{EncodedEvent, EventFormat, EventSettings, Hub, Owner, QueueSpec};
    use crate::ids::{RealmId, UserId};

    /// A stream body over a new queue of `hub`, starting with `first`.
    fn stream(
        hub: &Arc<Hub>,
        first: Vec<Bytes>,
        max: Option<Duration>,
    ) -> (EventStreamBody, Arc<crate::events::Queue>) {
        let owner = Owner::User(UserId(1));
        let queue = hub
            .open(QueueSpec {
                owner,
                realm_id: RealmId(1),
                format: EventFormat::Legacy,
                wants_presence: true,
                wants_user_status: true,
                start_seq: 0,
                timeout_secs: 600,
            })
            .unwrap();
        let timing = StreamTiming {
            keepalive: Duration::from_millis(50),
            max,
        };
        let body = EventStreamBody::new(
            hub.attach(&queue),
            -1,
            first,
            timing,
            hub.stream_slot(owner).unwrap(),
        );
        (body, queue)
    }

    fn hub() -> Arc<Hub> {
        let settings = EventSettings {
            queue_timeout_secs: 600,
            heartbeat: Duration::from_secs(60),
            stream_keepalive: Duration::from_secs(60),
            stream_max: None,
            max_queues_per_user: 4,
            max_streams_per_user: 4,
            max_events_per_queue: 10,
        };
        Arc::new(Hub::new(settings, Arc::new(ManualClock::new(0))))
    }

    /// The next frame's bytes, or `None` at the end.
    async fn next(body: &mut EventStreamBody) -> Option<Bytes> {
        use http_body_util::BodyExt;
        tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a frame or the end within 5 s")
            .map(|frame| frame.unwrap().into_data().unwrap())
    }

    #[tokio::test]
    async fn a_stream_sends_its_start_then_events_and_keep_alives() {
        let hub = hub();
        let (mut body, queue) = stream(&hub, vec![Bytes::from_static(b"retry: 1\n\n")], None);
        assert_eq!(next(&mut body).await.unwrap(), &b"retry: 1\n\n"[..]);
        queue.push(EncodedEvent::heartbeat(), 10).unwrap();
        let event = next(&mut body).await.unwrap();
        assert!(event.starts_with(b"id: "), "{event:?}");
        // Silence: a keep-alive comment.
        assert_eq!(next(&mut body).await.unwrap(), KEEPALIVE);
        assert_eq!(hub.open_streams(), 1);
        drop(body);
        assert_eq!(hub.open_streams(), 0, "its place is free once it is gone");
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_queue_closes_or_its_time_is_up() {
        let hub = hub();
        let (mut body, queue) = stream(&hub, Vec::new(), None);
        queue.close(Closed::Overflowed);
        assert_eq!(next(&mut body).await, None);

        // A caller who may no longer read is told to ask again at once.
        let (mut body, queue) = stream(&hub, Vec::new(), None);
        queue.close(Closed::Deactivated);
        assert_eq!(next(&mut body).await.unwrap(), ASK_AGAIN_NOW);
        assert_eq!(next(&mut body).await, None);

        let (mut body, _queue) = stream(&hub, Vec::new(), Some(Duration::from_millis(120)));
        let started = std::time::Instant::now();
        while next(&mut body).await.is_some() {}
        assert!(started.elapsed() >= Duration::from_millis(120));
    }

    #[tokio::test]
    async fn nothing_is_made_ahead_of_the_reader() {
        let hub = hub();
        let (mut body, queue) = stream(&hub, Vec::new(), None);
        for _ in 0..5 {
            queue.push(EncodedEvent::heartbeat(), 10).unwrap();
        }
        // The body takes the events when asked, and the queue keeps them
        // until the reader acknowledges them: no copy waits anywhere else.
        assert!(next(&mut body).await.is_some());
        assert_eq!(body.pending.len(), 4);
        assert_eq!(queue.with_state(|s| s.len()), 5);
    }

    #[test]
    fn last_event_ids_parse() {
        assert_eq!(parse_last_event_id("a-b:3"), Some(("a-b".to_owned(), 3)));
        assert_eq!(parse_last_event_id(" q:-1 "), Some(("q".to_owned(), -1)));
        assert_eq!(parse_last_event_id("q"), None);
        assert_eq!(parse_last_event_id(":3"), None);
        assert_eq!(parse_last_event_id("q:x"), None);
    }

    #[test]
    fn frames_carry_the_queue_and_event_ids() {
        let entry = Entry {
            id: 4,
            event: EncodedEvent::heartbeat(),
        };
        assert_eq!(
            event_frame("q", &entry),
            Bytes::from_static(
                b"id: q:4\nevent: heartbeat\ndata: {\"type\":\"heartbeat\",\"id\":4}\n\n"
            )
        );
        let shared = Bytes::from_static(b"{\"a\":1}");
        let frames = register_frames("q", vec![Bytes::from_static(b"{"), shared.clone()]);
        assert_eq!(
            frames.concat(),
            b"id: q:-1\nevent: register\ndata: {{\"a\":1}\n\n".to_vec()
        );
        assert_eq!(
            frames[2].as_ptr(),
            shared.as_ptr(),
            "the shared part is not copied"
        );
    }
}
