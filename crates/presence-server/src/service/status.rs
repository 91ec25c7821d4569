//! Custom status (docs/PROTOCOL.md §6.17): the checks of `POST
//! /users/me/status` in Zulip's order, how a status is shown, and the
//! service's status reads and writes.
//!
//! A status is kept per user in the realm's memory ([`Statuses`]) and
//! changed only by the writer, like presence. `away` is not stored with
//! it: it is the inverse of the user's `presence_enabled`, so the two are
//! always in step.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use presence_types::endpoints::user_status::{
    MAX_STATUS_TEXT_CHARS, UNICODE_EMOJI, UpdateStatusParams, UserStatus,
};
use thiserror::Error;

use super::model::{Realm, UserEntry};
use super::writer::Change;
use super::{Caller, Reader, Service, ServiceError, emoji};
use crate::ids::UserId;
use crate::store::StatusRow;

/// Every status of a realm's users, by user.
pub type Statuses = HashMap<UserId, StatusRow>;

/// Why a status change was refused (each is one of Zulip's messages, or
/// this server's for its extension and for what no store can hold).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatusError {
    /// `status_text` is over 60 characters once trimmed.
    #[error("status_text is too long (limit: 60 characters)")]
    TextTooLong,
    /// `status_text` holds a NUL character.
    #[error("status_text may not contain a NUL character")]
    TextHasNul,
    /// None of `away`, `status_text` and `emoji_name` was given.
    #[error("Client did not pass any new values.")]
    NothingToChange,
    /// `emoji_code` or `reaction_type` without `emoji_name`.
    #[error("Client must pass emoji_name if they pass either emoji_code or reaction_type.")]
    EmojiWithoutName,
    /// A name to look up that the server does not know.
    #[error("Emoji '{0}' does not exist")]
    NoSuchEmoji(String),
    /// `realm_emoji`: a realm here has no custom emoji.
    #[error("Invalid custom emoji.")]
    InvalidCustomEmoji,
    /// A code that is not one of the type's.
    #[error("Invalid emoji code.")]
    InvalidEmojiCode,
    /// A name that is not the code's.
    #[error("Invalid emoji name.")]
    InvalidEmojiName,
    /// A reaction type that is none of the three.
    #[error("Invalid emoji type.")]
    InvalidEmojiType,
    /// `expires_at` with neither a text nor an emoji to expire.
    #[error("expires_at needs status_text or emoji_name")]
    ExpiryWithoutStatus,
    /// `expires_at` not later than the server's clock.
    #[error("expires_at must be in the future")]
    ExpiryInThePast,
    /// The target of the GET is deactivated.
    #[error("User is deactivated")]
    UserDeactivated,
}

/// An emoji as a status holds it: all empty for none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji {
    /// The name (`calendar`).
    pub name: String,
    /// The code (`1f4c5`).
    pub code: String,
    /// `unicode_emoji`, `realm_emoji` or `zulip_extra_emoji`.
    pub reaction_type: String,
}

/// A checked status change: only what the request gave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusUpdate {
    /// The new `away`.
    pub away: Option<bool>,
    /// The new text, trimmed (empty clears).
    pub text: Option<String>,
    /// The new emoji (an empty one clears).
    pub emoji: Option<Emoji>,
    /// When the status set by this change clears by itself.
    pub expires_at: Option<i64>,
}

impl StatusUpdate {
    /// Checks a request's parameters at the server's time `now`, in
    /// Zulip's order, with this server's checks of `expires_at` last.
    pub fn check(params: UpdateStatusParams, now: i64) -> Result<StatusUpdate, StatusError> {
        let text = params.status_text.map(|t| t.trim().to_owned());
        if let Some(text) = &text {
            if text.chars().count() > MAX_STATUS_TEXT_CHARS {
                return Err(StatusError::TextTooLong);
            }
            if text.contains('\0') {
                return Err(StatusError::TextHasNul);
            }
        }
        if params.away.is_none() && text.is_none() && params.emoji_name.is_none() {
            return Err(StatusError::NothingToChange);
        }
        let emoji = match params.emoji_name {
            Some(name) if name.is_empty() => Some(Emoji {
                name,
                code: String::new(),
                reaction_type: UNICODE_EMOJI.to_owned(),
            }),
            Some(name) => Some(check_emoji(name, params.emoji_code, params.reaction_type)?),
            None => {
                let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
                if given(&params.emoji_code) || given(&params.reaction_type) {
                    return Err(StatusError::EmojiWithoutName);
                }
                None
            }
        };
        if let Some(at) = params.expires_at {
            if text.is_none() && emoji.is_none() {
                return Err(StatusError::ExpiryWithoutStatus);
            }
            if at <= now {
                return Err(StatusError::ExpiryInThePast);
            }
        }
        Ok(StatusUpdate {
            away: params.away,
            text,
            emoji,
            expires_at: params.expires_at,
        })
    }

    /// The status a user has once this change is made to `current`: the
    /// text and emoji given replace the old ones, and the expiry goes with
    /// them (none for a status left blank). `None` if it changes neither.
    pub fn apply_to(&self, current: &StatusRow) -> Option<StatusRow> {
        if self.text.is_none() && self.emoji.is_none() {
            return None;
        }
        let mut next = current.clone();
        if let Some(text) = &self.text {
            next.status_text.clone_from(text);
        }
        if let Some(emoji) = &self.emoji {
            next.emoji_name.clone_from(&emoji.name);
            next.emoji_code.clone_from(&emoji.code);
            next.reaction_type.clone_from(&emoji.reaction_type);
        }
        next.expires_at = if next.is_blank() {
            None
        } else {
            self.expires_at
        };
        Some(next)
    }
}

/// A non-empty emoji name with its code and type (looked up when absent),
/// checked as Zulip checks an emoji for a reaction.
fn check_emoji(
    name: String,
    code: Option<String>,
    reaction_type: Option<String>,
) -> Result<Emoji, StatusError> {
    let (code, reaction_type) = match (code, reaction_type) {
        (Some(code), Some(kind)) => (code, kind),
        (code, kind) => {
            let (found_code, found_kind) = lookup(&name)?;
            (code.unwrap_or(found_code), kind.unwrap_or(found_kind))
        }
    };
    match reaction_type.as_str() {
        "realm_emoji" => return Err(StatusError::InvalidCustomEmoji),
        "zulip_extra_emoji" => {
            if code != "zulip" {
                return Err(StatusError::InvalidEmojiCode);
            }
            if name != code {
                return Err(StatusError::InvalidEmojiName);
            }
        }
        UNICODE_EMOJI => {
            if !emoji::is_well_formed_code(&code) {
                return Err(StatusError::InvalidEmojiCode);
            }
            let known = emoji::code_of(&name);
            if !emoji::is_well_formed_name(&name) || known.is_some_and(|known| known != code) {
                return Err(StatusError::InvalidEmojiName);
            }
        }
        _ => return Err(StatusError::InvalidEmojiType),
    }
    Ok(Emoji {
        name,
        code,
        reaction_type,
    })
}

/// The code and type of an emoji given by name alone, as Zulip finds them:
/// `zulip` is Zulip's own; other names are Unicode emoji the server knows.
fn lookup(name: &str) -> Result<(String, String), StatusError> {
    if name == "zulip" {
        return Ok(("zulip".to_owned(), "zulip_extra_emoji".to_owned()));
    }
    emoji::code_of(name)
        .map(|code| (code.to_owned(), UNICODE_EMOJI.to_owned()))
        .ok_or_else(|| StatusError::NoSuchEmoji(name.to_owned()))
}

/// A user's status as answers show it: `away` while presence is off, and
/// the text and emoji that are set.
pub fn view(user: &UserEntry, row: Option<&StatusRow>) -> UserStatus {
    let set = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    let mut status = UserStatus {
        away: (!user.account.presence_enabled).then_some(true),
        ..UserStatus::default()
    };
    if let Some(row) = row.filter(|row| !row.is_blank()) {
        status.status_text = set(&row.status_text);
        if !row.emoji_name.is_empty() {
            status.emoji_name = set(&row.emoji_name);
            status.emoji_code = Some(row.emoji_code.clone());
            status.reaction_type = Some(row.reaction_type.clone());
        }
        status.expires_at = row.expires_at;
    }
    status
}

/// The statuses of a realm's active human users that show anything, keyed
/// by user id: `user_status` in a register answer.
pub fn snapshot(realm: &Realm) -> BTreeMap<String, UserStatus> {
    realm
        .users
        .values()
        .filter(|u| u.account.is_active && !u.account.is_bot)
        .map(|u| (u, view(u, realm.statuses.get(&u.account.id))))
        .filter(|(_, status)| !status.is_empty())
        .map(|(u, status)| (u.account.id.to_string(), status))
        .collect()
}

impl Service {
    /// Changes the caller's status (docs/PROTOCOL.md §6.17); returns once
    /// the change is durable. Bots are refused before anything is read.
    pub async fn update_status(
        &self,
        caller: &Caller,
        client: Arc<str>,
        params: UpdateStatusParams,
    ) -> Result<(), ServiceError> {
        caller.check_may_report()?;
        let now = self.clock.now_secs();
        let update = StatusUpdate::check(params, now)?;
        self.send(Change::Status {
            who: caller.who,
            client,
            update,
            now,
        })
        .await
    }

    /// One user's status, by id: `No such user` for an unknown id, a bot
    /// or a user of another realm.
    pub fn user_status(
        &self,
        reader: Reader<'_>,
        user_id: &str,
    ) -> Result<UserStatus, ServiceError> {
        let user_id = user_id
            .parse()
            .map(UserId)
            .map_err(|_| ServiceError::NoSuchUser)?;
        let realm = reader.realm().read();
        let user = realm.users.get(&user_id).ok_or(ServiceError::NoSuchUser)?;
        if user.account.is_bot {
            return Err(ServiceError::NoSuchUser);
        }
        if !user.account.is_active {
            return Err(StatusError::UserDeactivated.into());
        }
        Ok(view(user, realm.statuses.get(&user_id)))
    }
}

#[cfg(test)]
mod tests;
