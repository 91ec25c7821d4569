//! Presence on other sites: what a web page needs from the server.
//!
//! A page embeds the components of `/embed/presence.js` with an embed key
//! (see `service::embed`), and its browser calls the read endpoints across
//! origins. This module holds what that takes at the HTTP level:
//! - [`cors`]: the browser's preflight, and the grant an answer carries
//!   when the page's origin may read it;
//! - [`assets`]: the components, and the who's-online page at `/directory`,
//!   compiled into the binary;
//! - [`spec`]: all of that in the OpenAPI document.
//!
//! The embed keys themselves, and what they may read, are the service's;
//! the request pipeline (`http::answer`) decides which caller a request has.

pub mod assets;
pub mod cors;
pub mod spec;
