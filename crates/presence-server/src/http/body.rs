//! The response body: plain chunks and chunks shared between responses.
//!
//! A realm-wide answer is a small per-request envelope around a large part
//! serialized once and shared by every reader (see `service::answers`).
//! Sending the parts as separate chunks lets every response reuse the shared
//! bytes without copying them; and when the client accepts gzip, the shared
//! part's compressed form is shared too (see `compression`). The length is
//! known, so `Content-Length` is set as for any other body. A shared part
//! under a kilobyte (an incremental answer nearly always is) is copied
//! into the envelope instead: one chunk is cheaper to send than three.
//!
//! An answer written for one request alone is kept as the `Vec` it was
//! written into ([`Chunk`]): turning it into `Bytes` would allocate a
//! reference count that nothing ever shares.
//!
//! The presence stream's body is the exception: its frames are written as
//! they are produced (see `events::sse`), so its length is unknown and it
//! is sent chunked, never compressed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
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
    /// Bytes written for this response, as they were written.
    Owned(Vec<u8>),
    /// The presences of a shared answer.
    Shared(Arc<SharedAnswer>),
}

impl Part {
    fn bytes(&self) -> &[u8] {
        match self {
            Part::Plain(bytes) => bytes,
            Part::Owned(bytes) => bytes,
            Part::Shared(answer) => &answer.presences,
        }
    }

    /// The part as the chunk that is written.
    fn into_chunk(self) -> Chunk {
        match self {
            Part::Plain(bytes) => Chunk::Shared(bytes),
            Part::Owned(bytes) => Chunk::Owned { bytes, at: 0 },
            Part::Shared(answer) => Chunk::Shared(answer.presences.clone()),
        }
    }

    /// The part as `Bytes`, shared bytes not copied.
    fn into_bytes(self) -> Bytes {
        match self {
            Part::Plain(bytes) => bytes,
            Part::Owned(bytes) => Bytes::from(bytes),
            Part::Shared(answer) => answer.presences.clone(),
        }
    }
}

/// A chunk of a body on its way to the socket.
#[derive(Debug)]
pub enum Chunk {
    /// Bytes that may be shared with other answers.
    Shared(Bytes),
    /// Bytes of this answer alone, `at` of them written.
    Owned {
        /// The bytes.
        bytes: Vec<u8>,
        /// How many are written.
        at: usize,
    },
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        match self {
            Chunk::Shared(bytes) => bytes.remaining(),
            Chunk::Owned { bytes, at } => bytes.len() - at,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Chunk::Shared(bytes) => bytes.chunk(),
            Chunk::Owned { bytes, at } => &bytes[*at..],
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Shared(bytes) => bytes.advance(n),
            Chunk::Owned { bytes, at } => {
                assert!(n <= bytes.len() - *at, "advanced past the chunk's end");
                *at += n;
            }
        }
    }
}

/// The largest shared part that [`Body::around_shared`] copies rather
/// than sends as a chunk of its own: below it an answer is not gzipped
/// either (see `compression`), so nothing needs the part kept apart.
pub const COPIED_SHARED_BYTES: usize = compression::MIN_COMPRESSED_BYTES as usize;

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
        Self::from_part(Part::Plain(bytes))
    }

    /// A body of one chunk written for this answer alone.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self::from_part(Part::Owned(bytes))
    }

    /// A body of `part` alone: nearly every answer, made without the
    /// general case's list.
    fn from_part(part: Part) -> Self {
        let remaining = part.bytes().len() as u64;
        Body {
            first: (remaining > 0).then_some(part),
            remaining,
            ..Body::default()
        }
    }

    /// `head`, then a shared answer's presences, then `tail`. Presences of
    /// at most [`COPIED_SHARED_BYTES`] are copied after `head`: one chunk
    /// costs less to send than three, and a poll's incremental answer is
    /// nearly always that small.
    pub fn around_shared(
        mut head: Vec<u8>,
        answer: Arc<SharedAnswer>,
        tail: &'static [u8],
    ) -> Self {
        if answer.presences.len() <= COPIED_SHARED_BYTES {
            head.extend_from_slice(&answer.presences);
            head.extend_from_slice(tail);
            return Self::from_vec(head);
        }
        Self::from_parts([
            Part::Owned(head),
            Part::Shared(answer),
            Part::Plain(Bytes::from_static(tail)),
        ])
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
            Part::Shared(answer) => Piece::Shared(&answer.presences, &answer.deflated),
            plain => Piece::Plain(plain.bytes()),
        });
        Self::from_parts(compression::gzip(pieces).into_iter().map(Part::Plain))
    }

    /// The chunks of a body of known length, shared parts not copied: for
    /// a stream's first message.
    pub fn into_chunks(self) -> Vec<Bytes> {
        self.first
            .into_iter()
            .chain(self.rest)
            .map(Part::into_bytes)
            .collect()
    }

    /// The whole body in one piece (a stream's frames not included).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts()
            .flat_map(|p| p.bytes().iter().copied())
            .collect()
    }
}

impl hyper::body::Body for Body {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        match self.first.take().or_else(|| self.rest.pop_front()) {
            Some(part) => {
                self.remaining -= part.bytes().len() as u64;
                Poll::Ready(Some(Ok(Frame::data(part.into_chunk()))))
            }
            None => match self.stream.as_mut() {
                Some(stream) => hyper::body::Body::poll_frame(Pin::new(&mut **stream), cx)
                    .map(|frame| frame.map(|frame| frame.map(|f| f.map_data(Chunk::Shared)))),
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

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn shared(presences: Vec<u8>) -> Arc<SharedAnswer> {
        Arc::new(SharedAnswer {
            presences: Bytes::from(presences),
            deflated: OnceLock::new(),
            last_update_id: None,
        })
    }

    #[test]
    fn a_small_shared_part_is_copied_into_one_chunk() {
        let answer = shared(br#"{"1":{"active_timestamp":5}}"#.to_vec());
        let body = Body::around_shared(b"{\"presences\":".to_vec(), answer, b"}");
        let chunks = body.into_chunks();
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            &chunks[0][..],
            br#"{"presences":{"1":{"active_timestamp":5}}}"#
        );
    }

    #[test]
    fn a_large_shared_part_is_sent_as_it_is_held() {
        let presences = vec![b' '; COPIED_SHARED_BYTES + 1];
        let answer = shared(presences);
        let body = Body::around_shared(b"{".to_vec(), answer.clone(), b"}");
        assert_eq!(body.len(), COPIED_SHARED_BYTES as u64 + 3);
        let chunks = body.into_chunks();
        assert_eq!(chunks.len(), 3);
        // The very bytes the realm's answer holds, not a copy of them.
        assert_eq!(chunks[1].as_ptr(), answer.presences.as_ptr());
        assert_eq!(chunks[1].len(), answer.presences.len());
    }
}
