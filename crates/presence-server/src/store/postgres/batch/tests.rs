//! The batch statements against a scratch schema: locks, plans, claims,
//! and what a commit writes.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{LOCK_NAME, WRITE_NAME};
use crate::ids::{UpdateId, UserId};
use crate::store::postgres::PgStore;
use crate::store::testing::{load_all, new_user, put, scratch, sequence, two_nodes};
use crate::store::{DeviceKind, Mutation, RealmRow, Store, StoreError, UserRow};

/// A store on the database at `url` with the realm `acme` and its user
/// `ann@x`.
fn acme_with_ann(url: &str) -> (PgStore, RealmRow, UserRow) {
    let mut store = PgStore::open(url).expect("open");
    let realm = store.create_realm("acme", "Acme", 0).expect("realm");
    let ann = store
        .create_user(&new_user("acme", "ann@x", 1))
        .expect("ann");
    (store, realm, ann)
}

/// Two stores on the database at `url` with a realm and a user, the
/// first holding the realm's lock in an open batch.
fn two_nodes_the_first_locking(url: &str) -> (PgStore, PgStore, RealmRow, UserRow) {
    let (mut a, b, realm, user) = two_nodes(url);
    assert_eq!(
        a.begin_batch(&[realm.id]).expect("begin"),
        vec![UpdateId(0)]
    );
    (a, b, realm, user)
}

/// Runs `f` on `b` in a thread of its own and checks that it is still
/// waiting 400 ms later, for a lock the caller holds; join the thread
/// once the caller lets the lock go.
fn blocked<T: Send + 'static>(
    mut b: PgStore,
    f: impl FnOnce(&mut PgStore) -> T + Send + 'static,
) -> thread::JoinHandle<(T, PgStore)> {
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let out = f(&mut b);
        let _ = tx.send(());
        (out, b)
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(400)).is_err(),
        "must wait while the lock is held"
    );
    waiter
}

#[test]
fn a_second_node_waits_for_the_sequence_lock() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut a, b, realm, user) = two_nodes_the_first_locking(&url);
    // However late the thread starts, it cannot begin while a holds the
    // lock; and when it begins, it sees a's commit.
    let waiter = blocked(b, move |b| {
        let seen = b.begin_batch(&[realm.id]).expect("begin b");
        b.commit_batch(&[put(user.id, "web", 6)], &[sequence(realm.id, 6)])
            .expect("commit b");
        seen
    });
    a.commit_batch(&[put(user.id, "web", 5)], &[sequence(realm.id, 5)])
        .expect("commit a");
    let (seen, mut b) = waiter.join().expect("thread");
    assert_eq!(seen, vec![UpdateId(5)]);
    assert_eq!(
        b.sequences().expect("sequences"),
        vec![sequence(realm.id, 6)]
    );
}

#[test]
fn deleting_a_user_waits_for_a_batch_and_takes_its_records_too() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut a, b, realm, user) = two_nodes_the_first_locking(&url);
    let deleter = blocked(b, |b| b.delete_user("acme", "a@x"));
    a.commit_batch_in_realms(
        &[put(user.id, "web", 1)],
        &[realm.id],
        &[sequence(realm.id, 1)],
    )
    .expect("commit a");
    let (deleted, mut b) = deleter.join().expect("thread");
    assert_eq!(deleted.expect("deleted").id, user.id);
    let records = |store: &mut PgStore| {
        store
            .presence_changes(realm.id, UpdateId(0))
            .expect("changes")
            .users
    };
    assert!(
        records(&mut b).is_empty(),
        "the batch's record went with its user"
    );
    // A later batch for the deleted user writes nothing.
    a.begin_batch(&[realm.id]).expect("begin");
    a.commit_batch_in_realms(
        &[put(user.id, "web", 2)],
        &[realm.id],
        &[sequence(realm.id, 2)],
    )
    .expect("commit");
    assert!(records(&mut b).is_empty());
}

#[test]
fn a_batch_plans_as_usual_once_its_locks_are_taken() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut a, _b, _realm, _user) = two_nodes_the_first_locking(&url);
    let settings: (String, String) = a
        .run(|c, _| {
            let mode = c.query_one("SHOW plan_cache_mode", &[])?.get(0);
            let scans = c.query_one("SHOW enable_seqscan", &[])?.get(0);
            Ok((mode, scans))
        })
        .expect("show");
    assert_eq!(
        settings,
        ("force_custom_plan".to_owned(), "on".to_owned()),
        "only the lock is planned generically and by index"
    );
    a.abort_batch();
}

#[test]
fn statements_the_database_dropped_are_prepared_again() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let mut store = PgStore::open(&url).expect("open");
    let realm = store.create_realm("acme", "Acme", 0).expect("realm");
    assert_eq!(
        store.sequences().expect("prepared"),
        vec![sequence(realm.id, 0)]
    );
    // As if the database forgot them (a failover to a new server,
    // tables changed under them): the next call fails...
    store
        .run(|c, _| Ok(c.batch_execute("DEALLOCATE ALL")?))
        .expect("deallocate");
    assert!(store.sequences().is_err());
    // ...and the one after prepares them again.
    assert_eq!(
        store.sequences().expect("again"),
        vec![sequence(realm.id, 0)]
    );
}

#[test]
fn a_batch_of_thousands_commits() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let mut store = PgStore::open(&url).expect("open");
    let realm = store.create_realm("acme", "Acme", 0).expect("realm");
    let users: Vec<UserRow> = (0..50)
        .map(|i| {
            let email = format!("u{i}@x");
            store
                .create_user(&new_user("acme", &email, i))
                .expect("user")
        })
        .collect();
    let mut batch = Vec::new();
    for user in &users {
        for c in 0..100 {
            batch.push(put(user.id, &format!("client{c}"), batch.len() as i64 + 1));
        }
    }
    assert_eq!(batch.len(), 5000);
    store.begin_batch(&[realm.id]).expect("begin");
    let started = Instant::now();
    store
        .commit_batch(&batch, &[sequence(realm.id, 5000)])
        .expect("commit");
    assert!(started.elapsed() < Duration::from_secs(5));
    let changes = store
        .presence_changes(realm.id, UpdateId(0))
        .expect("changes");
    assert_eq!(changes.last_update_id, UpdateId(5000));
    assert_eq!(changes.users.len(), 50);
    assert!(changes.users.iter().all(|user| user.records.len() == 100));
}

#[test]
fn a_batch_takes_one_directory_version_for_all_its_user_changes() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut store, realm, ann) = acme_with_ann(&url);
    let bob = store
        .create_user(&new_user("acme", "bob@x", 2))
        .expect("bob");
    let before = store.directory_version().expect("version");

    store.begin_batch(&[realm.id]).expect("begin");
    let batch = [
        put(ann.id, "web", 1),
        Mutation::SetUserSettings {
            user_id: ann.id,
            presence_enabled: false,
            enable_offline_push_notifications: false,
        },
        Mutation::AddDevice {
            user_id: bob.id,
            kind: DeviceKind::Apns,
            token: "tok".to_owned(),
            appid: Some("app".to_owned()),
        },
    ];
    store
        .commit_batch(&batch, &[sequence(realm.id, 1)])
        .expect("commit");
    let changes = store.directory_changes(before).expect("changes");
    assert_eq!(changes.version, before + 1);
    let changed: Vec<UserId> = changes.users.iter().map(|u| u.id).collect();
    assert_eq!(changed, vec![ann.id, bob.id]);
    assert_eq!(load_all(&mut store).0, before + 1);
}

/// The plan the connection keeps for a statement prepared by `name`,
/// as `EXPLAIN` shows it.
fn kept_plan(store: &mut PgStore, name: &str, args: &str) -> String {
    store
        .run(|c, _| {
            // The kept plan, whatever the session would plan now.
            c.batch_execute("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")?;
            let rows = c.query(&format!("EXPLAIN EXECUTE {name}({args})"), &[])?;
            c.batch_execute("COMMIT")?;
            Ok(rows
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n"))
        })
        .expect("explain")
}

#[test]
fn a_batch_plan_made_on_small_tables_finds_rows_by_index() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut store, realm, user) = acme_with_ann(&url);
    // The first batch makes both plans, while every table holds a row
    // or two: scanning them whole would look cheapest then, and would
    // be kept as the tables grow.
    store.begin_batch(&[realm.id]).expect("begin");
    store
        .commit_batch(&[put(user.id, "web", 1)], &[sequence(realm.id, 1)])
        .expect("commit");
    let lock = kept_plan(&mut store, LOCK_NAME, "'{1}'");
    let empty = ["'{}'"; 10].join(", ");
    let write = kept_plan(&mut store, WRITE_NAME, &empty);
    for plan in [&lock, &write] {
        assert!(plan.contains("Index Scan"), "{plan}");
        for whole in ["Seq Scan", "Hash Join", "Merge Join"] {
            assert!(!plan.contains(whole), "{whole} in\n{plan}");
        }
    }
}

#[test]
fn records_written_with_the_commit_keep_any_client_name() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut store, realm, user) = acme_with_ann(&url);
    let names = ["it's", "back\\slash", "ünï {c,o}de", "\"quoted\"", "NULL"];
    let batch: Vec<Mutation> = names
        .iter()
        .zip(1..)
        .map(|(name, id)| put(user.id, name, id))
        .collect();
    store.begin_batch(&[realm.id]).expect("begin");
    store
        .commit_batch(&batch, &[sequence(realm.id, 5)])
        .expect("commit");
    let changes = store
        .presence_changes(realm.id, UpdateId(0))
        .expect("changes");
    let mut stored: Vec<&str> = changes.users[0]
        .records
        .iter()
        .map(|r| r.client.as_str())
        .collect();
    let mut expected = names.to_vec();
    stored.sort_unstable();
    expected.sort_unstable();
    assert_eq!(stored, expected);

    // The statement prepared by name is prepared again once the
    // database forgot it: one batch fails, the next commits.
    store
        .run(|c, _| Ok(c.batch_execute(&format!("DEALLOCATE {WRITE_NAME}"))?))
        .expect("deallocate");
    store.begin_batch(&[realm.id]).expect("begin");
    let failed = store.commit_batch(&[put(user.id, "web", 6)], &[sequence(realm.id, 6)]);
    assert!(failed.is_err());
    store.begin_batch(&[realm.id]).expect("begin");
    store
        .commit_batch(&[put(user.id, "web", 6)], &[sequence(realm.id, 6)])
        .expect("again");
    assert_eq!(
        store.sequences().expect("sequences"),
        vec![sequence(realm.id, 6)]
    );
}

/// The clients of the records a store holds for a realm, in order.
fn stored_clients(store: &mut PgStore, realm: &RealmRow) -> Vec<String> {
    let changes = store
        .presence_changes(realm.id, UpdateId(0))
        .expect("changes");
    let mut clients: Vec<String> = changes
        .users
        .iter()
        .flat_map(|user| user.records.iter().map(|r| r.client.clone()))
        .collect();
    clients.sort();
    clients
}

#[test]
fn a_claimed_batch_commits_when_its_realm_holds_the_id_it_expected() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut a, realm, ann) = acme_with_ann(&url);
    assert!(a.begin_claiming(&[realm.id], &[UpdateId(0)]));
    a.commit_batch_in_realms(
        &[put(ann.id, "web", 1), put(ann.id, "phone", 2)],
        &[realm.id, realm.id],
        &[sequence(realm.id, 2)],
    )
    .expect("claimed commit");
    assert_eq!(
        a.sequences().expect("sequences"),
        vec![sequence(realm.id, 2)]
    );
    assert_eq!(stored_clients(&mut a, &realm), ["phone", "web"]);
    // The next claim starts from where this one left the realm.
    assert!(a.begin_claiming(&[realm.id], &[UpdateId(2)]));
    a.commit_batch(&[put(ann.id, "web", 3)], &[sequence(realm.id, 3)])
        .expect("second claimed commit");
    assert_eq!(
        a.sequences().expect("sequences"),
        vec![sequence(realm.id, 3)]
    );
}

#[test]
fn a_claim_on_a_realm_another_node_wrote_to_writes_nothing() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut a, mut b, realm, user) = two_nodes(&url);
    // a evaluates against id 0; meanwhile b commits id 1.
    assert!(a.begin_claiming(&[realm.id], &[UpdateId(0)]));
    b.begin_batch(&[realm.id]).expect("begin b");
    b.commit_batch(&[put(user.id, "b", 1)], &[sequence(realm.id, 1)])
        .expect("commit b");
    let lost = a.commit_batch(&[put(user.id, "a", 1)], &[sequence(realm.id, 1)]);
    assert!(
        matches!(lost, Err(StoreError::ClaimLost)),
        "expected a lost claim, got {lost:?}"
    );
    assert_eq!(stored_clients(&mut a, &realm), ["b"]);
    assert_eq!(
        a.sequences().expect("sequences"),
        vec![sequence(realm.id, 1)]
    );
    // The batch runs again locked, on a connection still fit for it.
    assert_eq!(a.begin_batch(&[realm.id]).expect("begin a"), [UpdateId(1)]);
    a.commit_batch(&[put(user.id, "a", 2)], &[sequence(realm.id, 2)])
        .expect("locked commit");
    assert_eq!(stored_clients(&mut a, &realm), ["a", "b"]);
}

#[test]
fn a_claim_waits_for_a_locked_batch_and_then_sees_its_commit() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut a, mut b, realm, user) = two_nodes_the_first_locking(&url);
    // b's claim expects id 0, which a's batch is about to move: b's message
    // waits for a's lock, and its check reads the row a committed.
    assert!(b.begin_claiming(&[realm.id], &[UpdateId(0)]));
    let claimer = blocked(b, move |b| {
        b.commit_batch(&[put(user.id, "b", 1)], &[sequence(realm.id, 1)])
    });
    a.commit_batch(&[put(user.id, "a", 1)], &[sequence(realm.id, 1)])
        .expect("commit a");
    let (lost, mut b) = claimer.join().expect("thread");
    assert!(
        matches!(lost, Err(StoreError::ClaimLost)),
        "expected a lost claim, got {lost:?}"
    );
    assert_eq!(stored_clients(&mut b, &realm), ["a"]);
    assert_eq!(
        b.sequences().expect("sequences"),
        vec![sequence(realm.id, 1)]
    );
}

#[test]
fn a_claimed_batch_that_writes_nothing_sends_nothing() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let (mut a, b, realm, user) = two_nodes(&url);
    assert!(a.begin_claiming(&[realm.id], &[UpdateId(0)]));
    a.abort_batch();
    // No transaction was opened, so no lock is held: another node's batch
    // goes through at once.
    let mut b = b;
    b.begin_batch(&[realm.id]).expect("begin b");
    b.commit_batch(&[put(user.id, "b", 1)], &[sequence(realm.id, 1)])
        .expect("commit b");
    assert_eq!(
        a.sequences().expect("sequences"),
        vec![sequence(realm.id, 1)]
    );
}
