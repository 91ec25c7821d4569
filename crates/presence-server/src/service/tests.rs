//! The realm-wide answers: shared ones are the answers built afresh, and
//! their history windows start where Zulip's do.

use proptest::prelude::*;

use super::model::testing::realm_with_users;
use super::model::{ClientRecord, Realm};
use super::rules::Times;
use super::*;

/// A realm whose user `i` last reported `seen[i]` days before `now`
/// (never, for `None`), each with update id `i + 1`.
fn realm(seen: &[Option<i64>], now: i64) -> Realm {
    let mut realm = realm_with_users(seen.len() as i64);
    for (i, days) in seen.iter().enumerate() {
        let id = i as i64 + 1;
        if let Some(days) = days {
            let times = Times {
                last_connected: now - days * 86_400 - id,
                last_active: None,
            };
            let record = ClientRecord::new(Arc::from("website"), times);
            realm.put_presence(UserId(id), vec![record], UpdateId(id));
        }
    }
    realm
}

proptest! {
    /// Whatever windows are asked for, in whatever order, as time
    /// passes and the realm changes, a shared answer has the bytes and
    /// update id of the answer built afresh.
    #[test]
    fn shared_answers_are_the_answers_built_afresh(
        seen in proptest::collection::vec(proptest::option::of(0i64..30), 1..12),
        asks in proptest::collection::vec(
            (any::<bool>(), proptest::option::of(-1i64..40), 0i64..200_000, 0usize..20),
            1..60,
        ),
    ) {
        let mut now = 1_800_000_000;
        let mut realm = realm(&seen, now);
        let mut next_id = seen.len() as i64 + 1;
        for (modern, days, wait, touch) in asks {
            now += wait;
            if touch < seen.len() && wait % 3 == 0 {
                // Someone reports: the realm's version moves.
                let times = Times { last_connected: now, last_active: Some(now) };
                let record = ClientRecord::new(Arc::from("website"), times);
                realm.put_presence(UserId(touch as i64 + 1), vec![record], UpdateId(next_id));
                next_id += 1;
            }
            let format = if modern { Format::Modern } else { Format::Legacy };
            let shared = window_answer(&realm, format, days, 14, now);
            let fresh = match window_start(days.unwrap_or(14), now) {
                Some(start) => Arc::new(everyone_since(&realm, format, start).0),
                None => SharedAnswer::empty(),
            };
            prop_assert_eq!(&shared.presences, &fresh.presences);
            prop_assert_eq!(shared.last_update_id, fresh.last_update_id);
        }
    }
}

#[test]
fn windows_start_where_zulip_starts_them() {
    let now = 1_800_000_000;
    assert_eq!(window_start(0, now), None);
    assert_eq!(window_start(1, now), Some(now - 86_400));
    // Zulip's `now - timedelta(days=-1)`: a day ahead, listing nobody yet.
    assert_eq!(window_start(-1, now), Some(now + 86_400));
    // Back past the epoch (Zulip's arithmetic would fail): everyone.
    assert_eq!(window_start(999_999_999, now), Some(0));
    assert_eq!(window_start(i64::MAX, now), Some(0));
    assert_eq!(window_start(i64::MIN, now), Some(i64::MAX));
}
