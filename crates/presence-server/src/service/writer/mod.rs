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
//! installs what it missed, under that lock: from the batches the other
//! node published with its notification if they cover exactly what is
//! missing, else by reading it (docs/ARCHITECTURE.md, "Learning another
//! node's commit"). So memory always holds a
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
//!
//! **Panics.** Without a boundary, a panic here (a bug, in this code or in
//! a store) would end the thread, and every write after it would be
//! refused until a restart, with nothing said. Each step of the loop runs
//! under `catch_unwind` instead, and what follows a panic depends on
//! whether memory was being changed when it hit.
//!
//! - While a batch is evaluated or committed, memory is not touched: the
//!   batch is staged apart, and only the store is written. The panic is
//!   logged at error level with its message, the store's open batch is
//!   ended, and memory is brought to what the store holds by the same
//!   catch-up that installs other nodes' changes: a commit whose outcome
//!   is unknown (the panic came inside `commit_batch`, perhaps after the
//!   database committed) is installed if it went through, and nothing is
//!   if not. Only then is every change of the batch answered
//!   [`WriteError::Panicked`] (503), so a client that is refused already
//!   reads what the store has. The loop then takes the next batch. A panic
//!   between batches (publishing idle and offline, dropping queues,
//!   looking for others' changes) is logged and the loop goes on the same
//!   way.
//! - While memory is changed (a committed batch applied, or others'
//!   changes installed), the process exits with status
//!   [`EXIT_MEMORY_UNKNOWN`] after an error line that says why, for the
//!   supervisor to restart it. Re-reading the realms' changes from the
//!   store is not sound there: catch-up installs only users whose update
//!   id memory lacks and trusts the realm's last update id, and an
//!   interrupted apply may have advanced either while leaving other users,
//!   the change index or the account of the same batch behind. Memory may
//!   then hold a state that no code path expects, and serving from it
//!   would show readers what the store does not hold. The store is right
//!   (the batch committed, its clients were not yet told), and starting
//!   again loads memory from it by the one path that assumes nothing:
//!   the start-up load. Event queues are lost with the process, and their
//!   clients register again, as after any restart.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use thiserror::Error;
use tokio::sync::oneshot;

use super::RuleSettings;
use super::epoch::DirectoryEpoch;
use super::health::StoreHealth;
use super::model::{Directory, SharedRealm};
use super::rules::{Availability, availability, next_change};
use super::status::StatusUpdate;
use crate::clock::SharedClock;
use crate::events::Hub;
use crate::ids::{RealmId, UpdateId, UserId};
use crate::metrics::Metrics;
use crate::store::{DeviceKind, Store, StoreError};

mod batch;
mod builder;
mod install;
mod intake;
mod node;
mod published;
mod status;

use batch::Batch;
pub use builder::DirectoryBuilder;
use install::Destination;
use intake::Intake;
pub use node::NODE_GONE_AFTER_SECS;
use node::NodeState;
use published::RemoteChanges;

/// How many commands one transaction takes at most.
const MAX_BATCH: usize = 4096;

/// How often expired event queues are looked for.
const QUEUE_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How long a batch that found another node's commit under its lock waits
/// for that node's published batch, when the listener has not handed it
/// over yet: the notification is sent at the same commit that released
/// the lock, so it is usually a moment behind, and reading the commit back
/// instead costs more than this.
const PUBLISHED_WAIT: Duration = Duration::from_millis(2);

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
    /// The writer panicked while it held this change's batch: the batch is
    /// refused, and memory shows what the store holds.
    #[error("the writer failed on this batch")]
    Panicked,
}

/// The sending half of a command's acknowledgement.
pub type Ack = oneshot::Sender<Result<(), WriteError>>;

/// What becomes of one change.
type Outcome = Result<(), WriteError>;

/// A change asked of the writer.
pub enum Change {
    /// A presence report (docs/PROTOCOL.md §4.1).
    Report {
        /// Who reports.
        who: UserRef,
        /// From which client.
        client: Arc<str>,
        /// Active (else idle).
        active: bool,
        /// The server's time of the report.
        now: i64,
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
    },
    /// Remove a push device.
    RemoveDevice {
        /// The owner.
        who: UserRef,
        /// APNs or FCM.
        kind: DeviceKind,
        /// The token.
        token: String,
    },
    /// A change of the caller's custom status (docs/PROTOCOL.md §6.17).
    Status {
        /// Whose status.
        who: UserRef,
        /// The client that asked (`away: false` records the user active on it).
        client: Arc<str>,
        /// What changes.
        update: StatusUpdate,
        /// The server's time of the request.
        now: i64,
    },
    /// Clearing a status whose expiry has come.
    ExpireStatus {
        /// Whose status.
        who: UserRef,
        /// The expiry carried out.
        expires_at: i64,
    },
}

impl Change {
    /// The user the change is made for.
    fn who(&self) -> UserRef {
        match self {
            Change::Report { who, .. }
            | Change::Settings { who, .. }
            | Change::AddDevice { who, .. }
            | Change::RemoveDevice { who, .. }
            | Change::Status { who, .. }
            | Change::ExpireStatus { who, .. } => *who,
        }
    }

    /// Whether the change concerns a custom status.
    fn is_status(&self) -> bool {
        matches!(self, Change::Status { .. } | Change::ExpireStatus { .. })
    }
}

/// What the writer is sent.
pub enum Command {
    /// A change, and where its outcome goes.
    Change(Change, Ack),
    /// Someone else wrote to the store: look for changes now.
    CatchUp,
    /// Other nodes committed presence records alone, published whole:
    /// install them from the store's inbox, without a look at the store.
    InstallPublished,
}

/// A user, with the realm it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserRef {
    /// The realm's id.
    pub realm_id: RealmId,
    /// The user's id.
    pub user_id: UserId,
}

/// When a user's availability changes by itself next (a report ages into
/// idle or offline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Deadline {
    /// Unix seconds; deadlines sort by it first.
    at: i64,
    /// The user.
    who: UserRef,
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
    shown: HashMap<UserId, Availability>,
    /// When each user's availability changes by itself next. Entries made
    /// stale by a later report are harmless: a due entry is judged again
    /// from the state.
    deadlines: BTreeSet<Deadline>,
    /// When each status with an expiry is cleared. Entries made stale by a
    /// later change are skipped when due.
    expiries: BTreeSet<Deadline>,
    /// The last look at the store failed (logged once, until it answers).
    store_failing: bool,
    /// What readiness probes are told of the store, shared with the service.
    health: Arc<StoreHealth>,
    /// Where commits and store errors are counted.
    metrics: Arc<Metrics>,
    /// Memory is being changed: a panic now leaves it unknown.
    changing_memory: bool,
    /// This node's report in the store.
    node: NodeState,
    /// The store's sum of last update ids at the last catch-up that
    /// installed everything (see `Store::sequences_total`): while it stays
    /// the same, no realm needs a look.
    sequences_total: Option<i64>,
    /// When the open batch took its realms' locks, and how long it then
    /// took to install others' commits: for the batch's debug line.
    locked_at: Option<(Instant, Duration)>,
    /// Where commands come from, once the writer runs.
    intake: Option<Intake>,
    /// Others' commits found under the open batch's locks, by realm: the
    /// batch is evaluated after them, and they are installed with it.
    held_remote: HashMap<RealmId, RemoteChanges>,
    /// Moved around every directory change that could alter how a key
    /// authenticates (see `affects_credentials`).
    epoch: Arc<DirectoryEpoch>,
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
        let mut expiries = BTreeSet::new();
        for (&realm_id, realm) in &directory.read().realms {
            let realm = realm.read();
            for (&user_id, status) in &realm.statuses {
                if let Some(at) = status.expires_at {
                    let who = UserRef { realm_id, user_id };
                    expiries.insert(Deadline { at, who });
                }
            }
            for user in realm.users.values() {
                let (active, connected) = (user.last_active(), user.last_connected());
                let now_shown = availability(active, connected, now, threshold);
                if now_shown != Availability::Offline {
                    shown.insert(user.account.id, now_shown);
                }
                if let Some(at) = next_change(active, connected, now, threshold) {
                    let user_id = user.account.id;
                    let who = UserRef { realm_id, user_id };
                    deadlines.insert(Deadline { at, who });
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
            expiries,
            store_failing: false,
            health: Arc::default(),
            metrics: Arc::default(),
            changing_memory: false,
            node: NodeState::new(now, directory_version),
            sequences_total: None,
            locked_at: None,
            intake: None,
            held_remote: HashMap::new(),
            epoch: Arc::default(),
        }
    }

    /// Counts commits and store errors into `metrics` (without it, into
    /// metrics nobody reads).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The epoch this writer moves around every directory change that
    /// could alter how a key authenticates.
    pub fn directory_epoch(&self) -> Arc<DirectoryEpoch> {
        self.epoch.clone()
    }

    /// What this writer tells of the store's health, for the service.
    pub fn store_health(&self) -> Arc<StoreHealth> {
        self.health.clone()
    }

    /// Runs until every sender of `commands` is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        self.intake = Some(Intake::new(commands));
        let mut last_poll = Instant::now();
        let mut last_sweep = Instant::now();
        loop {
            let wait = self.poll_every.saturating_sub(last_poll.elapsed());
            let Some(Ok(taken)) = self.intake.as_mut().map(|intake| intake.take(wait)) else {
                break;
            };
            if !taken.changes.is_empty() {
                self.process(taken.changes);
            }
            self.guarded("publishing idle and offline", Self::publish_due_transitions);
            self.guarded("clearing expired statuses", Self::expire_due_statuses);
            if last_sweep.elapsed() >= QUEUE_SWEEP_EVERY {
                self.guarded("dropping expired queues", |w| w.hub.sweep());
                last_sweep = Instant::now();
            }
            if taken.catch_up || last_poll.elapsed() >= self.poll_every {
                if let Some(looked) = self.guarded("looking for changes by others", Self::catch_up)
                {
                    self.note_store_health(looked.as_ref().err());
                }
                last_poll = Instant::now();
            } else if taken.install_published {
                let installed = self.guarded(
                    "installing others' published batches",
                    Self::install_published,
                );
                if let Some(installed) = installed {
                    self.note_store_health(installed.as_ref().err());
                }
            }
            if let Some(Err(e)) = self.guarded("reporting this node", Self::tell_store) {
                tracing::debug!(error = %e, "could not report this node");
            }
        }
        self.leave();
        tracing::debug!("writer stopped");
    }

    /// Runs one step of the loop and catches a panic in it; see the
    /// module's documentation for what follows one.
    fn guarded<T>(&mut self, step: &str, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        // Unwind safety: what `f` leaves half done is the batch it built
        // (dropped with it), the store's open batch (ended below), what
        // the writer remembers of the events it made (at worst an event is
        // not sent), and memory of the store's data, which is never changed
        // without `changing_memory` set.
        match panic::catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(out) => Some(out),
            Err(payload) => {
                self.recover(step, &panic_message(payload.as_ref()));
                None
            }
        }
    }

    /// After a panic in `step`: if memory was being changed, exits (see
    /// the module's documentation); else ends whatever batch the store had
    /// open and reads what the store holds, so that memory equals it
    /// whether or not a commit went through.
    fn recover(&mut self, step: &str, message: &str) {
        if self.changing_memory {
            exit_with_memory_unknown(step, message);
        }
        tracing::error!(
            step,
            panic = message,
            "the writer panicked; what it was doing is refused, and it goes on"
        );
        // Whatever the step did, the look below reads every realm.
        self.sequences_total = None;
        self.held_remote.clear();
        let looked = panic::catch_unwind(AssertUnwindSafe(|| {
            self.store.abort_batch();
            self.catch_up()
        }));
        match looked {
            Ok(looked) => self.note_store_health(looked.as_ref().err()),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                if self.changing_memory {
                    exit_with_memory_unknown("catching up after a panic", &message);
                }
                // Memory is as it was: the next look at the store installs
                // whatever the failed step committed.
                tracing::error!(
                    panic = message,
                    "the writer panicked again reading the store; it tries again later"
                );
            }
        }
    }

    /// Runs `f`, which changes memory, marked as doing so: a panic inside
    /// it leaves memory neither as it was nor as the store has it.
    fn changing_memory<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.changing_memory = true;
        let out = f(self);
        self.changing_memory = false;
        out
    }

    /// Logs the store going away and coming back, once each: while it is
    /// away, writes are refused and changes by others are not seen.
    fn note_store_health(&mut self, failure: Option<&StoreError>) {
        if failure.is_some() {
            self.metrics.store_error();
        }
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
        self.health.set_looks_failing(self.store_failing);
    }

    /// Records whether a write to the store (a commit, this node's report)
    /// went through, and logs the store refusing writes and taking them
    /// again, once each.
    fn note_write_health(&self, failure: Option<&StoreError>) {
        if failure.is_some() {
            self.metrics.store_error();
        }
        if !self.health.set_writes_failing(failure.is_some()) {
            return;
        }
        match failure {
            Some(e) => tracing::error!(error = %e, "the store refuses writes"),
            None => tracing::info!("the store takes writes again"),
        }
    }

    fn realm(&self, realm_id: RealmId) -> Option<SharedRealm> {
        self.directory.read().realms.get(&realm_id).cloned()
    }

    /// Evaluates a batch, commits it, applies it, and answers every
    /// change: each with its outcome, or all with [`WriteError::Panicked`]
    /// if a panic stopped the batch (answered once memory equals the store
    /// again).
    fn process(&mut self, batch: Vec<(Change, Ack)>) {
        let (changes, mut acks): (Vec<Change>, Vec<Ack>) = batch.into_iter().unzip();
        let outcomes = self
            .guarded("processing a batch", |w| {
                w.run_batch_joined(changes, Some(&mut acks))
            })
            .unwrap_or_else(|| vec![Err(WriteError::Panicked); acks.len()]);
        for (ack, outcome) in acks.into_iter().zip(outcomes) {
            let _ = ack.send(outcome);
        }
    }

    /// Evaluates, commits and applies a batch; each change's outcome.
    fn run_batch(&mut self, changes: Vec<Change>) -> Vec<Outcome> {
        self.run_batch_joined(changes, None)
    }

    /// [`Writer::run_batch`], taking in as well, if given where their
    /// outcomes go (`late_acks`), the changes to the batch's realms that
    /// arrive while it waits for their locks; an outcome for each change,
    /// those that joined last.
    fn run_batch_joined(
        &mut self,
        changes: Vec<Change>,
        late_acks: Option<&mut Vec<Ack>>,
    ) -> Vec<Outcome> {
        match self.evaluate_batch(changes, late_acks) {
            Ok((mut batch, outcomes)) => self.commit_and_apply(&mut batch, outcomes),
            Err(refused) => refused,
        }
    }

    /// Opens a batch over the changes' realms (taking in the changes that
    /// join it, if `late_acks` is given) and evaluates each change in turn:
    /// the batch, with the outcome each change has if it commits. If the
    /// store cannot start the batch, every change is refused.
    fn evaluate_batch(
        &mut self,
        mut changes: Vec<Change>,
        late_acks: Option<&mut Vec<Ack>>,
    ) -> Result<(Batch, Vec<Outcome>), Vec<Outcome>> {
        let mut realms: Vec<RealmId> = changes.iter().map(|c| c.who().realm_id).collect();
        realms.sort_unstable();
        realms.dedup();
        let begun = self.begin(&realms).and_then(|()| {
            if let (Some(acks), Some(intake)) = (late_acks, self.intake.as_mut()) {
                let room = MAX_BATCH.saturating_sub(changes.len());
                for (change, ack) in intake.late(&realms, room) {
                    changes.push(change);
                    acks.push(ack);
                }
            }
            // A status is read against the directory as others left it
            // (an expiry another node carried out, a newer status).
            if changes.iter().any(Change::is_status) {
                self.poll_directory()
                    .inspect_err(|_| self.store.abort_batch())
            } else {
                Ok(())
            }
        });
        if let Err(e) = begun {
            // Logged once per outage (by `note_store_health`), not per batch.
            self.note_store_health(Some(&e));
            return Err(vec![Err(WriteError::Store(e.to_string())); changes.len()]);
        }
        let mut batch = Batch::default();
        let outcomes = changes
            .into_iter()
            .map(|change| self.evaluate(&mut batch, change))
            .collect();
        Ok((batch, outcomes))
    }

    /// Commits an evaluated batch (or ends it, if it changes nothing) and
    /// applies it to memory; each change's final outcome.
    fn commit_and_apply(&mut self, batch: &mut Batch, outcomes: Vec<Outcome>) -> Vec<Outcome> {
        let started = Instant::now();
        let committed = if batch.mutations.is_empty() {
            self.store.abort_batch();
            // No commit of its own flushes the others' commits it holds; if
            // the store cannot say they are durable, they are read again at
            // the next look (the batch's no-ops stand either way).
            if !self.held_remote.is_empty() && self.store.wait_durable().is_err() {
                self.held_remote.clear();
            }
            Ok(())
        } else {
            let realms = batch.mutation_realms();
            self.store
                .commit_batch_in_realms(&batch.mutations, &realms, &batch.sequences())
        };
        let (locked_at, catch_up) = self.locked_at.take().unwrap_or((started, Duration::ZERO));
        tracing::debug!(
            commands = outcomes.len(),
            mutations = batch.mutations.len(),
            commit_micros = started.elapsed().as_micros() as u64,
            lock_micros = locked_at.elapsed().as_micros() as u64,
            catch_up_micros = catch_up.as_micros() as u64,
            "batch"
        );
        if !batch.mutations.is_empty() {
            if committed.is_ok() {
                let seconds = started.elapsed().as_secs_f64();
                self.metrics.commit(batch.mutations.len(), seconds);
            }
            self.note_write_health(committed.as_ref().err());
        }
        match committed {
            Ok(()) => {
                let produced = self.changing_memory(|w| w.apply(batch));
                self.publish(produced);
                outcomes
            }
            Err(e) => {
                // If the commit's outcome is unknown (the connection broke
                // while committing), the next look at the store installs
                // whatever did commit, and the others' commits it held.
                self.held_remote.clear();
                tracing::error!(error = %e, "commit failed; the batch is refused");
                let failure = WriteError::Store(e.to_string());
                outcomes
                    .into_iter()
                    .map(|outcome| outcome.and(Err(failure.clone())))
                    .collect()
            }
        }
    }

    /// Opens a batch over `realms` and brings them up to the store's state
    /// under the batch's lock. Users another node created a moment ago may
    /// not be known yet; then the batch is given up, the directory read, and
    /// the batch started again (see [`Writer::install_or_retry`]).
    fn begin(&mut self, realms: &[RealmId]) -> Result<(), StoreError> {
        let installed =
            self.install_or_retry(|w| w.begin_caught_up(realms), |w| w.store.abort_batch())?;
        if installed {
            Ok(())
        } else {
            // The directory was just read; the store is inconsistent.
            Err(StoreError::Unavailable(
                "presence records of users the store does not list".to_owned(),
            ))
        }
    }

    /// Opens a batch over `realms` and installs what others committed in
    /// them past memory. False, the batch left open, if a changed user is
    /// not known here; a failure ends the batch.
    fn begin_caught_up(&mut self, realms: &[RealmId]) -> Result<bool, StoreError> {
        self.held_remote.clear();
        let stored = self.store.begin_batch(realms)?;
        let locked_at = Instant::now();
        for (&realm_id, &stored_last) in realms.iter().zip(&stored) {
            let Some(known) = self.behind(realm_id, stored_last) else {
                continue;
            };
            match self.install_since(
                realm_id,
                known,
                stored_last,
                PUBLISHED_WAIT,
                Destination::Batch,
            ) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    self.store.abort_batch();
                    return Err(e);
                }
            }
        }
        self.locked_at = Some((locked_at, locked_at.elapsed()));
        Ok(true)
    }

    /// This node's last update id of a realm (0 for a realm it does not
    /// know), if the store's `stored_last` is past it: memory is behind.
    fn behind(&self, realm_id: RealmId, stored_last: UpdateId) -> Option<UpdateId> {
        let known = self.known(realm_id);
        (stored_last > known).then_some(known)
    }

    /// The last update id memory holds of a realm (0 for a realm it does
    /// not know).
    fn known(&self, realm_id: RealmId) -> UpdateId {
        self.realm(realm_id)
            .map_or_else(UpdateId::default, |realm| realm.read().last_update_id)
    }
}

/// The exit status when a panic left memory unknown: 70, `EX_SOFTWARE`
/// (an internal error), for the supervisor to restart the server.
pub const EXIT_MEMORY_UNKNOWN: i32 = 70;

/// Exits the process after a panic while memory was being changed, saying
/// so in the log first.
fn exit_with_memory_unknown(step: &str, message: &str) -> ! {
    tracing::error!(
        step,
        panic = message,
        status = EXIT_MEMORY_UNKNOWN,
        "the writer panicked while changing memory, which may no longer match the store; \
         exiting, so that a restart loads memory from the store"
    );
    crate::log_writer::flush();
    std::process::exit(EXIT_MEMORY_UNKNOWN)
}

/// The message a panic was raised with.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_messages_are_read_from_either_payload() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(literal.as_ref()), "plain");
        let formatted = std::panic::catch_unwind(|| panic!("{} {}", "made", 1)).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "made 1");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), "(a panic without a message)");
    }
}
