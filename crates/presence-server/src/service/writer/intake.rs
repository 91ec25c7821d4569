//! The commands the writer takes: every change waiting when it turns to
//! them and, once a batch holds its realms' locks, the changes to those
//! realms that arrived while it waited for the locks.
//!
//! Several nodes on one realm take turns on its lock. While one node
//! holds it, the other's clients keep reporting; a batch that takes their
//! reports once it has the lock commits them in this turn rather than the
//! next, so a node's batches grow with the time it waits instead of its
//! commits queueing behind the other node's.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::{Ack, Change, Command, MAX_BATCH};
use crate::ids::RealmId;

/// The writer's end of its command channel, with the commands a batch
/// left for the next one.
pub(super) struct Intake {
    commands: Receiver<Command>,
    /// Commands taken from the channel but left for the next turn.
    deferred: VecDeque<Command>,
}

/// What one turn of the writer takes.
#[derive(Default)]
pub(super) struct Taken {
    /// The changes, each with where its outcome goes (at most
    /// [`MAX_BATCH`]).
    pub changes: Vec<(Change, Ack)>,
    /// Another process committed something: read the store.
    pub catch_up: bool,
    /// Other nodes published batches: install them.
    pub install_published: bool,
}

/// Every sender of the channel is gone: the writer stops.
pub(super) struct Disconnected;

impl Intake {
    /// The intake of `commands`.
    pub fn new(commands: Receiver<Command>) -> Self {
        Intake {
            commands,
            deferred: VecDeque::new(),
        }
    }

    /// Waits up to `wait` for a command (not at all if one was left from
    /// the last batch), then takes every command waiting, up to
    /// [`MAX_BATCH`] changes.
    pub fn take(&mut self, wait: Duration) -> Result<Taken, Disconnected> {
        let mut taken = Taken::default();
        let first = match self.deferred.pop_front() {
            Some(command) => command,
            None => match self.commands.recv_timeout(wait) {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => return Ok(taken),
                Err(RecvTimeoutError::Disconnected) => return Err(Disconnected),
            },
        };
        let mut next = Some(first);
        while let Some(command) = next {
            match command {
                Command::CatchUp => taken.catch_up = true,
                Command::InstallPublished => taken.install_published = true,
                Command::Change(change, ack) => taken.changes.push((change, ack)),
            }
            next = if taken.changes.len() < MAX_BATCH {
                self.next_waiting()
            } else {
                None
            };
        }
        Ok(taken)
    }

    /// The changes to `realms` waiting now, at most `room` of them; any
    /// other command met on the way is kept, in order, for the next turn.
    pub fn late(&mut self, realms: &[RealmId], room: usize) -> Vec<(Change, Ack)> {
        let mut joined = Vec::new();
        while joined.len() < room {
            let Ok(command) = self.commands.try_recv() else {
                break;
            };
            match command {
                Command::Change(change, ack) if realms.contains(&change.who().realm_id) => {
                    joined.push((change, ack));
                }
                other => self.deferred.push_back(other),
            }
        }
        joined
    }

    /// The next command left from before, else waiting in the channel.
    fn next_waiting(&mut self) -> Option<Command> {
        // A channel whose senders are gone is noticed by the next `take`.
        self.deferred
            .pop_front()
            .or_else(|| self.commands.try_recv().ok())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc::{Sender, channel};

    use tokio::sync::oneshot;

    use super::*;
    use crate::ids::UserId;
    use crate::service::writer::UserRef;

    /// Sends a report of user `user` in realm `realm`.
    fn send_report(tx: &Sender<Command>, realm: i64, user: i64) {
        let (ack, _) = oneshot::channel();
        let who = UserRef {
            realm_id: RealmId(realm),
            user_id: UserId(user),
        };
        let change = Change::Report {
            who,
            client: Arc::from("web"),
            active: true,
            now: 0,
        };
        tx.send(Command::Change(change, ack)).expect("send");
    }

    fn users(changes: &[(Change, Ack)]) -> Vec<i64> {
        changes.iter().map(|(c, _)| c.who().user_id.0).collect()
    }

    #[test]
    fn a_locked_batch_takes_its_realms_late_changes_and_leaves_the_rest_in_order() {
        let (tx, rx) = channel();
        let mut intake = Intake::new(rx);
        send_report(&tx, 1, 10);
        let taken = intake.take(Duration::ZERO).ok().expect("connected");
        assert_eq!(users(&taken.changes), vec![10]);

        // While the batch of realm 1 waited for its lock:
        send_report(&tx, 2, 20);
        tx.send(Command::CatchUp).expect("send");
        send_report(&tx, 1, 11);
        send_report(&tx, 1, 12);
        send_report(&tx, 2, 21);
        let late = intake.late(&[RealmId(1)], 1);
        assert_eq!(users(&late), vec![11], "realm 1 only, as room allows");
        let late = intake.late(&[RealmId(1)], 10);
        assert_eq!(users(&late), vec![12]);

        // The next turn starts with what was left, in order, and needs no wait.
        let taken = intake
            .take(Duration::from_secs(60))
            .ok()
            .expect("connected");
        assert_eq!(users(&taken.changes), vec![20, 21]);
        assert!(taken.catch_up);
        assert!(!taken.install_published);

        drop(tx);
        assert!(intake.take(Duration::ZERO).is_err(), "every sender gone");
    }
}
