//! The shared store's listener: a thread of its own, on a connection of its
//! own, that turns other nodes' notifications into notices for the
//! subscriber, and comes back after losing its connection.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Config};

use super::Names;
use super::connection::{RECONNECT_INTERVAL, connect};
use super::schema::quote_ident;
use crate::store::{Notice, StoreError};

/// How long a listener waits for a notification before telling its
/// subscriber that all is quiet.
const LISTEN_TICK: Duration = Duration::from_secs(1);

/// Starts a listener for the notifications on `names`' channel, listening
/// before it returns: a commit made after it returns is then certain to be
/// reported.
pub(super) fn start(
    config: Config,
    names: &Names,
    on_change: Box<dyn Fn(Notice) -> bool + Send>,
) -> Result<JoinHandle<()>, StoreError> {
    let listener = Listener {
        config,
        listen: format!("LISTEN {}", quote_ident(&names.channel)),
        token: names.token.clone(),
        on_change,
        last_call: Instant::now(),
    };
    let client = listener.connect()?;
    thread::Builder::new()
        .name("presence-listener".to_owned())
        .spawn(move || listener.run(client))
        .map_err(|e| StoreError::Unavailable(format!("cannot start a listener: {e}")))
}

/// The state of a listener thread.
struct Listener {
    config: Config,
    /// The `LISTEN` statement for the channel.
    listen: String,
    /// The token of the store's own notifications, which are not news.
    token: String,
    on_change: Box<dyn Fn(Notice) -> bool + Send>,
    /// When `on_change` was last called.
    last_call: Instant,
}

impl Listener {
    fn connect(&self) -> Result<Client, StoreError> {
        let mut client = connect(&self.config)?;
        client.batch_execute(&self.listen)?;
        Ok(client)
    }

    fn tell(&mut self, notice: Notice) -> bool {
        self.last_call = Instant::now();
        (self.on_change)(notice)
    }

    /// Waits up to a tick for notifications: `Some(true)` if another
    /// process sent any (a burst counts once), `Some(false)` if only this
    /// store did, `None` if none came.
    fn wait(&self, client: &mut Client) -> Result<Option<bool>, ::postgres::Error> {
        let mut notifications = client.notifications();
        let Some(first) = notifications.timeout_iter(LISTEN_TICK).next()? else {
            return Ok(None);
        };
        let mut news = first.payload() != self.token;
        let mut pending = notifications.iter();
        while let Some(more) = pending.next()? {
            news |= more.payload() != self.token;
        }
        Ok(Some(news))
    }

    fn run(mut self, client: Client) {
        let mut client = Some(client);
        loop {
            let keep_going = match client.as_mut() {
                Some(c) => match self.wait(c) {
                    Ok(Some(true)) => self.tell(Notice::Changed),
                    // Only our own commits: still give the subscriber its
                    // chance to stop once a tick.
                    Ok(Some(false)) if self.last_call.elapsed() < LISTEN_TICK => true,
                    Ok(_) if !c.is_closed() => self.tell(Notice::Quiet),
                    _ => {
                        client = None;
                        self.tell(Notice::Quiet)
                    }
                },
                None => {
                    thread::sleep(RECONNECT_INTERVAL);
                    match self.connect() {
                        // Notifications sent while we were away are lost.
                        Ok(c) => {
                            client = Some(c);
                            self.tell(Notice::Changed)
                        }
                        Err(_) => self.tell(Notice::Quiet),
                    }
                }
            };
            if !keep_going {
                // Dropping the client closes the connection.
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::store::Store;
    use crate::store::testing::{admin, put, scratch, sequence, two_nodes};

    #[test]
    fn a_subscriber_hears_other_nodes_and_stops_when_asked() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut a, mut b, realm, user) = two_nodes(&url);

        let notices = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(Mutex::new(false));
        let (seen, keep) = (Arc::clone(&notices), Arc::clone(&stop));
        b.subscribe(Box::new(move |notice| {
            if let Ok(mut seen) = seen.lock() {
                seen.push(notice);
            }
            keep.lock().map(|stop| !*stop).unwrap_or(false)
        }))
        .expect("subscribe");
        let changed = || {
            notices
                .lock()
                .expect("lock")
                .iter()
                .filter(|n| **n == Notice::Changed)
                .count()
        };

        // Its own commits are not news.
        b.begin_batch(&[realm.id]).expect("begin");
        b.commit_batch(&[put(user.id, "web", 1)], &[sequence(realm.id, 1)])
            .expect("commit");
        thread::sleep(Duration::from_millis(1500));
        assert_eq!(changed(), 0);
        assert!(notices.lock().expect("lock").contains(&Notice::Quiet));

        a.begin_batch(&[realm.id]).expect("begin");
        a.commit_batch(&[put(user.id, "web", 2)], &[sequence(realm.id, 2)])
            .expect("commit");
        let deadline = Instant::now() + Duration::from_secs(5);
        while changed() == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(changed(), 1);

        // A listener that loses its connection comes back and says that
        // something may have been missed.
        let listen = format!("LISTEN {}", quote_ident(&b.names.channel));
        let killed = admin(&url)
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
                &[&listen],
            )
            .expect("terminate");
        assert_eq!(killed.len(), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while changed() < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(changed(), 2);

        *stop.lock().expect("lock") = true;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !b.listeners.iter().all(JoinHandle::is_finished) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(b.listeners.iter().all(JoinHandle::is_finished));
    }
}
