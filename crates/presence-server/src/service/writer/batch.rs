//! A batch evaluated against memory plus its own earlier effects: the
//! mutations to commit and each change's outcome.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::model::{Account, ClientRecord};
use super::super::rules::{Times, apply_report, backdate, comes_online};
use super::{Change, UserRef, WriteError, Writer};
use crate::ids::{RealmId, UpdateId, UserId};
use crate::store::{DeviceKind, Mutation, PresenceRow, Sequence, StatusRow};

/// A user's state while a batch is being evaluated.
pub(super) struct Staged {
    pub(super) account: Account,
    pub(super) clients: Vec<ClientRecord>,
    pub(super) update_id: UpdateId,
    pub(super) presence_changed: bool,
    pub(super) account_changed: bool,
    /// A report in the batch counts as coming online by Zulip's rule.
    pub(super) came_online: bool,
    /// The user's custom status, if any.
    pub(super) status: Option<StatusRow>,
    pub(super) status_changed: bool,
}

/// The batch under construction.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) users: HashMap<UserRef, Staged>,
    /// Each staged realm's last update id before the batch.
    pub(super) first_ids: HashMap<RealmId, UpdateId>,
    /// Each staged realm's last update id with the batch's changes.
    pub(super) last_ids: HashMap<RealmId, UpdateId>,
    pub(super) devices: HashMap<(UserId, DeviceKind, String), bool>,
    pub(super) mutations: Vec<Mutation>,
}

impl Batch {
    /// The realms whose last update id the batch moves, each with its new
    /// last id: what the store's sequences are set to on commit. A realm
    /// staged only for changes that take no id is left alone.
    pub(super) fn sequences(&self) -> Vec<Sequence> {
        self.last_ids
            .iter()
            .filter(|&(realm, &last)| self.first_ids.get(realm) != Some(&last))
            .map(|(&realm_id, &last_update_id)| Sequence {
                realm_id,
                last_update_id,
            })
            .collect()
    }

    /// The realm of each mutation's user, in the mutations' order (what the
    /// store needs to publish each realm's changes).
    pub(super) fn mutation_realms(&self) -> Vec<RealmId> {
        let realm_of: HashMap<UserId, RealmId> = self
            .users
            .keys()
            .map(|who| (who.user_id, who.realm_id))
            .collect();
        self.mutations
            .iter()
            .map(|m| realm_of.get(&m.user_id()).copied().unwrap_or_default())
            .collect()
    }
}

impl Writer {
    /// Evaluates one change against memory and the batch so far, adding
    /// its mutations to the batch; its outcome if the batch commits.
    pub(super) fn evaluate(&mut self, batch: &mut Batch, change: Change) -> Result<(), WriteError> {
        let who = change.who();
        self.stage(batch, who)?;
        match change {
            Change::Report {
                client,
                active,
                now,
                ..
            } => {
                if batch.users[&who].account.presence_enabled {
                    self.report(batch, who, &client, active, now);
                }
                Ok(())
            }
            Change::Settings {
                client,
                presence_enabled,
                enable_offline_push_notifications,
                now,
                ..
            } => {
                self.settings(
                    batch,
                    who,
                    &client,
                    presence_enabled,
                    enable_offline_push_notifications,
                    now,
                );
                Ok(())
            }
            Change::AddDevice {
                kind, token, appid, ..
            } => self.add_device(batch, who, kind, token, appid),
            Change::RemoveDevice { kind, token, .. } => self.remove_device(batch, who, kind, token),
            Change::Status {
                client,
                update,
                now,
                ..
            } => {
                self.status(batch, who, &client, update, now);
                Ok(())
            }
            Change::ExpireStatus { expires_at, .. } => {
                self.expire(batch, who, expires_at);
                Ok(())
            }
        }
    }

    /// Registers a device for a staged user, unless the user has it; a new
    /// one only while the user is under the device limit. The count is the
    /// staged account's: memory's, plus what the batch added or removed
    /// before. On several nodes, another node's registrations count once
    /// this node has read them (the directory poll, or PostgreSQL's
    /// notification at once), so registrations racing through different
    /// nodes may pass the limit by the few that race.
    fn add_device(
        &mut self,
        batch: &mut Batch,
        who: UserRef,
        kind: DeviceKind,
        token: String,
        appid: Option<String>,
    ) -> Result<(), WriteError> {
        if self.device_exists(batch, who.user_id, kind, &token)? {
            return Ok(());
        }
        let limit = self.rules.max_devices_per_user;
        let staged = batch.users.get_mut(&who).expect("staged by the caller");
        if staged.account.push_devices as usize >= limit {
            return Err(WriteError::TooManyDevices(limit));
        }
        staged.account.push_devices += 1;
        staged.account_changed = true;
        batch
            .devices
            .insert((who.user_id, kind, token.clone()), true);
        batch.mutations.push(Mutation::AddDevice {
            user_id: who.user_id,
            kind,
            token,
            appid,
        });
        Ok(())
    }

    /// Removes a staged user's device.
    fn remove_device(
        &mut self,
        batch: &mut Batch,
        who: UserRef,
        kind: DeviceKind,
        token: String,
    ) -> Result<(), WriteError> {
        if !self.device_exists(batch, who.user_id, kind, &token)? {
            return Err(WriteError::TokenDoesNotExist);
        }
        batch
            .devices
            .insert((who.user_id, kind, token.clone()), false);
        let staged = batch.users.get_mut(&who).expect("staged by the caller");
        staged.account.push_devices = staged.account.push_devices.saturating_sub(1);
        staged.account_changed = true;
        batch.mutations.push(Mutation::RemoveDevice {
            user_id: who.user_id,
            kind,
            token,
        });
        Ok(())
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
        // Others' commits held for this batch are what it follows.
        let held = self.held_remote.get(&who.realm_id);
        let last_update_id = held.map_or(realm.last_update_id, |h| h.last_update_id);
        batch
            .first_ids
            .entry(who.realm_id)
            .or_insert(last_update_id);
        batch.last_ids.entry(who.realm_id).or_insert(last_update_id);
        let (clients, update_id) = match held.and_then(|h| h.users.get(&who.user_id)) {
            Some(remote) => (remote.clients.clone(), remote.update_id),
            None => (user.clients.to_vec(), user.update_id),
        };
        batch.users.insert(
            who,
            Staged {
                account: user.account.clone(),
                clients,
                update_id,
                presence_changed: false,
                account_changed: false,
                came_online: false,
                status: realm.statuses.get(&who.user_id).cloned(),
                status_changed: false,
            },
        );
        Ok(())
    }

    fn presence_disabled(&self, realm_id: RealmId) -> bool {
        self.realm(realm_id)
            .is_none_or(|realm| realm.read().row().presence_disabled)
    }

    fn next_id(batch: &mut Batch, realm_id: RealmId) -> UpdateId {
        let id = batch.last_ids.entry(realm_id).or_default();
        *id = id.next();
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
                    // Make room by dropping the least recently connected
                    // client (the first by name among equals). Compared in
                    // place: a key holding the name would clone it.
                    let oldest = staged
                        .clients
                        .iter()
                        .enumerate()
                        .min_by(|(_, a), (_, b)| {
                            let key = |r: &ClientRecord| r.times().last_connected;
                            key(a).cmp(&key(b)).then_with(|| a.client.cmp(&b.client))
                        })
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

    pub(super) fn settings(
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
        // Turning presence on reports the user active, as a report would; a
        // bot has no presence (docs/PROTOCOL.md §4.1), so it gets no record.
        let is_bot = batch.users[&who].account.is_bot;
        match toggled {
            Some(true) if is_bot => {}
            Some(true) => self.report(batch, who, client, true, now),
            Some(false) => self.backdate(batch, who, now),
            None => {}
        }
    }

    /// Makes a user look offline at once: every record moved back past the
    /// offline threshold (docs/PROTOCOL.md §4.2).
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
        user_id: UserId,
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
}

#[cfg(test)]
mod tests;
