//! What the admin commands do: create and change realms and users, with
//! input checked before anything is written.
//!
//! They write to the store directly, also while a server runs on it; the
//! server notices through the store's directory version (see
//! `service::writer`).

use thiserror::Error;

use crate::keys;
use crate::store::{NewUser, RealmRow, Store, StoreError, UserRow};

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
    }
}
