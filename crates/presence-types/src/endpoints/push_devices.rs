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
    pub token: String,
    /// The app's bundle id, e.g. `org.zulip.Zulip`.
    pub appid: String,
}

/// The parameters of `POST /users/me/android_gcm_reg_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddAndroidTokenParams {
    /// The registration id from Firebase Cloud Messaging.
    pub token: String,
}

/// The parameters of `DELETE` on either push device endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoveDeviceParams {
    /// The token given when the device was registered.
    pub token: String,
}
