//! The response body: plain chunks and chunks shared between responses.
//!
//! A realm-wide answer is a small per-request envelope around a large part
//! serialized once and shared by every reader (see `service::answers`).
//! Sending the parts as separate chunks lets every response reuse the shared
//! bytes without copying them; and when the client accepts gzip, the shared
//! part's compressed form is shared too (see `compression`). The length is
//! known, so `Content-Length` is set as for any other body.
//!
//! The presence stream's body is the exception: its frames are written as
//! they are produced (see `events::sse`), so its length is unknown and it
//! is sent chunked, never compressed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::connection::RequestGuard;
use crate::compression::{self, Piece};
use crate::events::sse::EventStreamBody;
use crate::service::SharedAnswer;

/// One chunk of a body.
#[derive(Debug)]
enum Part {
    /// Bytes of this response only.
    Plain(Bytes),
    /// The presences of a shared answer.
    Shared(Arc<SharedAnswer>),
}

impl Part {
    fn bytes(&self) -> &Bytes {
        match self {
            Part::Plain(bytes) => bytes,
            Part::Shared(answer) => &answer.presences,
        }
    }
}

/// A body of known length made of chunks, or a stream.
#[derive(Debug, Default)]
pub struct Body {
    /// The first chunk, apart: nearly every answer is one chunk, which then
    /// costs no allocation for the list of chunks.
    first: Option<Part>,
    /// The chunks after the first.
    rest: VecDeque<Part>,
    remaining: u64,
    /// Frames that follow the parts as they are produced; boxed, since
    /// every answer is moved through several layers on its way out and
    /// nearly none is a stream.
    stream: Option<Box<EventStreamBody>>,
    /// Keeps the connection counted as busy while a stream is written, so
    /// that its idle timer does not run (dropped with the body).
    held: Option<RequestGuard>,
}

impl Body {
    /// A body of one chunk.
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self::from_parts([Part::Plain(bytes)])
    }

    /// `head`, then a shared answer's presences, then `tail`.
    pub fn around_shared(head: Bytes, answer: Arc<SharedAnswer>, tail: Bytes) -> Self {
        Self::from_parts([Part::Plain(head), Part::Shared(answer), Part::Plain(tail)])
    }

    /// A stream: the frames, as they are produced.
    pub fn stream(frames: EventStreamBody) -> Self {
        Body {
            stream: Some(Box::new(frames)),
            ..Body::default()
        }
    }

    fn from_parts(parts: impl IntoIterator<Item = Part>) -> Self {
        let mut parts = parts.into_iter().filter(|p| !p.bytes().is_empty());
        let first = parts.next();
        let rest: VecDeque<Part> = parts.collect();
        let remaining = first
            .iter()
            .chain(&rest)
            .map(|p| p.bytes().len() as u64)
            .sum();
        Body {
            first,
            rest,
            remaining,
            stream: None,
            held: None,
        }
    }

    /// The chunks of known length, in order.
    fn parts(&self) -> impl Iterator<Item = &Part> {
        self.first.iter().chain(&self.rest)
    }

    /// Whether the body is a stream, of unknown length.
    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// Holds `guard` until the body is written or dropped.
    pub fn hold(&mut self, guard: RequestGuard) {
        self.held = Some(guard);
    }

    /// The length in bytes (of the known part, for a stream).
    pub fn len(&self) -> u64 {
        self.remaining
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The same body, gzip-compressed; shared parts are compressed at most
    /// once over all the responses that share them.
    pub fn gzip(&self) -> Body {
        let pieces = self.parts().map(|part| match part {
            Part::Plain(bytes) => Piece::Plain(bytes),
            Part::Shared(answer) => Piece::Shared(&answer.presences, &answer.deflated),
        });
        Self::from_parts(compression::gzip(pieces).into_iter().map(Part::Plain))
    }

    /// The chunks of a body of known length, shared parts not copied: for
    /// a stream's first message.
    pub fn into_chunks(self) -> Vec<Bytes> {
        self.parts().map(|p| p.bytes().clone()).collect()
    }

    /// The whole body in one piece (a stream's frames not included).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts()
            .flat_map(|p| p.bytes().iter().copied())
            .collect()
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.first.take().or_else(|| self.rest.pop_front()) {
            Some(part) => {
                let bytes = part.bytes().clone();
                self.remaining -= bytes.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            None => match self.stream.as_mut() {
                Some(stream) => hyper::body::Body::poll_frame(Pin::new(&mut **stream), cx),
                None => Poll::Ready(None),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_empty() && self.stream.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.stream {
            Some(_) => {
                let mut hint = SizeHint::new();
                hint.set_lower(self.remaining);
                hint
            }
            None => SizeHint::with_exact(self.remaining),
        }
    }
}
