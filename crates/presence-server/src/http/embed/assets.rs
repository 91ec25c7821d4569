//! The files of the web embed, compiled into the binary: the components a
//! page loads, and the who's-online page.
//!
//! Each is served with a strong `ETag` (a digest of its bytes, so a new
//! version of the server is a new tag) and a short cache lifetime; a
//! request that names the current tag gets `304 Not Modified`. The
//! components may be loaded by any page (a module script is fetched in
//! CORS mode, and the file is public); the who's-online page runs only the
//! server's own scripts and talks only to the server.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use sha2::{Digest, Sha256};

use super::super::body::Body;
use super::super::routes::Asset;

/// How long browsers and proxies may use a file without asking again.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The who's-online page's content security policy: its own scripts and
/// the server's API, nothing else; no inline script.
const DIRECTORY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// One file and what is said about it.
struct File {
    bytes: &'static [u8],
    content_type: &'static str,
}

fn file(asset: Asset) -> File {
    match asset {
        Asset::Components => File {
            bytes: include_bytes!("../../../web/presence.js"),
            content_type: "text/javascript; charset=utf-8",
        },
        Asset::DirectoryScript => File {
            bytes: include_bytes!("../../../web/directory.js"),
            content_type: "text/javascript; charset=utf-8",
        },
        Asset::DirectoryPage => File {
            bytes: include_bytes!("../../../web/directory.html"),
            content_type: "text/html; charset=utf-8",
        },
    }
}

/// The `ETag` of a file: a quoted digest of its bytes, made once.
fn etag(asset: Asset) -> &'static HeaderValue {
    static TAGS: OnceLock<[HeaderValue; 3]> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        [
            Asset::Components,
            Asset::DirectoryScript,
            Asset::DirectoryPage,
        ]
        .map(|a| {
            let digest = Sha256::digest(file(a).bytes);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header")
        })
    });
    &tags[asset as usize]
}

/// Answers `GET` (or `HEAD`) of a file.
pub fn serve(asset: Asset, headers: &HeaderMap, head: bool) -> Response<Body> {
    let file = file(asset);
    let tag = etag(asset);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Body::default())
    } else if head {
        (StatusCode::OK, Body::default())
    } else {
        (
            StatusCode::OK,
            Body::from_bytes(Bytes::from_static(file.bytes)),
        )
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, file.content_type)
        .header(header::ETAG, tag.clone())
        .header(header::CACHE_CONTROL, CACHE_CONTROL)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .expect("a valid response");
    let out = response.headers_mut();
    match asset {
        // Public files, needing no credential: any page may load them.
        Asset::Components | Asset::DirectoryScript => {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Asset::DirectoryPage => {
            out.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DIRECTORY_POLICY),
            );
            // The key is in the fragment, which no browser sends anyway.
            out.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_current_tag_is_not_modified() {
        let fresh = serve(Asset::Components, &HeaderMap::new(), false);
        assert_eq!(fresh.status(), StatusCode::OK);
        let tag = fresh.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, tag);
        let again = serve(Asset::Components, &headers, false);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(again.body().is_empty());
        assert_ne!(etag(Asset::Components), etag(Asset::DirectoryPage));
    }
}
