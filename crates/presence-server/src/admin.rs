//! What the admin commands do: create and change realms and users, with
//! input checked before anything is written.
//!
//! They write to the store directly, also while servers run on it; a
//! server notices through the store's directory version (see
//! `service::writer`). A command that changed something then waits until
//! every running server has installed its change ([`wait_until_applied`]),
//! so that it holds from the next request any of them receives: a key just
//! printed works at once, and a revoked one is refused at once.
//!
//! Why this way: each serving node writes in the store the directory
//! version it has installed (see `service::writer::node`), and the command
//! reads those reports until every live node has its change. The other
//! ways fall short. Polling faster only narrows the window in which a
//! printed key is refused. Looking the store up when a key is unknown
//! (bounded against abuse) lets new keys in at once, but cannot make a
//! revocation or a deactivation hold: the revoked key is still known.
//! A wake-up sent by the command to the server would need an address or a
//! socket per node, which the store already names. The cost is a small
//! write per node every two seconds, and a command that waits (at most
//! [`APPLY_WAIT`], for a node that stopped reporting, which it then names).

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::keys;
use crate::service::embed;
use crate::service::writer::NODE_GONE_AFTER_SECS;
use crate::store::{EmbedKeyRow, NewEmbedKey, NewUser, RealmRow, Store, StoreError, UserRow};

/// Why an admin command failed.
#[derive(Debug, Error)]
pub enum AdminError {
    /// An argument is not acceptable; nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The store refused (unknown realm, duplicate email, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a realm's string id: 1-40 lower-case letters, digits and dashes,
/// not starting with a dash.
pub fn validate_string_id(string_id: &str) -> Result<(), AdminError> {
    let ok = (1..=40).contains(&string_id.len())
        && !string_id.starts_with('-')
        && string_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "invalid realm id {string_id:?}: use 1-40 lower-case letters, digits and dashes"
        )))
    }
}

/// Checks an email: one `@` with something on each side, no spaces, at
/// most 254 characters.
pub fn validate_email(email: &str) -> Result<(), AdminError> {
    let email = email.trim();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!("invalid email {email:?}")))
    }
}

/// Checks a display name: 1-100 characters, no control characters.
pub fn validate_name(name: &str) -> Result<(), AdminError> {
    let count = name.trim().chars().count();
    if (1..=100).contains(&count) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "invalid name {name:?}: use 1-100 printable characters"
        )))
    }
}

/// Creates a realm; its name defaults to its string id.
pub fn create_realm(
    store: &mut dyn Store,
    string_id: &str,
    name: Option<&str>,
    now: i64,
) -> Result<RealmRow, AdminError> {
    validate_string_id(string_id)?;
    let name = name.unwrap_or(string_id);
    validate_name(name)?;
    Ok(store.create_realm(string_id, name.trim(), now)?)
}

/// Creates a user and returns it with its new API key (shown only now).
pub fn create_user(
    store: &mut dyn Store,
    realm: &str,
    email: &str,
    full_name: &str,
    is_bot: bool,
    now: i64,
) -> Result<(UserRow, String), AdminError> {
    validate_email(email)?;
    validate_name(full_name)?;
    let key = keys::generate();
    let user = store.create_user(&NewUser {
        realm,
        email,
        full_name: full_name.trim(),
        is_bot,
        api_key_hash: keys::hash(&key),
        date_joined: now,
    })?;
    Ok((user, key))
}

/// Gives a user a new API key (the old one stops working) and returns it.
pub fn reset_key(store: &mut dyn Store, realm: &str, email: &str) -> Result<String, AdminError> {
    let key = keys::generate();
    store.set_api_key_hash(realm, email, keys::hash(&key))?;
    Ok(key)
}

/// Checks an embed key's name: 1-40 letters, digits, dashes, dots and
/// underscores (it names the key in commands and logs).
pub fn validate_key_name(name: &str) -> Result<(), AdminError> {
    let ok = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "invalid embed key name {name:?}: use 1-40 letters, digits, dashes, dots and underscores"
        )))
    }
}

/// The most origins one embed key may list.
pub const MAX_ORIGINS_PER_KEY: usize = 32;

/// Creates an embed key for the pages on `origins` and returns it with the
/// key itself (shown only now).
pub fn create_embed_key(
    store: &mut dyn Store,
    realm: &str,
    name: &str,
    origins: &[String],
    now: i64,
) -> Result<(EmbedKeyRow, String), AdminError> {
    validate_key_name(name)?;
    if origins.is_empty() || origins.len() > MAX_ORIGINS_PER_KEY {
        return Err(AdminError::Invalid(format!(
            "an embed key needs 1 to {MAX_ORIGINS_PER_KEY} origins (--origin https://intranet.example.com)"
        )));
    }
    let mut normal = Vec::with_capacity(origins.len());
    for origin in origins {
        let origin =
            embed::normalize_origin(origin).map_err(|e| AdminError::Invalid(e.to_string()))?;
        if !normal.contains(&origin) {
            normal.push(origin);
        }
    }
    let key = embed::generate_key();
    let row = store.create_embed_key(&NewEmbedKey {
        realm,
        name,
        key_hash: keys::hash(&key),
        origins: &normal,
        now,
    })?;
    Ok((row, key))
}

/// The longest an admin command waits for running servers to install its
/// change.
pub const APPLY_WAIT: Duration = Duration::from_secs(5);

/// How often an admin command looks at the nodes' reports while it waits.
const APPLY_POLL: Duration = Duration::from_millis(5);

/// Waits, at most `limit`, until every server node that is alive (it
/// reported within [`NODE_GONE_AFTER_SECS`] of `now`) has installed the
/// store's current directory version. Returns the ids of the nodes that
/// had not when the time ran out (none when all did, or none run).
pub fn wait_until_applied(
    store: &mut dyn Store,
    now: impl Fn() -> i64,
    limit: Duration,
) -> Result<Vec<String>, AdminError> {
    let version = store.directory_version()?;
    let deadline = Instant::now() + limit;
    loop {
        let live_since = now() - NODE_GONE_AFTER_SECS;
        let lagging: Vec<String> = store
            .nodes()?
            .into_iter()
            .filter(|node| node.seen_at >= live_since && node.directory_version < version)
            .map(|node| node.id)
            .collect();
        if lagging.is_empty() || Instant::now() >= deadline {
            return Ok(lagging);
        }
        std::thread::sleep(APPLY_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_accepts_and_refuses() {
        assert!(validate_string_id("acme-2").is_ok());
        assert!(validate_string_id("Acme").is_err());
        assert!(validate_string_id("-x").is_err());
        assert!(validate_string_id("").is_err());
        assert!(validate_email("a@b.c").is_ok());
        assert!(validate_email("a@@b").is_err());
        assert!(validate_email("a b@c").is_err());
        assert!(validate_email("nobody").is_err());
        assert!(validate_name("Alice").is_ok());
        assert!(validate_name(" ").is_err());
        assert!(validate_name("a\u{7}").is_err());
        assert!(validate_key_name("intranet-2026_v1.0").is_ok());
        assert!(validate_key_name("").is_err());
        assert!(validate_key_name("a b").is_err());
        assert!(validate_key_name(&"x".repeat(41)).is_err());
    }
}
