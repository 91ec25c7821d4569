//! gzip for clients that accept it, without compressing shared bytes twice.
//!
//! A body is a series of chunks, some of them shared between every reader
//! of a realm (see `service::answers`). Each chunk is compressed on its own
//! as raw DEFLATE ending in a full flush, which byte-aligns the output and
//! resets the compressor, so the pieces can be laid end to end: a gzip
//! header, the pieces, a final empty block, and a trailer whose CRC-32 is
//! combined from the pieces' CRCs. A shared chunk is compressed once, when
//! first asked for, and the result shared like the chunk itself. The result
//! is one ordinary gzip member, which every decoder reads.

use std::io;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

/// Bodies shorter than this are sent as they are: compressing them saves
/// less than it costs.
pub const MIN_COMPRESSED_BYTES: u64 = 1024;

/// A gzip header: magic, DEFLATE, no flags, no time, no extra flags, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A chunk compressed as raw DEFLATE ending in a full flush, with what the
/// gzip trailer needs.
#[derive(Debug, Clone)]
pub struct Deflated {
    data: Bytes,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Deflated {
    /// Compresses `input` so that it can be followed by other pieces.
    pub fn new(input: &[u8]) -> Deflated {
        // Fast compression: presence JSON is repetitive, and the shared
        // chunks are compressed once anyway.
        let mut compressor = Compress::new(Compression::fast(), false);
        let mut data = Vec::with_capacity(input.len() / 4 + 64);
        deflate(&mut compressor, input, &mut data, FlushCompress::Full);
        let mut crc = crc32fast::Hasher::new();
        crc.update(input);
        Deflated {
            data: Bytes::from(data),
            crc,
            len: input.len() as u64,
        }
    }
}

/// Runs `compressor` over all of `input`, then flushes as asked.
fn deflate(compressor: &mut Compress, input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) {
    let mut consumed = 0;
    loop {
        // compress_vec writes only into spare capacity.
        out.reserve(input.len() - consumed + 64);
        let before = compressor.total_in();
        compressor
            .compress_vec(&input[consumed..], out, flush)
            .expect("in-memory DEFLATE cannot fail");
        consumed += (compressor.total_in() - before) as usize;
        // All input taken and room left over: the flush is complete.
        if consumed == input.len() && out.len() < out.capacity() {
            return;
        }
    }
}

/// A chunk of a body to compress: plain bytes, or shared bytes with their
/// compressed form kept beside them.
pub enum Piece<'a> {
    /// Bytes of this response only.
    Plain(&'a [u8]),
    /// Shared bytes, compressed at most once.
    Shared(&'a Bytes, &'a OnceLock<Deflated>),
}

/// The pieces as one gzip member, each shared piece compressed at most once.
pub fn gzip<'a>(pieces: impl IntoIterator<Item = Piece<'a>>) -> Vec<Bytes> {
    let mut out = vec![Bytes::from_static(&GZIP_HEADER)];
    let mut crc = crc32fast::Hasher::new();
    let mut len: u64 = 0;
    for piece in pieces {
        let deflated = match piece {
            Piece::Plain([]) => continue,
            Piece::Plain(bytes) => Deflated::new(bytes),
            Piece::Shared(bytes, cell) => cell.get_or_init(|| Deflated::new(bytes)).clone(),
        };
        crc.combine(&deflated.crc);
        len += deflated.len;
        out.push(deflated.data);
    }
    let mut end = Vec::with_capacity(16);
    deflate(
        &mut Compress::new(Compression::fast(), false),
        &[],
        &mut end,
        FlushCompress::Finish,
    );
    end.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32, by definition.
    end.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(Bytes::from(end));
    out
}

/// Whether an `Accept-Encoding` value allows gzip (`gzip` or `*`, with a
/// quality above zero).
pub fn accepts_gzip(accept_encoding: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(accept_encoding) else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// Reads a gzip body back (for tests and checks).
pub fn gunzip(data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn pieces_make_one_valid_member() {
        let shared = Bytes::from("{\"a\":1,\"b\":2}".repeat(500));
        let cell = OnceLock::new();
        let pieces = || {
            [
                Piece::Plain(b"{\"result\":\"success\",\"presences\":"),
                Piece::Shared(&shared, &cell),
                Piece::Plain(b"}"),
            ]
        };
        let first = joined(&gzip(pieces()));
        let mut expected = b"{\"result\":\"success\",\"presences\":".to_vec();
        expected.extend_from_slice(&shared);
        expected.push(b'}');
        assert_eq!(gunzip(&first).unwrap(), expected);
        assert!(first.len() < expected.len() / 5, "it compresses");
        assert!(cell.get().is_some(), "the shared piece is kept");
        // Again, from the kept piece: the same bytes.
        assert_eq!(joined(&gzip(pieces())), first);
    }

    #[test]
    fn empty_and_large_inputs() {
        assert_eq!(gunzip(&joined(&gzip([]))).unwrap(), b"");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let out = joined(&gzip([Piece::Plain(&big)]));
        assert_eq!(gunzip(&out).unwrap(), big);
    }

    #[test]
    fn accept_encoding_is_parsed() {
        assert!(accepts_gzip(b"gzip, deflate"));
        assert!(accepts_gzip(b"br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip(b"*"));
        assert!(!accepts_gzip(b"gzip;q=0"));
        assert!(!accepts_gzip(b"deflate, br"));
        assert!(!accepts_gzip(b"identity"));
    }
}
