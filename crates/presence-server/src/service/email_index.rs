//! A realm's users by email, without a second copy of the emails.
//!
//! The index holds user ids only, hashed and compared through the users'
//! own emails by their [`email_key`]: trimmed and lower-cased, the one
//! definition of "same email" the store uses too. The lookup runs on every
//! single-user GET by email, so an ASCII email (nearly all) is hashed
//! without building its key.

use std::hash::{BuildHasher, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::model::Users;
use crate::ids::UserId;
use crate::store::{email_key, same_email};
use crate::words;

/// A realm's user ids, found by email.
#[derive(Default)]
pub(super) struct EmailIndex {
    ids: HashTable<UserId>,
    hasher: DefaultHashBuilder,
}

impl EmailIndex {
    /// Adds a user who is not in `users` yet.
    pub(super) fn insert(&mut self, users: &Users, id: UserId, email: &str) {
        let hasher = &self.hasher;
        self.ids
            .insert_unique(hash_email(hasher, email), id, |other| {
                hash_email(hasher, users.get(other).map_or("", |u| u.account.email()))
            });
    }

    /// Takes a user out, found under `email` (the email it was indexed by).
    pub(super) fn remove(&mut self, id: UserId, email: &str) {
        if let Ok(slot) = self
            .ids
            .find_entry(hash_email(&self.hasher, email), |&other| other == id)
        {
            slot.remove();
        }
    }

    /// Makes room for `additional` more users.
    pub(super) fn reserve(&mut self, users: &Users, additional: usize) {
        let hasher = &self.hasher;
        self.ids.reserve(additional, |id| {
            hash_email(hasher, users.get(id).map_or("", |u| u.account.email()))
        });
    }

    /// The id of the user with this email, if any.
    pub(super) fn find(&self, users: &Users, email: &str) -> Option<UserId> {
        let hash = hash_email(&self.hasher, email);
        self.ids
            .find(hash, |id| {
                users
                    .get(id)
                    .is_some_and(|u| same_email(u.account.email(), email))
            })
            .copied()
    }
}

/// The hash of an email's [`email_key`], the one definition of "same
/// email" the store uses too: the key's bytes, fed to the hasher as
/// little-endian words of eight (the last one padded with zeros). An ASCII
/// email (nearly all) is lower-cased a word at a time instead of building
/// the key; both ways feed the same words, so they agree wherever the keys
/// do.
fn hash_email(hasher: &DefaultHashBuilder, email: &str) -> u64 {
    let mut h = hasher.build_hasher();
    let trimmed = email.trim();
    if trimmed.is_ascii() {
        hash_words(&mut h, trimmed.as_bytes(), words::ascii_lowercase);
    } else {
        hash_words(&mut h, email_key(email).as_bytes(), |word| word);
    }
    h.finish()
}

/// Feeds `bytes` to `h` as little-endian words of eight, each through `map`.
fn hash_words(h: &mut impl Hasher, bytes: &[u8], map: impl Fn(u64) -> u64) {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        h.write_u64(map(u64::from_le_bytes(
            word.try_into().expect("eight bytes"),
        )));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        h.write_u64(map(words::word_of(tail)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_with_one_key_hash_alike_both_ways() {
        let hasher = DefaultHashBuilder::default();
        let long = format!("{}@Example.test", "A".repeat(150));
        // The Kelvin sign lower-cases to an ASCII `k`: a non-ASCII email
        // whose key is an ASCII one must hash as that one does.
        for (a, b) in [
            ("k@x.test", "\u{212a}@X.test"),
            (" Plain@X.test ", "plain@x.test"),
            (long.as_str(), &long.to_lowercase()),
        ] {
            assert_eq!(email_key(a), email_key(b), "{a} {b}");
            assert_eq!(hash_email(&hasher, a), hash_email(&hasher, b), "{a} {b}");
        }
        assert_ne!(
            hash_email(&hasher, &long),
            hash_email(&hasher, &format!("{long}x"))
        );
    }
}
