//! A panic on the writer thread: the batch it hit is refused with 503,
//! memory still equals the store, and the writer serves what comes next.
//!
//! The server runs over its real SQLite store wrapped in [`Panicky`], which
//! panics once on the call a test arms, before or after handing it on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use presence_server::clock::ManualClock;
use presence_server::ids::{RealmId, UpdateId, UserId};
use presence_server::store::{
    DeviceKind, DirectoryChanges, Dump, Durability, EmbedKeyRow, EmbedKeyUse, Loaded, Mutation,
    NewEmbedKey, NewUser, NodeRow, Notice, PresenceChanges, RealmRow, RealmSummary, Sequence,
    Store, StoreError, UserChange, UserRow,
};
use presence_tests::{Backing, Options, START, TestServer, User};

/// A store call a test can make panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    CommitBatch,
    HasDevice,
    Sequences,
    SequencesTotal,
}

/// Whether the panic comes before the real store is called, or after it
/// has done its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    Before,
    After,
}

/// The armed fault, shared between the test and the wrapper.
#[derive(Default)]
struct Trigger {
    armed: Mutex<Option<(Call, Moment)>>,
    fired: AtomicBool,
}

impl Trigger {
    fn arm(&self, call: Call, moment: Moment) {
        self.fired.store(false, Ordering::SeqCst);
        *self.armed.lock().expect("never poisoned") = Some((call, moment));
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Panics if `call` is armed at `moment` (once).
    fn check(&self, call: Call, moment: Moment) {
        let mut armed = self.armed.lock().expect("never poisoned");
        if *armed == Some((call, moment)) {
            *armed = None;
            drop(armed);
            self.fired.store(true, Ordering::SeqCst);
            panic!("injected panic in {call:?} ({moment:?})");
        }
    }

    /// Runs `f` on the real store between the two checks of `call`.
    fn around<T>(&self, call: Call, f: impl FnOnce() -> T) -> T {
        self.check(call, Moment::Before);
        let out = f();
        self.check(call, Moment::After);
        out
    }
}

/// A real store that panics where its trigger says.
struct Panicky {
    inner: Box<dyn Store>,
    trigger: Arc<Trigger>,
}

impl Store for Panicky {
    fn load(&mut self, sink: &mut dyn FnMut(Loaded)) -> Result<i64, StoreError> {
        self.inner.load(sink)
    }
    fn begin_batch(&mut self, realms: &[RealmId]) -> Result<Vec<UpdateId>, StoreError> {
        self.inner.begin_batch(realms)
    }
    fn commit_batch(
        &mut self,
        batch: &[Mutation],
        sequences: &[Sequence],
    ) -> Result<(), StoreError> {
        let inner = &mut self.inner;
        self.trigger
            .around(Call::CommitBatch, || inner.commit_batch(batch, sequences))
    }
    fn abort_batch(&mut self) {
        self.inner.abort_batch()
    }

    fn set_durability(&mut self, durability: Durability) -> Result<(), StoreError> {
        self.inner.set_durability(durability)
    }
    fn sequences(&mut self) -> Result<Vec<Sequence>, StoreError> {
        let inner = &mut self.inner;
        self.trigger.around(Call::Sequences, || inner.sequences())
    }
    fn sequences_total(&mut self) -> Result<i64, StoreError> {
        let inner = &mut self.inner;
        self.trigger
            .around(Call::SequencesTotal, || inner.sequences_total())
    }
    fn presence_changes(
        &mut self,
        realm_id: RealmId,
        since: UpdateId,
    ) -> Result<PresenceChanges, StoreError> {
        self.inner.presence_changes(realm_id, since)
    }
    fn create_embed_key(&mut self, key: &NewEmbedKey<'_>) -> Result<EmbedKeyRow, StoreError> {
        self.inner.create_embed_key(key)
    }
    fn list_embed_keys(&mut self, realm: &str) -> Result<Vec<EmbedKeyRow>, StoreError> {
        self.inner.list_embed_keys(realm)
    }
    fn revoke_embed_key(
        &mut self,
        realm: &str,
        name: &str,
        now: i64,
    ) -> Result<EmbedKeyRow, StoreError> {
        self.inner.revoke_embed_key(realm, name, now)
    }
    fn record_embed_key_use(&mut self, uses: &[EmbedKeyUse]) -> Result<(), StoreError> {
        self.inner.record_embed_key_use(uses)
    }
    fn report_node(&mut self, node: &NodeRow, forget_before: i64) -> Result<(), StoreError> {
        self.inner.report_node(node, forget_before)
    }
    fn remove_node(&mut self, id: &str) -> Result<(), StoreError> {
        self.inner.remove_node(id)
    }
    fn nodes(&mut self) -> Result<Vec<NodeRow>, StoreError> {
        self.inner.nodes()
    }
    fn directory_version(&mut self) -> Result<i64, StoreError> {
        self.inner.directory_version()
    }
    fn directory_changes(&mut self, since: i64) -> Result<DirectoryChanges, StoreError> {
        self.inner.directory_changes(since)
    }
    fn has_device(
        &mut self,
        user_id: UserId,
        kind: DeviceKind,
        token: &str,
    ) -> Result<bool, StoreError> {
        let inner = &mut self.inner;
        self.trigger
            .around(Call::HasDevice, || inner.has_device(user_id, kind, token))
    }
    fn create_realm(
        &mut self,
        string_id: &str,
        name: &str,
        now: i64,
    ) -> Result<RealmRow, StoreError> {
        self.inner.create_realm(string_id, name, now)
    }
    fn list_realms(&mut self) -> Result<Vec<RealmSummary>, StoreError> {
        self.inner.list_realms()
    }
    fn rename_realm(&mut self, string_id: &str, name: &str) -> Result<(), StoreError> {
        self.inner.rename_realm(string_id, name)
    }
    fn update_user(
        &mut self,
        realm: &str,
        email: &str,
        change: &UserChange<'_>,
    ) -> Result<UserRow, StoreError> {
        self.inner.update_user(realm, email, change)
    }
    fn delete_user(&mut self, realm: &str, email: &str) -> Result<UserRow, StoreError> {
        self.inner.delete_user(realm, email)
    }
    fn set_realm_deactivated(
        &mut self,
        string_id: &str,
        deactivated: bool,
    ) -> Result<bool, StoreError> {
        self.inner.set_realm_deactivated(string_id, deactivated)
    }
    fn set_realm_presence_disabled(
        &mut self,
        string_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        self.inner.set_realm_presence_disabled(string_id, disabled)
    }
    fn create_user(&mut self, user: &NewUser<'_>) -> Result<UserRow, StoreError> {
        self.inner.create_user(user)
    }
    fn set_user_active(
        &mut self,
        realm: &str,
        email: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        self.inner.set_user_active(realm, email, active)
    }
    fn set_api_key_hash(
        &mut self,
        realm: &str,
        email: &str,
        hash: [u8; 32],
    ) -> Result<(), StoreError> {
        self.inner.set_api_key_hash(realm, email, hash)
    }
    fn list_users(&mut self, realm: &str) -> Result<Vec<UserRow>, StoreError> {
        self.inner.list_users(realm)
    }
    fn export(&mut self) -> Result<Dump, StoreError> {
        self.inner.export()
    }
    fn import(&mut self, dump: &Dump) -> Result<(), StoreError> {
        self.inner.import(dump)
    }
    fn subscribe(
        &mut self,
        on_change: Box<dyn Fn(Notice) -> bool + Send>,
    ) -> Result<(), StoreError> {
        self.inner.subscribe(on_change)
    }
}

/// A server over a [`Panicky`] store, and its trigger.
async fn panicky_server() -> (TestServer, Arc<Trigger>) {
    let trigger = Arc::new(Trigger::default());
    let wrapped = trigger.clone();
    let server = TestServer::start_wrapped(
        Backing::sqlite(),
        Arc::new(ManualClock::new(START)),
        Options::default().config,
        move |inner| {
            Box::new(Panicky {
                inner,
                trigger: wrapped,
            })
        },
    )
    .await;
    (server, trigger)
}

/// A report from `client` as the writer sees it (`ping_only`, so only the write counts).
async fn report(server: &TestServer, user: &User, client: &str) -> presence_tests::Answer {
    server
        .post(
            user,
            "/users/me/presence",
            &[
                ("status", "active"),
                ("client", client),
                ("ping_only", "true"),
            ],
        )
        .await
}

/// The client names the store holds for a user.
fn stored_clients(server: &TestServer, user: &User) -> Vec<String> {
    let dump = server
        .with_admin(|store| store.export())
        .expect("an export");
    let mut clients: Vec<String> = dump
        .presence
        .into_iter()
        .filter(|r| r.user_id.0 == user.id)
        .map(|r| r.client)
        .collect();
    clients.sort();
    clients
}

/// The client names memory shows for a user.
async fn shown_clients(server: &TestServer, reader: &User, user: &User) -> Vec<String> {
    server.clients_of(reader, &user.email).await
}

const REFUSED: &str = "The server could not save the change; try again";

#[tokio::test]
async fn a_panic_before_the_commit_refuses_the_batch_and_changes_nothing() {
    let (server, trigger) = panicky_server().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    report(&server, alice, "website").await.ok();

    trigger.arm(Call::CommitBatch, Moment::Before);
    report(&server, alice, "ZulipMobile")
        .await
        .error(503, "SERVICE_UNAVAILABLE", REFUSED);
    assert!(trigger.fired());
    assert_eq!(stored_clients(&server, alice), ["website"]);
    assert_eq!(shown_clients(&server, reader, alice).await, ["website"]);

    // The writer serves the next batch.
    report(&server, alice, "ZulipTerminal").await.ok();
    assert_eq!(stored_clients(&server, alice), ["ZulipTerminal", "website"]);
    assert_eq!(
        shown_clients(&server, reader, alice).await,
        ["ZulipTerminal", "website"]
    );
}

#[tokio::test]
async fn a_panic_after_the_commit_leaves_memory_equal_to_the_store() {
    let (server, trigger) = panicky_server().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    report(&server, alice, "website").await.ok();

    // The store committed, then the call panicked: the outcome is unknown
    // to the writer, which reads the store again before it answers.
    trigger.arm(Call::CommitBatch, Moment::After);
    report(&server, alice, "ZulipMobile")
        .await
        .error(503, "SERVICE_UNAVAILABLE", REFUSED);
    assert!(trigger.fired());
    assert_eq!(stored_clients(&server, alice), ["ZulipMobile", "website"]);
    assert_eq!(
        shown_clients(&server, reader, alice).await,
        ["ZulipMobile", "website"]
    );
    // Settings and devices too: the device count shows as `pushable`.
    trigger.arm(Call::CommitBatch, Moment::After);
    server
        .post(alice, "/users/me/android_gcm_reg_id", &[("token", "t1")])
        .await
        .error(503, "SERVICE_UNAVAILABLE", REFUSED);
    let presence = server.presence_of(reader, &alice.email).await;
    assert_eq!(presence["website"]["pushable"], true);

    report(&server, alice, "ZulipTerminal").await.ok();
    let shown = shown_clients(&server, reader, alice).await;
    assert_eq!(shown, ["ZulipMobile", "ZulipTerminal", "website"]);
    // A restart loads from the store exactly what memory showed.
    let shown_before = server.presence_of(reader, &alice.email).await;
    let server = server.restart().await;
    assert_eq!(server.presence_of(reader, &alice.email).await, shown_before);
}

#[tokio::test]
async fn a_panic_while_evaluating_or_between_batches_is_survived() {
    let (server, trigger) = panicky_server().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, reader) = (&users[0], &users[1]);
    let fcm = "/users/me/android_gcm_reg_id";

    trigger.arm(Call::HasDevice, Moment::Before);
    server
        .post(alice, fcm, &[("token", "t1")])
        .await
        .error(503, "SERVICE_UNAVAILABLE", REFUSED);
    assert!(trigger.fired());
    let dump = server
        .with_admin(|store| store.export())
        .expect("an export");
    assert!(dump.devices.is_empty());
    server.post(alice, fcm, &[("token", "t1")]).await.ok();

    // The periodic look at the store panics: nothing waits on it, and the
    // writer carries on.
    trigger.arm(Call::SequencesTotal, Moment::Before);
    server
        .wait_until(|| std::future::ready(trigger.fired()))
        .await;
    report(&server, alice, "website").await.ok();
    assert_eq!(shown_clients(&server, reader, alice).await, ["website"]);
}
