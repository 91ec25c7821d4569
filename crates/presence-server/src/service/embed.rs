//! Embed keys: read-only credentials of one realm, meant to be seen in the
//! source of web pages (the pattern of a publishable key).
//!
//! A page that shows who is online (an intranet, an employee directory)
//! cannot hold a user's API key: anyone who reads the page would have it.
//! It holds an embed key instead, which can only read its realm's presence
//! and directory, never write, never register an event queue, and is bound
//! to the web origins allowed to use it. The origin binding is enforced by
//! browsers (a page elsewhere gets no CORS grant and its requests are
//! refused), so it stops other sites from using the key in their visitors'
//! browsers; it is not a secret from anyone who can read the page, and a
//! program that is not a browser may use it from anywhere.
//!
//! Keys live in the store hashed, like API keys, and in memory in an index
//! by hash that the writer keeps current. A revoked key stays in the index
//! as a tombstone, so that its refusal still reaches the pages that used it
//! (with a CORS grant for its origins) and says why.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use thiserror::Error;

use super::model::{KeyId, SharedRealm};
use crate::events::Owner;
use crate::ids::{EmbedKeyId, RealmId};
use crate::store::EmbedKeyRow;

/// What every embed key starts with, so that one is recognised at a glance
/// in a page's source and never taken for a user's key.
pub const EMBED_KEY_PREFIX: &str = "embed_";

/// How many random characters follow the prefix.
const EMBED_KEY_RANDOM_LEN: usize = 32;

/// A new random embed key.
pub fn generate_key() -> String {
    format!("{EMBED_KEY_PREFIX}{}", crate::keys::generate())
}

/// Whether `token` has the shape of an embed key.
pub fn is_embed_key(token: &str) -> bool {
    token.strip_prefix(EMBED_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == EMBED_KEY_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Why an origin was refused when an embed key was created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid origin {0:?}: use scheme://host[:port] with http or https, \
     a host in ASCII (punycode for international names), and no path"
)]
pub struct InvalidOrigin(pub String);

/// A web origin in the form browsers send in the `Origin` header:
/// `https://intranet.example.com`, lower case, no default port, no path.
/// Stored and compared in that form, so that a request's header matches
/// byte for byte.
pub fn normalize_origin(origin: &str) -> Result<String, InvalidOrigin> {
    let invalid = || InvalidOrigin(origin.to_owned());
    let trimmed = origin.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed.split_once("://").ok_or_else(invalid)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err(invalid()),
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) || !rest.is_ascii() {
        return Err(invalid());
    }
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal's colons are inside its brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return Err(invalid());
    }
    let host = host.to_ascii_lowercase();
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(port) => {
            let number: u16 = port.parse().map_err(|_| invalid())?;
            if number == 0 {
                return Err(invalid());
            }
            if port == default_port {
                Ok(format!("{scheme}://{host}"))
            } else {
                Ok(format!("{scheme}://{host}:{number}"))
            }
        }
    }
}

/// An embed key in memory.
#[derive(Debug)]
pub struct EmbedKey {
    /// Server-wide id.
    pub id: EmbedKeyId,
    /// The realm it reads.
    pub realm_id: RealmId,
    /// Its name, for logs.
    pub name: Box<str>,
    origins: Box<[Box<str>]>,
    /// A revoked key is kept only to say so.
    pub revoked: bool,
    /// When a request last used it (Unix seconds), and what the store was
    /// last told: the writer writes the first down when it has moved on.
    last_used: AtomicI64,
    recorded: AtomicI64,
}

impl EmbedKey {
    /// The key of a stored row.
    pub fn from_row(row: &EmbedKeyRow) -> EmbedKey {
        let recorded = row.last_used_at.unwrap_or(0);
        EmbedKey {
            id: row.id,
            realm_id: row.realm_id,
            name: row.name.as_str().into(),
            origins: row.origins.iter().map(|o| o.as_str().into()).collect(),
            revoked: row.revoked_at.is_some(),
            last_used: AtomicI64::new(recorded),
            recorded: AtomicI64::new(recorded),
        }
    }

    /// Whether a page on `origin` may use the key.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| &**o == origin)
    }

    /// Notes a use at `now`.
    pub fn used(&self, now: i64) {
        self.last_used.fetch_max(now, Ordering::Relaxed);
    }

    /// The last use not yet recorded in the store, if the store is more
    /// than `granularity` seconds behind; marks it recorded.
    pub fn take_unrecorded_use(&self, granularity: i64) -> Option<i64> {
        let used = self.last_used.load(Ordering::Relaxed);
        let recorded = self.recorded.load(Ordering::Relaxed);
        (used >= recorded.saturating_add(granularity)).then(|| {
            self.recorded.store(used, Ordering::Relaxed);
            used
        })
    }

    /// Whose event queues the key's streams are.
    pub fn owner(&self) -> Owner {
        Owner::EmbedKey(self.id)
    }
}

/// Every embed key by the hash of its token, and every origin they name.
#[derive(Debug, Default)]
pub struct EmbedKeys {
    by_hash: HashMap<KeyId, Arc<EmbedKey>>,
    /// How many keys (revoked ones included) name each origin: a browser's
    /// preflight, which carries no key, is granted for these.
    origins: HashMap<Box<str>, usize>,
}

impl EmbedKeys {
    /// Adds a key, or replaces it (a revocation) keeping its last use.
    pub fn put(&mut self, row: &EmbedKeyRow) {
        let key = Arc::new(EmbedKey::from_row(row));
        let id = KeyId::of(&row.key_hash);
        if let Some(old) = self.by_hash.insert(id, key.clone()) {
            key.used(old.last_used.load(Ordering::Relaxed));
            for origin in old.origins.iter() {
                if let Some(count) = self.origins.get_mut(origin) {
                    *count -= 1;
                    if *count == 0 {
                        self.origins.remove(origin);
                    }
                }
            }
        }
        for origin in key.origins.iter() {
            *self.origins.entry(origin.clone()).or_insert(0) += 1;
        }
    }

    /// The key whose token hashes to `id`.
    pub fn find(&self, id: &KeyId) -> Option<&Arc<EmbedKey>> {
        self.by_hash.get(id)
    }

    /// Whether some key names `origin`.
    pub fn knows_origin(&self, origin: &str) -> bool {
        self.origins.contains_key(origin)
    }

    /// Every key.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<EmbedKey>> {
        self.by_hash.values()
    }
}

/// A caller authenticated by an embed key: it may read its realm.
#[derive(Clone)]
pub struct EmbedCaller {
    pub(super) realm: SharedRealm,
    /// The key.
    pub key: Arc<EmbedKey>,
}

/// Why an embed key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EmbedAuthError {
    /// No key has this token.
    #[error("Invalid embed key")]
    Invalid,
    /// The key was revoked.
    #[error("This embed key has been revoked")]
    Revoked,
    /// The key's realm is deactivated.
    #[error("This organization has been deactivated")]
    RealmDeactivated,
    /// The request comes from a page on an origin the key does not list.
    #[error("This embed key may not be used from this origin")]
    OriginNotAllowed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_take_the_form_browsers_send() {
        for (given, normal) in [
            (
                "https://Intranet.Example.com",
                "https://intranet.example.com",
            ),
            (
                "https://intranet.example.com/",
                "https://intranet.example.com",
            ),
            (
                "https://intranet.example.com:443",
                "https://intranet.example.com",
            ),
            ("http://localhost:8080", "http://localhost:8080"),
            ("HTTP://127.0.0.1:80", "http://127.0.0.1"),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("http://[::1]", "http://[::1]"),
        ] {
            assert_eq!(normalize_origin(given).as_deref(), Ok(normal), "{given}");
        }
        for bad in [
            "intranet.example.com",
            "ftp://example.com",
            "https://",
            "https://example.com/path",
            "https://example.com?x",
            "https://user@example.com",
            "https://exämple.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://exa mple.com",
            "null",
            "*",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn embed_keys_have_their_own_shape() {
        let key = generate_key();
        assert!(is_embed_key(&key), "{key}");
        assert!(
            !crate::keys::is_well_formed(&key),
            "never taken for an API key"
        );
        assert!(!is_embed_key(&crate::keys::generate()));
        assert!(!is_embed_key("embed_short"));
    }

    fn row(id: i64, hash: u8, origins: &[&str], revoked: bool) -> EmbedKeyRow {
        EmbedKeyRow {
            id: EmbedKeyId(id),
            realm_id: RealmId(1),
            name: format!("k{id}"),
            key_hash: [hash; 32],
            origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            created_at: 0,
            last_used_at: None,
            revoked_at: revoked.then_some(5),
        }
    }

    #[test]
    fn the_index_keeps_origins_counted_through_revocations() {
        let mut keys = EmbedKeys::default();
        keys.put(&row(1, 1, &["https://a.test", "https://b.test"], false));
        keys.put(&row(2, 2, &["https://a.test"], false));
        assert!(keys.knows_origin("https://b.test"));
        let found = keys.find(&KeyId::of(&[1; 32])).unwrap();
        assert!(found.allows("https://b.test") && !found.allows("https://c.test"));
        found.used(100);
        // A revocation replaces the key; its origins stay known, so that
        // pages on them can be told.
        keys.put(&row(1, 1, &["https://a.test", "https://b.test"], true));
        let revoked = keys.find(&KeyId::of(&[1; 32])).unwrap();
        assert!(revoked.revoked);
        assert_eq!(revoked.take_unrecorded_use(60), Some(100));
        assert_eq!(revoked.take_unrecorded_use(60), None, "recorded once");
        assert!(keys.knows_origin("https://b.test"));
        assert!(!keys.knows_origin("https://c.test"));
    }
}
