//! Custom statuses in the writer: a status change or an expiry evaluated
//! against the batch, the `user_status` events that committed changes
//! make (this node's and others'), and the expiries carried out by the
//! service clock.
//!
//! An event says what changed: the text, the emoji (its three fields
//! together), `away` when `presence_enabled` turned, and the expiry of the
//! new status if it has one. Every node makes the events of its own queues
//! from the changes it installs, so a change made on one node and
//! installed on another makes one event on each.
//!
//! Expiry: the writer keeps the expiry of every status it holds by time.
//! When one is due by the service clock it runs a batch that clears the
//! status on condition that its expiry is still the same. The batch first
//! reads what others changed in the directory, under its realm's lock, so
//! on several nodes the first to commit clears the status and the others
//! find it cleared: the store changes once and every node makes one event.

use std::sync::Arc;

use presence_types::endpoints::user_status::UserStatusEvent;

use super::batch::Batch;
use super::{Change, Deadline, UserRef, WriteError, Writer};
use crate::service::model::Realm;
use crate::service::status::StatusUpdate;
use crate::store::{Mutation, StatusRow};

/// The fields of a `user_status` event that a change sets.
pub(super) fn news(
    user_id: i64,
    old: Option<&StatusRow>,
    new: Option<&StatusRow>,
    away: Option<bool>,
) -> Option<UserStatusEvent> {
    let empty = StatusRow::empty(crate::ids::UserId(user_id));
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let text_changed = old.status_text != new.status_text;
    let emoji_changed = (&old.emoji_name, &old.emoji_code, &old.reaction_type)
        != (&new.emoji_name, &new.emoji_code, &new.reaction_type);
    let expiry_changed = old.expires_at != new.expires_at;
    if !text_changed && !emoji_changed && !expiry_changed && away.is_none() {
        return None;
    }
    let emoji = |value: &String| emoji_changed.then(|| value.clone());
    Some(UserStatusEvent {
        user_id,
        away,
        status_text: (text_changed || (expiry_changed && !emoji_changed))
            .then(|| new.status_text.clone()),
        emoji_name: emoji(&new.emoji_name),
        emoji_code: emoji(&new.emoji_code),
        reaction_type: emoji(&new.reaction_type),
        expires_at: new.expires_at,
        id: 0,
    })
}

impl Writer {
    /// Evaluates a status change: `away` as a change of `presence_enabled`
    /// (see [`Writer::settings`]), then the text and emoji.
    pub(super) fn status(
        &self,
        batch: &mut Batch,
        who: UserRef,
        client: &Arc<str>,
        update: StatusUpdate,
        now: i64,
    ) {
        if let Some(away) = update.away {
            self.settings(batch, who, client, Some(!away), None, now);
        }
        let staged = batch.users.get_mut(&who).expect("staged by the caller");
        let current = staged
            .status
            .clone()
            .unwrap_or_else(|| StatusRow::empty(who.user_id));
        let Some(next) = update.apply_to(&current) else {
            return;
        };
        if staged.status.as_ref() == Some(&next) {
            return;
        }
        staged.status = Some(next.clone());
        staged.status_changed = true;
        batch.mutations.push(Mutation::PutStatus(next));
    }

    /// Evaluates an expiry: the staged status is cleared if its expiry is
    /// still `expires_at`.
    pub(super) fn expire(&self, batch: &mut Batch, who: UserRef, expires_at: i64) {
        let staged = batch.users.get_mut(&who).expect("staged by the caller");
        let Some(status) = staged.status.as_ref() else {
            return;
        };
        if status.expires_at != Some(expires_at) {
            return;
        }
        staged.status = Some(status.cleared());
        staged.status_changed = true;
        batch.mutations.push(Mutation::ExpireStatus {
            user_id: who.user_id,
            expires_at,
        });
    }

    /// Installs a user's new status in a realm whose lock the caller
    /// holds, remembers its expiry, and describes the news for others
    /// (with `away` if `presence_enabled` turned from `was_enabled`) under
    /// the realm's next event number. Nothing is told of bots and
    /// deactivated users, whom no status answer shows.
    pub(super) fn install_status(
        &mut self,
        who: UserRef,
        realm: &mut Realm,
        new: Option<StatusRow>,
        was_enabled: bool,
    ) -> Option<(u64, UserStatusEvent)> {
        let user = realm.users.get(&who.user_id)?;
        if new.is_none() && user.account.presence_enabled == was_enabled {
            return None;
        }
        let (enabled, shown) = (
            user.account.presence_enabled,
            user.account.is_active && !user.account.is_bot,
        );
        let old = realm.statuses.get(&who.user_id).cloned();
        if let Some(at) = new.as_ref().and_then(|row| row.expires_at) {
            self.expiries.insert(Deadline { at, who });
        }
        let away = (enabled != was_enabled).then_some(!enabled);
        let event = news(
            who.user_id.0,
            old.as_ref(),
            new.as_ref().or(old.as_ref()),
            away,
        );
        if let Some(row) = new {
            realm.statuses.insert(who.user_id, row);
        }
        let event = event.filter(|_| shown)?;
        realm.event_seq += 1;
        Some((realm.event_seq, event))
    }

    /// Clears the statuses whose expiry is due by the service clock, in
    /// one batch. An expiry the store could not take is tried again on a
    /// later turn.
    pub(super) fn expire_due_statuses(&mut self) {
        let now = self.clock.now_secs();
        let mut due = Vec::new();
        while let Some(&deadline) = self.expiries.first() {
            if deadline.at > now {
                break;
            }
            self.expiries.pop_first();
            let Deadline { at, who } = deadline;
            let still = self.realm(who.realm_id).is_some_and(|realm| {
                realm
                    .read()
                    .statuses
                    .get(&who.user_id)
                    .and_then(|s| s.expires_at)
                    == Some(at)
            });
            if still {
                due.push(deadline);
            }
        }
        if due.is_empty() {
            return;
        }
        let changes = due
            .iter()
            .map(|d| Change::ExpireStatus {
                who: d.who,
                expires_at: d.at,
            })
            .collect();
        for (deadline, outcome) in due.into_iter().zip(self.run_batch(changes)) {
            if let Err(WriteError::Store(e)) = outcome {
                tracing::debug!(error = %e, "a status expiry waits for the store");
                self.expiries.insert(deadline);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    fn row(text: &str, emoji: &str, expires_at: Option<i64>) -> StatusRow {
        let mut row = StatusRow::empty(UserId(7));
        row.status_text = text.to_owned();
        if !emoji.is_empty() {
            row.emoji_name = emoji.to_owned();
            row.emoji_code = "1f68c".to_owned();
        }
        row.expires_at = expires_at;
        row
    }

    #[test]
    fn an_event_names_only_what_changed() {
        let before = row("Commuting", "bus", None);
        let text_only = news(7, Some(&before), Some(&row("Driving", "bus", None)), None).unwrap();
        assert_eq!(text_only.status_text.as_deref(), Some("Driving"));
        assert_eq!(text_only.emoji_name, None);
        let cleared = news(7, Some(&before), Some(&before.cleared()), None).unwrap();
        assert_eq!(cleared.status_text.as_deref(), Some(""));
        assert_eq!(cleared.emoji_name.as_deref(), Some(""));
        assert_eq!(cleared.reaction_type.as_deref(), Some("unicode_emoji"));
        assert_eq!(news(7, Some(&before), Some(&before), None), None);
        let away = news(7, None, None, Some(true)).unwrap();
        assert_eq!((away.away, away.status_text), (Some(true), None));
        let later = news(
            7,
            Some(&before),
            Some(&row("Commuting", "bus", Some(9))),
            None,
        )
        .unwrap();
        assert_eq!(
            (later.status_text.as_deref(), later.expires_at),
            (Some("Commuting"), Some(9))
        );
    }
}
