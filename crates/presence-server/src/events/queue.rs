//! One event queue: its events, Zulip's acknowledgement rules, and waiting
//! for events.
//!
//! Ids count from 0 per queue. A poll's `last_event_id` drops every event
//! up to it (Zulip's pruning) and the answer is everything left. At most one
//! consumer (a long-poll or a stream) waits on a queue: a new one takes
//! over and the old one answers with what it has, as in Zulip. A queue with
//! a consumer never expires; without one it expires `queue_timeout_secs`
//! after it was last used.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::encode::EncodedEvent;
use super::{EventError, EventFormat, Owner};
use crate::clock::SharedClock;
use crate::ids::RealmId;

/// An event in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id in this queue.
    pub id: i64,
    /// The shared encoding.
    pub event: EncodedEvent,
}

/// Why a queue stopped taking events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// `DELETE /events`.
    Deleted,
    /// Unused for longer than the queue timeout.
    Expired,
    /// Its user registered more queues than allowed, and this one was the
    /// least recently used.
    Evicted,
    /// Its client stopped taking events and it would have held too many.
    Overflowed,
    /// Its user or realm was deactivated, or its embed key revoked.
    Deactivated,
    /// The server is stopping.
    Shutdown,
}

/// A push that did not fit: the queue holds its maximum of events that its
/// consumer has not been handed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// The mutable part of a queue.
#[derive(Debug)]
pub struct QueueState {
    events: VecDeque<Entry>,
    next_id: i64,
    newest_pruned_id: i64,
    delivered_through: i64,
    last_used: i64,
    /// Seconds without a consumer after which the queue expires.
    timeout: i64,
    consumers: u32,
    generation: u64,
    closed: Option<Closed>,
}

impl QueueState {
    /// An empty queue, last used at `now` (service clock seconds), that
    /// expires `timeout` seconds after its last use.
    pub fn new(now: i64, timeout: i64) -> Self {
        QueueState {
            events: VecDeque::new(),
            next_id: 0,
            newest_pruned_id: -1,
            delivered_through: -1,
            last_used: now,
            timeout,
            consumers: 0,
            generation: 0,
            closed: None,
        }
    }

    /// Appends an event under the next id.
    ///
    /// A full queue first drops its oldest event if that one was already
    /// handed to a consumer (a stream keeps what it sent until the client
    /// resumes past it); if not, the client is not keeping up and the push
    /// fails.
    pub fn push(&mut self, event: EncodedEvent, max_events: usize) -> Result<i64, Overflow> {
        if self.events.len() >= max_events {
            match self.events.front() {
                Some(oldest) if oldest.id <= self.delivered_through => {
                    self.newest_pruned_id = oldest.id;
                    self.events.pop_front();
                }
                _ => return Err(Overflow),
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.events.push_back(Entry { id, event });
        Ok(id)
    }

    /// Acknowledges every event up to `last_event_id`, with Zulip's checks:
    /// an id older than what was already dropped, or one this queue never
    /// handed out, is refused.
    pub fn acknowledge(&mut self, last_event_id: i64) -> Result<(), EventError> {
        if last_event_id < self.newest_pruned_id {
            return Err(EventError::Pruned(last_event_id));
        }
        while self.events.front().is_some_and(|e| e.id <= last_event_id) {
            if let Some(dropped) = self.events.pop_front() {
                self.newest_pruned_id = dropped.id;
            }
        }
        if self.newest_pruned_id != last_event_id {
            return Err(EventError::NotInQueue(last_event_id));
        }
        Ok(())
    }

    /// What acknowledging `last_event_id` and reading would give, changing
    /// nothing: the same checks as [`QueueState::acknowledge`], then the
    /// events after it, not counted as handed out. `HEAD` is safe in HTTP.
    pub fn peek(&self, last_event_id: i64) -> Result<Vec<Entry>, EventError> {
        if last_event_id < self.newest_pruned_id {
            return Err(EventError::Pruned(last_event_id));
        }
        let known = last_event_id == self.newest_pruned_id
            || self.events.iter().any(|e| e.id == last_event_id);
        if !known {
            return Err(EventError::NotInQueue(last_event_id));
        }
        let after = self.events.iter().filter(|e| e.id > last_event_id);
        Ok(after.cloned().collect())
    }

    /// Every event held, oldest first; they count as handed out.
    pub fn contents(&mut self) -> Vec<Entry> {
        self.since(i64::MIN)
    }

    /// The events after `after`, oldest first; they count as handed out.
    pub fn since(&mut self, after: i64) -> Vec<Entry> {
        let entries: Vec<Entry> = self
            .events
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect();
        if let Some(last) = entries.last() {
            self.delivered_through = self.delivered_through.max(last.id);
        }
        entries
    }

    /// Whether any event after `after` is held.
    fn has_after(&self, after: i64) -> bool {
        self.events.back().is_some_and(|e| e.id > after)
    }

    /// Marks the queue used at `now`.
    pub fn touch(&mut self, now: i64) {
        self.last_used = self.last_used.max(now);
    }

    /// Whether the queue has been unused for its timeout at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.consumers == 0 && now.saturating_sub(self.last_used) >= self.timeout
    }

    /// Why the queue is closed, if it is.
    pub fn closed(&self) -> Option<Closed> {
        self.closed
    }

    /// When the queue was last used (service clock seconds).
    pub fn last_used(&self) -> i64 {
        self.last_used
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether it holds no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// How many consumers wait on it (0 or 1, briefly 2 during a takeover).
    pub fn consumers(&self) -> u32 {
        self.consumers
    }
}

/// An event queue of one user.
#[derive(Debug)]
pub struct Queue {
    id: Arc<str>,
    owner: Owner,
    realm_id: RealmId,
    format: EventFormat,
    wants_presence: bool,
    wants_user_status: bool,
    start_seq: u64,
    state: Mutex<QueueState>,
    wake: Notify,
}

impl Queue {
    /// A new, empty queue of `spec`'s kind, last used at `now`.
    pub fn new(id: Arc<str>, spec: &super::QueueSpec, now: i64) -> Self {
        Queue {
            id,
            owner: spec.owner,
            realm_id: spec.realm_id,
            format: spec.format,
            wants_presence: spec.wants_presence,
            wants_user_status: spec.wants_user_status,
            start_seq: spec.start_seq,
            state: Mutex::new(QueueState::new(now, spec.timeout_secs)),
            wake: Notify::new(),
        }
    }

    /// The queue's id.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The owner.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// The owner's realm.
    pub fn realm_id(&self) -> RealmId {
        self.realm_id
    }

    /// The shape of its presence events.
    pub fn format(&self) -> EventFormat {
        self.format
    }

    /// Whether it receives the realm's `presence` event number `seq`: it
    /// asked for presence events, and its snapshot predates the event.
    pub fn receives(&self, seq: u64) -> bool {
        self.wants_presence && seq > self.start_seq
    }

    /// Whether it receives the realm's `user_status` event number `seq`.
    pub fn receives_status(&self, seq: u64) -> bool {
        self.wants_user_status && seq > self.start_seq
    }

    /// Runs `f` on the state under the queue's lock.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut QueueState) -> T) -> T {
        f(&mut self.state.lock())
    }

    /// Appends an event and wakes the consumer; a closed queue ignores it.
    pub fn push(&self, event: EncodedEvent, max_events: usize) -> Result<(), Overflow> {
        {
            let mut state = self.state.lock();
            if state.closed.is_some() {
                return Ok(());
            }
            state.push(event, max_events)?;
        }
        self.wake.notify_waiters();
        Ok(())
    }

    /// Closes the queue (the first reason sticks) and wakes its consumer.
    pub fn close(&self, reason: Closed) {
        {
            let mut state = self.state.lock();
            state.closed.get_or_insert(reason);
        }
        self.wake.notify_waiters();
    }

    /// Becomes the queue's consumer; an earlier consumer gives up at once.
    pub fn attach(self: &Arc<Self>, clock: SharedClock) -> Consumer {
        let generation = {
            let mut state = self.state.lock();
            state.generation += 1;
            state.consumers += 1;
            state.last_used = clock.now_secs();
            state.generation
        };
        self.wake.notify_waiters();
        Consumer {
            queue: self.clone(),
            generation,
            clock,
        }
    }
}

/// Why a consumer's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// There are events after the position waited from.
    Events,
    /// The time given passed without events.
    TimedOut,
    /// A newer consumer took over the queue.
    Superseded,
    /// The queue was closed.
    Closed(Closed),
}

/// The one party waiting on a queue's events; while it lives the queue
/// does not expire. Dropping it (the client went away) marks the queue used.
pub struct Consumer {
    queue: Arc<Queue>,
    generation: u64,
    clock: SharedClock,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", self.queue.id())
            .field("generation", &self.generation)
            .finish()
    }
}

impl Consumer {
    /// The queue.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Waits, at most `timeout`, until the queue holds an event after
    /// `after`, is closed, or is taken over.
    pub async fn wait(&self, after: i64, timeout: Duration) -> Wake {
        wait_on(&self.queue, self.generation, after, timeout).await
    }

    /// [`Consumer::wait`] as a future that borrows nothing, for a holder
    /// that polls it between calls of its own (a stream's body).
    pub fn wait_owned(
        &self,
        after: i64,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Wake> + Send + 'static {
        let (queue, generation) = (self.queue.clone(), self.generation);
        async move { wait_on(&queue, generation, after, timeout).await }
    }
}

/// What a consumer of `generation` finds in `queue` now, if anything.
fn check(queue: &Queue, generation: u64, after: i64) -> Option<Wake> {
    let state = queue.state.lock();
    if let Some(reason) = state.closed {
        return Some(Wake::Closed(reason));
    }
    if state.generation != generation {
        return Some(Wake::Superseded);
    }
    state.has_after(after).then_some(Wake::Events)
}

/// Waits, at most `timeout`, until `queue` holds an event after `after`,
/// is closed, or is taken over from the consumer of `generation`.
async fn wait_on(queue: &Queue, generation: u64, after: i64, timeout: Duration) -> Wake {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        // Register for a wake-up before looking, so that a push between
        // the look and the wait is not missed.
        let notified = queue.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(wake) = check(queue, generation, after) {
            return wake;
        }
        tokio::select! {
            () = &mut notified => {}
            () = &mut deadline => return check(queue, generation, after).unwrap_or(Wake::TimedOut),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let now = self.clock.now_secs();
        let mut state = self.queue.state.lock();
        state.consumers = state.consumers.saturating_sub(1);
        state.last_used = state.last_used.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::UserId;

    fn hb() -> EncodedEvent {
        EncodedEvent::heartbeat()
    }

    fn spec() -> crate::events::QueueSpec {
        crate::events::QueueSpec {
            owner: Owner::User(UserId(1)),
            realm_id: RealmId(1),
            format: EventFormat::Legacy,
            wants_presence: true,
            wants_user_status: true,
            start_seq: 0,
            timeout_secs: 600,
        }
    }

    fn ids(entries: &[Entry]) -> Vec<i64> {
        entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn acknowledging_follows_zulips_rules() {
        let mut q = QueueState::new(0, 600);
        assert_eq!(q.acknowledge(-1), Ok(()));
        assert_eq!(q.acknowledge(0), Err(EventError::NotInQueue(0)));
        for _ in 0..3 {
            q.push(hb(), 10).unwrap();
        }
        assert_eq!(q.acknowledge(0), Ok(()));
        assert_eq!(ids(&q.contents()), [1, 2]);
        // Asking again from the same point gives the same events.
        assert_eq!(q.acknowledge(0), Ok(()));
        assert_eq!(q.acknowledge(-1), Err(EventError::Pruned(-1)));
        assert_eq!(q.acknowledge(5), Err(EventError::NotInQueue(5)));
        assert!(q.is_empty(), "acknowledging past the end drops everything");
    }

    #[test]
    fn a_peek_answers_like_a_read_and_changes_nothing() {
        let mut q = QueueState::new(0, 600);
        for _ in 0..3 {
            q.push(hb(), 3).unwrap();
        }
        assert_eq!(ids(&q.peek(0).unwrap()), [1, 2]);
        assert_eq!(q.peek(7), Err(EventError::NotInQueue(7)));
        // Nothing was acknowledged: every event is still held.
        assert_eq!(ids(&q.contents()), [0, 1, 2]);
        let mut q = QueueState::new(0, 600);
        q.push(hb(), 3).unwrap();
        q.push(hb(), 3).unwrap();
        q.acknowledge(0).unwrap();
        assert_eq!(q.peek(-1), Err(EventError::Pruned(-1)));
        assert_eq!(ids(&q.peek(0).unwrap()), [1]);
        assert_eq!(q.push(hb(), 1), Err(Overflow), "a peek hands nothing out");
    }

    #[test]
    fn a_full_queue_drops_only_what_it_handed_out() {
        let mut q = QueueState::new(0, 600);
        q.push(hb(), 2).unwrap();
        q.push(hb(), 2).unwrap();
        assert_eq!(q.push(hb(), 2), Err(Overflow), "nothing was handed out");
        assert_eq!(ids(&q.contents()), [0, 1]);
        assert_eq!(q.push(hb(), 2), Ok(2));
        assert_eq!(ids(&q.contents()), [1, 2]);
        assert_eq!(q.acknowledge(-1), Err(EventError::Pruned(-1)));
    }

    #[test]
    fn expiry_needs_no_consumer_and_the_full_timeout() {
        let clock: SharedClock = Arc::new(ManualClock::new(1000));
        let queue = Arc::new(Queue::new(Arc::from("q"), &spec(), 1000));
        assert!(!queue.with_state(|s| s.is_expired(1599)));
        assert!(queue.with_state(|s| s.is_expired(1600)));
        let consumer = queue.attach(clock);
        assert!(!queue.with_state(|s| s.is_expired(5000)));
        drop(consumer);
        assert!(queue.with_state(|s| s.is_expired(1600)));
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_for_an_event_and_gives_way_to_a_newer_one() {
        let clock: SharedClock = Arc::new(ManualClock::new(0));
        let queue = Arc::new(Queue::new(Arc::from("q"), &spec(), 0));
        let first = queue.attach(clock.clone());
        let waiting = {
            let queue = queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                queue.push(EncodedEvent::heartbeat(), 10).unwrap();
            })
        };
        assert_eq!(first.wait(-1, Duration::from_secs(5)).await, Wake::Events);
        waiting.await.unwrap();
        assert_eq!(
            first.wait(0, Duration::from_millis(10)).await,
            Wake::TimedOut
        );
        let second = queue.attach(clock);
        assert_eq!(
            first.wait(0, Duration::from_secs(5)).await,
            Wake::Superseded
        );
        queue.close(Closed::Deleted);
        assert_eq!(
            second.wait(0, Duration::from_secs(5)).await,
            Wake::Closed(Closed::Deleted)
        );
    }
}
