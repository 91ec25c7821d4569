//! The payload format (what round-trips, what is refused, what does not
//! fit) and the inbox's chains (exact cover, gaps, waiting).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::store::testing::{put, record};

fn batch(realm: i64, first: i64, last: i64) -> Published {
    Published {
        realm_id: RealmId(realm),
        first: UpdateId(first),
        last: UpdateId(last),
        puts: (first..=last)
            .map(|id| record(UserId(id), "website", id))
            .collect(),
        removed: Vec::new(),
    }
}

#[test]
fn a_batch_round_trips_with_odd_client_names() {
    let mut published = batch(7, 41, 43);
    published.puts[1].last_active_time = None;
    published.puts[2].client = "we%ird 'name'\nwith\rbreaks 100%".to_owned();
    published.removed = vec![(UserId(9), "Zulip Mobile %0A".to_owned())];
    let payload = encode("abc123", &published).expect("fits");
    assert!(!payload.contains('\''), "{payload}");
    assert_eq!(payload.lines().count(), 5, "{payload}");
    assert!(is_published(&payload));
    assert_eq!(sender(&payload), Some("abc123"));
    assert_eq!(decode(&payload), Ok(("abc123".to_owned(), published)));
}

#[test]
fn anything_but_a_whole_payload_is_refused() {
    let payload = encode("tok", &batch(1, 5, 6)).expect("fits");
    assert_eq!(decode("tok"), Err(PayloadError::Version));
    assert_eq!(decode("p2 tok 1 5 6"), Err(PayloadError::Version));
    assert!(!is_published("p1x"));
    for garbled in [
        payload.replace("+5 ", "+x "),
        payload.replace("p1 tok 1 5 6", "p1 tok 1 6 5"),
        payload.replace("p1 tok 1 5 6", "p1 tok 1 0 6"),
        payload.replace("p1 tok 1 5 6", "p1 tok 1 5"),
        payload.replace("p1 tok 1 5 6", "p1 tok 1 5 6 7"),
        payload.replace("+6 1 ", "+6 2 "),
        payload.replace("+6 1 ", "+6 -1 "),
        payload.replace("website", "web%2site"),
        format!("{payload}\n*7 website"),
        format!("{payload}\n-7"),
        format!("{payload}\n+7 0 1 2"),
        payload[..payload.rfind(' ').expect("fields")].to_owned(),
    ] {
        assert!(decode(&garbled).is_err(), "{garbled}");
    }
}

#[test]
fn a_batch_too_large_for_a_notification_is_not_encoded() {
    let mut published = batch(1, 1, 1);
    published.puts = (0..1000)
        .map(|i| record(UserId(i), "ZulipElectron", 1))
        .collect();
    assert_eq!(encode("tok", &published), None);
    published.puts.truncate(100);
    let payload = encode("tok", &published).expect("a hundred records fit");
    assert!(payload.len() <= MAX_PAYLOAD);
}

#[test]
fn a_batch_is_published_per_realm_with_each_record_in_its_final_state() {
    let (a, b) = (RealmId(1), RealmId(2));
    let mutations = [
        put(UserId(10), "web", 4),
        put(UserId(20), "web", 8),
        Mutation::DeletePresence {
            user_id: UserId(10),
            client: "web".to_owned(),
        },
        put(UserId(10), "mobile", 5),
    ];
    let ranges = [(a, UpdateId(3), UpdateId(5)), (b, UpdateId(7), UpdateId(8))];
    let published = from_batch(&mutations, &[a, b, a, a], &ranges).expect("presence only");
    assert_eq!(published.len(), 2);
    let (first, second) = (&published[0], &published[1]);
    assert_eq!(
        (first.realm_id, first.first, first.last),
        (a, UpdateId(4), UpdateId(5))
    );
    assert_eq!(first.puts, vec![record(UserId(10), "mobile", 5)]);
    assert_eq!(first.removed, vec![(UserId(10), "web".to_owned())]);
    assert_eq!((second.first, second.last), (UpdateId(8), UpdateId(8)));

    // A batch that also changes a user is not published.
    let settings = Mutation::SetUserSettings {
        user_id: UserId(10),
        presence_enabled: false,
        enable_offline_push_notifications: true,
    };
    assert_eq!(from_batch(&[settings], &[a], &ranges), None);
}

#[test]
fn an_inbox_gives_exactly_the_chain_asked_for() {
    let inbox = Inbox::default();
    let realm = RealmId(1);
    for (first, last) in [(1, 2), (3, 3), (4, 7), (8, 9)] {
        inbox.put(batch(1, first, last));
    }
    inbox.put(batch(2, 1, 1));
    let none = Duration::ZERO;
    // Ends inside a batch: waiting cannot help.
    assert_eq!(inbox.take(realm, UpdateId(2), UpdateId(5), none), None);
    let chain = inbox
        .take(realm, UpdateId(2), UpdateId(7), none)
        .expect("covered");
    let ranges: Vec<_> = chain.iter().map(|b| (b.first.0, b.last.0)).collect();
    assert_eq!(ranges, vec![(3, 3), (4, 7)]);
    // (1, 2] was below the reader and went; (8, 9] and realm 2 stay.
    assert_eq!(inbox.len(), 2);
    // Starts inside a batch.
    assert_eq!(inbox.take(realm, UpdateId(8), UpdateId(9), none), None);
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox.take(realm, UpdateId(9), UpdateId(11), none), None);
    assert_eq!(inbox.len(), 1, "a batch at or below memory is dropped");
    assert_eq!(inbox.take(realm, UpdateId(3), UpdateId(3), none), None);
}

#[test]
fn an_inbox_gives_what_follows_memory_only_without_a_gap() {
    let inbox = Inbox::default();
    let realm = RealmId(1);
    for (first, last) in [(1, 2), (3, 3), (4, 7)] {
        inbox.put(batch(1, first, last));
    }
    inbox.put(batch(2, 5, 5));
    let mut realms = inbox.realms();
    realms.sort_unstable();
    assert_eq!(realms, vec![RealmId(1), RealmId(2)]);
    let chain = inbox
        .take_following(realm, UpdateId(2))
        .expect("nothing missing");
    let ranges: Vec<_> = chain.iter().map(|b| (b.first.0, b.last.0)).collect();
    assert_eq!(ranges, vec![(3, 3), (4, 7)], "(1, 2] is memory's already");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox.take_following(realm, UpdateId(7)), Some(Vec::new()));
    // Realm 2 misses (0, 4]: its batch stays, for the read to sort out.
    assert_eq!(inbox.take_following(RealmId(2), UpdateId(0)), None);
    assert_eq!(inbox.len(), 1);
    // Once memory is past it, it goes.
    assert_eq!(
        inbox.take_following(RealmId(2), UpdateId(5)),
        Some(Vec::new())
    );
    assert!(inbox.is_empty());
    assert!(inbox.realms().is_empty());
}

#[test]
fn an_inbox_waits_a_moment_for_the_missing_batch() {
    let inbox = Arc::new(Inbox::default());
    let realm = RealmId(1);
    inbox.put(batch(1, 1, 2));
    let started = Instant::now();
    assert_eq!(
        inbox.take(realm, UpdateId(0), UpdateId(3), Duration::from_millis(30)),
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(30));

    let sender = Arc::clone(&inbox);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let putter = thread::spawn(move || {
        rx.recv().expect("go");
        sender.put(batch(1, 3, 3));
    });
    tx.send(()).expect("send");
    let chain = inbox.take(realm, UpdateId(0), UpdateId(3), Duration::from_secs(10));
    putter.join().expect("putter");
    assert_eq!(chain.map(|c| c.len()), Some(2));
    assert!(inbox.is_empty());
}

#[test]
fn an_inbox_lets_the_oldest_go_past_its_capacity() {
    let inbox = Inbox::default();
    for first in 1..=(INBOX_CAPACITY as i64 + 10) {
        inbox.put(batch(1, first, first));
    }
    assert_eq!(inbox.len(), INBOX_CAPACITY);
    let none = Duration::ZERO;
    assert_eq!(
        inbox.take(RealmId(1), UpdateId(0), UpdateId(20), none),
        None
    );
    let last = INBOX_CAPACITY as i64 + 10;
    let chain = inbox.take(RealmId(1), UpdateId(10), UpdateId(last), none);
    assert_eq!(chain.map(|c| c.len()), Some(INBOX_CAPACITY));
}
