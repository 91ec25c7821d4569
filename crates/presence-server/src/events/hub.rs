//! The registry of event queues: who owns which, fan-out by realm, the
//! per-user caps on queues and on open streams, expiry, and the long-poll
//! of `GET /events`.
//!
//! Lock order: a realm's lock may be held while taking the registry's (a
//! queue is registered under the realm's read lock); never the other way
//! round. Fan-out takes the registry's read lock and each queue's own lock
//! in turn, so polls of other queues proceed meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use rand::Rng;

use super::encode::{EncodedEvent, PresenceEvents};
use super::queue::{Closed, Consumer, Entry, Queue, Wake};
use super::{EventError, EventFormat, EventSettings, Owner};
use crate::clock::SharedClock;
use crate::ids::RealmId;

/// What a new queue is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// The owner.
    pub owner: Owner,
    /// The owner's realm, whose events it receives.
    pub realm_id: RealmId,
    /// The shape of its presence events.
    pub format: EventFormat,
    /// Whether it receives presence events at all.
    pub wants_presence: bool,
    /// Whether it receives `user_status` events.
    pub wants_user_status: bool,
    /// The realm's event sequence number its snapshot reflects.
    pub start_seq: u64,
    /// Seconds without a consumer after which it expires.
    pub timeout_secs: i64,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<Arc<str>, Arc<Queue>>,
    by_realm: HashMap<RealmId, Vec<Arc<Queue>>>,
    by_owner: HashMap<Owner, Vec<Arc<Queue>>>,
}

impl Registry {
    fn insert(&mut self, queue: Arc<Queue>) {
        self.by_realm
            .entry(queue.realm_id())
            .or_default()
            .push(queue.clone());
        self.by_owner
            .entry(queue.owner())
            .or_default()
            .push(queue.clone());
        self.by_id.insert(queue.id().clone(), queue);
    }

    /// Removes many queues in one pass over the lists they are in.
    fn remove_all(&mut self, queues: &[Arc<Queue>]) {
        let gone: HashSet<*const Queue> = queues.iter().map(Arc::as_ptr).collect();
        let mut realms = HashSet::new();
        let mut owners = HashSet::new();
        for queue in queues {
            if self
                .by_id
                .get(queue.id())
                .is_some_and(|q| Arc::ptr_eq(q, queue))
            {
                self.by_id.remove(queue.id());
            }
            realms.insert(queue.realm_id());
            owners.insert(queue.owner());
        }
        let keep = |list: &mut Vec<Arc<Queue>>| {
            list.retain(|q| !gone.contains(&Arc::as_ptr(q)));
            !list.is_empty()
        };
        for realm_id in realms {
            if let Some(list) = self.by_realm.get_mut(&realm_id)
                && !keep(list)
            {
                self.by_realm.remove(&realm_id);
            }
        }
        for owner in owners {
            if let Some(list) = self.by_owner.get_mut(&owner)
                && !keep(list)
            {
                self.by_owner.remove(&owner);
            }
        }
    }

    fn remove(&mut self, queue: &Arc<Queue>) {
        fn take<K: std::hash::Hash + Eq>(
            map: &mut HashMap<K, Vec<Arc<Queue>>>,
            key: K,
            queue: &Arc<Queue>,
        ) {
            if let Some(list) = map.get_mut(&key) {
                if let Some(i) = list.iter().position(|q| Arc::ptr_eq(q, queue)) {
                    list.swap_remove(i);
                }
                if list.is_empty() {
                    map.remove(&key);
                }
            }
        }
        if self
            .by_id
            .get(queue.id())
            .is_some_and(|q| Arc::ptr_eq(q, queue))
        {
            self.by_id.remove(queue.id());
        }
        take(&mut self.by_realm, queue.realm_id(), queue);
        take(&mut self.by_owner, queue.owner(), queue);
    }
}

/// All event queues of the server.
pub struct Hub {
    settings: EventSettings,
    clock: SharedClock,
    registry: RwLock<Registry>,
    /// Open presence streams per owner.
    streams: Mutex<HashMap<Owner, usize>>,
    stopped: AtomicBool,
}

/// What a `GET /events` poll answers: the queue's events, and whether the
/// poll had to wait for them. Zulip shapes the two answers apart (a poll
/// answered at once lists its unknown parameters, one finished later names
/// its queue), so the caller needs to know which it is.
#[derive(Debug)]
pub struct Polled {
    /// The events, oldest first.
    pub events: Vec<Entry>,
    /// Whether the poll waited before answering: for an event, for the
    /// heartbeat, or until another poll, the queue's deletion or the
    /// server's stop cut it short.
    pub waited: bool,
}

/// A new random queue id in the form Zulip uses (a version 4 UUID).
fn new_queue_id() -> Arc<str> {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Arc::from(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

impl Hub {
    /// An empty hub.
    pub fn new(settings: EventSettings, clock: SharedClock) -> Self {
        Hub {
            settings,
            clock,
            registry: RwLock::new(Registry::default()),
            streams: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// Opens a queue. If its owner is a user who already holds the most
    /// queues allowed, the least recently used of them that nobody is
    /// reading is dropped first
    /// (its client gets `BAD_EVENT_QUEUE_ID` and registers again, as Zulip
    /// clients do). An embed key's queues, one per page that streams, are
    /// bounded by the connections their streams hold and expire soon after.
    pub fn open(&self, spec: QueueSpec) -> Result<Arc<Queue>, EventError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(EventError::ShuttingDown);
        }
        let now = self.clock.now_secs();
        let queue = Arc::new(Queue::new(new_queue_id(), &spec, now));
        let cap = match spec.owner {
            Owner::User(_) => self.settings.max_queues_per_user,
            Owner::EmbedKey(_) => usize::MAX,
        };
        let mut registry = self.registry.write();
        loop {
            let mine = registry.by_owner.get(&spec.owner);
            if mine.is_none_or(|list| list.len() < cap) {
                break;
            }
            // A queue someone is reading (a waiting poll, an open stream)
            // goes last: dropping it would cut off a live client.
            let oldest = mine
                .and_then(|list| {
                    list.iter()
                        .min_by_key(|q| q.with_state(|s| (s.consumers() > 0, s.last_used())))
                })
                .cloned();
            let Some(oldest) = oldest else { break };
            oldest.close(Closed::Evicted);
            registry.remove(&oldest);
        }
        registry.insert(queue.clone());
        Ok(queue)
    }

    /// The caller's open queue `queue_id`; `BAD_EVENT_QUEUE_ID` for an
    /// unknown, closed or expired queue, or one of another owner.
    pub fn find(&self, owner: Owner, queue_id: &str) -> Result<Arc<Queue>, EventError> {
        let bad = || EventError::BadQueueId(queue_id.to_owned());
        let queue = self
            .registry
            .read()
            .by_id
            .get(queue_id)
            .cloned()
            .ok_or_else(bad)?;
        if queue.owner() != owner {
            return Err(bad());
        }
        let now = self.clock.now_secs();
        let (closed, expired) = queue.with_state(|s| (s.closed(), s.is_expired(now)));
        if closed.is_some() || expired {
            // The periodic sweep may not have come by yet; judge now.
            queue.close(Closed::Expired);
            self.registry.write().remove(&queue);
            return Err(bad());
        }
        Ok(queue)
    }

    /// `GET /events`: acknowledges up to `last_event_id`, then answers the
    /// queue's events, waiting for one unless `dont_block`. After the
    /// heartbeat interval without events the answer is a `heartbeat` event.
    pub async fn get_events(
        &self,
        owner: Owner,
        queue_id: &str,
        last_event_id: i64,
        dont_block: bool,
    ) -> Result<Polled, EventError> {
        let queue = self.find(owner, queue_id)?;
        queue.with_state(|s| s.acknowledge(last_event_id))?;
        // A request still waiting on this queue answers now, as in Zulip:
        // its client has moved on to this one.
        let consumer = queue.attach(self.clock.clone());
        if let Some(events) =
            queue.with_state(|s| (!s.is_empty() || dont_block).then(|| s.contents()))
        {
            return Ok(Polled {
                events,
                waited: false,
            });
        }
        let wake = consumer.wait(last_event_id, self.settings.heartbeat).await;
        let events = self.finish_poll(&consumer, queue_id, wake)?;
        Ok(Polled {
            events,
            waited: true,
        })
    }

    /// `HEAD /events`: what [`Hub::get_events`] would answer at once,
    /// changing nothing (no acknowledgement, no takeover of a waiting poll).
    pub fn peek_events(
        &self,
        owner: Owner,
        queue_id: &str,
        last_event_id: i64,
    ) -> Result<Vec<Entry>, EventError> {
        let queue = self.find(owner, queue_id)?;
        queue.with_state(|s| s.peek(last_event_id))
    }

    fn finish_poll(
        &self,
        consumer: &Consumer,
        queue_id: &str,
        wake: Wake,
    ) -> Result<Vec<Entry>, EventError> {
        let queue = consumer.queue();
        match wake {
            Wake::TimedOut => {
                if queue
                    .push(
                        EncodedEvent::heartbeat(),
                        self.settings.max_events_per_queue,
                    )
                    .is_err()
                {
                    self.drop_overflowed(queue);
                    return Err(EventError::BadQueueId(queue_id.to_owned()));
                }
                Ok(queue.with_state(|s| s.contents()))
            }
            // A deleted queue, or a stopping server, answers what it has, as
            // Zulip finishes a waiting request when it drops a queue.
            Wake::Events | Wake::Superseded | Wake::Closed(Closed::Deleted | Closed::Shutdown) => {
                Ok(queue.with_state(|s| s.contents()))
            }
            Wake::Closed(_) => Err(EventError::BadQueueId(queue_id.to_owned())),
        }
    }

    /// For a stream resuming after `last_event_id`: the queue, with every
    /// event up to that id acknowledged.
    pub fn resume(
        &self,
        owner: Owner,
        queue_id: &str,
        last_event_id: i64,
    ) -> Result<Arc<Queue>, EventError> {
        let queue = self.find(owner, queue_id)?;
        queue.with_state(|s| s.acknowledge(last_event_id))?;
        Ok(queue)
    }

    /// Makes `queue`'s consumer, for a stream.
    pub fn attach(&self, queue: &Arc<Queue>) -> Consumer {
        queue.attach(self.clock.clone())
    }

    /// `DELETE /events`.
    pub fn delete(&self, owner: Owner, queue_id: &str) -> Result<(), EventError> {
        let queue = self.find(owner, queue_id)?;
        queue.close(Closed::Deleted);
        self.registry.write().remove(&queue);
        Ok(())
    }

    /// Appends the realm's presence event number `seq` to every queue of the
    /// realm that takes it. A queue that cannot take it is dropped.
    pub fn publish(&self, realm_id: RealmId, seq: u64, events: &PresenceEvents) {
        let max = self.settings.max_events_per_queue;
        let mut overflowed = Vec::new();
        {
            let registry = self.registry.read();
            let Some(queues) = registry.by_realm.get(&realm_id) else {
                return;
            };
            for queue in queues.iter().filter(|q| q.receives(seq)) {
                let event = events.for_format(queue.format()).clone();
                if queue.push(event, max).is_err() {
                    overflowed.push(queue.clone());
                }
            }
        }
        for queue in &overflowed {
            self.drop_overflowed(queue);
        }
    }

    /// Appends the realm's `user_status` event number `seq` to every queue
    /// of the realm that takes it. A queue that cannot take it is dropped.
    pub fn publish_status(&self, realm_id: RealmId, seq: u64, event: &EncodedEvent) {
        let max = self.settings.max_events_per_queue;
        let mut overflowed = Vec::new();
        {
            let registry = self.registry.read();
            let Some(queues) = registry.by_realm.get(&realm_id) else {
                return;
            };
            for queue in queues.iter().filter(|q| q.receives_status(seq)) {
                if queue.push(event.clone(), max).is_err() {
                    overflowed.push(queue.clone());
                }
            }
        }
        for queue in &overflowed {
            self.drop_overflowed(queue);
        }
    }

    fn drop_overflowed(&self, queue: &Arc<Queue>) {
        tracing::info!(
            queue = %queue.id(),
            owner = ?queue.owner(),
            "dropping an event queue whose client does not keep up"
        );
        queue.close(Closed::Overflowed);
        self.registry.write().remove(queue);
    }

    /// Drops every queue of an owner (a user deactivated, an embed key
    /// revoked): waiting polls are refused and streams end.
    pub fn drop_owner(&self, owner: Owner) {
        let queues = self.registry.read().by_owner.get(&owner).cloned();
        self.drop_deactivated(queues.unwrap_or_default());
    }

    /// Drops every queue of a realm (which was deactivated).
    pub fn drop_realm(&self, realm_id: RealmId) {
        let queues = self.registry.read().by_realm.get(&realm_id).cloned();
        self.drop_deactivated(queues.unwrap_or_default());
    }

    fn drop_deactivated(&self, queues: Vec<Arc<Queue>>) {
        if queues.is_empty() {
            return;
        }
        for queue in &queues {
            queue.close(Closed::Deactivated);
        }
        self.registry.write().remove_all(&queues);
    }

    /// Drops every queue unused for its timeout.
    pub fn sweep(&self) {
        let now = self.clock.now_secs();
        let expired: Vec<Arc<Queue>> = self
            .registry
            .read()
            .by_id
            .values()
            .filter(|q| q.with_state(|s| s.is_expired(now)))
            .cloned()
            .collect();
        if expired.is_empty() {
            return;
        }
        for queue in &expired {
            queue.close(Closed::Expired);
        }
        self.registry.write().remove_all(&expired);
        tracing::debug!(count = expired.len(), "dropped expired event queues");
    }

    /// Stops: every waiting poll answers, every stream ends, and no new
    /// queue is opened.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let registry = std::mem::take(&mut *self.registry.write());
        for queue in registry.by_id.values() {
            queue.close(Closed::Shutdown);
        }
    }

    /// A place for one more open presence stream of `owner`, held until the
    /// stream ends; refused when a user has as many open as allowed. An
    /// embed key's streams are bounded per address, by the connections
    /// they hold, not per key: one key serves every page of a site.
    pub fn stream_slot(self: &Arc<Self>, owner: Owner) -> Result<StreamSlot, EventError> {
        let cap = match owner {
            Owner::User(_) => self.settings.max_streams_per_user,
            Owner::EmbedKey(_) => usize::MAX,
        };
        let mut streams = self.streams.lock();
        let open = streams.entry(owner).or_insert(0);
        if *open >= cap {
            return Err(EventError::TooManyStreams);
        }
        *open += 1;
        Ok(StreamSlot {
            hub: self.clone(),
            owner,
        })
    }

    /// How many event queues are open.
    pub fn queue_count(&self) -> usize {
        self.registry.read().by_id.len()
    }

    /// How many presence streams are open.
    pub fn open_streams(&self) -> usize {
        self.streams.lock().values().sum()
    }

    /// How many queues have a reader waiting on them: a long poll, or a
    /// stream between frames.
    pub fn waiting_readers(&self) -> usize {
        let registry = self.registry.read();
        registry
            .by_id
            .values()
            .filter(|queue| queue.with_state(|s| s.consumers() > 0))
            .count()
    }
}

/// An open presence stream's place in its owner's count.
pub struct StreamSlot {
    hub: Arc<Hub>,
    owner: Owner,
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSlot")
            .field("owner", &self.owner)
            .finish()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock();
        if let Some(open) = streams.get_mut(&self.owner) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::{EmbedKeyId, UserId};

    fn settings() -> EventSettings {
        EventSettings {
            queue_timeout_secs: 600,
            heartbeat: Duration::from_millis(50),
            stream_keepalive: Duration::from_millis(50),
            stream_max: None,
            max_queues_per_user: 2,
            max_streams_per_user: 2,
            max_events_per_queue: 3,
        }
    }

    fn spec(user_id: i64, realm_id: i64) -> QueueSpec {
        QueueSpec {
            owner: Owner::User(UserId(user_id)),
            realm_id: RealmId(realm_id),
            format: EventFormat::Legacy,
            wants_presence: true,
            wants_user_status: true,
            start_seq: 0,
            timeout_secs: 600,
        }
    }

    fn user(id: i64) -> Owner {
        Owner::User(UserId(id))
    }

    fn change(user_id: i64) -> PresenceEvents {
        PresenceEvents::encode(&super::super::PresenceChange {
            user_id: UserId(user_id),
            email: format!("u{user_id}@x.test"),
            clients: Default::default(),
            modern: presence_types::ModernPresence {
                active_timestamp: 1,
                idle_timestamp: 1,
            },
            server_timestamp: 1.0,
        })
        .unwrap()
    }

    #[test]
    fn queue_ids_look_like_zulips() {
        let id = new_queue_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_queue_id());
    }

    #[test]
    fn the_per_user_cap_drops_the_least_recently_used() {
        let clock = Arc::new(ManualClock::new(1000));
        let hub = Hub::new(settings(), clock.clone());
        let first = hub.open(spec(1, 1)).unwrap();
        clock.advance(1);
        let second = hub.open(spec(1, 1)).unwrap();
        clock.advance(1);
        hub.find(user(1), first.id())
            .unwrap()
            .with_state(|s| s.touch(1002));
        let third = hub.open(spec(1, 1)).unwrap();
        assert!(hub.find(user(1), first.id()).is_ok());
        assert_eq!(
            hub.find(user(1), second.id()).unwrap_err(),
            EventError::BadQueueId(second.id().to_string())
        );
        assert!(hub.find(user(1), third.id()).is_ok());
        assert!(hub.open(spec(2, 1)).is_ok(), "the cap is per user");
    }

    #[test]
    fn the_per_user_cap_spares_a_queue_someone_reads() {
        let clock = Arc::new(ManualClock::new(1000));
        let hub = Hub::new(settings(), clock.clone());
        let streamed = hub.open(spec(1, 1)).unwrap();
        let _reader = streamed.attach(clock.clone());
        clock.advance(1);
        let idle = hub.open(spec(1, 1)).unwrap();
        clock.advance(1);
        let third = hub.open(spec(1, 1)).unwrap();
        assert!(hub.find(user(1), streamed.id()).is_ok(), "older, but read");
        assert!(hub.find(user(1), idle.id()).is_err());
        assert!(hub.find(user(1), third.id()).is_ok());
    }

    #[test]
    fn events_reach_only_their_realm_and_only_newer_queues() {
        let clock = Arc::new(ManualClock::new(1000));
        let hub = Hub::new(settings(), clock);
        let here = hub.open(spec(1, 1)).unwrap();
        let elsewhere = hub.open(spec(2, 2)).unwrap();
        let later = hub
            .open(QueueSpec {
                start_seq: 1,
                ..spec(3, 1)
            })
            .unwrap();
        hub.publish(RealmId(1), 1, &change(9));
        assert_eq!(here.with_state(|s| s.len()), 1);
        assert_eq!(elsewhere.with_state(|s| s.len()), 0);
        assert_eq!(later.with_state(|s| s.len()), 0, "its snapshot has event 1");
        hub.publish(RealmId(1), 2, &change(9));
        assert_eq!(later.with_state(|s| s.len()), 1);
    }

    #[test]
    fn a_queue_that_does_not_keep_up_is_dropped() {
        let clock = Arc::new(ManualClock::new(1000));
        let hub = Hub::new(settings(), clock);
        let queue = hub.open(spec(1, 1)).unwrap();
        for seq in 1..=4 {
            hub.publish(RealmId(1), seq, &change(9));
        }
        assert!(hub.find(user(1), queue.id()).is_err());
        assert_eq!(hub.registry.read().by_id.len(), 0);
    }

    #[test]
    fn deactivation_drops_the_queues() {
        let clock = Arc::new(ManualClock::new(1000));
        let hub = Hub::new(settings(), clock);
        let gone = hub.open(spec(1, 1)).unwrap();
        let kept = hub.open(spec(2, 1)).unwrap();
        let elsewhere = hub.open(spec(3, 2)).unwrap();
        hub.drop_owner(user(1));
        assert!(hub.find(user(1), gone.id()).is_err());
        assert!(hub.find(user(2), kept.id()).is_ok());
        hub.drop_realm(RealmId(1));
        assert!(hub.find(user(2), kept.id()).is_err());
        assert!(hub.find(user(3), elsewhere.id()).is_ok());
    }

    #[test]
    fn expiry_is_judged_by_the_service_clock() {
        let clock = Arc::new(ManualClock::new(1000));
        let hub = Hub::new(settings(), clock.clone());
        let queue = hub.open(spec(1, 1)).unwrap();
        clock.advance(599);
        hub.sweep();
        assert!(hub.find(user(1), queue.id()).is_ok());
        let other = hub.open(spec(2, 1)).unwrap();
        clock.advance(1);
        hub.sweep();
        assert_eq!(
            hub.registry.read().by_id.len(),
            1,
            "only the queue unused for 600 s goes"
        );
        assert!(hub.find(user(2), other.id()).is_ok());
        clock.advance(600);
        hub.sweep();
        assert_eq!(hub.registry.read().by_id.len(), 0);
        assert!(hub.registry.read().by_realm.is_empty());
        assert!(hub.registry.read().by_owner.is_empty());
    }

    #[test]
    fn a_user_has_a_bounded_number_of_open_streams() {
        let hub = Arc::new(Hub::new(settings(), Arc::new(ManualClock::new(0))));
        let first = hub.stream_slot(user(1)).unwrap();
        let _second = hub.stream_slot(user(1)).unwrap();
        assert_eq!(
            hub.stream_slot(user(1)).unwrap_err(),
            EventError::TooManyStreams
        );
        assert!(hub.stream_slot(user(2)).is_ok(), "the cap is per user");
        let pages: Vec<_> = (0..5)
            .map(|_| hub.stream_slot(Owner::EmbedKey(EmbedKeyId(1))).unwrap())
            .collect();
        assert_eq!(hub.open_streams(), 2 + pages.len());
        drop(first);
        assert!(hub.stream_slot(user(1)).is_ok());
    }

    #[tokio::test]
    async fn a_silent_poll_ends_with_a_heartbeat() {
        let clock = Arc::new(ManualClock::new(1000));
        let hub = Hub::new(settings(), clock);
        let queue = hub.open(spec(1, 1)).unwrap();
        let polled = hub
            .get_events(user(1), queue.id(), -1, false)
            .await
            .unwrap();
        assert!(polled.waited);
        let events = polled.events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, 0);
        assert_eq!(events[0].event.kind(), "heartbeat");
        let polled = hub.get_events(user(1), queue.id(), 0, true).await.unwrap();
        assert!(polled.events.is_empty());
        assert!(!polled.waited, "dont_block answers at once");
    }
}
