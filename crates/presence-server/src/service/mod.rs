//! The presence service: docs/PROTOCOL.md §3-§5 over in-memory state.
//!
//! Reads (`user_presence`, `realm_presence_*`, `users`) are answered from
//! memory under a realm's read lock and never touch the store. A report
//! that changes nothing (the steady-state ping) is recognised under the same
//! read lock and costs no I/O; anything else goes to the writer thread
//! (see [`writer`]) and is acknowledged once durable. Event queues and
//! streams are opened and read through [`realtime`]; push devices are
//! checked and registered through [`devices`].

pub mod answers;
mod change_log;
pub mod devices;
mod email_index;
pub mod embed;
pub mod emoji;
pub mod epoch;
pub mod health;
pub mod model;
pub mod realtime;
pub mod rules;
pub mod status;
mod user_answer;
pub mod views;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use presence_types::endpoints::users::User;
use thiserror::Error;
use tokio::sync::oneshot;

use crate::clock::{Now, SharedClock};
use crate::config::Config;
use crate::events::{EventSettings, Hub, Owner};
use crate::ids::{UpdateId, UserId};
use crate::keys;
use crate::metrics::{Metrics, Sampled};
use crate::store::{Notice, Store, StoreError};
pub use answers::{Format, SharedAnswer};
use answers::{Span, Window};
use devices::DeviceError;
use embed::{EmbedAuthError, EmbedCaller};
use epoch::{DirectoryEpoch, Epoch};
use health::StoreHealth;
use model::KeyId;
use model::{Directory, Realm, SharedRealm};
pub use views::iso8601;
use writer::{Change, Command, UserRef, WriteError, Writer};

/// The settings the presence rules use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSettings {
    /// Seconds after which a user shows as offline.
    pub offline_threshold_secs: i64,
    /// Reports closer together than this are coalesced.
    pub min_freq_secs: i64,
    /// The most client records per user.
    pub max_clients_per_user: usize,
    /// The most push devices per user.
    pub max_devices_per_user: usize,
    /// The default history window, in days.
    pub history_limit_days: i64,
    /// How often clients are told to report, in seconds.
    pub ping_interval_secs: i64,
}

impl RuleSettings {
    /// The rule settings of a configuration.
    pub fn from_config(config: &Config) -> Self {
        RuleSettings {
            offline_threshold_secs: config.offline_threshold_secs,
            min_freq_secs: config.presence_update_min_freq_secs,
            max_clients_per_user: config.max_clients_per_user,
            max_devices_per_user: config.max_devices_per_user,
            history_limit_days: config.history_limit_days,
            ping_interval_secs: config.ping_interval_secs,
        }
    }
}

/// An authenticated caller.
#[derive(Clone)]
pub struct Caller {
    realm: SharedRealm,
    who: UserRef,
    /// Whether the caller is a bot (see [`Caller::check_may_report`]).
    is_bot: bool,
}

/// A caller that reads a realm: a user, or a page through an embed key.
/// The read-only endpoints take either.
#[derive(Clone, Copy)]
pub enum Reader<'a> {
    /// A user (a bot included).
    User(&'a Caller),
    /// A page, through an embed key.
    Embed(&'a EmbedCaller),
}

impl Reader<'_> {
    fn realm(&self) -> &SharedRealm {
        match self {
            Reader::User(caller) => &caller.realm,
            Reader::Embed(caller) => &caller.realm,
        }
    }

    /// Whose event queues the reader's are.
    pub fn owner(&self) -> Owner {
        match self {
            Reader::User(caller) => caller.owner(),
            Reader::Embed(caller) => caller.key.owner(),
        }
    }
}

impl Caller {
    /// The caller's user id.
    pub fn user_id(&self) -> UserId {
        self.who.user_id
    }

    /// Whose event queues the caller's are.
    pub fn owner(&self) -> Owner {
        Owner::User(self.who.user_id)
    }

    /// Refuses a bot: bots have no presence, so they may read it but not
    /// report it (docs/PROTOCOL.md §6.4). The check comes before anything
    /// else of a report is looked at.
    pub fn check_may_report(&self) -> Result<(), ServiceError> {
        if self.is_bot {
            return Err(ServiceError::BotReport);
        }
        Ok(())
    }

    /// A caller, user `user_id` of an empty realm of its own, for tests of
    /// what keeps callers.
    #[cfg(test)]
    pub(crate) fn for_tests(user_id: i64) -> Caller {
        let row = crate::store::RealmRow {
            id: crate::ids::RealmId(1),
            string_id: "test".to_owned(),
            name: "Test".to_owned(),
            presence_disabled: false,
            deactivated: false,
            date_created: 0,
        };
        Caller {
            realm: Arc::new(RwLock::new(model::Realm::new(row))),
            who: UserRef {
                realm_id: crate::ids::RealmId(1),
                user_id: UserId(user_id),
            },
            is_bot: false,
        }
    }
}

/// Why a caller was not authenticated (docs/PROTOCOL.md §2.1; each maps to one message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The key is not 32 ASCII letters and digits.
    #[error("Malformed API key")]
    MalformedKey,
    /// No user has this key, or the email is not its owner's.
    #[error("Invalid API key")]
    InvalidKey,
    /// The caller's realm is deactivated.
    #[error("This organization has been deactivated")]
    RealmDeactivated,
    /// The caller is deactivated.
    #[error("Account is deactivated")]
    UserDeactivated,
}

/// The id under which the key index holds an API key, once the key is
/// checked for its shape (surrounding spaces ignored, as Zulip does).
pub fn key_id_of(key: &str) -> Result<KeyId, AuthError> {
    let key = key.trim();
    if !keys::is_well_formed(key) {
        return Err(AuthError::MalformedKey);
    }
    Ok(KeyId::of(&keys::hash(key)))
}

/// Why a presence operation failed (each maps to one message of
/// docs/PROTOCOL.md §1.10 or §6).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceError {
    /// The target is unknown, deactivated or in another realm.
    #[error("No such user")]
    NoSuchUser,
    /// The target is a bot.
    #[error("Presence is not supported for bot users.")]
    TargetIsBot,
    /// The target has never reported (the value as the caller gave it).
    #[error("No presence data for {0}")]
    NoPresenceData(String),
    /// A bot tried to report presence.
    #[error("This endpoint does not accept bot requests.")]
    BotReport,
    /// The push device to remove is not registered.
    #[error("Token does not exist")]
    TokenDoesNotExist,
    /// The user has as many push devices as one may have (the limit).
    #[error("Too many push devices (the limit is {0}); remove one first")]
    TooManyDevices(usize),
    /// A push device's token or app id was refused.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A status change was refused, or its target is deactivated.
    #[error(transparent)]
    Status(#[from] status::StatusError),
    /// The change could not be made durable; nothing changed.
    #[error("The server could not save the change; try again")]
    Unavailable,
}

/// Why the service did not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The store failed: subscribing, loading, or announcing this node.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system would not start the writer thread.
    #[error("cannot start the writer thread")]
    WriterThread(#[source] std::io::Error),
}

impl From<WriteError> for ServiceError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::TokenDoesNotExist => ServiceError::TokenDoesNotExist,
            WriteError::TooManyDevices(limit) => ServiceError::TooManyDevices(limit),
            WriteError::UnknownUser => ServiceError::NoSuchUser,
            WriteError::Store(_) | WriteError::Stopped | WriteError::Panicked => {
                ServiceError::Unavailable
            }
        }
    }
}

/// The presence service. Cheap to share behind an `Arc`.
pub struct Service {
    directory: Arc<RwLock<Directory>>,
    /// The writer's queue. The store's subscription holds only a weak
    /// reference, so that taking this out stops the writer.
    commands: RwLock<Option<Arc<mpsc::Sender<Command>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    clock: SharedClock,
    rules: RuleSettings,
    hub: Arc<Hub>,
    /// What the writer last learned of the store.
    store_health: Arc<StoreHealth>,
    /// What the node counts, for `/metrics`.
    metrics: Arc<Metrics>,
    /// Moved by the writer around every directory change that could alter
    /// how a key authenticates.
    epoch: Arc<DirectoryEpoch>,
}

impl Service {
    /// Loads everything from `store` and starts the writer thread that owns
    /// it, counting its commits and store errors into `metrics`.
    pub fn start(
        mut store: Box<dyn Store>,
        config: &Config,
        clock: SharedClock,
        metrics: Arc<Metrics>,
    ) -> Result<Service, StartError> {
        let (tx, rx) = mpsc::channel();
        let tx = Arc::new(tx);
        // Subscribed before loading, so that nothing committed after the
        // load's snapshot goes unnoticed.
        let writer_queue = Arc::downgrade(&tx);
        store.subscribe(Box::new(move |notice| match writer_queue.upgrade() {
            Some(queue) => {
                match notice {
                    Notice::Changed => {
                        let _ = queue.send(Command::CatchUp);
                    }
                    Notice::Published => {
                        let _ = queue.send(Command::InstallPublished);
                    }
                    Notice::Quiet => {}
                }
                true
            }
            None => false,
        }))?;
        let mut builder = writer::DirectoryBuilder::default();
        let version = store.load(&mut |item| builder.add(item))?;
        // What was loaded is shown from now on: it must be on disk.
        store.wait_durable()?;
        let directory = Arc::new(RwLock::new(builder.finish()));
        let rules = RuleSettings::from_config(config);
        let hub = Arc::new(Hub::new(EventSettings::from_config(config), clock.clone()));
        let mut writer = Writer::new(
            store,
            directory.clone(),
            rules,
            version,
            Duration::from_millis(config.directory_poll_ms),
            hub.clone(),
            clock.clone(),
        )
        .with_metrics(metrics.clone());
        let epoch = writer.directory_epoch();
        // Reported before the first request is served: from then on, an
        // admin command waits for this node to take its changes.
        writer.announce()?;
        let store_health = writer.store_health();
        let handle = std::thread::Builder::new()
            .name("presence-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(StartError::WriterThread)?;
        Ok(Service {
            directory,
            commands: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            clock,
            rules,
            hub,
            store_health,
            metrics,
            epoch,
        })
    }

    /// The directory's epoch now (see [`DirectoryEpoch`]): what is read
    /// from the directory after taking it may be kept while it stays the
    /// same.
    pub fn directory_epoch(&self) -> Epoch {
        self.epoch.current()
    }

    /// What the node counts; the gauges are read when a scrape comes (see
    /// [`Service::sampled`]).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The gauges `/metrics` reads at scrape time.
    pub fn sampled(&self) -> Sampled {
        Sampled {
            event_queues: self.hub.queue_count(),
            streams_open: self.hub.open_streams(),
        }
    }

    /// Whether the store failed the writer's last look or last write (see
    /// [`StoreHealth`]): writes are refused, or others' changes unseen.
    pub fn store_failing(&self) -> bool {
        self.store_health.is_failing()
    }

    /// Stops the writer after it has committed everything already sent to
    /// it, and ends every event wait and stream.
    pub fn close(&self) {
        self.hub.shutdown();
        self.commands.write().take();
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
    }

    /// The rule settings in force.
    pub fn rules(&self) -> RuleSettings {
        self.rules
    }

    /// The server's time, fractional Unix seconds.
    pub fn now_f64(&self) -> f64 {
        self.clock.now_f64()
    }

    /// The server's time, read once for use in several forms.
    pub fn now(&self) -> Now {
        self.clock.now()
    }

    /// Finds the user a Basic-auth pair belongs to (docs/PROTOCOL.md §2.1, in
    /// Zulip's order).
    pub fn authenticate(&self, email: &str, key: &str) -> Result<Caller, AuthError> {
        self.authenticate_id(email, key_id_of(key)?)
    }

    /// How many API keys the server knows: what sizes the caches of
    /// verified credentials.
    pub fn key_count(&self) -> usize {
        self.directory.read().keys.len()
    }

    /// [`Service::authenticate`] for a key already checked and hashed
    /// ([`key_id_of`]): what a credential seen before costs.
    pub fn authenticate_id(&self, email: &str, key_id: KeyId) -> Result<Caller, AuthError> {
        let (realm, who) = {
            let directory = self.directory.read();
            let (stored, owner) = directory
                .keys
                .get_key_value(&key_id)
                .ok_or(AuthError::InvalidKey)?;
            let (realm_id, user_id) = (owner.realm_id(), owner.user_id());
            // The map found it; compare once more in constant time all the same.
            if !keys::ids_equal(&stored.0, &key_id.0) {
                return Err(AuthError::InvalidKey);
            }
            let realm = directory
                .realms
                .get(&realm_id)
                .cloned()
                .ok_or(AuthError::InvalidKey)?;
            (realm, UserRef { realm_id, user_id })
        };
        let is_bot = {
            let guard = realm.read();
            let user = guard.users.get(&who.user_id).ok_or(AuthError::InvalidKey)?;
            let account = &user.account;
            if !crate::store::same_email(email, account.email()) {
                return Err(AuthError::InvalidKey);
            }
            if guard.row().deactivated {
                return Err(AuthError::RealmDeactivated);
            }
            if !account.is_active {
                return Err(AuthError::UserDeactivated);
            }
            account.is_bot
        };
        Ok(Caller { realm, who, is_bot })
    }

    /// Finds the embed key a page's token names, if a page on `origin` (the
    /// request's `Origin` header; absent outside browsers and on the
    /// server's own pages) may use it.
    pub fn authenticate_embed(
        &self,
        token: &str,
        origin: Option<&str>,
    ) -> Result<EmbedCaller, EmbedAuthError> {
        if !embed::is_embed_key(token) {
            return Err(EmbedAuthError::Invalid);
        }
        let id = KeyId::of(&keys::hash(token));
        let (key, realm) = {
            let directory = self.directory.read();
            let key = directory
                .embed_keys
                .find(&id)
                .cloned()
                .ok_or(EmbedAuthError::Invalid)?;
            let realm = directory.realms.get(&key.realm_id).cloned();
            (key, realm)
        };
        if key.revoked {
            return Err(EmbedAuthError::Revoked);
        }
        let realm = realm.ok_or(EmbedAuthError::Invalid)?;
        if realm.read().row().deactivated {
            return Err(EmbedAuthError::RealmDeactivated);
        }
        if origin.is_some_and(|origin| !key.allows(origin)) {
            return Err(EmbedAuthError::OriginNotAllowed);
        }
        key.used(self.clock.now_secs());
        Ok(EmbedCaller { realm, key })
    }

    /// Whether some embed key, revoked or not, names `origin`: a page there
    /// may be told why its request was refused.
    pub fn embed_origin_known(&self, origin: &str) -> bool {
        self.directory.read().embed_keys.knows_origin(origin)
    }

    async fn send(&self, change: Change) -> Result<(), ServiceError> {
        let (ack, done) = oneshot::channel();
        {
            let commands = self.commands.read();
            let sender = commands.as_ref().ok_or(ServiceError::Unavailable)?;
            sender
                .send(Command::Change(change, ack))
                .map_err(|_| ServiceError::Unavailable)?;
        }
        done.await.map_err(|_| ServiceError::Unavailable)??;
        Ok(())
    }

    /// Records a presence report from the caller's client (docs/PROTOCOL.md §4.1);
    /// returns once it is durable, or at once if it changes nothing.
    pub async fn report(
        &self,
        caller: &Caller,
        client: &str,
        active: bool,
    ) -> Result<(), ServiceError> {
        caller.check_may_report()?;
        let now = self.clock.now_secs();
        if !self.report_would_change(caller, client, active, now) {
            return Ok(());
        }
        self.send(Change::Report {
            who: caller.who,
            client: Arc::from(client),
            active,
            now,
        })
        .await
    }

    /// The fast path: whether a report could change anything. The writer
    /// decides again with the state it holds; this only spares it the
    /// reports that are certainly no-ops.
    fn report_would_change(&self, caller: &Caller, client: &str, active: bool, now: i64) -> bool {
        let realm = caller.realm.read();
        if realm.row().presence_disabled {
            return false;
        }
        let Some(user) = realm.users.get(&caller.who.user_id) else {
            return false;
        };
        if !user.account.presence_enabled {
            return false;
        }
        let current = user.client(client).map(|r| r.times());
        rules::apply_report(current, active, now, self.rules.min_freq_secs).is_some()
    }

    /// One user's presence object (the legacy entries, `aggregated.status`
    /// set to `offline` past the threshold at `now`, and the modern
    /// timestamps), appended to `out` as JSON: the single-user GET's
    /// `presence`.
    pub fn user_presence(
        &self,
        reader: Reader<'_>,
        user_id_or_email: &str,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Result<(), ServiceError> {
        let now = now.secs();
        let realm = reader.realm().read();
        let target = realm
            .find_active(user_id_or_email)
            .ok_or(ServiceError::NoSuchUser)?;
        if target.account.is_bot {
            return Err(ServiceError::TargetIsBot);
        }
        let no_data = || ServiceError::NoPresenceData(user_id_or_email.to_owned());
        if realm.row().presence_disabled {
            return Err(no_data());
        }
        let threshold = self.rules.offline_threshold_secs;
        let offline = |timestamp| rules::is_offline(timestamp, now, threshold);
        if realm.user_answers.append(target, offline, out) {
            Ok(())
        } else {
            Err(no_data())
        }
    }

    /// Everyone's presence in the caller's realm, serialized.
    ///
    /// With `since > 0` (modern format only) just the users changed after
    /// that update id, found through the realm's change index with no time
    /// window; otherwise everyone with a report inside the history window
    /// (`days`, default from the settings), shared between readers until
    /// the realm changes (see [`answers`] for what is shared and why no
    /// caller can make it be built for others again).
    pub fn realm_presence(
        &self,
        reader: Reader<'_>,
        format: Format,
        since: Option<UpdateId>,
        days: Option<i64>,
    ) -> Arc<SharedAnswer> {
        self.realm_answer(&reader.realm().read(), format, since, days)
    }

    /// [`Service::realm_presence`] over a realm the caller has locked: a new
    /// event queue takes its snapshot under the lock it is registered under.
    fn realm_answer(
        &self,
        realm: &Realm,
        format: Format,
        since: Option<UpdateId>,
        days: Option<i64>,
    ) -> Arc<SharedAnswer> {
        let now = self.clock.now_secs();
        if realm.row().presence_disabled {
            return SharedAnswer::disabled();
        }
        // A window of 0 days asks for no presence at all, incremental or
        // not: Zulip's `get_presence_dict_by_realm` queries nothing for it.
        if days == Some(0) {
            return SharedAnswer::empty();
        }
        if let (Format::Modern, Some(since)) = (format, since.filter(|&s| s > UpdateId::default()))
        {
            return Arc::new(changed_since(realm, since));
        }
        window_answer(realm, format, days, self.rules.history_limit_days, now)
    }

    /// The caller's own account.
    pub fn own_user(&self, caller: &Caller) -> Result<User, ServiceError> {
        let realm = caller.realm.read();
        let user = realm
            .users
            .get(&caller.who.user_id)
            .ok_or(ServiceError::NoSuchUser)?;
        Ok(views::user_view(&user.account))
    }

    /// The users of the reader's realm, by id: every one for a user; for a
    /// page, the active ones, bots only if `include_bots` (a directory
    /// lists people).
    pub fn users(&self, reader: Reader<'_>, include_bots: bool) -> Vec<User> {
        let realm = reader.realm().read();
        let page = matches!(reader, Reader::Embed(_));
        let mut users: Vec<User> = realm
            .users
            .values()
            .filter(|u| !page || (u.account.is_active && (include_bots || !u.account.is_bot)))
            .map(|u| views::user_view(&u.account))
            .collect();
        users.sort_by_key(|u| u.user_id);
        users
    }

    /// Changes the caller's settings (docs/PROTOCOL.md §4.2).
    pub async fn update_settings(
        &self,
        caller: &Caller,
        client: Arc<str>,
        presence_enabled: Option<bool>,
        enable_offline_push_notifications: Option<bool>,
    ) -> Result<(), ServiceError> {
        if presence_enabled.is_none() && enable_offline_push_notifications.is_none() {
            return Ok(());
        }
        let now = self.clock.now_secs();
        self.send(Change::Settings {
            who: caller.who,
            client,
            presence_enabled,
            enable_offline_push_notifications,
            now,
        })
        .await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.close();
    }
}

/// The users changed after update id `since`, in the modern format.
fn changed_since(realm: &model::Realm, since: UpdateId) -> SharedAnswer {
    let mut changed = Vec::new();
    let mut last = None;
    // Each user comes once, with the latest change (see `ChangeLog::after`).
    for (id, user) in realm.changes.after(since, &realm.users) {
        if user.is_listed() {
            last = Some(id);
            changed.push((user.account.id, views::modern(user)));
        }
    }
    SharedAnswer {
        presences: Bytes::from(views::modern_map(changed)),
        deflated: OnceLock::new(),
        last_update_id: last,
    }
}

/// The earliest `last_connected_time` inside a history window of `days`,
/// `now` less that many days as Zulip computes it, or `None` for 0 days,
/// which lists nobody. A negative window starts in the future, so it lists
/// only reports stamped after that. A window reaching back past the Unix
/// epoch reaches to it: no stored time is earlier, so every number of
/// days beyond is the same window, up to `i64::MAX` (Zulip's date
/// arithmetic fails past some 739,000 days, back to the year 1).
fn window_start(days: i64, now: i64) -> Option<i64> {
    (days != 0).then(|| now.saturating_sub(days.saturating_mul(86_400)).max(0))
}

/// Everyone in a realm with a report inside a history window of `days`
/// (`default_days` if not given) at `now`, shared through the realm's
/// answers.
fn window_answer(
    realm: &Realm,
    format: Format,
    days: Option<i64>,
    default_days: i64,
    now: i64,
) -> Arc<SharedAnswer> {
    let days = days.unwrap_or(default_days);
    let window = if days == default_days {
        Window::Default
    } else {
        Window::Other
    };
    let Some(start) = window_start(days, now) else {
        return SharedAnswer::empty();
    };
    realm
        .answers
        .get_or_build(format, window, realm.version, start, || {
            everyone_since(realm, format, start)
        })
}

/// Everyone with a report at or after `start`, and the span of starts
/// whose answer this also is.
fn everyone_since(realm: &model::Realm, format: Format, start: i64) -> (SharedAnswer, Span) {
    let mut span = Span::default();
    let mut last = None;
    let mut legacy = BTreeMap::new();
    let mut modern = BTreeMap::new();
    for user in realm.users.values().filter(|u| u.is_listed()) {
        let Some(seen) = user.last_connected() else {
            continue;
        };
        if seen < start {
            span.leave_out(seen);
            continue;
        }
        match format {
            Format::Legacy => {
                let Some(presence) = views::legacy(user) else {
                    continue;
                };
                legacy.insert(user.account.email(), presence);
            }
            Format::Modern => {
                modern.insert(user.account.id, views::modern(user));
            }
        }
        span.keep(seen);
        last = Some(last.map_or(user.update_id, |l: UpdateId| l.max(user.update_id)));
    }
    let presences = match format {
        Format::Legacy => serde_json::to_vec(&legacy),
        Format::Modern => serde_json::to_vec(&modern),
    }
    .expect("presence serializes");
    let answer = SharedAnswer {
        presences: Bytes::from(presences),
        deflated: OnceLock::new(),
        last_update_id: last,
    };
    (answer, span)
}

#[cfg(test)]
mod tests;
