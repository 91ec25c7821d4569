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

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use thiserror::Error;
use tokio::sync::oneshot;

use super::RuleSettings;
use super::model::{Directory, SharedRealm};
use super::rules::{Availability, availability, next_change};
use crate::clock::SharedClock;
use crate::events::Hub;
use crate::store::{DeviceKind, Store, StoreError};

mod batch;
mod builder;
mod install;

use batch::Batch;
pub use builder::DirectoryBuilder;

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
    /// The user has as many push devices as one may have (the limit).
    #[error("too many push devices (the limit is {0})")]
    TooManyDevices(usize),
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
}
