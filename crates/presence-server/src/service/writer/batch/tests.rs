//! The rules a batch applies (docs/PROTOCOL.md §3.4, §3.5 and §4: the
//! update rule, settings, push devices, update ids), run through the
//! writer's own steps over a real SQLite store in a temporary directory.
//!
//! Each test evaluates changes as `run_batch` does (`evaluate_batch`, then
//! `commit_and_apply`), so that it can look at the batch in between: the
//! mutations it commits and the update ids it takes. It then looks at what
//! readers see, the writer's memory, and at what the store holds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tempfile::TempDir;

use super::super::{Change, DirectoryBuilder, Outcome, UserRef, WriteError, Writer};
use super::Batch;
use crate::clock::{ManualClock, SharedClock};
use crate::config::Config;
use crate::events::{EventSettings, Hub};
use crate::ids::{RealmId, UpdateId, UserId};
use crate::service::RuleSettings;
use crate::service::model::Account;
use crate::service::rules::Times;
use crate::store::sqlite::SqliteStore;
use crate::store::{DeviceKind, Mutation, NewUser, PresenceRow, Store};

/// The service clock's time when a test starts (in 2027).
const T: i64 = 1_800_000_000;

/// `presence_update_min_freq_secs`.
const MIN: i64 = 55;

/// How far turning presence off moves records back: the offline threshold
/// (200) plus MIN plus 10 (docs/PROTOCOL.md §4.2).
const BACKDATE: i64 = 265;

/// Rules with the default times and small caps, so that a test reaches them.
fn rules() -> RuleSettings {
    RuleSettings {
        offline_threshold_secs: 200,
        min_freq_secs: MIN,
        max_clients_per_user: 2,
        max_devices_per_user: 2,
        history_limit_days: 14,
        ping_interval_secs: 60,
    }
}

/// A store with three realms, `a` (alice and a bot), `b` (bob) and
/// `quiet`, whose presence is disabled (carol); and a writer that loaded
/// it.
struct Fixture {
    dir: TempDir,
    writer: Writer,
    alice: UserRef,
    bot: UserRef,
    bob: UserRef,
    carol: UserRef,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut store = SqliteStore::open(dir.path()).expect("the store opens");
        for realm in ["a", "b", "quiet"] {
            store.create_realm(realm, realm, T).expect("a realm");
        }
        store
            .set_realm_presence_disabled("quiet", true)
            .expect("presence disabled");
        let alice = create_user(&mut store, "a", "alice", false);
        let bot = create_user(&mut store, "a", "bot", true);
        let bob = create_user(&mut store, "b", "bob", false);
        let carol = create_user(&mut store, "quiet", "carol", false);
        drop(store);
        let writer = writer_over(dir.path());
        Fixture {
            dir,
            writer,
            alice,
            bot,
            bob,
            carol,
        }
    }

    /// Dave, a user of realm `a` created after this writer read the
    /// directory, and a second writer over the same store that knows him.
    fn newcomer(&self) -> (UserRef, Writer) {
        let mut store = SqliteStore::open(self.dir.path()).expect("the store opens");
        let dave = create_user(&mut store, "a", "dave", false);
        drop(store);
        (dave, writer_over(self.dir.path()))
    }

    /// Runs `changes` as one batch: the batch as evaluated (its users are
    /// drained by applying it), and each change's final outcome.
    fn batch(&mut self, changes: Vec<Change>) -> (Batch, Vec<Outcome>) {
        let (mut batch, outcomes) = match self.writer.evaluate_batch(changes, None) {
            Ok(evaluated) => evaluated,
            Err(refused) => panic!("the batch could not start: {refused:?}"),
        };
        let outcomes = self.writer.commit_and_apply(&mut batch, outcomes);
        (batch, outcomes)
    }

    /// Runs `changes` as one batch, which must accept every change; the
    /// mutations it committed.
    fn accepted(&mut self, changes: Vec<Change>) -> Vec<Mutation> {
        let (batch, outcomes) = self.batch(changes);
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        batch.mutations
    }
}

fn create_user(store: &mut SqliteStore, realm: &str, name: &str, is_bot: bool) -> UserRef {
    let email = format!("{name}@{realm}.test");
    let row = store
        .create_user(&NewUser {
            realm,
            email: &email,
            full_name: name,
            is_bot,
            api_key_hash: crate::keys::hash(&email),
            date_joined: T,
        })
        .expect("a user");
    UserRef {
        realm_id: row.realm_id,
        user_id: row.id,
    }
}

/// A writer over the store in `dir`, with memory loaded from it as the
/// server loads it at start, and the service clock at [`T`].
fn writer_over(dir: &Path) -> Writer {
    let mut store = SqliteStore::open(dir).expect("the store opens");
    let mut builder = DirectoryBuilder::default();
    let version = store
        .load(&mut |item| builder.add(item))
        .expect("the store loads");
    let clock: SharedClock = Arc::new(ManualClock::new(T));
    let events = EventSettings::from_config(&Config::default());
    Writer::new(
        Box::new(store),
        Arc::new(RwLock::new(builder.finish())),
        rules(),
        version,
        Duration::from_secs(1),
        Arc::new(Hub::new(events, clock.clone())),
        clock,
    )
}

fn report(who: UserRef, client: &str, active: bool, now: i64) -> Change {
    Change::Report {
        who,
        client: Arc::from(client),
        active,
        now,
    }
}

/// `presence_enabled` set to `on` from the client `website`.
fn presence(who: UserRef, on: bool, now: i64) -> Change {
    presence_from(who, "website", on, now)
}

fn presence_from(who: UserRef, client: &str, on: bool, now: i64) -> Change {
    Change::Settings {
        who,
        client: Arc::from(client),
        presence_enabled: Some(on),
        enable_offline_push_notifications: None,
        now,
    }
}

fn push(who: UserRef, on: bool) -> Change {
    Change::Settings {
        who,
        client: Arc::from("website"),
        presence_enabled: None,
        enable_offline_push_notifications: Some(on),
        now: T,
    }
}

fn add_device(who: UserRef, kind: DeviceKind, token: &str) -> Change {
    Change::AddDevice {
        who,
        kind,
        token: token.to_owned(),
        appid: None,
    }
}

fn remove_device(who: UserRef, kind: DeviceKind, token: &str) -> Change {
    Change::RemoveDevice {
        who,
        kind,
        token: token.to_owned(),
    }
}

/// The record a report stores.
fn put(who: UserRef, client: &str, connected: i64, active: Option<i64>, id: i64) -> Mutation {
    Mutation::PutPresence(PresenceRow {
        user_id: who.user_id,
        client: client.to_owned(),
        last_connected_time: connected,
        last_active_time: active,
        update_id: UpdateId(id),
    })
}

fn settings(who: UserRef, presence_enabled: bool, push: bool) -> Mutation {
    Mutation::SetUserSettings {
        user_id: who.user_id,
        presence_enabled,
        enable_offline_push_notifications: push,
    }
}

fn times(connected: i64, active: Option<i64>) -> Times {
    Times {
        last_connected: connected,
        last_active: active,
    }
}

/// The realms a batch moves and their new last ids, in realm order.
fn sequences(batch: &Batch) -> Vec<(RealmId, i64)> {
    let mut sequences: Vec<(RealmId, i64)> = batch
        .sequences()
        .iter()
        .map(|s| (s.realm_id, s.last_update_id.0))
        .collect();
    sequences.sort_unstable();
    sequences
}

/// What memory holds of a user: records by client name, and update id.
fn records(writer: &Writer, who: UserRef) -> (Vec<(String, Times)>, i64) {
    let realm = writer.realm(who.realm_id).expect("a known realm");
    let realm = realm.read();
    let user = realm.users.get(&who.user_id).expect("a known user");
    let mut records: Vec<(String, Times)> = user
        .clients
        .iter()
        .map(|r| (r.client.to_string(), r.times()))
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    (records, user.update_id.0)
}

fn account(writer: &Writer, who: UserRef) -> Account {
    let realm = writer.realm(who.realm_id).expect("a known realm");
    let realm = realm.read();
    realm
        .users
        .get(&who.user_id)
        .expect("a known user")
        .account
        .clone()
}

/// A realm's last update id in memory, and as the store has it.
fn last_ids(writer: &mut Writer, realm_id: RealmId) -> (i64, i64) {
    let memory = writer
        .realm(realm_id)
        .expect("a known realm")
        .read()
        .last_update_id;
    let stored = writer.store.sequences().expect("the store answers");
    let stored = stored.iter().find(|s| s.realm_id == realm_id);
    (memory.0, stored.map_or(0, |s| s.last_update_id.0))
}

#[test]
fn a_first_report_takes_the_realms_next_id_and_is_stored() {
    let mut f = Fixture::new();
    let (batch, outcomes) = f.batch(vec![report(f.alice, "website", true, T)]);
    assert_eq!(outcomes, vec![Ok(())]);
    assert_eq!(
        batch.mutations,
        vec![put(f.alice, "website", T, Some(T), 1)]
    );
    assert_eq!(batch.first_ids[&f.alice.realm_id], UpdateId(0));
    assert_eq!(batch.last_ids[&f.alice.realm_id], UpdateId(1));
    assert_eq!(sequences(&batch), vec![(f.alice.realm_id, 1)]);
    let website = ("website".to_owned(), times(T, Some(T)));
    assert_eq!(records(&f.writer, f.alice), (vec![website], 1));
    assert_eq!(last_ids(&mut f.writer, f.alice.realm_id), (1, 1));
}

#[test]
fn reports_within_min_freq_are_coalesced_and_take_no_id() {
    let mut f = Fixture::new();
    f.accepted(vec![report(f.alice, "website", true, T)]);
    let (batch, outcomes) = f.batch(vec![
        report(f.alice, "website", true, T + MIN),
        report(f.alice, "website", false, T + 1),
    ]);
    assert_eq!(outcomes, vec![Ok(()), Ok(())]);
    assert_eq!(batch.mutations, vec![]);
    assert_eq!(sequences(&batch), vec![], "no sequence moves");
    assert_eq!(records(&f.writer, f.alice).1, 1);
    // One second past MIN: an idle report moves only `last_connected`.
    let idle = f.accepted(vec![report(f.alice, "website", false, T + MIN + 1)]);
    assert_eq!(idle, vec![put(f.alice, "website", T + MIN + 1, Some(T), 2)]);
    assert_eq!(last_ids(&mut f.writer, f.alice.realm_id), (2, 2));
}

#[test]
fn an_active_report_after_idle_ones_is_stored_at_once() {
    let mut f = Fixture::new();
    let idle = f.accepted(vec![report(f.alice, "website", false, T)]);
    assert_eq!(idle, vec![put(f.alice, "website", T, None, 1)]);
    // Within MIN of the idle report, yet the first activity: stored, and
    // `last_connected` rises with it.
    let active = f.accepted(vec![report(f.alice, "website", true, T + 1)]);
    assert_eq!(active, vec![put(f.alice, "website", T + 1, Some(T + 1), 2)]);
    let website = ("website".to_owned(), times(T + 1, Some(T + 1)));
    assert_eq!(records(&f.writer, f.alice), (vec![website], 2));
}

#[test]
fn reports_store_nothing_while_the_user_or_the_realm_has_presence_off() {
    let mut f = Fixture::new();
    f.accepted(vec![presence(f.alice, false, T)]);
    let (batch, outcomes) = f.batch(vec![
        report(f.alice, "website", true, T + 1),
        report(f.carol, "website", true, T + 1),
    ]);
    assert_eq!(outcomes, vec![Ok(()), Ok(())], "the requests still succeed");
    assert_eq!(batch.mutations, vec![]);
    assert_eq!(records(&f.writer, f.alice), (vec![], 0));
    assert_eq!(records(&f.writer, f.carol), (vec![], 0));
    assert_eq!(last_ids(&mut f.writer, f.carol.realm_id), (0, 0));
}

#[test]
fn update_ids_are_taken_per_realm_and_a_batch_builds_on_its_own_changes() {
    let mut f = Fixture::new();
    let (a, b) = (f.alice.realm_id, f.bob.realm_id);
    let (batch, _) = f.batch(vec![
        report(f.alice, "website", true, T),
        report(f.bob, "website", true, T),
        report(f.alice, "mobile", false, T),
        // Within MIN of the first report, staged in this very batch.
        report(f.alice, "website", true, T + 1),
    ]);
    assert_eq!(
        batch.mutations,
        vec![
            put(f.alice, "website", T, Some(T), 1),
            put(f.bob, "website", T, Some(T), 1),
            put(f.alice, "mobile", T, None, 2),
        ]
    );
    assert_eq!(
        (batch.first_ids[&a], batch.first_ids[&b]),
        (UpdateId(0), UpdateId(0))
    );
    assert_eq!(
        (batch.last_ids[&a], batch.last_ids[&b]),
        (UpdateId(2), UpdateId(1))
    );
    assert_eq!(sequences(&batch), vec![(a, 2), (b, 1)]);
    assert_eq!(records(&f.writer, f.alice).1, 2, "the user's latest id");
    // The next batch continues each realm's sequence where it stopped.
    let (batch, _) = f.batch(vec![report(f.bob, "website", false, T + MIN + 1)]);
    assert_eq!(batch.first_ids[&b], UpdateId(1));
    assert_eq!(sequences(&batch), vec![(b, 2)]);
    assert_eq!(last_ids(&mut f.writer, a), (2, 2));
    assert_eq!(last_ids(&mut f.writer, b), (2, 2));
    let realm = f.writer.realm(a).expect("realm a");
    let realm = realm.read();
    let index: Vec<(UpdateId, UserId)> = realm
        .changes
        .after(UpdateId(0), &realm.users)
        .map(|(id, user)| (id, user.account.id))
        .collect();
    assert_eq!(
        index,
        vec![(UpdateId(2), f.alice.user_id)],
        "the index has the latest id"
    );
}

#[test]
fn a_new_client_past_the_cap_evicts_the_least_recently_connected() {
    let mut f = Fixture::new();
    f.accepted(vec![
        report(f.alice, "one", true, T - 2),
        report(f.alice, "two", true, T - 1),
    ]);
    let mutations = f.accepted(vec![report(f.alice, "three", false, T)]);
    let evicted = Mutation::DeletePresence {
        user_id: f.alice.user_id,
        client: "one".to_owned(),
    };
    assert_eq!(mutations, vec![evicted, put(f.alice, "three", T, None, 3)]);
    let (records, _) = records(&f.writer, f.alice);
    let names: Vec<&str> = records.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, vec!["three", "two"]);
}

#[test]
fn eviction_between_equally_old_clients_takes_the_smaller_name() {
    let mut f = Fixture::new();
    f.accepted(vec![
        report(f.alice, "b", true, T),
        report(f.alice, "a", true, T),
    ]);
    let mutations = f.accepted(vec![report(f.alice, "c", true, T + 1)]);
    let evicted = Mutation::DeletePresence {
        user_id: f.alice.user_id,
        client: "a".to_owned(),
    };
    assert_eq!(mutations[0], evicted);
}

#[test]
fn turning_presence_off_backdates_the_recent_records_under_one_id() {
    let mut f = Fixture::new();
    f.accepted(vec![
        report(f.bob, "old", false, T - 1000),
        report(f.bob, "website", true, T),
    ]);
    let off = T + 20;
    let (batch, _) = f.batch(vec![presence(f.bob, false, off)]);
    let cutoff = off - BACKDATE;
    // The record already older than the cutoff is left alone.
    assert_eq!(
        batch.mutations,
        vec![
            settings(f.bob, false, true),
            put(f.bob, "website", cutoff, Some(cutoff), 3),
        ]
    );
    assert_eq!(sequences(&batch), vec![(f.bob.realm_id, 3)]);
    let expected = vec![
        ("old".to_owned(), times(T - 1000, None)),
        ("website".to_owned(), times(cutoff, Some(cutoff))),
    ];
    assert_eq!(records(&f.writer, f.bob), (expected, 3), "records remain");
    assert!(!account(&f.writer, f.bob).presence_enabled);
}

#[test]
fn turning_presence_off_moves_every_recent_record_back() {
    let mut f = Fixture::new();
    f.accepted(vec![
        report(f.bob, "website", true, T),
        report(f.bob, "mobile", false, T + 10),
    ]);
    let mutations = f.accepted(vec![presence(f.bob, false, T + 10)]);
    let cutoff = T + 10 - BACKDATE;
    let mut backdated = mutations[1..].to_vec();
    backdated.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(
        backdated,
        vec![
            put(f.bob, "mobile", cutoff, None, 3),
            put(f.bob, "website", cutoff, Some(cutoff), 3),
        ],
        "both records, under the same id"
    );
}

#[test]
fn turning_presence_off_with_no_recent_record_takes_no_id() {
    let mut f = Fixture::new();
    let (batch, _) = f.batch(vec![presence(f.alice, false, T)]);
    assert_eq!(batch.mutations, vec![settings(f.alice, false, true)]);
    assert_eq!(sequences(&batch), vec![]);
    assert_eq!(last_ids(&mut f.writer, f.alice.realm_id), (0, 0));
}

#[test]
fn turning_presence_on_reports_the_user_active_from_the_asking_client() {
    let mut f = Fixture::new();
    f.accepted(vec![presence(f.alice, false, T)]);
    let on = T + 5;
    let mutations = f.accepted(vec![presence_from(f.alice, "ZulipMobile", true, on)]);
    assert_eq!(
        mutations,
        vec![
            settings(f.alice, true, true),
            put(f.alice, "ZulipMobile", on, Some(on), 1),
        ]
    );
    assert!(account(&f.writer, f.alice).presence_enabled);
    let record = ("ZulipMobile".to_owned(), times(on, Some(on)));
    assert_eq!(records(&f.writer, f.alice), (vec![record], 1));
}

#[test]
fn settings_equal_to_the_current_ones_change_nothing() {
    let mut f = Fixture::new();
    let (batch, outcomes) = f.batch(vec![presence(f.alice, true, T), push(f.alice, true)]);
    assert_eq!(outcomes, vec![Ok(()), Ok(())]);
    assert_eq!(batch.mutations, vec![], "no report is made either");
    assert_eq!(records(&f.writer, f.alice), (vec![], 0));
}

#[test]
fn a_bot_turning_presence_on_gets_no_record() {
    let mut f = Fixture::new();
    f.accepted(vec![presence(f.bot, false, T)]);
    let (batch, _) = f.batch(vec![presence(f.bot, true, T + 1)]);
    assert_eq!(batch.mutations, vec![settings(f.bot, true, true)]);
    assert_eq!(sequences(&batch), vec![], "no update id");
    assert!(account(&f.writer, f.bot).presence_enabled);
    assert_eq!(records(&f.writer, f.bot), (vec![], 0));
}

#[test]
fn the_push_setting_takes_no_update_id() {
    let mut f = Fixture::new();
    f.accepted(vec![report(f.alice, "website", true, T)]);
    let (batch, _) = f.batch(vec![push(f.alice, false)]);
    assert_eq!(batch.mutations, vec![settings(f.alice, true, false)]);
    assert_eq!(sequences(&batch), vec![]);
    assert!(!account(&f.writer, f.alice).enable_offline_push_notifications);
    assert_eq!(records(&f.writer, f.alice).1, 1);
}

#[test]
fn devices_are_capped_counting_the_batchs_own_changes() {
    let mut f = Fixture::new();
    let fcm = DeviceKind::Fcm;
    let (batch, outcomes) = f.batch(vec![
        add_device(f.alice, fcm, "one"),
        add_device(f.alice, fcm, "two"),
        add_device(f.alice, fcm, "three"),
        // A device the user has (from this batch) is no new one.
        add_device(f.alice, fcm, "one"),
    ]);
    assert_eq!(
        outcomes,
        vec![Ok(()), Ok(()), Err(WriteError::TooManyDevices(2)), Ok(())]
    );
    let added: Vec<&str> = batch
        .mutations
        .iter()
        .map(|m| match m {
            Mutation::AddDevice { token, .. } => token.as_str(),
            other => panic!("not a device: {other:?}"),
        })
        .collect();
    assert_eq!(added, vec!["one", "two"]);
    assert_eq!(sequences(&batch), vec![], "devices take no update id");
    assert_eq!(account(&f.writer, f.alice).push_devices, 2);
    // A removal earlier in the batch makes room.
    let (_, outcomes) = f.batch(vec![
        remove_device(f.alice, fcm, "one"),
        add_device(f.alice, fcm, "three"),
    ]);
    assert_eq!(outcomes, vec![Ok(()), Ok(())]);
    assert_eq!(account(&f.writer, f.alice).push_devices, 2);
    let store = &mut f.writer.store;
    let user = f.alice.user_id;
    assert!(
        !store
            .has_device(user, fcm, "one")
            .expect("the store answers")
    );
    assert!(
        store
            .has_device(user, fcm, "three")
            .expect("the store answers")
    );
}

#[test]
fn removing_a_device_the_user_lacks_is_refused() {
    let mut f = Fixture::new();
    let (apns, fcm) = (DeviceKind::Apns, DeviceKind::Fcm);
    f.accepted(vec![add_device(f.alice, apns, "ab")]);
    let (batch, outcomes) = f.batch(vec![
        remove_device(f.alice, fcm, "ab"),
        remove_device(f.bob, apns, "ab"),
        remove_device(f.alice, apns, "ab"),
        remove_device(f.alice, apns, "ab"),
    ]);
    let gone = Err(WriteError::TokenDoesNotExist);
    assert_eq!(outcomes, vec![gone.clone(), gone.clone(), Ok(()), gone]);
    assert_eq!(
        batch.mutations,
        vec![Mutation::RemoveDevice {
            user_id: f.alice.user_id,
            kind: apns,
            token: "ab".to_owned(),
        }]
    );
    assert_eq!(account(&f.writer, f.alice).push_devices, 0);
}

#[test]
fn a_change_for_an_unknown_user_is_refused_alone() {
    let mut f = Fixture::new();
    let stranger = UserRef {
        realm_id: f.alice.realm_id,
        user_id: UserId(9_999),
    };
    let outcomes = f.writer.run_batch(vec![
        report(stranger, "website", true, T),
        report(f.alice, "website", true, T),
    ]);
    assert_eq!(outcomes, vec![Err(WriteError::UnknownUser), Ok(())]);
    assert_eq!(records(&f.writer, f.alice).1, 1);
}

#[test]
fn a_batch_behind_the_store_installs_what_another_writer_committed_first() {
    let mut f = Fixture::new();
    // Dave reports through a writer that knows him.
    let (dave, mut other) = f.newcomer();
    assert_eq!(
        other.run_batch(vec![report(dave, "website", true, T)]),
        vec![Ok(())]
    );
    // Starting a batch of the same realm finds the store ahead, with a
    // record of a user this writer does not know: it reads the directory
    // and tries again, and its own change takes the next id.
    let (batch, outcomes) = f.batch(vec![report(f.alice, "website", true, T + 1)]);
    assert_eq!(outcomes, vec![Ok(())]);
    assert_eq!(batch.first_ids[&f.alice.realm_id], UpdateId(1));
    assert_eq!(
        batch.mutations,
        vec![put(f.alice, "website", T + 1, Some(T + 1), 2)]
    );
    let record = ("website".to_owned(), times(T, Some(T)));
    assert_eq!(records(&f.writer, dave), (vec![record], 1));
    assert_eq!(last_ids(&mut f.writer, f.alice.realm_id), (2, 2));
}

#[test]
fn another_writers_commit_is_shown_only_with_the_batch_that_found_it() {
    let mut f = Fixture::new();
    let (dave, mut other) = f.newcomer();
    other.run_batch(vec![report(dave, "website", true, T)]);
    let (mut batch, outcomes) = f
        .writer
        .evaluate_batch(vec![report(f.alice, "website", true, T)], None)
        .expect("the batch starts");
    // Evaluated after dave's report, which is not shown yet.
    assert_eq!(batch.first_ids[&f.alice.realm_id], UpdateId(1));
    assert_eq!(records(&f.writer, dave), (vec![], 0));
    f.writer.commit_and_apply(&mut batch, outcomes);
    let website = ("website".to_owned(), times(T, Some(T)));
    assert_eq!(records(&f.writer, dave), (vec![website.clone()], 1));
    assert_eq!(records(&f.writer, f.alice), (vec![website.clone()], 2));

    // A batch that writes nothing (alice's report again) shows what it
    // found too.
    other.run_batch(vec![report(dave, "mobile", true, T)]);
    let (batch, outcomes) = f.batch(vec![report(f.alice, "website", true, T)]);
    assert_eq!((batch.mutations.len(), outcomes), (0, vec![Ok(())]));
    let mobile = ("mobile".to_owned(), times(T, Some(T)));
    assert_eq!(records(&f.writer, dave), (vec![mobile, website], 3));
}

#[test]
fn catching_up_installs_what_another_writer_committed() {
    let mut f = Fixture::new();
    let mut other = writer_over(f.dir.path());
    other.run_batch(vec![report(f.bob, "website", true, T)]);
    assert_eq!(records(&f.writer, f.bob), (vec![], 0));
    f.writer.catch_up().expect("the store answers");
    let record = ("website".to_owned(), times(T, Some(T)));
    assert_eq!(records(&f.writer, f.bob), (vec![record], 1));
    assert_eq!(last_ids(&mut f.writer, f.bob.realm_id), (1, 1));
}
