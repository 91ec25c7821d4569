//! What every store hands over whole: nothing when new, everything in
//! order to a load, and an export that imports elsewhere with its ids (or
//! not at all).

use super::{Place, acme, add_device, commit, new_key, user};
use crate::ids::{RealmId, UpdateId};
use crate::store::testing::{hash, imported_realm, load_all, put, record};
use crate::store::{Dump, EmbedKeyUse, Loaded, Mutation, Store, StoreError, UserRow};

/// A new store holds nothing and is at version 0.
pub(super) fn a_new_store_is_empty(place: &Place) {
    let mut store = place.open();
    assert_eq!(store.directory_version().expect("version"), 0);
    assert!(store.sequences().expect("sequences").is_empty());
    assert!(store.list_realms().expect("realms").is_empty());
    assert!(store.nodes().expect("nodes").is_empty());
    assert_eq!(store.export().expect("export"), Dump::default());
    let (version, items) = load_all(&mut *store);
    assert_eq!(version, 0);
    assert!(items.is_empty(), "{items:?}");
    assert_eq!(
        store.begin_batch(&[RealmId(1), RealmId(2)]).expect("begin"),
        vec![UpdateId(0), UpdateId(0)]
    );
    store.abort_batch();
}

/// A load gives realms, users, presence grouped by user, then embed keys.
pub(super) fn a_load_hands_over_everything_in_order(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let beta = store.create_realm("beta", "Beta", 0).expect("beta");
    let ann = user(&mut *store, "acme", "ann@x", 1);
    let bob = user(&mut *store, "acme", "bob@x", 2);
    let cy = user(&mut *store, "beta", "cy@x", 3);
    commit(
        &mut *store,
        &[realm.id, beta.id],
        &[
            put(bob.id, "web", 3),
            put(ann.id, "web", 1),
            put(ann.id, "mobile", 2),
            put(cy.id, "web", 1),
            add_device(bob.id, "t"),
        ],
        &[(realm.id, 3), (beta.id, 1)],
    );
    let origins = ["https://a.example.com".to_owned()];
    let key = store
        .create_embed_key(&new_key("beta", "page", 50, &origins))
        .expect("key");

    let (version, items) = load_all(&mut *store);
    assert_eq!(version, store.directory_version().expect("version"));
    let (mut realms, mut users, mut presence, mut keys) = (vec![], vec![], vec![], vec![]);
    let mut kinds = String::new();
    for item in items {
        match item {
            Loaded::Realm {
                realm,
                users,
                last_update_id,
            } => {
                kinds.push('r');
                realms.push((realm, users, last_update_id.0));
            }
            Loaded::User(row) => {
                kinds.push('u');
                users.push(row);
            }
            Loaded::Presence { record, realm_id } => {
                kinds.push('p');
                presence.push((record, realm_id));
            }
            Loaded::EmbedKey(row) => {
                kinds.push('k');
                keys.push(row);
            }
            Loaded::Status { .. } => kinds.push('s'),
        }
    }
    assert_eq!(kinds, "rruuuppppk");
    assert_eq!(realms, vec![(realm.clone(), 2, 3), (beta.clone(), 1, 1)]);
    let bob = UserRow {
        push_devices: 1,
        ..bob
    };
    assert_eq!(users, vec![ann.clone(), bob.clone(), cy.clone()]);
    assert_eq!(
        presence,
        vec![
            (record(ann.id, "mobile", 2), realm.id),
            (record(ann.id, "web", 1), realm.id),
            (record(bob.id, "web", 3), realm.id),
            (record(cy.id, "web", 1), beta.id),
        ]
    );
    assert_eq!(keys, vec![key]);
}

/// Fills a store with some of everything: two realms (one with its flags
/// set), users with their settings changed, presence, devices, and embed
/// keys (one used, one revoked).
fn fill(store: &mut dyn Store) {
    let realm = acme(store);
    let beta = store.create_realm("beta", "Beta", 5).expect("beta");
    let ann = user(store, "acme", "ann@x", 1);
    let bob = user(store, "acme", "bob@x", 2);
    let cy = user(store, "beta", "cy@x", 3);
    let settings = Mutation::SetUserSettings {
        user_id: bob.id,
        presence_enabled: false,
        enable_offline_push_notifications: false,
    };
    commit(
        store,
        &[realm.id, beta.id],
        &[
            put(ann.id, "web", 1),
            put(bob.id, "mobile", 2),
            put(cy.id, "web", 1),
            add_device(ann.id, "t1"),
            settings,
            Mutation::PutStatus(crate::store::StatusRow {
                expires_at: Some(9_000),
                ..crate::store::StatusRow::empty(ann.id)
            }),
        ],
        &[(realm.id, 2), (beta.id, 1)],
    );
    let origins = ["https://a.example.com".to_owned()];
    let used = store
        .create_embed_key(&new_key("acme", "used", 50, &origins))
        .expect("key");
    store
        .record_embed_key_use(&[EmbedKeyUse {
            key: used.id,
            at: 1_234,
        }])
        .expect("use");
    store
        .create_embed_key(&new_key("acme", "revoked", 51, &origins))
        .expect("key");
    store
        .revoke_embed_key("acme", "revoked", 2_000)
        .expect("revoke");
    store.set_user_active("beta", "cy@x", false).expect("flag");
    store
        .set_realm_presence_disabled("beta", true)
        .expect("flag");
}

/// An export imports into an empty store unchanged, and later rows take
/// ids past the imported ones.
pub(super) fn an_export_imports_elsewhere_with_its_ids(place: &Place) {
    let mut store = place.open();
    fill(&mut *store);
    let dump = store.export().expect("export");
    assert_eq!(
        (dump.realms.len(), dump.users.len(), dump.presence.len()),
        (2, 3, 3)
    );
    assert_eq!((dump.devices.len(), dump.embed_keys.len()), (1, 2));
    assert_eq!(dump.statuses.len(), 1);

    let elsewhere = place.another();
    let mut copy = elsewhere.open();
    copy.import(&dump).expect("import");
    assert_eq!(copy.export().expect("export"), dump);
    assert_eq!(
        copy.sequences().expect("sequences"),
        store.sequences().expect("sequences")
    );
    // What an import adds is a directory change, for running servers.
    let changes = copy.directory_changes(0).expect("changes");
    assert_eq!(changes.realms, dump.realms);
    assert_eq!(changes.users, dump.users);
    assert_eq!(changes.embed_keys, dump.embed_keys);
    assert_eq!(changes.statuses, dump.statuses);

    assert!(matches!(
        copy.import(&dump),
        Err(StoreError::ImportConflict(_))
    ));
    assert_eq!(copy.export().expect("export"), dump);

    // New rows take ids past the imported ones.
    let max = |ids: &mut dyn Iterator<Item = i64>| ids.max().unwrap_or(0);
    let gamma = copy.create_realm("gamma", "Gamma", 0).expect("realm");
    assert!(gamma.id.0 > max(&mut dump.realms.iter().map(|r| r.id.0)));
    let dan = user(&mut *copy, "gamma", "dan@x", 9);
    assert!(dan.id.0 > max(&mut dump.users.iter().map(|u| u.id.0)));
    let origins = ["https://a.example.com".to_owned()];
    let key = copy
        .create_embed_key(&new_key("gamma", "new", 59, &origins))
        .expect("key");
    assert!(key.id.0 > max(&mut dump.embed_keys.iter().map(|k| k.id.0)));
}

/// An import that conflicts with what the store holds adds none of itself.
pub(super) fn an_import_that_conflicts_adds_nothing(place: &Place) {
    let mut store = place.open();
    acme(&mut *store);
    user(&mut *store, "acme", "ann@x", 1);
    let before = store.export().expect("export");

    // The realm's name is taken.
    match store.import(&imported_realm()) {
        Err(StoreError::ImportConflict(message)) => {
            assert!(message.contains("acme"), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A user of a realm the dump lacks: the dump's new realm is not kept.
    let mut orphan = imported_realm();
    orphan.realms[0].string_id = "other".to_owned();
    orphan.users[1].realm_id = RealmId(77);
    // A user whose key another user has already.
    let mut same_key = imported_realm();
    same_key.realms[0].string_id = "other".to_owned();
    same_key.users[0].api_key_hash = hash(1);
    for dump in [orphan, same_key] {
        assert!(matches!(
            store.import(&dump),
            Err(StoreError::ImportConflict(_))
        ));
    }
    assert_eq!(store.export().expect("export"), before);
}
