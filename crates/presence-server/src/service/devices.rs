//! Push devices (docs/PROTOCOL.md §6.8): the checks Zulip makes of a
//! token and an app id, and registration through the writer.
//!
//! The server sends no notifications; a registered device only makes its
//! user `pushable`. A token is stored in one spelling per device: an APNs
//! token as the lower-case hexadecimal of the bytes it stands for, so that
//! spellings of the same bytes (case, spacing) are one device.

use thiserror::Error;

use super::writer::Change;
use super::{Caller, Service, ServiceError};
use crate::store::DeviceKind;

/// The longest push token accepted, in characters: Zulip's check, and the
/// size of its column.
pub const MAX_TOKEN_CHARS: usize = 4096;

/// The longest APNs app id accepted, in characters. Zulip sets no bound; an
/// app id is a bundle id (reverse DNS, perhaps with a suffix such as
/// `.voip`), far shorter than this, and every stored string needs one.
pub const MAX_APPID_CHARS: usize = 255;

/// Why a token or an app id was refused (each maps to one message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DeviceError {
    /// The token is empty, or longer than [`MAX_TOKEN_CHARS`].
    #[error("Empty or invalid length token")]
    TokenLength,
    /// An APNs token that is not hexadecimal as Zulip reads it.
    #[error("Invalid APNS token")]
    InvalidApnsToken,
    /// An FCM token with a NUL.
    #[error("Invalid FCM token")]
    InvalidFcmToken,
    /// An app id outside Zulip's pattern `[.a-zA-Z0-9-]+`.
    #[error("appid has invalid format")]
    AppIdFormat,
    /// An app id longer than [`MAX_APPID_CHARS`].
    #[error("appid is too long (limit: {MAX_APPID_CHARS} characters)")]
    AppIdTooLong,
}

impl Service {
    /// Registers an Apple device for the caller, checked in Zulip's order:
    /// the app id, then the token.
    pub async fn add_apns_device(
        &self,
        caller: &Caller,
        token: &str,
        appid: &str,
    ) -> Result<(), ServiceError> {
        let appid = check_appid(appid)?;
        let token = stored_token(token, DeviceKind::Apns)?;
        self.add_device(caller, DeviceKind::Apns, token, Some(appid))
            .await
    }

    /// Registers an Android device for the caller.
    pub async fn add_fcm_device(&self, caller: &Caller, token: &str) -> Result<(), ServiceError> {
        let token = stored_token(token, DeviceKind::Fcm)?;
        self.add_device(caller, DeviceKind::Fcm, token, None).await
    }

    async fn add_device(
        &self,
        caller: &Caller,
        kind: DeviceKind,
        token: String,
        appid: Option<String>,
    ) -> Result<(), ServiceError> {
        self.send(Change::AddDevice {
            who: caller.who,
            kind,
            token,
            appid,
        })
        .await
    }

    /// Removes one of the caller's push devices, named by any spelling of
    /// its token.
    pub async fn remove_device(
        &self,
        caller: &Caller,
        kind: DeviceKind,
        token: &str,
    ) -> Result<(), ServiceError> {
        let token = stored_token(token, kind)?;
        self.send(Change::RemoveDevice {
            who: caller.who,
            kind,
            token,
        })
        .await
    }
}

/// A token checked as Zulip checks it, in the form it is stored: for APNs,
/// the hexadecimal of the bytes it stands for.
fn stored_token(token: &str, kind: DeviceKind) -> Result<String, DeviceError> {
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Err(DeviceError::TokenLength);
    }
    match kind {
        DeviceKind::Apns => apns_token_bytes(token).ok_or(DeviceError::InvalidApnsToken),
        // Zulip checks nothing more of an FCM token; a NUL it could not
        // store either (PostgreSQL refuses it), and here it would fail the
        // commit of everyone's changes in the same batch.
        DeviceKind::Fcm if token.contains('\0') => Err(DeviceError::InvalidFcmToken),
        DeviceKind::Fcm => Ok(token.to_owned()),
    }
}

/// An APNs token as lower-case hexadecimal, if it is what Zulip accepts:
/// text Python's `bytes.fromhex` decodes (pairs of hexadecimal digits, with
/// ASCII whitespace allowed between pairs), standing for at least one byte.
fn apns_token_bytes(token: &str) -> Option<String> {
    // Python's whitespace: `str.isspace` restricted to ASCII, so with the
    // vertical tab that `char::is_ascii_whitespace` leaves out.
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
    let mut hex = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if space(c) {
            continue;
        }
        let low = chars.next().filter(char::is_ascii_hexdigit);
        if !c.is_ascii_hexdigit() || low.is_none() {
            return None;
        }
        hex.push(c.to_ascii_lowercase());
        hex.extend(low.map(|l| l.to_ascii_lowercase()));
    }
    (!hex.is_empty()).then_some(hex)
}

/// An APNs app id: Zulip's pattern (`[.a-zA-Z0-9-]+`), and a length bound
/// of ours.
fn check_appid(appid: &str) -> Result<String, DeviceError> {
    let valid = !appid.is_empty()
        && appid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !valid {
        return Err(DeviceError::AppIdFormat);
    }
    // The pattern admits ASCII only: bytes are characters.
    if appid.len() > MAX_APPID_CHARS {
        return Err(DeviceError::AppIdTooLong);
    }
    Ok(appid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_tokens_are_what_bytes_fromhex_decodes() {
        assert_eq!(apns_token_bytes("ABcd01").as_deref(), Some("abcd01"));
        assert_eq!(
            apns_token_bytes(" ab\tCD\x0b\x0c\r\n01 ").as_deref(),
            Some("abcd01")
        );
        for bad in ["", "   ", "abc", "a bc", "0x12", "zz", "ab\u{a0}cd", "éé"] {
            assert_eq!(apns_token_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_counted_in_characters() {
        let ok = "é".repeat(MAX_TOKEN_CHARS);
        assert_eq!(stored_token(&ok, DeviceKind::Fcm).unwrap(), ok);
        let long = "x".repeat(MAX_TOKEN_CHARS + 1);
        let e = stored_token(&long, DeviceKind::Fcm).unwrap_err();
        assert_eq!(e.to_string(), "Empty or invalid length token");
        let e = stored_token("a\0", DeviceKind::Fcm).unwrap_err();
        assert_eq!(e.to_string(), "Invalid FCM token");
        let e = stored_token("", DeviceKind::Apns).unwrap_err();
        assert_eq!(e, DeviceError::TokenLength);
    }

    #[test]
    fn app_ids_follow_zulips_pattern_and_a_bound() {
        assert_eq!(
            check_appid("org.zulip.Zulip-1").unwrap(),
            "org.zulip.Zulip-1"
        );
        for bad in ["", "a b", "org.zulip/Zulip", "org.zulip.Zulip\n", "zülip"] {
            let e = check_appid(bad).unwrap_err();
            assert_eq!(e.to_string(), "appid has invalid format", "{bad:?}");
        }
        let long = "a".repeat(MAX_APPID_CHARS + 1);
        let e = check_appid(&long).unwrap_err();
        assert_eq!(e.to_string(), "appid is too long (limit: 255 characters)");
    }
}
