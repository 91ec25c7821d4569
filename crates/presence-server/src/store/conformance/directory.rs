//! What every store does with the directory: realms, users, a user's
//! deletion, the directory version and its changes, embed keys, and the
//! serving nodes' reports.

use super::{Place, acme, add_device, commit, listed, new_key, user};
use crate::ids::{EmbedKeyId, UpdateId};
use crate::store::testing::{hash, new_user, put, sequence};
use crate::store::{
    DeletedUser, DeviceKind, EmbedKeyRow, EmbedKeyUse, Mutation, NodeRow, RealmRow, StoreError,
    UserChange,
};

/// A realm's name is unique; its name and flags change in place, saying
/// whether anything changed.
pub(super) fn realms_are_created_once_and_changed_in_place(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    assert_eq!(
        realm,
        RealmRow {
            id: realm.id,
            string_id: "acme".to_owned(),
            name: "Acme".to_owned(),
            presence_disabled: false,
            deactivated: false,
            date_created: 100,
        }
    );
    assert!(matches!(
        store.create_realm("acme", "Again", 0),
        Err(StoreError::RealmExists(name)) if name == "acme"
    ));
    let beta = store.create_realm("beta", "Beta", 0).expect("beta");
    assert!(beta.id > realm.id);

    store.rename_realm("acme", "Acme Corp").expect("rename");
    assert!(store.set_realm_deactivated("acme", true).expect("flag"));
    assert!(!store.set_realm_deactivated("acme", true).expect("same"));
    assert!(
        store
            .set_realm_presence_disabled("acme", true)
            .expect("flag")
    );
    assert!(
        !store
            .set_realm_presence_disabled("acme", true)
            .expect("same")
    );
    for refused in [
        store.rename_realm("nope", "N"),
        store.set_realm_deactivated("nope", true).map(drop),
        store.set_realm_presence_disabled("nope", true).map(drop),
    ] {
        assert!(matches!(refused, Err(StoreError::UnknownRealm(name)) if name == "nope"));
    }

    let realms = store.list_realms().expect("realms");
    let rows: Vec<&RealmRow> = realms.iter().map(|s| &s.realm).collect();
    let changed = RealmRow {
        name: "Acme Corp".to_owned(),
        presence_disabled: true,
        deactivated: true,
        ..realm.clone()
    };
    assert_eq!(rows, vec![&changed, &beta]);
    assert!(realms.iter().all(|s| s.users == 0 && s.active_users == 0));
    assert_eq!(
        store.sequences().expect("sequences"),
        vec![sequence(realm.id, 0), sequence(beta.id, 0)]
    );
}

/// Users are found by email whatever its case, and refused where the
/// realm or the email forbids.
pub(super) fn users_are_created_found_and_changed(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let ann = user(&mut *store, "acme", " Ann@Example.com ", 1);
    assert_eq!(
        ann,
        new_user("acme", " Ann@Example.com ", 1).created_row(ann.id, realm.id)
    );
    assert_eq!(ann.email, "Ann@Example.com");
    assert!(matches!(
        store.create_user(&new_user("acme", "ANN@example.com", 2)),
        Err(StoreError::DuplicateEmail { .. })
    ));
    assert!(matches!(
        store.create_user(&new_user("nope", "x@example.com", 3)),
        Err(StoreError::UnknownRealm(_))
    ));
    let bob = user(&mut *store, "acme", "bob@example.com", 4);
    assert!(bob.id > ann.id);
    assert_eq!(
        store.list_users("acme").expect("list"),
        vec![ann.clone(), bob.clone()]
    );

    assert!(
        store
            .set_user_active("acme", "ann@example.com", false)
            .expect("deactivate")
    );
    assert!(
        !store
            .set_user_active("acme", "ANN@example.com", false)
            .expect("same")
    );
    assert!(matches!(
        store.set_user_active("acme", "nobody@example.com", false),
        Err(StoreError::UnknownUser { .. })
    ));
    let summary = &store.list_realms().expect("realms")[0];
    assert_eq!((summary.users, summary.active_users), (2, 1));

    let change = UserChange {
        email: Some(" Robert@Example.com "),
        full_name: Some("Robert"),
    };
    let robert = store
        .update_user("acme", "bob@example.com", &change)
        .expect("update");
    assert_eq!(
        (robert.email.as_str(), robert.full_name.as_str()),
        ("Robert@Example.com", "Robert")
    );
    let taken = UserChange {
        email: Some("robert@example.com"),
        full_name: None,
    };
    assert!(matches!(
        store.update_user("acme", "ann@example.com", &taken),
        Err(StoreError::DuplicateEmail { .. })
    ));
    store
        .set_api_key_hash("acme", "robert@example.com", hash(9))
        .expect("new key");
    assert_eq!(listed(&mut *store, "acme", bob.id).api_key_hash, hash(9));
    assert_eq!(listed(&mut *store, "acme", ann.id).api_key_hash, hash(1));

    store.set_realm_deactivated("acme", true).expect("flag");
    assert!(matches!(
        store.create_user(&new_user("acme", "cy@example.com", 5)),
        Err(StoreError::RealmDeactivated(name)) if name == "acme"
    ));
}

/// A deleted user goes with its presence and devices, and servers hear of
/// it through the directory.
pub(super) fn a_deleted_user_is_gone_and_leaves_a_trace(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let ann = user(&mut *store, "acme", "ann@x", 1);
    let bob = user(&mut *store, "acme", "bob@x", 2);
    commit(
        &mut *store,
        &[realm.id],
        &[put(ann.id, "web", 1), add_device(ann.id, "t")],
        &[(realm.id, 1)],
    );
    let before = store.directory_version().expect("version");

    let deleted = store.delete_user("acme", "ANN@x").expect("delete");
    assert_eq!((deleted.id, deleted.push_devices), (ann.id, 1));
    assert_eq!(store.list_users("acme").expect("list"), vec![bob]);
    assert!(
        !store
            .has_device(ann.id, DeviceKind::Fcm, "t")
            .expect("device")
    );
    let changes = store
        .presence_changes(realm.id, UpdateId(0))
        .expect("presence");
    assert!(changes.users.is_empty(), "{:?}", changes.users);

    let directory = store.directory_changes(before).expect("changes");
    assert_eq!(
        directory.deleted_users,
        vec![DeletedUser {
            realm_id: realm.id,
            user_id: ann.id,
        }]
    );
    assert!(directory.version > before);
    assert!(matches!(
        store.delete_user("acme", "ann@x"),
        Err(StoreError::UnknownUser { .. })
    ));
    let dump = store.export().expect("export");
    assert_eq!(dump.users.len(), 1);
    assert!(dump.presence.is_empty() && dump.devices.is_empty());
}

/// Each admin write takes one new version, and a reader gets exactly what
/// changed after the version it has.
pub(super) fn directory_changes_follow_the_version(place: &Place) {
    let mut store = place.open();
    let start = store.directory_version().expect("version");
    let realm = acme(&mut *store);
    let after_realm = store.directory_version().expect("version");
    assert_eq!(after_realm, start + 1);
    let changes = store.directory_changes(start).expect("changes");
    assert_eq!(changes.realms, vec![realm.clone()]);
    assert_eq!(changes.version, after_realm);

    let ann = user(&mut *store, "acme", "ann@x", 1);
    let changes = store.directory_changes(after_realm).expect("changes");
    assert!(changes.realms.is_empty());
    assert_eq!(changes.users, vec![ann.clone()]);
    assert_eq!(changes.version, after_realm + 1);
    store
        .set_api_key_hash("acme", "ann@x", hash(9))
        .expect("new key");
    store
        .set_realm_presence_disabled("acme", true)
        .expect("flag");
    store
        .set_realm_presence_disabled("acme", false)
        .expect("flag");
    let before = store.directory_version().expect("version");
    assert_eq!(
        before,
        after_realm + 4,
        "each admin write takes one version"
    );

    // Presence is no directory change; settings and devices are.
    commit(
        &mut *store,
        &[realm.id],
        &[put(ann.id, "web", 1)],
        &[(realm.id, 1)],
    );
    assert_eq!(store.directory_version().expect("version"), before);
    let settings = Mutation::SetUserSettings {
        user_id: ann.id,
        presence_enabled: false,
        enable_offline_push_notifications: true,
    };
    commit(
        &mut *store,
        &[realm.id],
        &[settings, add_device(ann.id, "t")],
        &[],
    );
    let changes = store.directory_changes(before).expect("changes");
    assert!(changes.realms.is_empty());
    let ann_now = &changes.users[..];
    assert_eq!(ann_now.len(), 1);
    assert_eq!(ann_now[0].api_key_hash, hash(9));
    assert_eq!(
        (ann_now[0].presence_enabled, ann_now[0].push_devices),
        (false, 1)
    );
    assert!(changes.version > before);

    let origins = ["https://intranet.example.com".to_owned()];
    let key = store
        .create_embed_key(&new_key("acme", "intranet", 50, &origins))
        .expect("key");
    let changes = store.directory_changes(changes.version).expect("changes");
    assert_eq!(changes.embed_keys, vec![key]);

    let now = store.directory_version().expect("version");
    let none = store.directory_changes(now).expect("none");
    assert_eq!(none.version, now);
    assert!(none.realms.is_empty() && none.users.is_empty());
    assert!(none.embed_keys.is_empty() && none.deleted_users.is_empty());
}

/// Embed keys: one live key of a name, uses that only move forward, and
/// revocation.
pub(super) fn embed_keys_are_created_used_and_revoked(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let origins = [
        "https://a.example.com".to_owned(),
        "https://b.example.com:8443".to_owned(),
    ];
    let key = store
        .create_embed_key(&new_key("acme", "intranet", 50, &origins))
        .expect("key");
    assert_eq!(
        key,
        EmbedKeyRow {
            id: key.id,
            realm_id: realm.id,
            name: "intranet".to_owned(),
            key_hash: hash(50),
            origins: origins.to_vec(),
            created_at: 1_000,
            last_used_at: None,
            revoked_at: None,
        }
    );
    assert!(matches!(
        store.create_embed_key(&new_key("acme", "intranet", 51, &origins)),
        Err(StoreError::DuplicateEmbedKey { .. })
    ));
    assert!(matches!(
        store.create_embed_key(&new_key("nope", "intranet", 52, &origins)),
        Err(StoreError::UnknownRealm(_))
    ));
    assert_eq!(
        store.list_embed_keys("acme").expect("list"),
        vec![key.clone()]
    );

    // Uses keep the latest time, and are no directory change.
    let version = store.directory_version().expect("version");
    store
        .record_embed_key_use(&[EmbedKeyUse {
            key: key.id,
            at: 2_000,
        }])
        .expect("use");
    store
        .record_embed_key_use(&[EmbedKeyUse {
            key: key.id,
            at: 1_500,
        }])
        .expect("earlier");
    let listed = store.list_embed_keys("acme").expect("list");
    assert_eq!(listed[0].last_used_at, Some(2_000));
    assert_eq!(store.directory_version().expect("version"), version);

    let revoked = store
        .revoke_embed_key("acme", "intranet", 3_000)
        .expect("revoke");
    assert_eq!(
        (revoked.revoked_at, revoked.last_used_at),
        (Some(3_000), Some(2_000))
    );
    assert!(matches!(
        store.revoke_embed_key("acme", "intranet", 3_001),
        Err(StoreError::UnknownEmbedKey { .. })
    ));
    // The name is free again once its key is revoked.
    let again = store
        .create_embed_key(&new_key("acme", "intranet", 53, &origins))
        .expect("again");
    let ids: Vec<EmbedKeyId> = store
        .list_embed_keys("acme")
        .expect("list")
        .iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, vec![key.id, again.id]);

    store.set_realm_deactivated("acme", true).expect("flag");
    assert!(matches!(
        store.create_embed_key(&new_key("acme", "other", 54, &origins)),
        Err(StoreError::RealmDeactivated(_))
    ));
}

/// Nodes' reports are refreshed, and forgotten once silent or removed.
pub(super) fn nodes_report_and_are_forgotten(place: &Place) {
    let mut store = place.open();
    let node = |id: &str, started_at: i64, seen_at: i64, directory_version: i64| NodeRow {
        id: id.to_owned(),
        started_at,
        seen_at,
        directory_version,
    };
    store.report_node(&node("a", 10, 10, 1), 0).expect("report");
    assert_eq!(store.nodes().expect("nodes"), vec![node("a", 10, 10, 1)]);
    // A later report refreshes what it saw, not when it started.
    store.report_node(&node("a", 99, 20, 2), 0).expect("report");
    store.report_node(&node("b", 30, 30, 2), 0).expect("report");
    assert_eq!(
        store.nodes().expect("nodes"),
        vec![node("a", 10, 20, 2), node("b", 30, 30, 2)]
    );
    store
        .report_node(&node("b", 30, 40, 3), 25)
        .expect("report");
    assert_eq!(store.nodes().expect("nodes"), vec![node("b", 30, 40, 3)]);
    store.remove_node("b").expect("remove");
    store.remove_node("never").expect("remove an unknown node");
    assert!(store.nodes().expect("nodes").is_empty());
}
