//! The realm-wide answers shared between requests: a caller who varies
//! `history_limit_days` gets the right answer for each window without
//! pushing the default window's shared answer out, and windows that give
//! the same answer share one.

use std::collections::BTreeSet;
use std::sync::Arc;

use presence_server::service::{Caller, Format, Reader};
use presence_tests::{TestServer, User};

const DAY: i64 = 86_400;

/// A realm of ten users, user `i` last reported `i * gap` days before now,
/// and an eleventh, the reader (reporting now), with its caller.
async fn spread_realm(server: &TestServer, gap: i64) -> (Vec<User>, Caller) {
    let users = server.realm_with_users("acme", 11).await;
    for (i, user) in users[..10].iter().enumerate().rev() {
        server.report(user, "website", "active").await;
        if i > 0 {
            server.clock.advance(gap * DAY);
        }
    }
    let reader = &users[10];
    // The reader's own first report changes the realm; later ones do not.
    server.report(reader, "reader", "idle").await;
    let caller = server
        .service()
        .authenticate(&reader.email, &reader.key)
        .expect("the reader logs in");
    (users, caller)
}

/// The emails a legacy answer with this window lists, over HTTP.
async fn listed(server: &TestServer, reader: &User, days: i64) -> BTreeSet<String> {
    let days = days.to_string();
    let body = server
        .post(
            reader,
            "/users/me/presence",
            &[
                ("status", "idle"),
                ("client", "reader"),
                ("history_limit_days", &days),
            ],
        )
        .await
        .ok();
    body["presences"]
        .as_object()
        .expect("presences")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn other_windows_never_push_out_the_default_answer() {
    let server = TestServer::start().await;
    let (users, caller) = spread_realm(&server, 1).await;
    let service = server.service();
    let legacy = service.realm_presence(Reader::User(&caller), Format::Legacy, None, None);
    let modern = service.realm_presence(Reader::User(&caller), Format::Modern, None, None);
    // Another user asks for every window from 1 to 40 days, twice over,
    // and gets each window's own answer.
    for days in (1..=40).chain(1..=40) {
        let expected: BTreeSet<String> = users[..10]
            .iter()
            .take((days + 1).min(10) as usize)
            .chain([&users[10]])
            .map(|u| u.email.clone())
            .collect();
        assert_eq!(
            listed(&server, &users[10], days).await,
            expected,
            "{days} days"
        );
    }
    let legacy_again = service.realm_presence(Reader::User(&caller), Format::Legacy, None, None);
    let modern_again = service.realm_presence(Reader::User(&caller), Format::Modern, None, None);
    assert!(
        Arc::ptr_eq(&legacy, &legacy_again),
        "the default legacy answer was built again"
    );
    assert!(
        Arc::ptr_eq(&modern, &modern_again),
        "the default modern answer was built again"
    );
}

#[tokio::test]
async fn windows_that_give_the_same_answer_share_it() {
    let server = TestServer::start().await;
    // Reports 0, 2, 4, ... 18 days ago.
    let (_users, caller) = spread_realm(&server, 2).await;
    let service = server.service();
    let answer = |days: Option<i64>| {
        service.realm_presence(Reader::User(&caller), Format::Modern, None, days)
    };
    // 2 and 3 days reach the same reports; 4 days one more.
    let two = answer(Some(2));
    assert!(Arc::ptr_eq(&two, &answer(Some(3))));
    assert!(!Arc::ptr_eq(&two, &answer(Some(4))));
    // The default window (14 days) is the answer of 15 days too.
    let default = answer(None);
    assert!(Arc::ptr_eq(&default, &answer(Some(14))));
    assert!(Arc::ptr_eq(&default, &answer(Some(15))));
    // Every window reaching the oldest report (18 days ago) is one answer,
    // however far back it reaches.
    let all = answer(Some(18));
    for days in [19, 365, 36_500, 1 << 40, i64::MAX] {
        assert!(Arc::ptr_eq(&all, &answer(Some(days))), "{days} days");
    }
    assert!(!Arc::ptr_eq(&all, &default));
    // The default answer is still the one shared.
    assert!(Arc::ptr_eq(&default, &answer(None)));
}
