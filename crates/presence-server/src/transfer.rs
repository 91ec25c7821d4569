//! The dump format of `presence-server export` and `import`: JSON Lines,
//! one record per line, every id kept, API keys only as hashes.
//!
//! ```text
//! {"type":"header","format":"presence-dump","version":1}
//! {"type":"realm","id":1,"string_id":"acme","name":"Acme","date_created":1795915346}
//! {"type":"user","id":1,"realm_id":1,"email":"alice@acme.test","full_name":"Alice","date_joined":1795915346,"api_key_hash":"9f86d0..."}
//! {"type":"presence","user_id":1,"client":"website","last_connected_time":1795915346,"last_active_time":1795915346,"update_id":1}
//! {"type":"device","user_id":1,"kind":"fcm","token":"..."}
//! {"type":"embed_key","id":1,"realm_id":1,"name":"intranet","key_hash":"5e88...","origins":["https://intranet.acme.test"],"created_at":1795915346}
//! {"type":"status","user_id":1,"status_text":"In a meeting","emoji_name":"calendar","emoji_code":"1f4c5","reaction_type":"unicode_emoji","expires_at":1795918946}
//! ```
//!
//! On import a user may carry `api_key` (clear) instead of `api_key_hash`;
//! it is hashed before it is stored. That lets tools provision users with
//! keys they know.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::admin;
use crate::http::client_name::MAX_CLIENT_NAME_CHARS;
use crate::ids::{EmbedKeyId, RealmId, UpdateId, UserId};
use crate::keys;
use crate::store::{
    DeviceKind, DeviceRow, Dump, EmbedKeyRow, PresenceRow, RealmRow, StatusRow, UserRow,
};

/// The `format` of the header line.
const FORMAT: &str = "presence-dump";
/// The version this program writes and reads.
const VERSION: u32 = 1;

fn yes() -> bool {
    true
}

/// One line of a dump. Each kind of record has its fields in a struct of
/// its own, which checks them on its own.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header { format: String, version: u32 },
    Realm(RealmLine),
    User(UserLine),
    Presence(PresenceLine),
    Device(DeviceLine),
    EmbedKey(EmbedKeyLine),
    Status(StatusLine),
}

/// A realm, as a dump line has it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RealmLine {
    id: RealmId,
    string_id: String,
    name: String,
    #[serde(default)]
    presence_disabled: bool,
    #[serde(default)]
    deactivated: bool,
    date_created: i64,
}

/// A user, as a dump line has it: its key as a hash, or in clear.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserLine {
    id: UserId,
    realm_id: RealmId,
    email: String,
    full_name: String,
    #[serde(default)]
    is_bot: bool,
    #[serde(default = "yes")]
    is_active: bool,
    date_joined: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(default = "yes")]
    presence_enabled: bool,
    #[serde(default = "yes")]
    enable_offline_push_notifications: bool,
}

/// A client record, as a dump line has it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceLine {
    user_id: UserId,
    client: String,
    last_connected_time: i64,
    last_active_time: Option<i64>,
    update_id: UpdateId,
}

/// A push device, as a dump line has it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceLine {
    user_id: UserId,
    kind: String,
    token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    appid: Option<String>,
}

/// An embed key, as a dump line has it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedKeyLine {
    id: EmbedKeyId,
    realm_id: RealmId,
    name: String,
    key_hash: String,
    origins: Vec<String>,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<i64>,
}

/// A user's status, as a dump line has it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusLine {
    user_id: UserId,
    #[serde(default)]
    status_text: String,
    #[serde(default)]
    emoji_name: String,
    #[serde(default)]
    emoji_code: String,
    #[serde(default = "no_emoji_type")]
    reaction_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

fn no_emoji_type() -> String {
    crate::store::NO_EMOJI_TYPE.to_owned()
}

/// Why a dump could not be read.
#[derive(Debug, Error)]
pub enum TransferError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line is not a valid record; `line` counts from 1.
    #[error("line {line}: {message}")]
    Invalid {
        /// The line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Writes a dump as JSON Lines.
pub fn write_dump(dump: &Dump, out: &mut impl Write) -> Result<(), TransferError> {
    let mut put = |line: &Line| -> Result<(), TransferError> {
        serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    put(&Line::Header {
        format: FORMAT.to_owned(),
        version: VERSION,
    })?;
    for r in &dump.realms {
        put(&Line::Realm(RealmLine {
            id: r.id,
            string_id: r.string_id.clone(),
            name: r.name.clone(),
            presence_disabled: r.presence_disabled,
            deactivated: r.deactivated,
            date_created: r.date_created,
        }))?;
    }
    for u in &dump.users {
        put(&Line::User(UserLine {
            id: u.id,
            realm_id: u.realm_id,
            email: u.email.clone(),
            full_name: u.full_name.clone(),
            is_bot: u.is_bot,
            is_active: u.is_active,
            date_joined: u.date_joined,
            api_key_hash: Some(to_hex(&u.api_key_hash)),
            api_key: None,
            presence_enabled: u.presence_enabled,
            enable_offline_push_notifications: u.enable_offline_push_notifications,
        }))?;
    }
    for p in &dump.presence {
        put(&Line::Presence(PresenceLine {
            user_id: p.user_id,
            client: p.client.clone(),
            last_connected_time: p.last_connected_time,
            last_active_time: p.last_active_time,
            update_id: p.update_id,
        }))?;
    }
    for d in &dump.devices {
        put(&Line::Device(DeviceLine {
            user_id: d.user_id,
            kind: d.kind.as_str().to_owned(),
            token: d.token.clone(),
            appid: d.appid.clone(),
        }))?;
    }
    for k in &dump.embed_keys {
        put(&Line::EmbedKey(EmbedKeyLine {
            id: k.id,
            realm_id: k.realm_id,
            name: k.name.clone(),
            key_hash: to_hex(&k.key_hash),
            origins: k.origins.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }))?;
    }
    for s in &dump.statuses {
        put(&Line::Status(StatusLine {
            user_id: s.user_id,
            status_text: s.status_text.clone(),
            emoji_name: s.emoji_name.clone(),
            emoji_code: s.emoji_code.clone(),
            reaction_type: s.reaction_type.clone(),
            expires_at: s.expires_at,
        }))?;
    }
    out.flush()?;
    Ok(())
}

/// Reads and checks a dump written by [`write_dump`] (or by hand, in the
/// same format).
pub fn read_dump(input: impl BufRead) -> Result<Dump, TransferError> {
    let mut dump = Dump::default();
    let mut saw_header = false;
    for (index, text) in input.lines().enumerate() {
        let line = index + 1;
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let invalid = |message: String| TransferError::Invalid { line, message };
        let record: Line = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        saw_header = check_header(&record, saw_header).map_err(invalid)?;
        add_record(&mut dump, record).map_err(invalid)?;
    }
    if !saw_header {
        return Err(TransferError::Invalid {
            line: 1,
            message: "the dump is empty".to_owned(),
        });
    }
    Ok(dump)
}

/// Checks that a dump has one header, and has it first; whether the header
/// has been read once `record` is.
fn check_header(record: &Line, saw_header: bool) -> Result<bool, String> {
    match record {
        Line::Header { format, version } => {
            if saw_header || format != FORMAT || *version != VERSION {
                return Err(format!(
                    "expected one header of format {FORMAT:?} version {VERSION}"
                ));
            }
            Ok(true)
        }
        _ if !saw_header => Err(format!(
            "the first line must be the header {{\"type\":\"header\",\"format\":\"{FORMAT}\",\"version\":{VERSION}}}"
        )),
        _ => Ok(true),
    }
}

/// Adds a record to the dump, checked as the admin commands check what
/// they are given.
fn add_record(dump: &mut Dump, record: Line) -> Result<(), String> {
    match record {
        Line::Header { .. } => {}
        Line::Realm(realm) => dump.realms.push(realm.into_row()?),
        Line::User(user) => dump.users.push(user.into_row()?),
        Line::Presence(record) => dump.presence.push(record.into_row()?),
        Line::Device(device) => dump.devices.push(device.into_row()?),
        Line::EmbedKey(key) => dump.embed_keys.push(key.into_row()?),
        Line::Status(status) => dump.statuses.push(status.into_row()?),
    }
    Ok(())
}

impl RealmLine {
    fn into_row(self) -> Result<RealmRow, String> {
        admin::validate_string_id(&self.string_id).map_err(|e| e.to_string())?;
        admin::validate_name(&self.name).map_err(|e| e.to_string())?;
        Ok(RealmRow {
            id: self.id,
            string_id: self.string_id,
            name: self.name,
            presence_disabled: self.presence_disabled,
            deactivated: self.deactivated,
            date_created: self.date_created,
        })
    }
}

impl UserLine {
    fn into_row(self) -> Result<UserRow, String> {
        admin::validate_email(&self.email).map_err(|e| e.to_string())?;
        admin::validate_name(&self.full_name).map_err(|e| e.to_string())?;
        let api_key_hash = match (self.api_key_hash, self.api_key) {
            (Some(hash), None) => {
                from_hex(&hash).ok_or_else(|| "api_key_hash is not 64 hex digits".to_owned())?
            }
            (None, Some(key)) if keys::is_well_formed(&key) => keys::hash(&key),
            (None, Some(_)) => return Err("api_key is not 32 letters and digits".to_owned()),
            _ => return Err("a user needs exactly one of api_key_hash and api_key".to_owned()),
        };
        Ok(UserRow {
            id: self.id,
            realm_id: self.realm_id,
            email: self.email.trim().to_owned(),
            full_name: self.full_name,
            is_bot: self.is_bot,
            is_active: self.is_active,
            date_joined: self.date_joined,
            api_key_hash,
            presence_enabled: self.presence_enabled,
            enable_offline_push_notifications: self.enable_offline_push_notifications,
            push_devices: 0,
        })
    }
}

impl PresenceLine {
    fn into_row(self) -> Result<PresenceRow, String> {
        let client = self.client;
        let valid_client = !client.is_empty()
            && client.chars().count() <= MAX_CLIENT_NAME_CHARS
            && !presence_types::is_reserved_client_name(&client);
        if !valid_client {
            return Err(format!("invalid client name {client:?}"));
        }
        if self.update_id < UpdateId(1) {
            return Err("update_id must be positive".to_owned());
        }
        // The server keeps times as unsigned 32-bit seconds.
        let in_range = |t: i64| (1..=i64::from(u32::MAX)).contains(&t);
        if !in_range(self.last_connected_time) || !self.last_active_time.is_none_or(in_range) {
            return Err(format!(
                "times must be Unix seconds between 1 and {}",
                u32::MAX
            ));
        }
        Ok(PresenceRow {
            user_id: self.user_id,
            client,
            last_connected_time: self.last_connected_time,
            last_active_time: self.last_active_time,
            update_id: self.update_id,
        })
    }
}

impl DeviceLine {
    fn into_row(self) -> Result<DeviceRow, String> {
        let kind = DeviceKind::parse(&self.kind)
            .ok_or_else(|| format!("unknown device kind {:?}", self.kind))?;
        Ok(DeviceRow {
            user_id: self.user_id,
            kind,
            token: self.token,
            appid: self.appid,
        })
    }
}

impl EmbedKeyLine {
    /// The key, checked as `embed-key create` checks its input.
    fn into_row(self) -> Result<EmbedKeyRow, String> {
        admin::validate_key_name(&self.name).map_err(|e| e.to_string())?;
        let key_hash = from_hex(&self.key_hash).ok_or("key_hash is not 64 hex digits")?;
        let origins = self.origins;
        if origins.is_empty() || origins.len() > admin::MAX_ORIGINS_PER_KEY {
            return Err(format!(
                "an embed key needs 1 to {} origins",
                admin::MAX_ORIGINS_PER_KEY
            ));
        }
        for origin in &origins {
            let normal =
                crate::service::embed::normalize_origin(origin).map_err(|e| e.to_string())?;
            if &normal != origin {
                return Err(format!(
                    "origin {origin:?} is not in its normal form {normal:?}"
                ));
            }
        }
        Ok(EmbedKeyRow {
            id: self.id,
            realm_id: self.realm_id,
            name: self.name,
            key_hash,
            origins,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
    }
}

impl StatusLine {
    /// The status, held to what the API lets a user set.
    fn into_row(self) -> Result<StatusRow, String> {
        let limit = presence_types::endpoints::user_status::MAX_STATUS_TEXT_CHARS;
        if self.status_text.chars().count() > limit || self.status_text.contains('\0') {
            return Err(format!(
                "status_text must be at most {limit} characters, without NUL"
            ));
        }
        let kinds = ["unicode_emoji", "realm_emoji", "zulip_extra_emoji"];
        let emoji_ok = crate::service::emoji::is_well_formed_name(&self.emoji_name)
            && !self.emoji_code.contains('\0')
            && kinds.contains(&self.reaction_type.as_str());
        if !self.emoji_name.is_empty() && !emoji_ok {
            return Err(format!("invalid emoji {:?}", self.emoji_name));
        }
        Ok(StatusRow {
            user_id: self.user_id,
            status_text: self.status_text,
            emoji_name: self.emoji_name,
            emoji_code: self.emoji_code,
            reaction_type: self.reaction_type,
            expires_at: self.expires_at,
        })
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Dump {
        Dump {
            realms: vec![RealmRow {
                id: RealmId(3),
                string_id: "acme".into(),
                name: "Acme".into(),
                presence_disabled: true,
                deactivated: false,
                date_created: 100,
            }],
            users: vec![UserRow {
                id: UserId(7),
                realm_id: RealmId(3),
                email: "a@acme.test".into(),
                full_name: "A".into(),
                is_bot: false,
                is_active: true,
                date_joined: 100,
                api_key_hash: keys::hash("k"),
                presence_enabled: false,
                enable_offline_push_notifications: true,
                push_devices: 0,
            }],
            presence: vec![PresenceRow {
                user_id: UserId(7),
                client: "website".into(),
                last_connected_time: 200,
                last_active_time: None,
                update_id: UpdateId(4),
            }],
            devices: vec![DeviceRow {
                user_id: UserId(7),
                kind: DeviceKind::Apns,
                token: "abcd".into(),
                appid: Some("org.zulip.Zulip".into()),
            }],
            embed_keys: vec![EmbedKeyRow {
                id: EmbedKeyId(2),
                realm_id: RealmId(3),
                name: "intranet".into(),
                key_hash: keys::hash("embed_k"),
                origins: vec!["https://intranet.acme.test".into()],
                created_at: 100,
                last_used_at: None,
                revoked_at: Some(300),
            }],
            statuses: vec![StatusRow {
                user_id: UserId(7),
                status_text: "On vacation".into(),
                emoji_name: "palm_tree".into(),
                emoji_code: "1f334".into(),
                reaction_type: "unicode_emoji".into(),
                expires_at: Some(400),
            }],
        }
    }

    #[test]
    fn a_dump_round_trips() {
        let mut bytes = Vec::new();
        write_dump(&sample(), &mut bytes).unwrap();
        assert_eq!(read_dump(&bytes[..]).unwrap(), sample());
    }

    #[test]
    fn clear_keys_are_hashed_and_bad_lines_named() {
        let text = format!(
            "{{\"type\":\"header\",\"format\":\"presence-dump\",\"version\":1}}\n\
             {{\"type\":\"user\",\"id\":1,\"realm_id\":1,\"email\":\"a@b.c\",\"full_name\":\"A\",\"date_joined\":0,\"api_key\":\"{}\"}}\n",
            "k".repeat(32)
        );
        let dump = read_dump(text.as_bytes()).unwrap();
        assert_eq!(dump.users[0].api_key_hash, keys::hash(&"k".repeat(32)));
        assert!(dump.users[0].presence_enabled);

        let err = read_dump(&b"{\"type\":\"realm\"}\n"[..])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 1:"), "{err}");
        let bad = format!(
            "{}\n{{\"type\":\"presence\",\"user_id\":1,\"client\":\"aggregated\",\"last_connected_time\":1,\"last_active_time\":null,\"update_id\":1}}\n",
            "{\"type\":\"header\",\"format\":\"presence-dump\",\"version\":1}"
        );
        let err = read_dump(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 2: invalid client name"), "{err}");
    }
}
