//! The shared store's listener: a thread of its own, on a connection of its
//! own, that turns other nodes' notifications into notices for the
//! subscriber, keeps the batches they publish in the store's inbox for its
//! writer, and comes back after losing its connection.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Config};

use super::Names;
use super::connection::{RECONNECT_INTERVAL, connect};
use super::schema::quote_ident;
use crate::store::published::{self, Inbox};
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
    inbox: Arc<Inbox>,
) -> Result<JoinHandle<()>, StoreError> {
    let listener = Listener {
        config,
        listen: format!("LISTEN {}", quote_ident(&names.channel)),
        token: names.token.clone(),
        on_change,
        last_call: Instant::now(),
        inbox,
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
    /// Where the batches other nodes publish go.
    inbox: Arc<Inbox>,
}

/// What a burst of notifications told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// Only this store's own commits.
    Own,
    /// Other processes' commits, each a batch now in the inbox.
    Published,
    /// Something the inbox cannot tell: read the store.
    Read,
}

impl Heard {
    /// What two notifications of one burst tell together.
    fn and(self, other: Heard) -> Heard {
        match (self, other) {
            (Heard::Read, _) | (_, Heard::Read) => Heard::Read,
            (Heard::Published, _) | (_, Heard::Published) => Heard::Published,
            (Heard::Own, Heard::Own) => Heard::Own,
        }
    }
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

    /// Waits up to a tick for notifications: what another process's say
    /// (a burst counts once; [`Heard::Own`] if only this store sent any),
    /// `None` if none came.
    fn wait(&self, client: &mut Client) -> Result<Option<Heard>, ::postgres::Error> {
        let mut notifications = client.notifications();
        let Some(first) = notifications.timeout_iter(LISTEN_TICK).next()? else {
            return Ok(None);
        };
        let mut heard = self.heard(first.payload());
        let mut pending = notifications.iter();
        while let Some(more) = pending.next()? {
            heard = heard.and(self.heard(more.payload()));
        }
        Ok(Some(heard))
    }

    /// Takes in one notification's payload. A batch another process
    /// publishes goes to the inbox; anything else another process sends
    /// (a bare token, a payload that does not parse) tells to read.
    fn heard(&self, payload: &str) -> Heard {
        if payload == self.token {
            return Heard::Own;
        }
        if published::is_published(payload) {
            if published::sender(payload) == Some(self.token.as_str()) {
                return Heard::Own;
            }
            match published::decode(payload) {
                Ok((_, batch)) => {
                    self.inbox.put(batch);
                    return Heard::Published;
                }
                Err(e) => tracing::debug!(error = %e, "a published batch is not taken"),
            }
        }
        Heard::Read
    }

    fn run(mut self, client: Client) {
        let mut client = Some(client);
        loop {
            let keep_going = match client.as_mut() {
                Some(c) => match self.wait(c) {
                    Ok(Some(Heard::Read)) => self.tell(Notice::Changed),
                    Ok(Some(Heard::Published)) => self.tell(Notice::Published),
                    // Only our own commits: still give the subscriber its
                    // chance to stop once a tick.
                    Ok(Some(Heard::Own)) if self.last_call.elapsed() < LISTEN_TICK => true,
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
    use crate::ids::UpdateId;
    use crate::store::published::Published;
    use crate::store::testing::{admin, put, record, scratch, sequence, two_nodes};
    use crate::store::{Mutation, Store};

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

    #[test]
    fn a_published_batch_reaches_the_other_node_whole_or_not_at_all() {
        let Some((_schema, url)) = scratch() else {
            return;
        };
        let (mut a, mut b, realm, user) = two_nodes(&url);
        let told = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(Mutex::new(false));
        let (seen, keep) = (Arc::clone(&told), Arc::clone(&stop));
        b.subscribe(Box::new(move |notice| {
            if notice != Notice::Quiet
                && let Ok(mut seen) = seen.lock()
            {
                seen.push(notice);
            }
            keep.lock().map(|stop| !*stop).unwrap_or(false)
        }))
        .expect("subscribe");
        // The next notice after the `before` first ones.
        let heard = |before: usize| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while told.lock().expect("lock").len() == before && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            let told = told.lock().expect("lock");
            assert!(told.len() > before, "a notification within 5 s");
            (told.len(), told[before])
        };
        let (id, none) = (realm.id, Duration::ZERO);

        // A batch of presence records, told its realms, is published whole.
        a.begin_batch(&[id]).expect("begin");
        let batch = [put(user.id, "web", 1), put(user.id, "mobile", 2)];
        a.commit_batch_in_realms(&batch, &[id, id], &[sequence(id, 2)])
            .expect("commit");
        let chain = b.published(id, UpdateId(0), UpdateId(2), Duration::from_secs(5));
        let chain = chain.expect("published");
        assert_eq!(chain.len(), 1);
        assert_eq!((chain[0].first, chain[0].last), (UpdateId(1), UpdateId(2)));
        assert_eq!(
            chain[0].puts,
            vec![record(user.id, "mobile", 2), record(user.id, "web", 1)]
        );
        let (count, notice) = heard(0);
        assert_eq!(notice, Notice::Published, "the inbox has it all");

        // Not told the realms: only announced.
        a.begin_batch(&[id]).expect("begin");
        a.commit_batch(&[put(user.id, "web", 3)], &[sequence(id, 3)])
            .expect("commit");
        let (count, notice) = heard(count);
        assert_eq!(notice, Notice::Changed);
        assert_eq!(b.published(id, UpdateId(2), UpdateId(3), none), None);

        // Too large for a notification: only announced.
        let clients: Vec<String> = (0..300)
            .map(|i| format!("a-rather-long-client-{i:04}"))
            .collect();
        let batch: Vec<Mutation> = clients
            .iter()
            .zip(4..)
            .map(|(c, n)| put(user.id, c, n))
            .collect();
        a.begin_batch(&[id]).expect("begin");
        a.commit_batch_in_realms(&batch, &vec![id; batch.len()], &[sequence(id, 303)])
            .expect("commit");
        let (count, notice) = heard(count);
        assert_eq!(notice, Notice::Changed);
        assert_eq!(b.published(id, UpdateId(3), UpdateId(303), none), None);

        // A payload that does not parse is news, and nothing else; the
        // same batch whole is taken.
        let next = Published {
            realm_id: id,
            first: UpdateId(304),
            last: UpdateId(304),
            puts: vec![record(user.id, "web", 304)],
            removed: Vec::new(),
        };
        let payload = published::encode("elsewhere", &next).expect("fits");
        let channel = b.names.channel.clone();
        let notify = |payload: &str| {
            admin(&url)
                .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
                .expect("notify");
        };
        notify(&payload.replace("+", "*"));
        let (count, notice) = heard(count);
        assert_eq!(notice, Notice::Changed);
        assert_eq!(b.published(id, UpdateId(303), UpdateId(304), none), None);
        notify(&payload);
        assert_eq!(heard(count).1, Notice::Published);
        assert_eq!(
            b.published(id, UpdateId(303), UpdateId(304), none),
            Some(vec![next])
        );
        *stop.lock().expect("lock") = true;
    }
}
