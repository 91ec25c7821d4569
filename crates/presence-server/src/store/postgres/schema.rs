//! The shared store's schema: its numbered migrations, applied once by
//! whichever node gets the advisory lock first, and the names the schema
//! gives to things outside its tables (the notification channel).

use ::postgres::Client;
use sha2::{Digest, Sha256};

use super::connection::{Mode, in_transaction};
use super::{directory, embed, status};
use crate::store::StoreError;

/// The schema, as numbered steps; a database records the steps it has had
/// in `schema_migrations`. Steps are only ever appended.
/// Step 2 brings embed keys, the nodes' reports and deleted users' traces;
/// step 3 users' statuses. Their parts are kept beside the code that uses them.
/// Step 4 drops the foreign key of presence records, whose check per row
/// cost a batch more than the rest of its statement (see
/// [`SCHEMA_V4`]).
const MIGRATIONS: &[(i64, &[&str])] = &[
    (1, &[SCHEMA_V1]),
    (2, &[embed::SCHEMA_V2, directory::SCHEMA_V2]),
    (3, &[status::SCHEMA_V3]),
    (4, &[SCHEMA_V4]),
];

const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('directory_version', 0);
CREATE TABLE realms (
    id                BIGSERIAL PRIMARY KEY,
    string_id         TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    presence_disabled BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated       BOOLEAN NOT NULL DEFAULT FALSE,
    date_created      BIGINT NOT NULL,
    row_version       BIGINT NOT NULL
);
CREATE INDEX realms_row_version ON realms (row_version);
CREATE TABLE realm_sequences (
    realm_id       BIGINT PRIMARY KEY REFERENCES realms (id),
    last_update_id BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE users (
    id                BIGSERIAL PRIMARY KEY,
    realm_id          BIGINT NOT NULL REFERENCES realms (id),
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL,
    full_name         TEXT NOT NULL,
    is_bot            BOOLEAN NOT NULL,
    is_active         BOOLEAN NOT NULL DEFAULT TRUE,
    date_joined       BIGINT NOT NULL,
    api_key_hash      BYTEA NOT NULL UNIQUE,
    presence_enabled  BOOLEAN NOT NULL DEFAULT TRUE,
    enable_offline_push_notifications BOOLEAN NOT NULL DEFAULT TRUE,
    row_version       BIGINT NOT NULL,
    CONSTRAINT users_realm_email UNIQUE (realm_id, email_key)
);
CREATE INDEX users_row_version ON users (row_version);
CREATE TABLE push_devices (
    user_id BIGINT NOT NULL REFERENCES users (id),
    kind    TEXT NOT NULL,
    token   TEXT NOT NULL,
    appid   TEXT,
    PRIMARY KEY (user_id, kind, token)
);
CREATE TABLE client_presence (
    user_id             BIGINT NOT NULL REFERENCES users (id),
    realm_id            BIGINT NOT NULL,
    client              TEXT NOT NULL,
    last_connected_time BIGINT NOT NULL,
    last_active_time    BIGINT,
    update_id           BIGINT NOT NULL,
    PRIMARY KEY (user_id, client)
);
CREATE INDEX client_presence_realm_update ON client_presence (realm_id, update_id);
";

/// Presence records keep their user's id without a foreign key. Batches
/// write records only of the users their statement joins, while holding
/// the realm's sequence row; deleting a user takes that row before it
/// deletes the user's records, so no record can outlive its user.
const SCHEMA_V4: &str = "
ALTER TABLE client_presence DROP CONSTRAINT IF EXISTS client_presence_user_id_fkey;
";

/// Takes the advisory lock that serialises the migrations of one schema:
/// its first key is the same for every installation (the bytes spell
/// `pres`), its second a hash of the schema the tables go into. Keyed by
/// schema, installations sharing one database start independently: one
/// whose migration waits on a stalled connection holds up no other.
/// Two schemas whose names hash alike only wait for each other.
const MIGRATION_LOCK: &str =
    "SELECT pg_advisory_xact_lock(1886545267, hashtext(coalesce(current_schema(), '')))";

/// The longest channel name PostgreSQL keeps whole (`NAMEDATALEN - 1`).
const MAX_CHANNEL_LEN: usize = 63;

/// Brings the schema up to date, returning the versions applied.
pub(super) fn migrate(client: &mut Client) -> Result<Vec<i64>, StoreError> {
    in_transaction(client, Mode::Write, |c| {
        // The lock comes first: nodes starting together wait for each other
        // here, and the one that follows sees the schema the first made.
        c.batch_execute(MIGRATION_LOCK)?;
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )?;
        let found: Option<i64> = c
            .query_one("SELECT max(version) FROM schema_migrations", &[])?
            .try_get(0)?;
        let found = found.unwrap_or(0);
        let supported = MIGRATIONS.last().map_or(0, |m| m.0);
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        let mut applied = Vec::new();
        for &(version, parts) in MIGRATIONS.iter().filter(|m| m.0 > found) {
            for sql in parts {
                c.batch_execute(sql)?;
            }
            c.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )?;
            applied.push(version);
        }
        Ok(applied)
    })
}

/// The notification channel of the connection's schema. Names too long for
/// PostgreSQL to keep are replaced by a digest, the same on every node.
pub(super) fn channel_name(schema: &str) -> String {
    let name = format!("presence_{schema}");
    if name.len() <= MAX_CHANNEL_LEN {
        return name;
    }
    let digest = Sha256::digest(schema.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("presence_{hex}")
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;
    use crate::store::postgres::PgStore;
    use crate::store::testing::{admin, scratch};

    #[test]
    fn long_channel_names_are_shortened_alike() {
        assert_eq!(channel_name("acme"), "presence_acme");
        let long = "x".repeat(63);
        assert!(channel_name(&long).len() <= MAX_CHANNEL_LEN);
        assert_eq!(channel_name(&long), channel_name(&long));
        assert_ne!(channel_name(&long), channel_name(&"y".repeat(63)));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn a_schema_migrates_while_another_holds_its_migration_lock() {
        let (Some((_a, url_a)), Some((_b, url_b))) = (scratch(), scratch()) else {
            return;
        };
        let mut holder = admin(&url_a);
        let mut held = holder.transaction().expect("begin");
        held.batch_execute(MIGRATION_LOCK).expect("lock a");
        // Without a key of its own, b's migration would wait out the
        // session's statement timeout behind a's lock and fail.
        PgStore::open(&url_b).expect("b opens while a's lock is held");
        held.rollback().expect("release");
        PgStore::open(&url_a).expect("a opens once its lock is free");
    }

    #[test]
    fn migrations_apply_once_even_when_run_together() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                thread::spawn(move || PgStore::migrate_only(&url))
            })
            .collect();
        let mut applied: Vec<Vec<i64>> = threads
            .into_iter()
            .map(|t| t.join().expect("thread").expect("migrate"))
            .collect();
        applied.sort();
        assert_eq!(applied, vec![vec![], vec![], vec![], vec![1, 2, 3, 4]]);
        assert_eq!(
            PgStore::migrate_only(&url).expect("again"),
            Vec::<i64>::new()
        );
        PgStore::open(&url).expect("open");
        let versions: Vec<i64> = admin(&url)
            .query("SELECT version FROM schema_migrations", &[])
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, vec![1, 2, 3, 4]);

        admin(&url)
            .execute("INSERT INTO schema_migrations (version) VALUES (99)", &[])
            .expect("pretend a newer program ran");
        match PgStore::open(&url) {
            Err(StoreError::SchemaTooNew {
                found: 99,
                supported: 4,
            }) => {}
            other => panic!("expected SchemaTooNew, got {:?}", other.err()),
        }
    }
}
