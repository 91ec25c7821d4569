//! Basic credentials already verified, by the exact bytes of their
//! `Authorization` header: a client sends the same header on every
//! request, and decoding its Base64 and hashing its key with SHA-256 again
//! each time would be most of what a read costs.
//!
//! What an entry holds is a pure function of the header (the email, and the
//! id the key index knows the key by), so a cached header is authenticated
//! exactly as a fresh one: the key index and the user are looked up on
//! every request. A key reset takes the old key out of the index and a
//! deactivation is checked each time, so neither needs the cache's help;
//! an entry whose key stopped working is dropped when it is next used.
//!
//! Only headers that authenticated are added, so the cache cannot be filled
//! with guesses. It is bounded, and emptied whole when full (every valid
//! client then pays for one slow request). The bound grows with the keys
//! the server knows, two headers per key (a client may write its email in
//! another case), and is never under [`MIN_ENTRIES`]: with a fixed bound,
//! an organisation with more active clients than that bound emptied the
//! cache again and again, and most of its reports paid for the slow path.
//! Lookups hash the header with a key picked at random for this process
//! and compare it in constant time, so how long a lookup takes says
//! nothing about the headers held.
//!
//! An entry keeps the header, the key id and the email in one allocation:
//! in a large organisation a lookup's memory reads are cache misses, and
//! three allocations (the header, a shared record, its email) cost about
//! two more misses a request than one (BENCHMARKS.md, "Cache misses per
//! request, counted").

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::RwLock;

use crate::keys;
use crate::service::model::KeyId;

/// The fewest headers the bound allows (about 10 MiB of them): each is
/// about 160 bytes.
pub const MIN_ENTRIES: usize = 65_536;

/// Headers held per key the server knows, once past [`MIN_ENTRIES`].
pub const ENTRIES_PER_KEY: usize = 2;

/// The most headers held, for a server that knows `keys` API keys.
pub fn bound(keys: usize) -> usize {
    keys.saturating_mul(ENTRIES_PER_KEY).max(MIN_ENTRIES)
}

/// Bytes of an entry before its header: the key id.
const KEY_ID_BYTES: usize = 16;

/// What a verified header decodes to: its email and the id of its key in
/// the key index, read from the cache's entry.
#[derive(Clone)]
pub struct Verified {
    /// The key id, the header, then the email.
    bytes: Arc<[u8]>,
    /// Where the email starts in `bytes`.
    email_at: usize,
}

impl Verified {
    /// The email of the Basic pair.
    pub fn email(&self) -> &str {
        // Written from a `&str` by `insert`; never anything else.
        std::str::from_utf8(&self.bytes[self.email_at..]).unwrap_or_default()
    }

    /// The id of its key in the key index.
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&self.bytes[..KEY_ID_BYTES]);
        KeyId(id)
    }

    /// The header it was verified from.
    fn header(&self) -> &[u8] {
        &self.bytes[KEY_ID_BYTES..self.email_at]
    }
}

/// Shows the email and the key id; never the header, which carries the key.
impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("email", &self.email())
            .field("key_id", &self.key_id())
            .finish()
    }
}

/// Verified `Authorization` headers (see the module's documentation).
pub struct AuthCache {
    entries: RwLock<HashTable<Verified>>,
    hasher: DefaultHashBuilder,
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache {
            entries: RwLock::new(HashTable::new()),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl AuthCache {
    /// What `header` was verified as, if it is held.
    pub fn get(&self, header: &[u8]) -> Option<Verified> {
        let hash = self.hasher.hash_one(header);
        let entries = self.entries.read();
        entries
            .find(hash, |entry| keys::ids_equal(entry.header(), header))
            .cloned()
    }

    /// Holds `header`, which just authenticated with the key `key_id` as
    /// `email`, keeping at most `bound` headers (see [`bound`]).
    pub fn insert(&self, header: &[u8], email: &str, key_id: KeyId, bound: usize) {
        let hash = self.hasher.hash_one(header);
        let mut entries = self.entries.write();
        if entries
            .find(hash, |entry| keys::ids_equal(entry.header(), header))
            .is_some()
        {
            return;
        }
        if entries.len() >= bound {
            entries.clear();
        }
        let bytes: Arc<[u8]> = [&key_id.0[..], header, email.as_bytes()].concat().into();
        let entry = Verified {
            bytes,
            email_at: KEY_ID_BYTES + header.len(),
        };
        let hasher = &self.hasher;
        entries.insert_unique(hash, entry, |entry| hasher.hash_one(entry.header()));
    }

    /// Drops `header`: it no longer authenticates.
    pub fn remove(&self, header: &[u8]) {
        let hash = self.hasher.hash_one(header);
        let mut entries = self.entries.write();
        if let Ok(entry) = entries.find_entry(hash, |entry| keys::ids_equal(entry.header(), header))
        {
            entry.remove();
        }
    }

    /// How many headers are held.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds `header` as verified for user `n`'s email and key.
    fn insert(cache: &AuthCache, header: &[u8], n: u8, bound: usize) {
        cache.insert(header, &format!("u{n}@x.test"), KeyId([n; 16]), bound);
    }

    /// The email and key id `header` is held as.
    fn held(cache: &AuthCache, header: &[u8]) -> Option<(String, KeyId)> {
        cache
            .get(header)
            .map(|verified| (verified.email().to_owned(), verified.key_id()))
    }

    /// User `n`'s email and key id.
    fn verified(n: u8) -> Option<(String, KeyId)> {
        Some((format!("u{n}@x.test"), KeyId([n; 16])))
    }

    #[test]
    fn a_held_header_is_found_by_its_exact_bytes_only() {
        let cache = AuthCache::default();
        insert(&cache, b"Basic AAAA", 1, MIN_ENTRIES);
        assert_eq!(held(&cache, b"Basic AAAA"), verified(1));
        assert!(cache.get(b"Basic AAAB").is_none());
        assert!(cache.get(b"basic AAAA").is_none());
        assert!(cache.get(b"Basic AAAA ").is_none());
        insert(&cache, b"Basic AAAA", 2, MIN_ENTRIES);
        assert_eq!(held(&cache, b"Basic AAAA"), verified(1), "kept once");
        // Debug shows the email and key id, never the header (it carries the key).
        assert_eq!(
            format!("{:?}", cache.get(b"Basic AAAA").unwrap()),
            format!(
                "Verified {{ email: \"u1@x.test\", key_id: {:?} }}",
                KeyId([1; 16])
            )
        );
        cache.remove(b"Basic AAAA");
        assert!(cache.get(b"Basic AAAA").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = AuthCache::default();
        for n in 0..MIN_ENTRIES {
            insert(&cache, format!("Basic {n}").as_bytes(), 0, MIN_ENTRIES);
        }
        assert_eq!(cache.len(), MIN_ENTRIES);
        insert(&cache, b"Basic new", 3, MIN_ENTRIES);
        assert_eq!(cache.len(), 1);
        assert_eq!(held(&cache, b"Basic new"), verified(3));
    }

    #[test]
    fn the_bound_grows_with_the_keys_known() {
        assert_eq!(bound(0), MIN_ENTRIES);
        assert_eq!(bound(MIN_ENTRIES / ENTRIES_PER_KEY), MIN_ENTRIES);
        assert_eq!(bound(1_000_000), 2_000_000);
        // A cache of a large organisation holds past the least bound.
        let cache = AuthCache::default();
        let keys = MIN_ENTRIES;
        for n in 0..=MIN_ENTRIES {
            insert(&cache, format!("Basic {n}").as_bytes(), 0, bound(keys));
        }
        assert_eq!(cache.len(), MIN_ENTRIES + 1);
    }
}
