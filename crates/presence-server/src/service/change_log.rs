//! Update id to user, for the incremental answer (`last_update_id`): which
//! users changed after an id, found without looking at the others.

use super::model::{UserEntry, Users};
use crate::ids::{UpdateId, UserId};

/// Update id to user, for the incremental answer: a vector in id order, 16
/// bytes an entry. A user who changes again leaves the old entry behind,
/// stale (its id is no longer the user's); stale entries are skipped when
/// reading and dropped in one pass once they outnumber the live ones.
#[derive(Default)]
pub struct ChangeLog {
    entries: Vec<LogEntry>,
    stale: usize,
}

/// One entry of the [`ChangeLog`]: an update id and the user it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct LogEntry {
    update_id: UpdateId,
    user_id: UserId,
}

impl LogEntry {
    /// Whether this is still the user's latest change.
    fn is_current(self, users: &Users) -> bool {
        users
            .get(&self.user_id)
            .is_some_and(|u| u.update_id == self.update_id)
    }
}

impl ChangeLog {
    /// Notes a user's change, which takes the next update id (a
    /// smaller one is put in its place all the same).
    pub(super) fn push(&mut self, update_id: UpdateId, user_id: UserId) {
        let entry = LogEntry { update_id, user_id };
        match self.entries.last() {
            Some(last) if last.update_id > update_id => {
                // Not expected from the writer; kept correct all the same.
                let at = self.entries.partition_point(|c| c.update_id < update_id);
                self.entries.insert(at, entry);
            }
            _ => self.entries.push(entry),
        }
    }

    /// Notes a loaded user's latest change, in any order: call
    /// [`ChangeLog::finish_loading`] once all are in.
    pub(super) fn load(&mut self, update_id: UpdateId, user_id: UserId) {
        self.entries.push(LogEntry { update_id, user_id });
    }

    /// Puts the entries in order after loading.
    pub(super) fn finish_loading(&mut self) {
        self.entries.sort_unstable();
        self.entries.shrink_to_fit();
    }

    /// Notes that a user's earlier entry no longer is the user's latest.
    pub(super) fn note_stale(&mut self) {
        self.stale += 1;
    }

    /// Drops the stale entries once they outnumber the live ones.
    pub(super) fn compact_if_stale(&mut self, users: &Users) {
        if self.stale * 2 > self.entries.len() {
            self.entries.retain(|c| c.is_current(users));
            self.stale = 0;
        }
    }

    /// How many entries it holds, stale ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The users whose latest change came after update id `since`, with
    /// that change's id, oldest first.
    pub fn after<'a>(
        &'a self,
        since: UpdateId,
        users: &'a Users,
    ) -> impl Iterator<Item = (UpdateId, &'a UserEntry)> + 'a {
        let start = self.entries.partition_point(|c| c.update_id <= since);
        self.entries[start..].iter().filter_map(move |c| {
            users
                .get(&c.user_id)
                .filter(|u| u.update_id == c.update_id)
                .map(|u| (c.update_id, u))
        })
    }
}
