//! Custom statuses: written by batches, seen by other stores through the
//! directory version, expired on condition, and gone with their user.

use super::*;
use crate::store::StatusRow;

fn status(user_id: UserId, text: &str, expires_at: Option<i64>) -> StatusRow {
    StatusRow {
        user_id,
        status_text: text.to_owned(),
        emoji_name: "calendar".to_owned(),
        emoji_code: "1f4c5".to_owned(),
        reaction_type: "unicode_emoji".to_owned(),
        expires_at,
    }
}

/// A status put in a batch is a directory change that another store sees,
/// and is loaded with its user's realm.
pub(super) fn a_status_is_written_and_seen_elsewhere(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let ann = user(&mut *store, "acme", "ann@x", 1);
    let mut other = place.open();
    let before = other.directory_version().expect("version");
    let row = status(ann.id, "In a meeting", Some(5_000));
    commit(
        &mut *store,
        &[realm.id],
        &[Mutation::PutStatus(row.clone())],
        &[],
    );
    assert!(other.directory_version().expect("version") > before);
    let changes = other.directory_changes(before).expect("changes");
    assert_eq!(changes.statuses, vec![row.clone()]);
    assert!(
        changes.users.is_empty(),
        "a status is not a change of the user"
    );
    let loaded: Vec<(StatusRow, RealmId)> = super::super::testing::load_all(&mut *other)
        .1
        .into_iter()
        .filter_map(|item| match item {
            crate::store::Loaded::Status { row, realm_id } => Some((row, realm_id)),
            _ => None,
        })
        .collect();
    assert_eq!(loaded, vec![(row, realm.id)]);
}

/// An expiry clears a status only while the status still has that expiry:
/// carried out twice, or after the status changed, it changes nothing.
pub(super) fn an_expiry_clears_once_and_only_its_own_status(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let ann = user(&mut *store, "acme", "ann@x", 1);
    let bob = user(&mut *store, "acme", "bob@x", 2);
    let expire = |user_id, expires_at| Mutation::ExpireStatus {
        user_id,
        expires_at,
    };
    commit(
        &mut *store,
        &[realm.id],
        &[
            Mutation::PutStatus(status(ann.id, "Lunch", Some(100))),
            Mutation::PutStatus(status(bob.id, "Away", Some(200))),
        ],
        &[],
    );
    let before = store.directory_version().expect("version");
    commit(
        &mut *store,
        &[realm.id],
        &[expire(ann.id, 100), expire(bob.id, 150)],
        &[],
    );
    let changes = store.directory_changes(before).expect("changes");
    assert_eq!(changes.statuses, vec![StatusRow::empty(ann.id)]);
    let after = store.directory_version().expect("version");
    commit(&mut *store, &[realm.id], &[expire(ann.id, 100)], &[]);
    let again = store.directory_changes(after).expect("changes");
    assert!(
        again.statuses.is_empty(),
        "the second expiry found nothing to clear"
    );
    let dump = store.export().expect("export");
    assert_eq!(
        dump.statuses,
        vec![StatusRow::empty(ann.id), status(bob.id, "Away", Some(200))]
    );
}

/// Deleting a user deletes the user's status.
pub(super) fn a_deleted_users_status_is_gone(place: &Place) {
    let mut store = place.open();
    let realm = acme(&mut *store);
    let ann = user(&mut *store, "acme", "ann@x", 1);
    commit(
        &mut *store,
        &[realm.id],
        &[Mutation::PutStatus(status(ann.id, "Out", None))],
        &[],
    );
    store.delete_user("acme", "ann@x").expect("delete");
    assert!(store.export().expect("export").statuses.is_empty());
}
