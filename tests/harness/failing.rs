//! A real store that fails on demand: while its [`Outage`] is on, every
//! call the running server makes to it fails as an unreachable database
//! would, and once the outage ends the calls reach the real store again.
//! The admin connections of a test are not wrapped, so realms and users
//! can still be made and read while the server's store is out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use presence_server::ids::{RealmId, UpdateId, UserId};
use presence_server::store::{
    DeviceKind, DirectoryChanges, Dump, Durability, EmbedKeyRow, EmbedKeyUse, Loaded, Mutation,
    NewEmbedKey, NewUser, NodeRow, Notice, PresenceChanges, RealmRow, RealmSummary, Sequence,
    Store, StoreError, UserChange, UserRow,
};

/// Whether the store is out, shared between a test and its [`FailingStore`].
#[derive(Debug, Default)]
pub struct Outage(AtomicBool);

impl Outage {
    /// Turns the outage on or off.
    pub fn set(&self, out: bool) {
        self.0.store(out, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.0.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(
                "an outage the test made".to_owned(),
            ))
        } else {
            Ok(())
        }
    }
}

/// A real store that fails every call while its outage is on.
pub struct FailingStore {
    inner: Box<dyn Store>,
    outage: Arc<Outage>,
}

impl FailingStore {
    /// Wraps `inner`, failing while `outage` is on.
    pub fn new(inner: Box<dyn Store>, outage: Arc<Outage>) -> Self {
        FailingStore { inner, outage }
    }
}

/// Each call: fail if the outage is on, else hand it on.
macro_rules! guarded {
    ($( fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $out:ty; )*) => {
        $(
            fn $name(&mut self $(, $arg: $ty)*) -> Result<$out, StoreError> {
                self.outage.check()?;
                self.inner.$name($($arg),*)
            }
        )*
    };
}

impl Store for FailingStore {
    guarded! {
        fn load(&mut self, sink: &mut dyn FnMut(Loaded)) -> i64;
        fn begin_batch(&mut self, realms: &[RealmId]) -> Vec<UpdateId>;
        fn commit_batch(&mut self, batch: &[Mutation], sequences: &[Sequence]) -> ();
        fn sequences(&mut self) -> Vec<Sequence>;
        fn sequences_total(&mut self) -> i64;
        fn presence_changes(&mut self, realm_id: RealmId, since: UpdateId) -> PresenceChanges;
        fn create_embed_key(&mut self, key: &NewEmbedKey<'_>) -> EmbedKeyRow;
        fn list_embed_keys(&mut self, realm: &str) -> Vec<EmbedKeyRow>;
        fn revoke_embed_key(&mut self, realm: &str, name: &str, now: i64) -> EmbedKeyRow;
        fn record_embed_key_use(&mut self, uses: &[EmbedKeyUse]) -> ();
        fn report_node(&mut self, node: &NodeRow, forget_before: i64) -> ();
        fn remove_node(&mut self, id: &str) -> ();
        fn nodes(&mut self) -> Vec<NodeRow>;
        fn directory_version(&mut self) -> i64;
        fn directory_changes(&mut self, since: i64) -> DirectoryChanges;
        fn has_device(&mut self, user_id: UserId, kind: DeviceKind, token: &str) -> bool;
        fn create_realm(&mut self, string_id: &str, name: &str, now: i64) -> RealmRow;
        fn list_realms(&mut self) -> Vec<RealmSummary>;
        fn rename_realm(&mut self, string_id: &str, name: &str) -> ();
        fn update_user(&mut self, realm: &str, email: &str, change: &UserChange<'_>) -> UserRow;
        fn delete_user(&mut self, realm: &str, email: &str) -> UserRow;
        fn set_realm_deactivated(&mut self, string_id: &str, deactivated: bool) -> bool;
        fn set_realm_presence_disabled(&mut self, string_id: &str, disabled: bool) -> bool;
        fn create_user(&mut self, user: &NewUser<'_>) -> UserRow;
        fn set_user_active(&mut self, realm: &str, email: &str, active: bool) -> bool;
        fn set_api_key_hash(&mut self, realm: &str, email: &str, hash: [u8; 32]) -> ();
        fn list_users(&mut self, realm: &str) -> Vec<UserRow>;
        fn export(&mut self) -> Dump;
        fn import(&mut self, dump: &Dump) -> ();
    }

    fn abort_batch(&mut self) {
        self.inner.abort_batch()
    }

    fn set_durability(&mut self, durability: Durability) -> Result<(), StoreError> {
        self.inner.set_durability(durability)
    }

    fn subscribe(
        &mut self,
        on_change: Box<dyn Fn(Notice) -> bool + Send>,
    ) -> Result<(), StoreError> {
        self.inner.subscribe(on_change)
    }
}
