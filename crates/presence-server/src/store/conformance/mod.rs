//! What every store must do, written once against the [`Store`] trait and
//! run on both: SQLite in a temporary directory, and PostgreSQL in a scratch
//! schema of its own. Without `PRESENCE_TEST_DATABASE_URL` the PostgreSQL
//! half skips, saying so on stderr; under `CI` it fails instead.
//!
//! Only what the trait promises is held here: what the two stores do alike.
//! What one of them does on its own (migrations, reconnection, listeners,
//! lock waits) is tested beside its code.

mod batches;
mod directory;
mod statuses;
mod transfer;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::testing::{ScratchSchema, hash, new_user, sequence, test_database_url};
use super::{
    DeviceKind, Mutation, NewEmbedKey, PresenceRow, RealmRow, Sequence, Store, UserRecords, UserRow,
};
use crate::ids::{RealmId, UserId};
/// Where the stores of a test keep their data: every store opened on one
/// place shares it, as the processes of one installation do.
enum Place {
    /// A data directory.
    Sqlite(tempfile::TempDir),
    /// A schema of the test database.
    Postgres(ScratchSchema),
}

impl Place {
    /// A new data directory.
    fn sqlite() -> Option<Place> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Some(Place::Sqlite(dir))
    }

    /// A new schema, or `None` (said on stderr) when the tests skip.
    fn postgres() -> Option<Place> {
        let base = test_database_url()?;
        let schema = ScratchSchema::create(&base).expect("a scratch schema");
        Some(Place::Postgres(schema))
    }

    /// Another new place of the same kind.
    fn another(&self) -> Place {
        let place = match self {
            Place::Sqlite(_) => Place::sqlite(),
            Place::Postgres(_) => Place::postgres(),
        };
        place.expect("a second place where there is one")
    }

    /// A store on this place.
    fn open(&self) -> Box<dyn Store> {
        match self {
            Place::Sqlite(dir) => Box::new(SqliteStore::open(dir.path()).expect("open")),
            Place::Postgres(schema) => Box::new(PgStore::open(&schema.url()).expect("open")),
        }
    }
}

/// Makes each test named (by its topic's module and its name) a test
/// on either store, in `on_sqlite` and `on_postgres`.
macro_rules! conformance {
    ($($topic:ident::$test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $test() {
                    if let Some(place) = super::Place::sqlite() {
                        super::$topic::$test(&place);
                    }
                }
            )*
        }

        mod on_postgres {
            $(
                #[test]
                fn $test() {
                    if let Some(place) = super::Place::postgres() {
                        super::$topic::$test(&place);
                    }
                }
            )*
        }
    };
}

conformance!(
    transfer::a_new_store_is_empty,
    directory::realms_are_created_once_and_changed_in_place,
    directory::users_are_created_found_and_changed,
    directory::a_deleted_user_is_gone_and_leaves_a_trace,
    directory::directory_changes_follow_the_version,
    directory::embed_keys_are_created_used_and_revoked,
    directory::nodes_report_and_are_forgotten,
    batches::a_batch_commits_every_kind_of_mutation,
    batches::a_batch_that_fails_or_is_aborted_writes_nothing,
    batches::presence_changes_give_whole_users_since_an_id,
    batches::a_second_store_sees_what_the_first_commits,
    batches::a_relaxed_store_commits_what_another_reads,
    transfer::a_load_hands_over_everything_in_order,
    transfer::an_export_imports_elsewhere_with_its_ids,
    transfer::an_import_that_conflicts_adds_nothing,
    statuses::a_status_is_written_and_seen_elsewhere,
    statuses::an_expiry_clears_once_and_only_its_own_status,
    statuses::a_deleted_users_status_is_gone,
);

/// The realm `acme`, created at time 100.
fn acme(store: &mut dyn Store) -> RealmRow {
    store.create_realm("acme", "Acme", 100).expect("realm")
}

/// A user created in `realm` with this email and key hash [`hash`]`(n)`.
fn user(store: &mut dyn Store, realm: &str, email: &str, n: u64) -> UserRow {
    store
        .create_user(&new_user(realm, email, n))
        .expect("a user")
}

/// Begins a batch on `realms` and commits `batch` with `sequences`.
fn commit(
    store: &mut dyn Store,
    realms: &[RealmId],
    batch: &[Mutation],
    sequences: &[(RealmId, i64)],
) {
    store.begin_batch(realms).expect("begin");
    let sequences: Vec<Sequence> = sequences
        .iter()
        .map(|&(realm_id, last)| sequence(realm_id, last))
        .collect();
    store.commit_batch(batch, &sequences).expect("commit");
}

/// Registers an FCM device `token` for `user_id`.
fn add_device(user_id: UserId, token: &str) -> Mutation {
    Mutation::AddDevice {
        user_id,
        kind: DeviceKind::Fcm,
        token: token.to_owned(),
        appid: None,
    }
}

/// A new embed key of `realm` named `name`, with key hash [`hash`]`(n)`,
/// allowed from `origins`, made at time 1,000.
fn new_key<'a>(realm: &'a str, name: &'a str, n: u64, origins: &'a [String]) -> NewEmbedKey<'a> {
    NewEmbedKey {
        realm,
        name,
        key_hash: hash(n),
        origins,
        now: 1_000,
    }
}

/// A user's records as `presence_changes` lists them.
fn changed(user_id: UserId, records: Vec<PresenceRow>) -> UserRecords {
    UserRecords { user_id, records }
}

/// The user `id` of `realm`, as `list_users` gives it.
fn listed(store: &mut dyn Store, realm: &str, id: UserId) -> UserRow {
    let users = store.list_users(realm).expect("list");
    users
        .into_iter()
        .find(|u| u.id == id)
        .expect("the user is listed")
}
