//! Basic credentials already verified, by the exact bytes of their
//! `Authorization` header: a client sends the same header on every
//! request, and decoding its Base64 and hashing its key with SHA-256 again
//! each time would be most of what a read costs.
//!
//! An entry holds what is a pure function of the header (the email, and
//! the id the key index knows the key by) and the caller the header last
//! authenticated as, with the directory's epoch it was read under (see
//! [`DirectoryEpoch`](crate::service::epoch::DirectoryEpoch)). While the
//! epoch is the same, nothing that alters how a key authenticates (a key,
//! an account's email, activity or bot flag, a deletion, a realm's
//! deactivation) has changed since, and the caller is used as it is; once
//! it moves, the header is authenticated
//! again from its key id and email (the key index, the realm and the user
//! looked up, as for a fresh header) and the new reading is kept. So a key
//! reset, a deactivation, a deletion or an email change is honoured from
//! the moment the writer installs it, as without the cache; an entry whose
//! key stopped working is dropped when it is next used.
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
//! request, counted"). Keeping the caller spares the key index's probe,
//! the user's entry and the account's email: three more.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::RwLock;

use crate::keys;
use crate::service::Caller;
use crate::service::epoch::Epoch;
use crate::service::model::KeyId;

/// The fewest headers the bound allows (about 13 MiB of them): each is
/// about 200 bytes.
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

/// What a held header gives.
pub enum Held {
    /// The caller it authenticated as, the directory unchanged since.
    Caller(Caller),
    /// What it verified as; the directory changed since it last
    /// authenticated (or it never did under this entry), so its key id and
    /// email are to be authenticated again.
    Verified(Verified),
}

/// A held header.
struct Entry {
    verified: Verified,
    /// The caller it last authenticated as, and the epoch read before.
    caller: Option<(Epoch, Caller)>,
}

impl Entry {
    fn header(&self) -> &[u8] {
        self.verified.header()
    }
}

/// Verified `Authorization` headers (see the module's documentation).
pub struct AuthCache {
    entries: RwLock<HashTable<Entry>>,
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
    /// What `header` gives, if it is held: its caller if it was read under
    /// `epoch` (the directory's epoch now), else what it was verified as.
    pub fn get(&self, header: &[u8], epoch: Epoch) -> Option<Held> {
        let hash = self.hasher.hash_one(header);
        let entries = self.entries.read();
        let entry = entries.find(hash, |entry| keys::ids_equal(entry.header(), header))?;
        Some(match &entry.caller {
            Some((read, caller)) if *read == epoch => Held::Caller(caller.clone()),
            _ => Held::Verified(entry.verified.clone()),
        })
    }

    /// Holds `header`, which authenticated with the key `key_id` as
    /// `email` and as `caller`, read under `epoch` (taken before the
    /// directory was read), keeping at most `bound` headers (see
    /// [`bound`]). A header already held keeps its bytes and takes the
    /// new caller.
    pub fn insert(
        &self,
        header: &[u8],
        verified_as: (&str, KeyId),
        caller: (Epoch, &Caller),
        bound: usize,
    ) {
        let (email, key_id) = verified_as;
        let caller = Some((caller.0, caller.1.clone()));
        let hash = self.hasher.hash_one(header);
        let mut entries = self.entries.write();
        if let Some(held) = entries.find_mut(hash, |entry| keys::ids_equal(entry.header(), header))
        {
            held.caller = caller;
            return;
        }
        if entries.len() >= bound {
            entries.clear();
        }
        let bytes: Arc<[u8]> = [&key_id.0[..], header, email.as_bytes()].concat().into();
        let verified = Verified {
            bytes,
            email_at: KEY_ID_BYTES + header.len(),
        };
        let hasher = &self.hasher;
        entries.insert_unique(hash, Entry { verified, caller }, |entry| {
            hasher.hash_one(entry.header())
        });
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
    use crate::service::epoch::DirectoryEpoch;

    /// Holds `header` as verified for user `n`'s email and key, and as
    /// user `n`, read under `epoch`.
    fn insert(cache: &AuthCache, header: &[u8], n: u8, epoch: Epoch, bound: usize) {
        let caller = Caller::for_tests(i64::from(n));
        let verified_as = (format!("u{n}@x.test"), KeyId([n; 16]));
        cache.insert(
            header,
            (&verified_as.0, verified_as.1),
            (epoch, &caller),
            bound,
        );
    }

    /// Whom `header` is held as under `epoch`: the user id of a kept
    /// caller, or the email and key id to authenticate again.
    fn held(cache: &AuthCache, header: &[u8], epoch: Epoch) -> Option<Found> {
        cache.get(header, epoch).map(|held| match held {
            Held::Caller(caller) => Found::Caller(caller.user_id().0),
            Held::Verified(v) => Found::Verified(v.email().to_owned(), v.key_id()),
        })
    }

    /// What a held header gives, comparable.
    #[derive(Debug, PartialEq)]
    enum Found {
        Caller(i64),
        Verified(String, KeyId),
    }

    /// User `n`'s email and key id.
    fn verified(n: u8) -> Option<Found> {
        Some(Found::Verified(format!("u{n}@x.test"), KeyId([n; 16])))
    }

    #[test]
    fn a_held_header_is_found_by_its_exact_bytes_only() {
        let cache = AuthCache::default();
        let now = DirectoryEpoch::default().current();
        insert(&cache, b"Basic AAAA", 1, now, MIN_ENTRIES);
        assert_eq!(held(&cache, b"Basic AAAA", now), Some(Found::Caller(1)));
        for other in [&b"Basic AAAB"[..], b"basic AAAA", b"Basic AAAA "] {
            assert!(cache.get(other, now).is_none());
        }
        insert(&cache, b"Basic AAAA", 2, now, MIN_ENTRIES);
        assert_eq!(cache.len(), 1, "held once");
        cache.remove(b"Basic AAAA");
        assert!(cache.get(b"Basic AAAA", now).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_kept_caller_is_used_only_under_the_epoch_it_was_read_under() {
        let cache = AuthCache::default();
        let epoch = DirectoryEpoch::default();
        let before = epoch.current();
        insert(&cache, b"Basic AAAA", 1, before, MIN_ENTRIES);
        // A change of the directory began (or ended) since: authenticate again.
        let during = epoch.changing(|| {
            let during = epoch.current();
            assert_eq!(held(&cache, b"Basic AAAA", during), verified(1));
            // What is read during a change is kept under that epoch, which
            // the change's end leaves behind.
            insert(&cache, b"Basic AAAA", 1, during, MIN_ENTRIES);
            during
        });
        let after = epoch.current();
        assert_ne!(during, after);
        assert_eq!(held(&cache, b"Basic AAAA", after), verified(1));
        // Read again after the change, it is kept until the next one.
        insert(&cache, b"Basic AAAA", 1, after, MIN_ENTRIES);
        assert_eq!(held(&cache, b"Basic AAAA", after), Some(Found::Caller(1)));
        // Debug shows the email and key id, never the header (it carries the key).
        let Some(Held::Verified(v)) = cache.get(b"Basic AAAA", before) else {
            panic!("an older epoch gets what the header verified as");
        };
        assert_eq!(
            format!("{v:?}"),
            format!(
                "Verified {{ email: \"u1@x.test\", key_id: {:?} }}",
                KeyId([1; 16])
            )
        );
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = AuthCache::default();
        let now = DirectoryEpoch::default().current();
        for n in 0..MIN_ENTRIES {
            insert(&cache, format!("Basic {n}").as_bytes(), 0, now, MIN_ENTRIES);
        }
        assert_eq!(cache.len(), MIN_ENTRIES);
        insert(&cache, b"Basic new", 3, now, MIN_ENTRIES);
        assert_eq!(cache.len(), 1);
        assert_eq!(held(&cache, b"Basic new", now), Some(Found::Caller(3)));
    }

    #[test]
    fn the_bound_grows_with_the_keys_known() {
        assert_eq!(bound(0), MIN_ENTRIES);
        assert_eq!(bound(MIN_ENTRIES / ENTRIES_PER_KEY), MIN_ENTRIES);
        assert_eq!(bound(1_000_000), 2_000_000);
        // A cache of a large organisation holds past the least bound.
        let cache = AuthCache::default();
        let now = DirectoryEpoch::default().current();
        let keys = MIN_ENTRIES;
        for n in 0..=MIN_ENTRIES {
            insert(&cache, format!("Basic {n}").as_bytes(), 0, now, bound(keys));
        }
        assert_eq!(cache.len(), MIN_ENTRIES + 1);
    }
}
