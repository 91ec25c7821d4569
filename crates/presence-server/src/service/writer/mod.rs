//! The writer thread: the only place that changes state.
//!
//! Requests that would change something send a [`Command`] here. The thread
//! takes every command waiting (group commit), evaluates each against the
//! current state plus the batch's own earlier effects, writes the resulting
//! mutations in one transaction, and only then applies them to memory and
//! acknowledges. So: update ids are assigned by one thread and never skip or
//! repeat; readers never see a change that is not yet durable; and a failed
//! commit leaves memory exactly as it was.
//!
//! Others write to the store too: the admin command, and other server nodes
//! sharing a PostgreSQL database. Between batches (at most every
//! `directory_poll_ms`, and at once when the store's subscription says so)
//! the thread asks the store what changed since it last looked, realms and
//! users by directory version, presence by each realm's update id, and
//! installs just that.
//!
//! Update ids never leave a gap for an incremental reader, on any node: a
//! batch starts by locking the sequences of its realms in the store, and if
//! the store is ahead of memory (another node wrote), the thread first
//! installs what it missed, under that lock. So memory always holds a
//! realm's state as of some update id, every change up to it and none
//! after, and the ids this node takes continue the stored sequence.
//!
//! Presence events are produced here too, at the one point where a change
//! becomes visible: after commit, while the batch is applied to memory. The
//! thread remembers for each user what others were last shown (active, idle
//! or offline) and when that will change by itself (a report ages past the
//! offline threshold); on every turn of its loop it looks at the changes
//! that are due by the service clock. So idle and offline are noticed by
//! the server within `directory_poll_ms` of the threshold, without waiting
//! for anyone's poll, and a test moves the clock instead of sleeping.
//! Events are handed to the hub before the batch is acknowledged, so a
//! client whose report was acknowledged finds its event already queued.
//!
//! Changes another node committed are installed here as well and produce
//! this node's events through the same path.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use thiserror::Error;
use tokio::sync::oneshot;

use super::RuleSettings;
use super::model::{Account, ClientRecord, Directory, KeyId, KeyOwner, Realm, SharedRealm};
use super::rules::{
    Availability, Times, apply_report, availability, backdate, comes_online, next_change,
};
use super::views;
use crate::clock::SharedClock;
use crate::events::{Hub, PresenceChange, PresenceEvents};
use crate::store::{DeviceKind, Loaded, Mutation, PresenceChanges, PresenceRow, Store, StoreError};

/// How many commands one transaction takes at most.
const MAX_BATCH: usize = 4096;

/// How often expired event queues are looked for.
const QUEUE_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Why a write was not made.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum WriteError {
    /// The store refused or failed; nothing was changed.
    #[error("the store failed: {0}")]
    Store(String),
    /// The device token to remove is not registered for this user.
    #[error("Token does not exist")]
    TokenDoesNotExist,
    /// The user or realm is gone.
    #[error("unknown user")]
    UnknownUser,
    /// The writer thread has stopped (the server is shutting down).
    #[error("the server is shutting down")]
    Stopped,
}

/// The sending half of a command's acknowledgement.
pub type Ack = oneshot::Sender<Result<(), WriteError>>;

/// A change asked of the writer.
pub enum Command {
    /// A presence report (SPEC.md §3).
    Report {
        /// Who reports.
        who: UserRef,
        /// From which client.
        client: Arc<str>,
        /// Active (else idle).
        active: bool,
        /// The server's time of the report.
        now: i64,
        /// Where the outcome goes.
        ack: Ack,
    },
    /// A change of the caller's settings.
    Settings {
        /// Whose settings.
        who: UserRef,
        /// The client that asked (presence on records the user active on it).
        client: Arc<str>,
        /// New `presence_enabled`, if given.
        presence_enabled: Option<bool>,
        /// New `enable_offline_push_notifications`, if given.
        enable_offline_push_notifications: Option<bool>,
        /// The server's time of the request.
        now: i64,
        /// Where the outcome goes.
        ack: Ack,
    },
    /// Register a push device.
    AddDevice {
        /// The owner.
        who: UserRef,
        /// APNs or FCM.
        kind: DeviceKind,
        /// The token.
        token: String,
        /// The app id (APNs).
        appid: Option<String>,
        /// Where the outcome goes.
        ack: Ack,
    },
    /// Remove a push device.
    RemoveDevice {
        /// The owner.
        who: UserRef,
        /// APNs or FCM.
        kind: DeviceKind,
        /// The token.
        token: String,
        /// Where the outcome goes.
        ack: Ack,
    },
    /// Someone else wrote to the store: look for changes now.
    CatchUp,
}

impl Command {
    /// Where the outcome goes, if the command is a change.
    fn into_ack(self) -> Option<Ack> {
        match self {
            Command::Report { ack, .. }
            | Command::Settings { ack, .. }
            | Command::AddDevice { ack, .. }
            | Command::RemoveDevice { ack, .. } => Some(ack),
            Command::CatchUp => None,
        }
    }

    /// The realm a change is made in, if the command is a change.
    fn realm_id(&self) -> Option<i64> {
        match self {
            Command::Report { who, .. }
            | Command::Settings { who, .. }
            | Command::AddDevice { who, .. }
            | Command::RemoveDevice { who, .. } => Some(who.realm_id),
            Command::CatchUp => None,
        }
    }
}

/// A user, with the realm it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserRef {
    /// The realm's id.
    pub realm_id: i64,
    /// The user's id.
    pub user_id: i64,
}

/// Builds the in-memory state from what `Store::load` hands out, one item
/// at a time.
#[derive(Default)]
pub struct DirectoryBuilder {
    realms: HashMap<i64, Realm>,
    keys: hashbrown::HashMap<KeyId, KeyOwner>,
    /// Client names seen so far: records of the same client share one string.
    names: HashSet<Arc<str>>,
    /// The user (and realm) whose records are being collected (they come
    /// grouped by user).
    current: Option<(i64, i64, Vec<ClientRecord>, i64)>,
    /// The vector records are collected in, reused from user to user.
    scratch: Vec<ClientRecord>,
}

impl DirectoryBuilder {
    /// Takes one loaded item.
    pub fn add(&mut self, item: Loaded) {
        match item {
            Loaded::Realm(row, users, last_update_id) => {
                let mut realm = Realm::new(row);
                realm.last_update_id = last_update_id;
                realm.reserve(users);
                self.keys.reserve(users);
                self.realms.insert(realm.row().id, realm);
            }
            Loaded::User(user) => {
                match KeyOwner::new(user.realm_id, user.id) {
                    Some(owner) => {
                        self.keys.insert(KeyId::of(&user.api_key_hash), owner);
                    }
                    None => tracing::error!(user = user.id, "user id too large to log in"),
                }
                if let Some(realm) = self.realms.get_mut(&user.realm_id) {
                    realm.put_account(Account::from(user));
                }
            }
            Loaded::Presence(row, realm_id) => {
                if self
                    .current
                    .as_ref()
                    .is_some_and(|(user, ..)| *user != row.user_id)
                {
                    self.flush();
                }
                let client = match self.names.get(row.client.as_str()) {
                    Some(name) => name.clone(),
                    None => {
                        let name: Arc<str> = Arc::from(row.client);
                        self.names.insert(name.clone());
                        name
                    }
                };
                let scratch = &mut self.scratch;
                let (_, _, records, update_id) = self
                    .current
                    .get_or_insert_with(|| (row.user_id, realm_id, std::mem::take(scratch), 0));
                records.push(ClientRecord::new(
                    client,
                    Times {
                        last_connected: row.last_connected_time,
                        last_active: row.last_active_time,
                    },
                ));
                *update_id = (*update_id).max(row.update_id);
            }
        }
    }

    /// Installs the collected records of the current user.
    fn flush(&mut self) {
        if let Some((user_id, realm_id, mut records, update_id)) = self.current.take()
            && let Some(realm) = self.realms.get_mut(&realm_id)
        {
            // An exactly sized copy: shrinking the growing vector in place
            // would leave its slack behind as holes in the heap.
            let exact = records.to_vec();
            records.clear();
            realm.load_presence(user_id, exact, update_id);
            self.scratch = records;
        }
    }

    /// The finished state.
    pub fn finish(mut self) -> Directory {
        self.flush();
        Directory {
            realms: self
                .realms
                .into_iter()
                .map(|(id, mut realm)| {
                    realm.finish_loading();
                    (id, Arc::new(RwLock::new(realm)))
                })
                .collect(),
            keys: self.keys,
        }
    }
}

/// A user's state while a batch is being evaluated.
struct Staged {
    account: Account,
    clients: Vec<ClientRecord>,
    update_id: i64,
    presence_changed: bool,
    account_changed: bool,
    /// A report in the batch counts as coming online by Zulip's rule.
    came_online: bool,
}

/// The batch under construction.
#[derive(Default)]
struct Batch {
    users: HashMap<UserRef, Staged>,
    /// Each staged realm's last update id before the batch.
    first_ids: HashMap<i64, i64>,
    /// Each staged realm's last update id with the batch's changes.
    last_ids: HashMap<i64, i64>,
    devices: HashMap<(i64, DeviceKind, String), bool>,
    mutations: Vec<Mutation>,
    outcomes: Vec<(Ack, Result<(), WriteError>)>,
}

/// A presence event made under a realm's lock, published after it.
struct Produced {
    realm_id: i64,
    seq: u64,
    change: PresenceChange,
}

/// The thread's state.
pub struct Writer {
    store: Box<dyn Store>,
    directory: Arc<RwLock<Directory>>,
    rules: RuleSettings,
    directory_version: i64,
    poll_every: Duration,
    hub: Arc<Hub>,
    clock: SharedClock,
    /// What others were last shown of each user with presence (by an
    /// event, or as the state was when the server started); a change is
    /// news when it differs. Absent means offline.
    shown: HashMap<i64, Availability>,
    /// When each user's availability changes by itself next:
    /// (Unix second, realm id, user id). Entries made stale by a later
    /// report are harmless: a due entry is judged again from the state.
    deadlines: BTreeSet<(i64, i64, i64)>,
    /// The last look at the store failed (logged once, until it answers).
    store_failing: bool,
}

impl Writer {
    /// A writer over `store`, whose snapshot at `directory_version` built
    /// `directory`, producing events into `hub`. What every user is shown
    /// as now is taken as known, so starting produces no events.
    pub fn new(
        store: Box<dyn Store>,
        directory: Arc<RwLock<Directory>>,
        rules: RuleSettings,
        directory_version: i64,
        poll_every: Duration,
        hub: Arc<Hub>,
        clock: SharedClock,
    ) -> Self {
        let now = clock.now_secs();
        let threshold = rules.offline_threshold_secs;
        let mut shown = HashMap::new();
        let mut deadlines = BTreeSet::new();
        for (&realm_id, realm) in &directory.read().realms {
            for user in realm.read().users.values() {
                let (active, connected) = (user.last_active(), user.last_connected());
                let now_shown = availability(active, connected, now, threshold);
                if now_shown != Availability::Offline {
                    shown.insert(user.account.id, now_shown);
                }
                if let Some(at) = next_change(active, connected, now, threshold) {
                    deadlines.insert((at, realm_id, user.account.id));
                }
            }
        }
        Writer {
            store,
            directory,
            rules,
            directory_version,
            poll_every,
            hub,
            clock,
            shown,
            deadlines,
            store_failing: false,
        }
    }

    /// Runs until every sender of `commands` is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        let mut last_poll = Instant::now();
        let mut last_sweep = Instant::now();
        loop {
            let wait = self.poll_every.saturating_sub(last_poll.elapsed());
            let mut catch_up = false;
            match commands.recv_timeout(wait) {
                Ok(first) => {
                    let mut batch = Vec::new();
                    let mut next = Some(first);
                    while let Some(command) = next {
                        match command {
                            Command::CatchUp => catch_up = true,
                            change => batch.push(change),
                        }
                        next = if batch.len() < MAX_BATCH {
                            commands.try_recv().ok()
                        } else {
                            None
                        };
                    }
                    if !batch.is_empty() {
                        self.process(batch);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.publish_due_transitions();
            if last_sweep.elapsed() >= QUEUE_SWEEP_EVERY {
                self.hub.sweep();
                last_sweep = Instant::now();
            }
            if catch_up || last_poll.elapsed() >= self.poll_every {
                let looked = self.catch_up();
                self.note_store_health(looked.as_ref().err());
                last_poll = Instant::now();
            }
        }
        tracing::debug!("writer stopped");
    }

    /// Logs the store going away and coming back, once each: while it is
    /// away, writes are refused and changes by others are not seen.
    fn note_store_health(&mut self, failure: Option<&StoreError>) {
        match (failure, self.store_failing) {
            (Some(e), false) => {
                tracing::error!(error = %e, "the store fails; refusing writes and retrying");
                self.store_failing = true;
            }
            (None, true) => {
                tracing::info!("the store answers again; caught up");
                self.store_failing = false;
            }
            _ => {}
        }
    }

    fn realm(&self, realm_id: i64) -> Option<SharedRealm> {
        self.directory.read().realms.get(&realm_id).cloned()
    }

    /// Evaluates a batch, commits it, applies it, and answers every command.
    fn process(&mut self, commands: Vec<Command>) {
        let mut realms: Vec<i64> = commands.iter().filter_map(Command::realm_id).collect();
        realms.sort_unstable();
        realms.dedup();
        if let Err(e) = self.begin(&realms) {
            // Logged once per outage (by `note_store_health`), not per batch.
            self.note_store_health(Some(&e));
            let failure = WriteError::Store(e.to_string());
            for command in commands {
                if let Some(ack) = command.into_ack() {
                    let _ = ack.send(Err(failure.clone()));
                }
            }
            return;
        }
        let mut batch = Batch::default();
        for command in commands {
            let (ack, outcome) = self.evaluate(&mut batch, command);
            batch.outcomes.push((ack, outcome));
        }
        let started = Instant::now();
        let committed = if batch.mutations.is_empty() {
            self.store.abort_batch();
            Ok(())
        } else {
            let sequences: Vec<(i64, i64)> = batch
                .last_ids
                .iter()
                .filter(|&(realm, &last)| batch.first_ids.get(realm) != Some(&last))
                .map(|(&realm, &last)| (realm, last))
                .collect();
            self.store.commit_batch(&batch.mutations, &sequences)
        };
        tracing::debug!(
            commands = batch.outcomes.len(),
            mutations = batch.mutations.len(),
            commit_micros = started.elapsed().as_micros() as u64,
            "batch"
        );
        match committed {
            Ok(()) => {
                let produced = self.apply(&mut batch);
                self.publish(produced);
                for (ack, outcome) in batch.outcomes {
                    let _ = ack.send(outcome);
                }
            }
            Err(e) => {
                // If the commit's outcome is unknown (the connection broke
                // while committing), the next look at the store installs
                // whatever did commit.
                tracing::error!(error = %e, "commit failed; the batch is refused");
                let failure = WriteError::Store(e.to_string());
                for (ack, outcome) in batch.outcomes {
                    let _ = ack.send(outcome.and(Err(failure.clone())));
                }
            }
        }
    }

    /// Opens a batch over `realms` and brings them up to the store's state
    /// under the batch's lock. Users another node created a moment ago may
    /// not be known yet; then the batch is given up, the directory read, and
    /// the batch started again.
    fn begin(&mut self, realms: &[i64]) -> Result<(), StoreError> {
        for attempt in 0.. {
            let stored = self.store.begin_batch(realms)?;
            let mut missing_users = false;
            for (&realm_id, &stored_last) in realms.iter().zip(&stored) {
                let known = self.known_last_id(realm_id);
                if stored_last <= known {
                    continue;
                }
                let changes = match self.store.presence_changes(realm_id, known) {
                    Ok(changes) => changes,
                    Err(e) => {
                        self.store.abort_batch();
                        return Err(e);
                    }
                };
                if !self.install_remote(realm_id, changes) {
                    missing_users = true;
                    break;
                }
            }
            if !missing_users {
                return Ok(());
            }
            self.store.abort_batch();
            if attempt > 0 {
                // The directory was just read; the store is inconsistent.
                return Err(StoreError::Unavailable(
                    "presence records of users the store does not list".to_owned(),
                ));
            }
            self.poll_directory()?;
        }
        unreachable!("the loop returns")
    }

    /// This node's last update id of a realm (0 for a realm it does not know).
    fn known_last_id(&self, realm_id: i64) -> i64 {
        self.realm(realm_id)
            .map_or(0, |realm| realm.read().last_update_id)
    }

    fn evaluate(&mut self, batch: &mut Batch, command: Command) -> (Ack, Result<(), WriteError>) {
        match command {
            Command::CatchUp => unreachable!("the loop keeps catch-up requests out of batches"),
            Command::Report {
                who,
                client,
                active,
                now,
                ack,
            } => {
                let outcome = self.stage(batch, who).map(|()| {
                    let staged = &batch.users[&who];
                    if staged.account.presence_enabled {
                        self.report(batch, who, &client, active, now);
                    }
                });
                (ack, outcome)
            }
            Command::Settings {
                who,
                client,
                presence_enabled,
                enable_offline_push_notifications,
                now,
                ack,
            } => {
                let outcome = self.stage(batch, who).map(|()| {
                    self.settings(
                        batch,
                        who,
                        &client,
                        presence_enabled,
                        enable_offline_push_notifications,
                        now,
                    )
                });
                (ack, outcome)
            }
            Command::AddDevice {
                who,
                kind,
                token,
                appid,
                ack,
            } => {
                let outcome = self.stage(batch, who).and_then(|()| {
                    if self.device_exists(batch, who.user_id, kind, &token)? {
                        return Ok(());
                    }
                    batch
                        .devices
                        .insert((who.user_id, kind, token.clone()), true);
                    let staged = batch.users.get_mut(&who).expect("staged above");
                    staged.account.push_devices += 1;
                    staged.account_changed = true;
                    batch.mutations.push(Mutation::AddDevice {
                        user_id: who.user_id,
                        kind,
                        token,
                        appid,
                    });
                    Ok(())
                });
                (ack, outcome)
            }
            Command::RemoveDevice {
                who,
                kind,
                token,
                ack,
            } => {
                let outcome = self.stage(batch, who).and_then(|()| {
                    if !self.device_exists(batch, who.user_id, kind, &token)? {
                        return Err(WriteError::TokenDoesNotExist);
                    }
                    batch
                        .devices
                        .insert((who.user_id, kind, token.clone()), false);
                    let staged = batch.users.get_mut(&who).expect("staged above");
                    staged.account.push_devices = staged.account.push_devices.saturating_sub(1);
                    staged.account_changed = true;
                    batch.mutations.push(Mutation::RemoveDevice {
                        user_id: who.user_id,
                        kind,
                        token,
                    });
                    Ok(())
                });
                (ack, outcome)
            }
        }
    }

    /// Copies a user into the batch, if not there yet.
    fn stage(&self, batch: &mut Batch, who: UserRef) -> Result<(), WriteError> {
        if batch.users.contains_key(&who) {
            return Ok(());
        }
        let realm = self.realm(who.realm_id).ok_or(WriteError::UnknownUser)?;
        let realm = realm.read();
        let user = realm
            .users
            .get(&who.user_id)
            .ok_or(WriteError::UnknownUser)?;
        batch
            .first_ids
            .entry(who.realm_id)
            .or_insert(realm.last_update_id);
        batch
            .last_ids
            .entry(who.realm_id)
            .or_insert(realm.last_update_id);
        batch.users.insert(
            who,
            Staged {
                account: user.account.clone(),
                clients: user.clients.to_vec(),
                update_id: user.update_id,
                presence_changed: false,
                account_changed: false,
                came_online: false,
            },
        );
        Ok(())
    }

    fn presence_disabled(&self, realm_id: i64) -> bool {
        self.realm(realm_id)
            .is_none_or(|realm| realm.read().row().presence_disabled)
    }

    fn next_id(batch: &mut Batch, realm_id: i64) -> i64 {
        let id = batch.last_ids.entry(realm_id).or_insert(0);
        *id += 1;
        *id
    }

    /// Applies one report to a staged user (the caller checked `presence_enabled`).
    fn report(&self, batch: &mut Batch, who: UserRef, client: &Arc<str>, active: bool, now: i64) {
        if self.presence_disabled(who.realm_id) {
            return;
        }
        let max_clients = self.rules.max_clients_per_user;
        let staged = &batch.users[&who];
        let position = staged.clients.iter().position(|r| r.client == *client);
        let current = position.map(|i| staged.clients[i].times());
        let Some(times) = apply_report(current, active, now, self.rules.min_freq_secs) else {
            return;
        };
        let came_online = comes_online(
            !staged.clients.is_empty(),
            staged
                .clients
                .iter()
                .filter_map(|r| r.times().last_active)
                .max(),
            active,
            now,
            self.rules.offline_threshold_secs,
            self.rules.ping_interval_secs,
        );
        let id = Self::next_id(batch, who.realm_id);
        let staged = batch.users.get_mut(&who).expect("staged by the caller");
        staged.came_online |= came_online;
        match position {
            Some(i) => staged.clients[i].set_times(times),
            None => {
                if staged.clients.len() >= max_clients {
                    // Make room by dropping the least recently connected client.
                    let oldest = staged
                        .clients
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, r)| (r.times().last_connected, r.client.clone()))
                        .map(|(i, _)| i)
                        .expect("the bound is at least 1");
                    let evicted = staged.clients.swap_remove(oldest);
                    batch.mutations.push(Mutation::DeletePresence {
                        user_id: who.user_id,
                        client: evicted.client.to_string(),
                    });
                }
                staged
                    .clients
                    .push(ClientRecord::new(client.clone(), times));
            }
        }
        staged.update_id = id;
        staged.presence_changed = true;
        batch.mutations.push(Mutation::PutPresence(PresenceRow {
            user_id: who.user_id,
            client: client.to_string(),
            last_connected_time: times.last_connected,
            last_active_time: times.last_active,
            update_id: id,
        }));
    }

    fn settings(
        &self,
        batch: &mut Batch,
        who: UserRef,
        client: &Arc<str>,
        presence_enabled: Option<bool>,
        push: Option<bool>,
        now: i64,
    ) {
        let staged = batch.users.get_mut(&who).expect("staged by the caller");
        let mut account_changed = false;
        if let Some(push) = push
            && push != staged.account.enable_offline_push_notifications
        {
            staged.account.enable_offline_push_notifications = push;
            account_changed = true;
        }
        let toggled = presence_enabled.filter(|&on| on != staged.account.presence_enabled);
        if let Some(on) = toggled {
            staged.account.presence_enabled = on;
            account_changed = true;
        }
        if account_changed {
            staged.account_changed = true;
            batch.mutations.push(Mutation::SetUserSettings {
                user_id: who.user_id,
                presence_enabled: staged.account.presence_enabled,
                enable_offline_push_notifications: staged.account.enable_offline_push_notifications,
            });
        }
        match toggled {
            Some(true) => self.report(batch, who, client, true, now),
            Some(false) => self.backdate(batch, who, now),
            None => {}
        }
    }

    /// Makes a user look offline at once: every record moved back past the
    /// offline threshold (SPEC.md §3.5).
    fn backdate(&self, batch: &mut Batch, who: UserRef, now: i64) {
        let cutoff = now - (self.rules.offline_threshold_secs + self.rules.min_freq_secs + 10);
        let staged = &batch.users[&who];
        let changed: Vec<(usize, Times)> = staged
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, r)| backdate(r.times(), cutoff).map(|t| (i, t)))
            .collect();
        if changed.is_empty() {
            return;
        }
        let id = Self::next_id(batch, who.realm_id);
        let staged = batch.users.get_mut(&who).expect("staged by the caller");
        for (i, times) in changed {
            let record = &mut staged.clients[i];
            record.set_times(times);
            batch.mutations.push(Mutation::PutPresence(PresenceRow {
                user_id: who.user_id,
                client: record.client.to_string(),
                last_connected_time: times.last_connected,
                last_active_time: times.last_active,
                update_id: id,
            }));
        }
        staged.update_id = id;
        staged.presence_changed = true;
    }

    fn device_exists(
        &mut self,
        batch: &Batch,
        user_id: i64,
        kind: DeviceKind,
        token: &str,
    ) -> Result<bool, WriteError> {
        if let Some(&exists) = batch.devices.get(&(user_id, kind, token.to_owned())) {
            return Ok(exists);
        }
        self.store
            .has_device(user_id, kind, token)
            .map_err(|e| WriteError::Store(e.to_string()))
    }

    /// Installs a committed batch in memory and returns the events it makes.
    fn apply(&mut self, batch: &mut Batch) -> Vec<Produced> {
        let now = self.clock.now_secs();
        let mut produced = Vec::new();
        for (who, staged) in batch.users.drain() {
            if !staged.presence_changed && !staged.account_changed {
                continue;
            }
            let Some(realm) = self.realm(who.realm_id) else {
                continue;
            };
            let mut realm = realm.write();
            if staged.account_changed {
                realm.put_account(staged.account);
            }
            if staged.presence_changed {
                realm.put_presence(who.user_id, staged.clients, staged.update_id);
                produced.extend(self.transition(who, &mut realm, now, staged.came_online));
            }
        }
        produced
    }

    /// Judges what others see of a user at `now` against what they were
    /// last shown, schedules the next change, and describes the news, if
    /// any, under the realm's next event number.
    ///
    /// News is a change of availability, or coming online by Zulip's rule.
    /// Nothing is produced for a realm with presence disabled, nor for a
    /// user who is not listed (deactivated, or a bot).
    fn transition(
        &mut self,
        who: UserRef,
        realm: &mut Realm,
        now: i64,
        came_online: bool,
    ) -> Option<Produced> {
        let threshold = self.rules.offline_threshold_secs;
        let disabled = realm.row().presence_disabled;
        let user = realm.users.get(&who.user_id)?;
        let (active, connected) = (user.last_active(), user.last_connected());
        let now_shown = availability(active, connected, now, threshold);
        let before = if now_shown == Availability::Offline {
            self.shown.remove(&who.user_id)
        } else {
            self.shown.insert(who.user_id, now_shown)
        };
        let news = came_online || now_shown != before.unwrap_or_default();
        if let Some(at) = next_change(active, connected, now, threshold) {
            self.deadlines.insert((at, who.realm_id, who.user_id));
        }
        if !news || disabled || !user.is_listed() {
            return None;
        }
        let change = PresenceChange {
            user_id: who.user_id,
            email: user.account.email().to_owned(),
            clients: views::legacy(user)
                .map(|presence| presence.clients)
                .unwrap_or_default(),
            modern: views::modern(user),
            server_timestamp: self.clock.now_f64(),
        };
        realm.event_seq += 1;
        Some(Produced {
            realm_id: who.realm_id,
            seq: realm.event_seq,
            change,
        })
    }

    /// Produces the events of availability changes that are due by the
    /// service clock: reports aging into idle or offline.
    fn publish_due_transitions(&mut self) {
        let now = self.clock.now_secs();
        let mut produced = Vec::new();
        while let Some(&(at, realm_id, user_id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(realm) = self.realm(realm_id) else {
                continue;
            };
            let mut realm = realm.write();
            let who = UserRef { realm_id, user_id };
            produced.extend(self.transition(who, &mut realm, now, false));
        }
        self.publish(produced);
    }

    /// Encodes each event once and hands it to the hub, in the order made.
    fn publish(&self, produced: Vec<Produced>) {
        for Produced {
            realm_id,
            seq,
            change,
        } in produced
        {
            match PresenceEvents::encode(&change) {
                Some(events) => self.hub.publish(realm_id, seq, &events),
                None => tracing::error!(
                    user_id = change.user_id,
                    "a presence event could not be encoded"
                ),
            }
        }
    }

    /// Installs what others wrote since the last look: realms and users
    /// first (presence may belong to a user created a moment ago), then
    /// each realm's presence changes.
    fn catch_up(&mut self) -> Result<(), StoreError> {
        self.poll_directory()?;
        for (realm_id, stored_last) in self.store.sequences()? {
            let known = self.known_last_id(realm_id);
            if stored_last <= known {
                continue;
            }
            let changes = self.store.presence_changes(realm_id, known)?;
            if !self.install_remote(realm_id, changes) {
                // A user newer than the directory read above: read it again.
                self.poll_directory()?;
                let changes = self.store.presence_changes(realm_id, known)?;
                if !self.install_remote(realm_id, changes) {
                    tracing::error!(realm_id, "presence of users the store does not list");
                }
            }
        }
        Ok(())
    }

    /// Installs another writer's presence changes in a realm and publishes
    /// their events. Returns false, installing nothing, if a changed user is
    /// not known here yet (the directory is behind).
    fn install_remote(&mut self, realm_id: i64, changes: PresenceChanges) -> bool {
        let Some(shared) = self.realm(realm_id) else {
            return changes.users.is_empty();
        };
        let now = self.clock.now_secs();
        let mut produced = Vec::new();
        {
            let mut realm = shared.write();
            if changes
                .users
                .iter()
                .any(|(user_id, _)| realm.users.get(user_id).is_none())
            {
                return false;
            }
            let mut users: Vec<(i64, i64, Vec<PresenceRow>)> = changes
                .users
                .into_iter()
                .map(|(user_id, rows)| {
                    let update_id = rows.iter().map(|r| r.update_id).max().unwrap_or(0);
                    (update_id, user_id, rows)
                })
                .collect();
            // The change index takes ids in increasing order.
            users.sort_unstable_by_key(|&(update_id, user_id, _)| (update_id, user_id));
            for (update_id, user_id, rows) in users {
                let user = realm.users.get(&user_id).expect("checked above");
                if update_id <= user.update_id {
                    continue;
                }
                let had_records = !user.clients.is_empty();
                let previous_active = user.last_active();
                let clients: Vec<ClientRecord> = rows
                    .into_iter()
                    .map(|row| {
                        // Share the name string with the user's earlier record.
                        let name = user
                            .client(&row.client)
                            .map_or_else(|| Arc::from(row.client.as_str()), |r| r.client.clone());
                        let times = Times {
                            last_connected: row.last_connected_time,
                            last_active: row.last_active_time,
                        };
                        ClientRecord::new(name, times)
                    })
                    .collect();
                let latest_active = clients.iter().filter_map(|r| r.times().last_active).max();
                let came_online = comes_online(
                    had_records,
                    previous_active,
                    latest_active > previous_active,
                    latest_active.unwrap_or(now),
                    self.rules.offline_threshold_secs,
                    self.rules.ping_interval_secs,
                );
                realm.put_presence(user_id, clients, update_id);
                let who = UserRef { realm_id, user_id };
                produced.extend(self.transition(who, &mut realm, now, came_online));
            }
            realm.last_update_id = realm.last_update_id.max(changes.last_update_id);
        }
        self.publish(produced);
        true
    }

    /// Loads realms and users that changed in the store since the last look.
    fn poll_directory(&mut self) -> Result<(), crate::store::StoreError> {
        let version = self.store.directory_version()?;
        if version == self.directory_version {
            return Ok(());
        }
        let changes = self.store.directory_changes(self.directory_version)?;
        for row in changes.realms {
            if row.deactivated {
                // Nobody of it can poll any more; free its queues now.
                self.hub.drop_realm(row.id);
            }
            let existing = self.realm(row.id);
            match existing {
                Some(realm) => realm.write().set_row(row),
                None => {
                    let id = row.id;
                    self.directory
                        .write()
                        .realms
                        .insert(id, Arc::new(RwLock::new(Realm::new(row))));
                }
            }
        }
        let mut keys = Vec::new();
        let mut changed = HashSet::new();
        for row in changes.users {
            let Some(realm) = self.realm(row.realm_id) else {
                continue;
            };
            if !row.is_active {
                self.hub.drop_user(row.id);
            }
            if let Some(owner) = KeyOwner::new(row.realm_id, row.id) {
                keys.push((KeyId::of(&row.api_key_hash), owner));
            }
            changed.insert(row.id);
            realm.write().put_account(Account::from(row));
        }
        if !changed.is_empty() {
            // Accounts do not keep their key, so drop every key of the
            // changed users and put the current ones back: a reset key stops
            // working here. Admin changes are rare; one pass is cheap enough.
            let mut directory = self.directory.write();
            directory
                .keys
                .retain(|_, owner| !changed.contains(&owner.user_id()));
            directory.keys.extend(keys);
        }
        tracing::debug!(
            from = self.directory_version,
            to = changes.version,
            "loaded directory changes"
        );
        self.directory_version = changes.version;
        Ok(())
    }
}
