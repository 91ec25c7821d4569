//! The request headers the pipeline itself reads, found in one pass.
//!
//! Each lookup by name hashes the name and probes the map; the pipeline
//! wants four headers and the size of them all, and a request has only a
//! handful, so walking them once (as the size check must anyway) costs less
//! than the lookups did.

use http::{HeaderMap, HeaderValue, header};

use super::request_id;

/// What the pipeline reads of a request's headers: the first value of
/// each header it uses (as `HeaderMap::get` would give it), and the size
/// of them all.
#[derive(Debug, Default)]
pub struct Head {
    /// The headers' size as on the wire: `name: value\r\n` each.
    pub bytes: usize,
    /// `X-Request-Id`, an id the client asks the answer and log to carry.
    pub request_id: Option<HeaderValue>,
    /// `Authorization`, the caller's credentials.
    pub authorization: Option<HeaderValue>,
    /// `Accept-Encoding`, whether the answer may be gzipped.
    pub accept_encoding: Option<HeaderValue>,
    /// `Content-Length`, the body's declared size, if it is a number; read
    /// as the header is met, since nothing else wants the text.
    declared_length: Option<u64>,
}

impl Head {
    /// Reads `headers` once.
    pub fn read(headers: &HeaderMap) -> Head {
        let mut head = Head::default();
        // Only the first `Content-Length` counts, as `HeaderMap::get` gives it.
        let mut seen_length = false;
        for (name, value) in headers {
            head.bytes += name.as_str().len() + value.len() + 4;
            let slot = if name == header::AUTHORIZATION {
                &mut head.authorization
            } else if name == header::ACCEPT_ENCODING {
                &mut head.accept_encoding
            } else if name == header::CONTENT_LENGTH {
                if !seen_length {
                    seen_length = true;
                    head.declared_length = value.to_str().ok().and_then(|v| v.parse().ok());
                }
                continue;
            } else if name == request_id::HEADER {
                &mut head.request_id
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        }
        head
    }

    /// The declared body size, if the header holds a number.
    pub fn declared_length(&self) -> Option<u64> {
        self.declared_length
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_header_is_its_first_value_as_a_lookup_gives_it() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.test"));
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Basic a"));
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Basic b"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        headers.insert(request_id::HEADER, HeaderValue::from_static("id-1"));
        let head = Head::read(&headers);
        assert_eq!(
            head.authorization.as_ref(),
            headers.get(header::AUTHORIZATION)
        );
        assert_eq!(head.request_id.as_ref(), headers.get(&request_id::HEADER));
        assert_eq!(head.accept_encoding, None);
        assert_eq!(head.declared_length(), Some(12));
        let wire: usize = [
            "host: example.test\r\n",
            "authorization: Basic a\r\n",
            "authorization: Basic b\r\n",
            "content-length: 12\r\n",
            "x-request-id: id-1\r\n",
        ]
        .iter()
        .map(|line| line.len())
        .sum();
        assert_eq!(head.bytes, wire);
    }

    #[test]
    fn a_length_that_is_not_a_number_is_none() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("twelve"));
        assert_eq!(Head::read(&headers).declared_length(), None);
    }
}
