//! What every store does with the server's batches: their mutations, a
//! batch that fails or is aborted, the catch-up reads of presence, two
//! stores sharing one database, and a store committing with relaxed
//! durability.

use super::{Place, acme, add_device, changed, commit, listed, user};
use crate::ids::{RealmId, UpdateId, UserId};
use crate::store::testing::{put, record, sequence};
use crate::store::{DeviceKind, Durability, Mutation, StoreError};

/// Puts, a removal, settings and devices commit together, with the
/// realms' new last update ids.
pub(super) fn a_batch_commits_every_kind_of_mutation(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let ann = user(&mut *store, "acme", "ann@x", 1);
    let bob = user(&mut *store, "acme", "bob@x", 2);

    assert_eq!(
        store.begin_batch(&[realm.id, RealmId(999)]).expect("begin"),
        vec![UpdateId(0), UpdateId(0)]
    );
    let batch = [
        put(ann.id, "web", 1),
        put(ann.id, "mobile", 2),
        Mutation::DeletePresence {
            user_id: ann.id,
            client: "mobile".to_owned(),
        },
        put(bob.id, "web", 3),
        Mutation::SetUserSettings {
            user_id: bob.id,
            presence_enabled: false,
            enable_offline_push_notifications: false,
        },
        add_device(bob.id, "t"),
        // Registering a device twice is a no-op.
        add_device(bob.id, "t"),
    ];
    // A realm named twice keeps its last value.
    let sequences = [sequence(realm.id, 2), sequence(realm.id, 3)];
    store.commit_batch(&batch, &sequences).expect("commit");
    assert!(matches!(
        store.commit_batch(&[], &[]),
        Err(StoreError::NoBatch)
    ));

    assert_eq!(
        store.sequences().expect("sequences"),
        vec![sequence(realm.id, 3)]
    );
    let changes = store
        .presence_changes(realm.id, UpdateId(0))
        .expect("presence");
    assert_eq!(changes.last_update_id, UpdateId(3));
    assert_eq!(
        changes.users,
        vec![
            changed(ann.id, vec![record(ann.id, "web", 1)]),
            changed(bob.id, vec![record(bob.id, "web", 3)]),
        ]
    );
    assert!(
        store
            .has_device(bob.id, DeviceKind::Fcm, "t")
            .expect("device")
    );
    assert!(
        !store
            .has_device(bob.id, DeviceKind::Apns, "t")
            .expect("kind")
    );
    let bob_now = listed(&mut *store, "acme", bob.id);
    assert_eq!(
        (
            bob_now.presence_enabled,
            bob_now.enable_offline_push_notifications,
            bob_now.push_devices
        ),
        (false, false, 1)
    );

    let remove = Mutation::RemoveDevice {
        user_id: bob.id,
        kind: DeviceKind::Fcm,
        token: "t".to_owned(),
    };
    commit(&mut *store, &[realm.id], &[remove], &[]);
    assert!(
        !store
            .has_device(bob.id, DeviceKind::Fcm, "t")
            .expect("device")
    );
    assert_eq!(listed(&mut *store, "acme", bob.id).push_devices, 0);
    assert_eq!(
        store.begin_batch(&[realm.id]).expect("begin"),
        vec![UpdateId(3)]
    );
    store.abort_batch();
}

/// A failed commit or an abort leaves the store as it was, and ends the
/// batch.
pub(super) fn a_batch_that_fails_or_is_aborted_writes_nothing(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let ann = user(&mut *store, "acme", "ann@x", 1);
    let version = store.directory_version().expect("version");

    // A device of a user who does not exist fails the whole batch.
    store.begin_batch(&[realm.id]).expect("begin");
    let failed = store.commit_batch(
        &[put(ann.id, "web", 1), add_device(UserId(999_999), "t")],
        &[sequence(realm.id, 1)],
    );
    assert!(failed.is_err());
    assert!(matches!(
        store.commit_batch(&[], &[]),
        Err(StoreError::NoBatch)
    ));

    store.begin_batch(&[realm.id]).expect("begin");
    store.abort_batch();
    assert!(matches!(
        store.commit_batch(&[put(ann.id, "web", 1)], &[sequence(realm.id, 1)]),
        Err(StoreError::NoBatch)
    ));

    assert_eq!(
        store.sequences().expect("sequences"),
        vec![sequence(realm.id, 0)]
    );
    assert!(
        store
            .presence_changes(realm.id, UpdateId(0))
            .expect("presence")
            .users
            .is_empty()
    );
    assert_eq!(store.directory_version().expect("version"), version);

    // Beginning again ends the batch left open, and the store goes on.
    store.begin_batch(&[realm.id]).expect("begin");
    assert_eq!(
        store.begin_batch(&[realm.id]).expect("again"),
        vec![UpdateId(0)]
    );
    store
        .commit_batch(&[put(ann.id, "web", 1)], &[sequence(realm.id, 1)])
        .expect("commit");
    assert_eq!(
        store.sequences().expect("sequences"),
        vec![sequence(realm.id, 1)]
    );
}

/// A catch-up read gives every record of each user changed since an id,
/// realm by realm.
pub(super) fn presence_changes_give_whole_users_since_an_id(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let other = store.create_realm("other", "Other", 0).expect("realm");
    let ann = user(&mut *store, "acme", "ann@x", 1);
    let bob = user(&mut *store, "acme", "bob@x", 2);
    let eve = user(&mut *store, "other", "eve@x", 3);
    commit(
        &mut *store,
        &[realm.id, other.id],
        &[
            put(ann.id, "web", 1),
            put(ann.id, "mobile", 2),
            put(bob.id, "web", 3),
            put(eve.id, "web", 1),
        ],
        &[(realm.id, 3), (other.id, 1)],
    );
    commit(
        &mut *store,
        &[realm.id],
        &[put(ann.id, "web", 4)],
        &[(realm.id, 4)],
    );

    // Ann changed after 3: all of her records come, Bob's do not.
    let changes = store
        .presence_changes(realm.id, UpdateId(3))
        .expect("changes");
    assert_eq!(changes.last_update_id, UpdateId(4));
    assert_eq!(
        changes.users,
        vec![changed(
            ann.id,
            vec![record(ann.id, "mobile", 2), record(ann.id, "web", 4)]
        )]
    );
    let all = store.presence_changes(realm.id, UpdateId(0)).expect("all");
    let users: Vec<UserId> = all.users.iter().map(|u| u.user_id).collect();
    assert_eq!(users, vec![ann.id, bob.id]);
    assert!(
        store
            .presence_changes(realm.id, UpdateId(4))
            .expect("none")
            .users
            .is_empty()
    );
    let elsewhere = store
        .presence_changes(other.id, UpdateId(0))
        .expect("other");
    assert_eq!(
        elsewhere.users,
        vec![changed(eve.id, vec![record(eve.id, "web", 1)])]
    );
    assert_eq!(
        store
            .presence_changes(RealmId(999), UpdateId(0))
            .expect("unknown")
            .last_update_id,
        UpdateId(0)
    );

    // Inside a batch, the batch's own view.
    store.begin_batch(&[realm.id]).expect("begin");
    assert_eq!(
        store
            .presence_changes(realm.id, UpdateId(3))
            .expect("inside")
            .last_update_id,
        UpdateId(4)
    );
    assert!(
        !store
            .has_device(ann.id, DeviceKind::Fcm, "t")
            .expect("device")
    );
    store.commit_batch(&[], &[]).expect("commit");
}

/// Two stores on one database see each other's commits at once.
pub(super) fn a_second_store_sees_what_the_first_commits(place: &Place) {
    let mut first = place.open();
    let mut second = place.open();
    let realm = acme(&mut *first);
    let ann = user(&mut *first, "acme", "ann@x", 1);
    assert_eq!(second.list_users("acme").expect("list"), vec![ann.clone()]);
    assert_eq!(
        second.directory_version().expect("version"),
        first.directory_version().expect("version")
    );

    commit(
        &mut *first,
        &[realm.id],
        &[put(ann.id, "web", 7)],
        &[(realm.id, 7)],
    );
    assert_eq!(
        second.sequences().expect("sequences"),
        vec![sequence(realm.id, 7)]
    );
    assert_eq!(second.sequences_total().expect("total"), 7);
    let changes = second
        .presence_changes(realm.id, UpdateId(0))
        .expect("presence");
    assert_eq!(
        changes.users,
        vec![changed(ann.id, vec![record(ann.id, "web", 7)])]
    );
    assert_eq!(
        second.begin_batch(&[realm.id]).expect("begin"),
        vec![UpdateId(7)]
    );
    second
        .commit_batch(&[put(ann.id, "web", 8)], &[sequence(realm.id, 8)])
        .expect("commit");
    assert_eq!(
        first.begin_batch(&[realm.id]).expect("begin"),
        vec![UpdateId(8)]
    );
    first.abort_batch();
    // Another realm's ids add to the total.
    let other = first.create_realm("other", "Other", 100).expect("realm");
    assert_eq!(first.sequences_total().expect("total"), 8);
    commit(&mut *first, &[other.id], &[], &[(other.id, 5)]);
    assert_eq!(second.sequences_total().expect("total"), 13);
}

pub(super) fn a_relaxed_store_commits_what_another_reads(place: &Place) {
    let mut relaxed = place.open();
    relaxed
        .set_durability(Durability::Relaxed)
        .expect("relaxed durability");
    let mut full = place.open();
    let realm = acme(&mut *relaxed);
    let ann = user(&mut *relaxed, "acme", "ann@x", 1);
    commit(
        &mut *relaxed,
        &[realm.id],
        &[put(ann.id, "web", 3)],
        &[(realm.id, 3)],
    );
    let changes = full
        .presence_changes(realm.id, UpdateId(0))
        .expect("presence");
    assert_eq!(
        changes.users,
        vec![changed(ann.id, vec![record(ann.id, "web", 3)])]
    );
    // Back to full: batches still commit.
    relaxed.set_durability(Durability::Full).expect("full");
    commit(
        &mut *relaxed,
        &[realm.id],
        &[put(ann.id, "web", 4)],
        &[(realm.id, 4)],
    );
    assert_eq!(
        full.sequences().expect("sequences"),
        vec![sequence(realm.id, 4)]
    );
}
