//! Push device registration: `POST`/`DELETE /api/v1/users/me/apns_device_token`
//! and `/api/v1/users/me/android_gcm_reg_id`.
//!
//! The server sends no notifications; a registered device only makes the user
//! `pushable` in presence answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The parameters of `POST /users/me/apns_device_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddApnsTokenParams {
    /// The device token from Apple, in hexadecimal.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[0-9a-fA-F]+$")]
    pub token: String,
    /// The app's bundle id, e.g. `org.zulip.Zulip`.
    #[schema(min_length = 1, pattern = "^[.a-zA-Z0-9-]+$")]
    pub appid: String,
}

/// The parameters of `POST /users/me/android_gcm_reg_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddAndroidTokenParams {
    /// The registration id from Firebase Cloud Messaging.
    #[schema(min_length = 1, max_length = 4096)]
    pub token: String,
}

/// The parameters of `DELETE` on either push device endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoveDeviceParams {
    /// The token given when the device was registered.
    #[schema(min_length = 1, max_length = 4096)]
    pub token: String,
}
