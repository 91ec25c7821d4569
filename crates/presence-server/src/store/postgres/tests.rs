//! Tests of the PostgreSQL store as a whole: admin writes, a batch and a
//! load reading them back, and catch-up reads of presence.

use super::PgStore;
use crate::store::testing::{hash, load_all, new_user, put, scratch};
use crate::store::{DeviceKind, Loaded, Mutation, RealmRow, Store, StoreError, UserRow};

#[test]
fn admin_writes_and_a_batch_load_back() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let mut store = PgStore::open(&url).expect("open");
    let (realm, ann, bob) = admin_writes_take_a_version_each(&mut store);
    let before = store.directory_version().expect("version");
    commit_one_of_each_mutation(&mut store, &realm, &ann, &bob);
    load_back(&mut store, before, &realm, &ann, &bob);
    remove_the_device_and_abort(&mut store, &realm, &bob);
}

/// Creates the realm `acme` with Ann and Bob, checking the refusals on the
/// way; six versions taken.
fn admin_writes_take_a_version_each(store: &mut PgStore) -> (RealmRow, UserRow, UserRow) {
    assert_eq!(store.directory_version().expect("version"), 0);
    let realm = store
        .create_realm("acme", "Acme", 1_700_000_000)
        .expect("realm");
    assert!(matches!(
        store.create_realm("acme", "Again", 0),
        Err(StoreError::RealmExists(name)) if name == "acme"
    ));
    let ann = store
        .create_user(&new_user("acme", " Ann@Example.com ", 1))
        .expect("ann");
    assert_eq!(ann.email, "Ann@Example.com");
    let bob = store
        .create_user(&new_user("acme", "bob@example.com", 2))
        .expect("bob");
    assert!(bob.id > ann.id);
    assert!(matches!(
        store.create_user(&new_user("acme", "ANN@example.com", 3)),
        Err(StoreError::DuplicateEmail { .. })
    ));
    assert!(matches!(
        store.create_user(&new_user("nope", "x@example.com", 4)),
        Err(StoreError::UnknownRealm(_))
    ));
    assert!(matches!(
        store.set_user_active("acme", "nobody@example.com", false),
        Err(StoreError::UnknownUser { .. })
    ));
    assert!(matches!(
        store.set_realm_deactivated("nope", true),
        Err(StoreError::UnknownRealm(_))
    ));
    store
        .set_api_key_hash("acme", "ann@example.com", hash(9))
        .expect("key");
    store
        .set_realm_presence_disabled("acme", true)
        .expect("flag");
    store
        .set_realm_presence_disabled("acme", false)
        .expect("flag");
    let before = store.directory_version().expect("version");
    assert_eq!(before, 6, "each admin write takes one version");

    (realm, ann, bob)
}

/// Commits a batch with one mutation of each kind but a device's removal.
fn commit_one_of_each_mutation(
    store: &mut PgStore,
    realm: &RealmRow,
    ann: &UserRow,
    bob: &UserRow,
) {
    assert_eq!(
        store.begin_batch(&[realm.id, 999]).expect("begin"),
        vec![0, 0]
    );
    store
        .commit_batch(
            &[
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
                Mutation::AddDevice {
                    user_id: bob.id,
                    kind: DeviceKind::Apns,
                    token: "tok".to_owned(),
                    appid: Some("app".to_owned()),
                },
            ],
            &[(realm.id, 3)],
        )
        .expect("commit");
    assert!(matches!(
        store.commit_batch(&[], &[]),
        Err(StoreError::NoBatch)
    ));
    assert!(
        store
            .has_device(bob.id, DeviceKind::Apns, "tok")
            .expect("device")
    );
    assert!(
        !store
            .has_device(bob.id, DeviceKind::Fcm, "tok")
            .expect("device")
    );
    assert_eq!(store.sequences().expect("sequences"), vec![(realm.id, 3)]);
}

/// The batch seen as a directory change and in a load.
fn load_back(store: &mut PgStore, before: i64, realm: &RealmRow, ann: &UserRow, bob: &UserRow) {
    let changes = store.directory_changes(before).expect("changes");
    assert_eq!(changes.version, before + 1);
    assert!(changes.realms.is_empty());
    assert_eq!(changes.users.len(), 1);
    assert_eq!(changes.users[0].id, bob.id);
    assert_eq!(changes.users[0].push_devices, 1);
    assert!(!changes.users[0].presence_enabled);

    let (version, items) = load_all(store);
    assert_eq!(version, before + 1);
    let mut realms = Vec::new();
    let mut users = Vec::new();
    let mut presence = Vec::new();
    for item in items {
        match item {
            Loaded::Realm(row, count, last) => realms.push((row, count, last)),
            Loaded::User(row) => users.push(row),
            Loaded::Presence(row, realm_id) => presence.push((row, realm_id)),
            Loaded::EmbedKey(row) => panic!("no embed key was made: {row:?}"),
        }
    }
    assert_eq!(realms, vec![(realm.clone(), 2, 3)]);
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].api_key_hash, hash(9));
    assert_eq!(users[1].push_devices, 1);
    let keys: Vec<_> = presence
        .iter()
        .map(|(p, r)| (p.user_id, p.client.as_str(), p.update_id, *r))
        .collect();
    assert_eq!(
        keys,
        vec![(ann.id, "web", 1, realm.id), (bob.id, "web", 3, realm.id)]
    );
}

/// A device's removal, then a batch aborted.
fn remove_the_device_and_abort(store: &mut PgStore, realm: &RealmRow, bob: &UserRow) {
    // Removing the device and aborting a batch.
    store.begin_batch(&[realm.id]).expect("begin");
    store
        .commit_batch(
            &[Mutation::RemoveDevice {
                user_id: bob.id,
                kind: DeviceKind::Apns,
                token: "tok".to_owned(),
            }],
            &[],
        )
        .expect("commit");
    assert!(
        !store
            .has_device(bob.id, DeviceKind::Apns, "tok")
            .expect("device")
    );
    assert_eq!(store.begin_batch(&[realm.id]).expect("begin"), vec![3]);
    store.abort_batch();
    assert_eq!(store.list_users("acme").expect("list").len(), 2);
}

#[test]
fn presence_changes_give_whole_users_from_one_snapshot() {
    let Some((_schema, url)) = scratch() else {
        return;
    };
    let mut store = PgStore::open(&url).expect("open");
    let realm = store.create_realm("acme", "Acme", 0).expect("realm");
    let other = store.create_realm("other", "Other", 0).expect("realm");
    let ann = store
        .create_user(&new_user("acme", "ann@x", 1))
        .expect("ann");
    let bob = store
        .create_user(&new_user("acme", "bob@x", 2))
        .expect("bob");
    let eve = store
        .create_user(&new_user("other", "eve@x", 3))
        .expect("eve");

    store.begin_batch(&[realm.id, other.id]).expect("begin");
    store
        .commit_batch(
            &[
                put(ann.id, "web", 1),
                put(ann.id, "mobile", 2),
                put(bob.id, "web", 3),
                put(eve.id, "web", 1),
            ],
            &[(realm.id, 3), (other.id, 1)],
        )
        .expect("commit");
    store.begin_batch(&[realm.id]).expect("begin");
    store
        .commit_batch(&[put(ann.id, "web", 4)], &[(realm.id, 4)])
        .expect("commit");

    let changes = store.presence_changes(realm.id, 3).expect("changes");
    assert_eq!(changes.last_update_id, 4);
    assert_eq!(changes.users.len(), 1);
    let (user, records) = &changes.users[0];
    assert_eq!(*user, ann.id);
    let clients: Vec<_> = records
        .iter()
        .map(|r| (r.client.as_str(), r.update_id))
        .collect();
    assert_eq!(clients, vec![("mobile", 2), ("web", 4)]);

    let all = store.presence_changes(realm.id, 0).expect("changes");
    assert_eq!(
        all.users.iter().map(|u| u.0).collect::<Vec<_>>(),
        vec![ann.id, bob.id]
    );
    assert!(
        store
            .presence_changes(realm.id, 4)
            .expect("none")
            .users
            .is_empty()
    );
    assert_eq!(
        store
            .presence_changes(999, 0)
            .expect("unknown")
            .last_update_id,
        0
    );

    // Inside a batch the batch's own view is read.
    store.begin_batch(&[realm.id]).expect("begin");
    let inside = store.presence_changes(realm.id, 3).expect("inside");
    assert_eq!(inside.last_update_id, 4);
    assert!(store.has_device(ann.id, DeviceKind::Fcm, "t").is_ok());
    store.commit_batch(&[], &[]).expect("commit");
}
