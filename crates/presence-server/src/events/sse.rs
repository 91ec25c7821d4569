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
//! - `event: presence` with the event's JSON, as `GET /events` gives it;
//! - `: keep-alive` comments when nothing happened for a while, so that
//!   proxies keep the connection open and a vanished client is noticed.
//!
//! What a stream may hold is bounded by design: the snapshot of its first
//! message is the realm's shared answer, handed to the connection as the
//! same bytes every other reader gets; at most [`BUFFERED_FRAMES`] frames
//! wait between the pump and the connection; and the pump gives up, ending
//! the stream, as soon as its queue is closed (it overflowed because the
//! client stopped reading, was taken over, or its owner was deactivated) or
//! its time is up, even while it waits to hand a frame over. The
//! connection's own timers (see `http::connection`) close a stream that
//! makes no progress.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::hub::StreamSlot;
use super::queue::{Consumer, Entry, Wake};

/// How long clients wait before reconnecting, in milliseconds.
pub const RETRY_MS: u64 = 3000;

/// The comment sent after a silence.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// How many frames may wait between the pump and the connection.
pub const BUFFERED_FRAMES: usize = 32;

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

/// The sending half of a stream: frames for the connection.
pub type FrameSender = mpsc::Sender<Bytes>;

/// A response body that yields frames as the pump produces them, and ends
/// when the pump does. Dropping it (the client went away) stops the pump.
#[derive(Debug)]
pub struct EventStreamBody {
    frames: mpsc::Receiver<Bytes>,
}

/// A connected pair: the pump's sender and the response body.
pub fn channel() -> (FrameSender, EventStreamBody) {
    let (tx, rx) = mpsc::channel(BUFFERED_FRAMES);
    (tx, EventStreamBody { frames: rx })
}

impl Body for EventStreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .frames
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// How a stream runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTiming {
    /// Silence before a keep-alive comment.
    pub keepalive: Duration,
    /// When the server ends the stream, if ever.
    pub max: Option<Duration>,
}

/// Hands frames to the connection, giving up when the stream must end.
struct Outlet<'a> {
    frames: FrameSender,
    consumer: &'a Consumer,
    end: Option<Instant>,
}

impl Outlet<'_> {
    /// Sends one frame; false when the stream must end instead: the client
    /// went away, or while waiting for room the queue was closed or taken
    /// over, or the stream's time ran out.
    async fn send(&self, frame: Bytes) -> bool {
        let time_up = async {
            match self.end {
                Some(end) => tokio::time::sleep_until(end).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            sent = self.frames.send(frame) => sent.is_ok(),
            _ = self.consumer.ended() => false,
            () = time_up => false,
        }
    }
}

/// Sends `first`, then the queue's events after `cursor` as they come,
/// until the client goes away, the queue closes or is taken over, or the
/// stream's time is up. `_slot`, the stream's place in its owner's count,
/// is held until then.
pub async fn pump(
    consumer: Consumer,
    mut cursor: i64,
    first: Vec<Bytes>,
    frames: FrameSender,
    timing: StreamTiming,
    _slot: StreamSlot,
) {
    let end = timing.max.map(|max| Instant::now() + max);
    let outlet = Outlet {
        frames,
        consumer: &consumer,
        end,
    };
    for frame in first {
        if !outlet.send(frame).await {
            return;
        }
    }
    let queue_id = consumer.queue().id().clone();
    loop {
        let wait = match end {
            Some(end) => timing
                .keepalive
                .min(end.saturating_duration_since(Instant::now())),
            None => timing.keepalive,
        };
        let wake = tokio::select! {
            wake = consumer.wait(cursor, wait) => wake,
            () = outlet.frames.closed() => return,
        };
        match wake {
            Wake::Events => {
                let entries = consumer.queue().with_state(|s| s.since(cursor));
                for entry in &entries {
                    if !outlet.send(event_frame(&queue_id, entry)).await {
                        return;
                    }
                    cursor = entry.id;
                }
            }
            Wake::TimedOut => {
                if end.is_some_and(|end| Instant::now() >= end) {
                    return;
                }
                if !outlet.send(Bytes::from_static(KEEPALIVE)).await {
                    return;
                }
            }
            Wake::Superseded | Wake::Closed(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::events::queue::Closed;
    use crate::events::{EncodedEvent, EventFormat, EventSettings, Hub, Owner, QueueSpec};

    /// A pump whose connection never takes a frame, over a queue of `hub`.
    fn stuck_pump(
        hub: &Arc<Hub>,
        max: Option<Duration>,
    ) -> (
        tokio::task::JoinHandle<()>,
        EventStreamBody,
        Arc<crate::events::Queue>,
    ) {
        let owner = Owner::User(1);
        let queue = hub
            .open(QueueSpec {
                owner,
                realm_id: 1,
                format: EventFormat::Legacy,
                wants_presence: true,
                start_seq: 0,
                timeout_secs: 600,
            })
            .unwrap();
        let consumer = hub.attach(&queue);
        let slot = hub.stream_slot(owner).unwrap();
        let (frames, body) = channel();
        // More than the channel holds: the pump waits to hand one over.
        let first = vec![Bytes::from_static(b": x\n\n"); BUFFERED_FRAMES + 4];
        let timing = StreamTiming {
            keepalive: Duration::from_secs(60),
            max,
        };
        let pump = tokio::spawn(pump(consumer, -1, first, frames, timing, slot));
        (pump, body, queue)
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

    #[tokio::test]
    async fn a_pump_stuck_on_its_reader_ends_when_its_queue_closes() {
        let hub = hub();
        let (pump, _body, queue) = stuck_pump(&hub, None);
        tokio::task::yield_now().await;
        assert_eq!(hub.open_streams(), 1);
        queue.close(Closed::Overflowed);
        tokio::time::timeout(Duration::from_secs(5), pump)
            .await
            .expect("the pump gives up at once")
            .unwrap();
        assert_eq!(hub.open_streams(), 0, "its place is free");
    }

    #[tokio::test]
    async fn a_pump_stuck_on_its_reader_ends_when_its_time_is_up() {
        let hub = hub();
        let (pump, _body, _queue) = stuck_pump(&hub, Some(Duration::from_millis(50)));
        tokio::time::timeout(Duration::from_secs(5), pump)
            .await
            .expect("the pump gives up at its deadline")
            .unwrap();
        assert_eq!(hub.open_streams(), 0);
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
