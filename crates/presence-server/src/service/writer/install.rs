//! Installing committed changes in memory, this node's batches and what
//! others committed, and the presence events they make.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use super::super::model::{Account, KeyId, KeyOwner, Realm};
use super::super::rules::{Availability, availability, comes_online, next_change};
use super::super::views;
use super::published::{self, RemoteChanges};
use super::{Batch, Deadline, UserRef, Writer};
use crate::events::{EncodedEvent, Owner, PresenceChange, PresenceEvents};
use crate::ids::{RealmId, UpdateId};
use crate::metrics::CatchUp;
use crate::store::{DirectoryChanges, StoreError};
use presence_types::endpoints::events::Event;
use presence_types::endpoints::user_status::UserStatusEvent;

/// Where others' commits go once made into memory's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Destination {
    /// Into memory now, once the store says they are durable (between
    /// batches).
    Memory,
    /// Held for the open batch, which is evaluated after them, and shown
    /// with it once its commit is durable (a commit is flushed with
    /// everything before it). So the batch need not wait for another
    /// node's commit to reach the disk while it holds the lock.
    Batch,
}

/// An event made under a realm's lock, published after it.
pub(super) struct Produced {
    realm_id: RealmId,
    seq: u64,
    news: News,
}

/// What an event tells.
enum News {
    /// What others now see of a user's presence.
    Presence(PresenceChange),
    /// What changed in a user's status.
    Status(UserStatusEvent),
}

impl Writer {
    /// Installs a committed batch in memory and returns the events it makes.
    pub(super) fn apply(&mut self, batch: &mut Batch) -> Vec<Produced> {
        let now = self.clock.now_secs();
        // Others' commits the batch was evaluated after come first.
        let mut produced = self.install_held();
        for (who, staged) in batch.users.drain() {
            if !staged.presence_changed && !staged.account_changed && !staged.status_changed {
                continue;
            }
            let Some(realm) = self.realm(who.realm_id) else {
                continue;
            };
            let mut realm = realm.write();
            let was_enabled = realm
                .users
                .get(&who.user_id)
                .is_some_and(|u| u.account.presence_enabled);
            if staged.account_changed {
                realm.put_account(staged.account);
            }
            let status = staged.status.filter(|_| staged.status_changed);
            produced.extend(self.status_produced(who, &mut realm, status, was_enabled));
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
            self.deadlines.insert(Deadline { at, who });
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
            news: News::Presence(change),
        })
    }

    /// [`Writer::install_status`], as an event to publish.
    fn status_produced(
        &mut self,
        who: UserRef,
        realm: &mut Realm,
        status: Option<crate::store::StatusRow>,
        was_enabled: bool,
    ) -> Option<Produced> {
        let (seq, event) = self.install_status(who, realm, status, was_enabled)?;
        Some(Produced {
            realm_id: who.realm_id,
            seq,
            news: News::Status(event),
        })
    }

    /// Produces the events of availability changes that are due by the
    /// service clock: reports aging into idle or offline.
    pub(super) fn publish_due_transitions(&mut self) {
        let now = self.clock.now_secs();
        let mut produced = Vec::new();
        while let Some(&Deadline { at, who }) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(realm) = self.realm(who.realm_id) else {
                continue;
            };
            let mut realm = realm.write();
            produced.extend(self.transition(who, &mut realm, now, false));
        }
        self.publish(produced);
    }

    /// Encodes each event once and hands it to the hub, in the order made.
    pub(super) fn publish(&self, produced: Vec<Produced>) {
        for Produced {
            realm_id,
            seq,
            news,
        } in produced
        {
            match news {
                News::Presence(change) => match PresenceEvents::encode(&change) {
                    Some(events) => self.hub.publish(realm_id, seq, &events),
                    None => tracing::error!(
                        user_id = change.user_id.0,
                        "a presence event could not be encoded"
                    ),
                },
                News::Status(event) => {
                    let user_id = event.user_id;
                    match EncodedEvent::new(&Event::UserStatus(event)) {
                        Some(encoded) => self.hub.publish_status(realm_id, seq, &encoded),
                        None => tracing::error!(user_id, "a status event could not be encoded"),
                    }
                }
            }
        }
    }

    /// Installs what others wrote since the last look: realms and users
    /// first (presence may belong to a user created a moment ago), then
    /// each realm's presence changes.
    pub(super) fn catch_up(&mut self) -> Result<(), StoreError> {
        self.poll_directory()?;
        // One number first: the list of every realm's id only if it moved.
        let total = self.store.sequences_total()?;
        if self.sequences_total == Some(total) {
            return Ok(());
        }
        let mut installed_all = true;
        for stored in self.store.sequences()? {
            let realm_id = stored.realm_id;
            let Some(known) = self.behind(realm_id, stored.last_update_id) else {
                continue;
            };
            // A user newer than the directory read above is read on the retry.
            // Published batches are taken if they are here already: nothing
            // holds a lock while this waits, but the writer's next batch does.
            let stored = stored.last_update_id;
            let install = |w: &mut Self| {
                w.install_since(realm_id, known, stored, Duration::ZERO, Destination::Memory)
            };
            if !self.install_or_retry(install, |_| {})? {
                installed_all = false;
                tracing::error!(
                    realm_id = realm_id.0,
                    "presence of users the store does not list"
                );
            }
        }
        // A realm left behind is looked at again at the next poll.
        self.sequences_total = installed_all.then_some(total);
        Ok(())
    }

    /// Installs, realm by realm, the batches other nodes published since
    /// memory's last update id, from the store's inbox, with no look at
    /// the store: a chain that follows memory without a gap is every commit
    /// of its range. If a realm's batches do not follow memory (a
    /// notification went missing), or name a user or realm not known here,
    /// catches up by reading instead.
    pub(super) fn install_published(&mut self) -> Result<(), StoreError> {
        let mut chains = Vec::new();
        for realm_id in self.store.published_realms() {
            let known = self.known(realm_id);
            match self.store.published_following(realm_id, known) {
                None => return self.catch_up(),
                Some(chain) if !chain.is_empty() => chains.push((realm_id, chain)),
                Some(_) => {}
            }
        }
        if chains.is_empty() {
            return Ok(());
        }
        // A batch is published at its commit, which may precede its flush.
        self.store.wait_durable()?;
        for (realm_id, chain) in chains {
            let until = chain
                .last()
                .map_or_else(UpdateId::default, |batch| batch.last);
            if !self.install_remote(realm_id, |realm| {
                published::changes_from(realm, until, &chain)
            }) {
                return self.catch_up();
            }
            self.metrics.catch_up(CatchUp::Published);
        }
        Ok(())
    }

    /// Runs `attempt`, which reads others' presence changes and installs
    /// them, and returns whether every changed user was known here. If one
    /// was not (another node created it after this node last read the
    /// directory), `give_up` releases what the attempt holds, the directory
    /// is read, and the attempt runs once more; if a user is still missing,
    /// `give_up` runs again and the answer is false: the store holds
    /// presence of users it does not list. The one retry path of both a
    /// batch's start and the catch-up between batches.
    pub(super) fn install_or_retry(
        &mut self,
        mut attempt: impl FnMut(&mut Self) -> Result<bool, StoreError>,
        mut give_up: impl FnMut(&mut Self),
    ) -> Result<bool, StoreError> {
        if attempt(self)? {
            return Ok(true);
        }
        give_up(self);
        self.poll_directory()?;
        let installed = attempt(self)?;
        if !installed {
            give_up(self);
        }
        Ok(installed)
    }

    /// Installs a realm's presence changes after update id `known` up to
    /// `stored` (at least), into `destination`: from the batches other
    /// nodes published, if the store has (or, within `wait`, gets) the ones
    /// that cover exactly that, else read from the store. False, installing
    /// nothing, if a changed user is not known here.
    pub(super) fn install_since(
        &mut self,
        realm_id: RealmId,
        known: UpdateId,
        stored: UpdateId,
        wait: Duration,
        destination: Destination,
    ) -> Result<bool, StoreError> {
        let started = Instant::now();
        let chain = self.store.published(realm_id, known, stored, wait);
        let waited = started.elapsed();
        // A user the directory does not know yet: the read's retry sorts it out.
        let from_chain = match chain {
            Some(chain) => self.place(realm_id, destination, |realm| {
                published::changes_from(realm, stored, &chain)
            })?,
            None => false,
        };
        let (installed, source) = if from_chain {
            (true, CatchUp::Published)
        } else {
            let changes = self.store.presence_changes(realm_id, known)?;
            let installed = self.place(realm_id, destination, |realm| {
                published::changes_read(realm, changes)
            })?;
            (installed, CatchUp::Read)
        };
        self.metrics.catch_up(source);
        tracing::debug!(
            realm_id = realm_id.0,
            from = known.0,
            to = stored.0,
            source = ?source,
            wait_micros = waited.as_micros() as u64,
            micros = started.elapsed().as_micros() as u64,
            "installed others' changes"
        );
        Ok(installed)
    }

    /// Puts others' changes of a realm, made from memory by `changes`,
    /// where `destination` says. False if the realm or a changed user is
    /// not known here yet (the directory is behind).
    fn place(
        &mut self,
        realm_id: RealmId,
        destination: Destination,
        changes: impl FnOnce(&Realm) -> Option<RemoteChanges>,
    ) -> Result<bool, StoreError> {
        match destination {
            Destination::Memory => {
                // What was read or taken so far may not be on disk yet.
                self.store.wait_durable()?;
                Ok(self.install_remote(realm_id, changes))
            }
            Destination::Batch => {
                let Some(shared) = self.realm(realm_id) else {
                    return Ok(false);
                };
                let Some(changes) = changes(&shared.read()) else {
                    return Ok(false);
                };
                self.held_remote.insert(realm_id, changes);
                Ok(true)
            }
        }
    }

    /// Installs the others' commits the batch held (see
    /// [`Destination::Batch`]), under each realm's write lock; the events
    /// they make.
    pub(super) fn install_held(&mut self) -> Vec<Produced> {
        let held = std::mem::take(&mut self.held_remote);
        let mut produced = Vec::new();
        for (realm_id, changes) in held {
            let Some(shared) = self.realm(realm_id) else {
                continue;
            };
            let mut realm = shared.write();
            produced.extend(self.install_users(realm_id, &mut realm, changes));
        }
        produced
    }

    /// Installs another writer's presence changes in a realm, made from
    /// memory by `changes` under the realm's write lock, and publishes their
    /// events. Returns false, installing nothing, if the realm or a changed
    /// user is not known here yet (the directory is behind).
    pub(super) fn install_remote(
        &mut self,
        realm_id: RealmId,
        changes: impl FnOnce(&Realm) -> Option<RemoteChanges>,
    ) -> bool {
        let Some(shared) = self.realm(realm_id) else {
            // A realm newer than the directory: the retry reads it.
            return false;
        };
        let produced = {
            let mut realm = shared.write();
            let Some(changes) = changes(&realm) else {
                return false;
            };
            self.changing_memory(|w| w.install_users(realm_id, &mut realm, changes))
        };
        self.publish(produced);
        true
    }

    /// Installs the changed users' records in a realm whose lock the caller
    /// holds; the events they make.
    fn install_users(
        &mut self,
        realm_id: RealmId,
        realm: &mut Realm,
        changes: RemoteChanges,
    ) -> Vec<Produced> {
        let now = self.clock.now_secs();
        let mut produced = Vec::new();
        let mut users: Vec<_> = changes.users.into_values().collect();
        // The change index takes ids in increasing order.
        users.sort_unstable_by_key(|user| (user.update_id, user.user_id));
        for changed in users {
            let (user_id, update_id) = (changed.user_id, changed.update_id);
            // Changes held for a batch were made from the realm before the
            // batch read the directory; a user deleted since has nothing
            // left to show.
            let Some(user) = realm.users.get(&user_id) else {
                continue;
            };
            if update_id <= user.update_id {
                continue;
            }
            let had_records = !user.clients.is_empty();
            let previous_active = user.last_active();
            let clients = changed.clients;
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
            produced.extend(self.transition(who, realm, now, came_online));
        }
        realm.last_update_id = realm.last_update_id.max(changes.last_update_id);
        produced
    }

    /// Loads realms and users that changed in the store since the last look.
    pub(super) fn poll_directory(&mut self) -> Result<(), crate::store::StoreError> {
        let version = self.store.directory_version()?;
        if version == self.directory_version {
            return Ok(());
        }
        let changes = self.store.directory_changes(self.directory_version)?;
        // Callers kept by the credential cache stay good through every other
        // change (a name, a setting, a status, an embed key), which is most
        // of what is installed here: the epoch moves only for those that
        // change how a key authenticates.
        let produced = if self.affects_credentials(&changes) {
            let epoch = self.epoch.clone();
            self.changing_memory(|w| epoch.changing(|| w.install_directory(changes)))
        } else {
            self.changing_memory(|w| w.install_directory(changes))
        };
        self.publish(produced);
        Ok(())
    }

    /// Whether installing `changes` would change how some API key
    /// authenticates, or as whom: a user deleted, a realm deactivated or
    /// reactivated, or a known user's key, email, activity or bot flag
    /// changed. A user not known yet counts only if its key is known
    /// (someone else's, or its own in another realm).
    fn affects_credentials(&self, changes: &DirectoryChanges) -> bool {
        if !changes.deleted_users.is_empty() {
            return true;
        }
        let directory = self.directory.read();
        let realm_turned = changes.realms.iter().any(|row| {
            directory
                .realms
                .get(&row.id)
                .is_some_and(|realm| realm.read().row().deactivated != row.deactivated)
        });
        realm_turned
            || changes.users.iter().any(|row| {
                let owner = directory.keys.get(&KeyId::of(&row.api_key_hash));
                let Some(realm) = directory.realms.get(&row.realm_id) else {
                    return owner.is_some();
                };
                let realm = realm.read();
                let Some(user) = realm.users.get(&row.id) else {
                    return owner.is_some();
                };
                let account = &user.account;
                owner.is_none_or(|o| o.user_id() != row.id || o.realm_id() != row.realm_id)
                    || account.email() != row.email
                    || account.is_active != row.is_active
                    || account.is_bot != row.is_bot
            })
    }

    /// Installs changed realms, users, embed keys and statuses; the status
    /// events they make.
    fn install_directory(&mut self, changes: DirectoryChanges) -> Vec<Produced> {
        let mut produced = Vec::new();
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
            if self.realm(row.realm_id).is_none() {
                continue;
            }
            if let Some(owner) = KeyOwner::new(row.realm_id, row.id) {
                keys.push((KeyId::of(&row.api_key_hash), owner));
            }
            changed.insert(row.id);
            produced.extend(self.install_account(row));
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
        for gone in changes.deleted_users {
            // Refused from now on, then forgotten with its presence.
            self.directory
                .write()
                .keys
                .retain(|_, owner| owner.user_id() != gone.user_id);
            if let Some(realm) = self.realm(gone.realm_id) {
                realm.write().remove_user(gone.user_id);
            }
            self.shown.remove(&gone.user_id);
            self.hub.drop_owner(Owner::User(gone.user_id));
        }
        for row in changes.embed_keys {
            // Refused from now on; then the pages streaming with it are cut off.
            self.directory.write().embed_keys.put(&row);
            if row.revoked_at.is_some() {
                self.hub.drop_owner(Owner::EmbedKey(row.id));
            }
        }
        for row in changes.statuses {
            produced.extend(self.install_remote_status(row));
        }
        tracing::debug!(
            from = self.directory_version,
            to = changes.version,
            "loaded directory changes"
        );
        self.directory_version = changes.version;
        produced
    }

    /// Installs a user's changed account (dropping the queues of one
    /// deactivated); the status event of `presence_enabled` turning.
    fn install_account(&mut self, row: crate::store::UserRow) -> Option<Produced> {
        let realm = self.realm(row.realm_id)?;
        if !row.is_active {
            self.hub.drop_owner(Owner::User(row.id));
        }
        let mut realm = realm.write();
        let who = UserRef {
            realm_id: row.realm_id,
            user_id: row.id,
        };
        let was_enabled = realm
            .users
            .get(&row.id)
            .map_or(row.presence_enabled, |u| u.account.presence_enabled);
        realm.put_account(Account::from(row));
        self.status_produced(who, &mut realm, None, was_enabled)
    }

    /// Installs a status another writer changed, in its user's realm; its
    /// event, if it changed what others see.
    fn install_remote_status(&mut self, row: crate::store::StatusRow) -> Option<Produced> {
        let (realm_id, realm) = self
            .directory
            .read()
            .realms
            .iter()
            .find_map(|(&id, realm)| {
                let has = realm.read().users.get(&row.user_id).is_some();
                has.then(|| (id, realm.clone()))
            })?;
        let mut realm = realm.write();
        let who = UserRef {
            realm_id,
            user_id: row.user_id,
        };
        let enabled = realm
            .users
            .get(&row.user_id)
            .is_some_and(|u| u.account.presence_enabled);
        self.status_produced(who, &mut realm, Some(row), enabled)
    }
}
