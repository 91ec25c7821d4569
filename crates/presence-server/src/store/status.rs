//! A user's custom status as stored: one row per user that ever set one
//! (docs/PROTOCOL.md §6.17). Its row version is a directory version, so
//! other nodes learn of a change as they learn of a user's.

use crate::ids::UserId;

/// The reaction type stored for a status without emoji.
pub const NO_EMOJI_TYPE: &str = "unicode_emoji";

/// A user's status row. Empty strings mean "not set"; a row whose fields
/// are all empty still exists (the user once set a status or `away`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// The user.
    pub user_id: UserId,
    /// The text, at most 60 characters.
    pub status_text: String,
    /// The emoji's name.
    pub emoji_name: String,
    /// The emoji's code.
    pub emoji_code: String,
    /// The emoji's reaction type (`unicode_emoji` without emoji).
    pub reaction_type: String,
    /// Unix seconds at which the text and emoji are cleared, if ever.
    pub expires_at: Option<i64>,
}

impl StatusRow {
    /// A row with nothing set.
    pub fn empty(user_id: UserId) -> Self {
        StatusRow {
            user_id,
            status_text: String::new(),
            emoji_name: String::new(),
            emoji_code: String::new(),
            reaction_type: NO_EMOJI_TYPE.to_owned(),
            expires_at: None,
        }
    }

    /// Whether neither a text nor an emoji is set.
    pub fn is_blank(&self) -> bool {
        self.status_text.is_empty() && self.emoji_name.is_empty()
    }

    /// The row once its expiry has cleared it.
    pub fn cleared(&self) -> Self {
        StatusRow::empty(self.user_id)
    }
}
