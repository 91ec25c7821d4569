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

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::queue::{Consumer, Entry, Wake};

/// How long clients wait before reconnecting, in milliseconds.
pub const RETRY_MS: u64 = 3000;

/// The comment sent after a silence.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// How many frames may wait between the pump and the connection.
const BUFFERED_FRAMES: usize = 32;

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

/// The `register` message of a new queue, whose data is `json` (one line).
pub fn register_frame(queue_id: &str, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + queue_id.len() + 40);
    out.extend_from_slice(format!("id: {queue_id}:-1\nevent: register\ndata: ").as_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
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

/// Sends `first`, then the queue's events after `cursor` as they come,
/// until the client goes away, the queue closes or is taken over, or the
/// stream's time is up.
pub async fn pump(
    consumer: Consumer,
    mut cursor: i64,
    first: Vec<Bytes>,
    frames: FrameSender,
    timing: StreamTiming,
) {
    for frame in first {
        if frames.send(frame).await.is_err() {
            return;
        }
    }
    let queue_id = consumer.queue().id().clone();
    let end = timing.max.map(|max| Instant::now() + max);
    loop {
        let wait = match end {
            Some(end) => timing
                .keepalive
                .min(end.saturating_duration_since(Instant::now())),
            None => timing.keepalive,
        };
        let wake = tokio::select! {
            wake = consumer.wait(cursor, wait) => wake,
            () = frames.closed() => return,
        };
        match wake {
            Wake::Events => {
                let entries = consumer.queue().with_state(|s| s.since(cursor));
                for entry in &entries {
                    if frames.send(event_frame(&queue_id, entry)).await.is_err() {
                        return;
                    }
                    cursor = entry.id;
                }
            }
            Wake::TimedOut => {
                if end.is_some_and(|end| Instant::now() >= end) {
                    return;
                }
                if frames.send(Bytes::from_static(KEEPALIVE)).await.is_err() {
                    return;
                }
            }
            Wake::Superseded | Wake::Closed(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EncodedEvent;

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
        assert_eq!(
            register_frame("q", b"{}"),
            Bytes::from_static(b"id: q:-1\nevent: register\ndata: {}\n\n")
        );
    }
}
