//! Push device registration: `POST`/`DELETE /api/v1/users/me/apns_device_token`
//! and `/api/v1/users/me/android_gcm_reg_id`.
//!
//! The server sends no notifications; a registered device only makes the user
//! `pushable` in presence answers.
//!
//! The tokens' patterns are the server's checks: an APNs token is pairs of
//! hexadecimal digits, with ASCII whitespace (Python's: space, tab, line
//! feed, vertical tab, form feed, carriage return) allowed around and
//! between pairs, as Zulip reads it with `bytes.fromhex`; an FCM token is
//! any text without a NUL, which no store can hold.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The parameters of `POST /users/me/apns_device_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddApnsTokenParams {
    /// The device token from Apple, in hexadecimal (pairs of digits, any
    /// case, whitespace allowed between pairs); at most 4096 characters.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[\t\n\x0b\x0c\r ]*(?:[0-9A-Fa-f]{2}[\t\n\x0b\x0c\r ]*)+$"
    )]
    pub token: String,
    /// The app's bundle id, e.g. `org.zulip.Zulip`; at most 255 characters.
    #[schema(min_length = 1, max_length = 255, pattern = "^[.a-zA-Z0-9-]+$")]
    pub appid: String,
}

/// The parameters of `POST /users/me/android_gcm_reg_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddAndroidTokenParams {
    /// The registration id from Firebase Cloud Messaging: at most 4096
    /// characters, without a NUL.
    #[schema(min_length = 1, max_length = 4096, pattern = r"^[^\x00]+$")]
    pub token: String,
}

/// The parameters of `DELETE /users/me/apns_device_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoveApnsTokenParams {
    /// The token given when the device was registered, in any of its
    /// spellings (case, whitespace between pairs).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[\t\n\x0b\x0c\r ]*(?:[0-9A-Fa-f]{2}[\t\n\x0b\x0c\r ]*)+$"
    )]
    pub token: String,
}

/// The parameters of `DELETE /users/me/android_gcm_reg_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoveAndroidTokenParams {
    /// The token given when the device was registered.
    #[schema(min_length = 1, max_length = 4096, pattern = r"^[^\x00]+$")]
    pub token: String,
}
