//! Realm isolation as a property: whatever users of two realms do, in any
//! order, no answer to one realm shows the other realm's users or presence.
//!
//! Each case creates two fresh realms on one running server (with some
//! emails in both, since emails are unique only within a realm), runs a
//! random sequence of reports, reads and settings changes by users of both,
//! and checks every answer for marks of the other realm: its user ids, its
//! realm-only emails, and its client names, which carry the realm's letter.

use std::sync::atomic::{AtomicUsize, Ordering};

use presence_tests::{Answer, TestServer, User};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

const USERS_PER_REALM: usize = 3;

/// One user's action.
#[derive(Debug, Clone)]
enum Action {
    Report {
        client: usize,
        active: bool,
    },
    GetUser {
        other_realm: bool,
        target: usize,
        by_id: bool,
    },
    RealmPresence,
    Presence {
        modern: bool,
        last_update_id: i64,
    },
    Users,
    OwnUser,
    Settings {
        presence_enabled: bool,
    },
    Wait {
        secs: i64,
    },
}

#[derive(Debug, Clone)]
struct Step {
    realm_b: bool,
    actor: usize,
    action: Action,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..3usize, any::<bool>()).prop_map(|(client, active)| Action::Report { client, active }),
        3 => (any::<bool>(), 0..USERS_PER_REALM, any::<bool>())
            .prop_map(|(other_realm, target, by_id)| Action::GetUser { other_realm, target, by_id }),
        1 => Just(Action::RealmPresence),
        2 => (any::<bool>(), -1..6i64)
            .prop_map(|(modern, last_update_id)| Action::Presence { modern, last_update_id }),
        1 => Just(Action::Users),
        1 => Just(Action::OwnUser),
        1 => any::<bool>().prop_map(|presence_enabled| Action::Settings { presence_enabled }),
        1 => (0..400i64).prop_map(|secs| Action::Wait { secs }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (any::<bool>(), 0..USERS_PER_REALM, action()).prop_map(|(realm_b, actor, action)| Step {
            realm_b,
            actor,
            action,
        }),
        1..24,
    )
}

/// A realm of the case: its users, and what marks its data.
struct Realm {
    users: Vec<User>,
    letter: &'static str,
}

impl Realm {
    fn client(&self, i: usize) -> String {
        format!("{}-client{i}", self.letter)
    }
}

/// The marks of `other` found in an answer given to a user of the realm
/// whose letter is `own`.
fn leaks(body: &Value, other: &Realm, own_emails: &[&str]) -> Vec<String> {
    let ids: Vec<String> = other.users.iter().map(|u| u.id.to_string()).collect();
    let only_theirs: Vec<&str> = other
        .users
        .iter()
        .map(|u| u.email.as_str())
        .filter(|e| !own_emails.contains(e))
        .collect();
    let client_mark = format!("{}-client", other.letter);
    let mut found = Vec::new();
    let mut stack = vec![body];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if ids.contains(key)
                        || only_theirs.contains(&key.as_str())
                        || key.starts_with(&client_mark)
                    {
                        found.push(format!("key {key}"));
                    }
                    if key == "user_id"
                        && value
                            .as_i64()
                            .is_some_and(|id| ids.contains(&id.to_string()))
                    {
                        found.push(format!("user_id {value}"));
                    }
                    stack.push(value);
                }
            }
            Value::Array(items) => stack.extend(items),
            Value::String(s)
                if only_theirs.contains(&s.as_str()) || s.starts_with(&client_mark) =>
            {
                found.push(format!("string {s}"));
            }
            _ => {}
        }
    }
    found
}

async fn run_step(server: &TestServer, realms: &[Realm; 2], step: &Step) -> Option<Answer> {
    let (own, other) = if step.realm_b {
        (&realms[1], &realms[0])
    } else {
        (&realms[0], &realms[1])
    };
    let actor = &own.users[step.actor];
    Some(match &step.action {
        Action::Report { client, active } => {
            let client = own.client(*client);
            let status = if *active { "active" } else { "idle" };
            server
                .post(
                    actor,
                    "/users/me/presence",
                    &[
                        ("status", status),
                        ("client", &client),
                        ("ping_only", "true"),
                    ],
                )
                .await
        }
        Action::GetUser {
            other_realm,
            target,
            by_id,
        } => {
            let realm = if *other_realm { other } else { own };
            let target = &realm.users[*target];
            let key = if *by_id {
                target.id.to_string()
            } else {
                target.email.clone()
            };
            let answer = server.get(actor, &format!("/users/{key}/presence")).await;
            let shared_email = !by_id && own.users.iter().any(|u| u.email == target.email);
            if *other_realm && !shared_email {
                answer.error(400, "BAD_REQUEST", "No such user");
            }
            answer
        }
        Action::RealmPresence => server.get(actor, "/realm/presence").await,
        Action::Presence {
            modern,
            last_update_id,
        } => {
            let id = last_update_id.to_string();
            let mut form = vec![("status", "idle"), ("client", own.letter)];
            if *modern {
                form.push(("last_update_id", &id));
            }
            server.post(actor, "/users/me/presence", &form).await
        }
        Action::Users => server.get(actor, "/users").await,
        Action::OwnUser => server.get(actor, "/users/me").await,
        Action::Settings { presence_enabled } => {
            let value = presence_enabled.to_string();
            server
                .patch(
                    actor,
                    "/settings",
                    &[("presence_enabled", &value), ("client", &own.client(0))],
                )
                .await
        }
        Action::Wait { secs } => {
            server.clock.advance(*secs);
            return None;
        }
    })
}

#[test]
fn no_sequence_of_operations_shows_one_realm_to_another() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(TestServer::start());
    let case = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 12,
        // Shrinking replays whole cases against the server: keep it short.
        max_shrink_iters: 64,
        ..Config::default()
    });
    let result = runner.run(&steps(), |steps| {
        let n = case.fetch_add(1, Ordering::Relaxed);
        runtime.block_on(async {
            let realms = [
                make_realm(&server, n, "A").await,
                make_realm(&server, n, "B").await,
            ];
            for (i, step) in steps.iter().enumerate() {
                let Some(answer) = run_step(&server, &realms, step).await else {
                    continue;
                };
                assert!(
                    answer.status.is_success() || answer.status.is_client_error(),
                    "{answer:?}"
                );
                let (own, other) = if step.realm_b {
                    (&realms[1], &realms[0])
                } else {
                    (&realms[0], &realms[1])
                };
                let own_emails: Vec<&str> = own.users.iter().map(|u| u.email.as_str()).collect();
                let found = leaks(&answer.body, other, &own_emails);
                prop_assert!(
                    found.is_empty(),
                    "step {i} ({step:?}) showed realm {} to realm {}: {found:?}\n{}",
                    other.letter,
                    own.letter,
                    answer.body
                );
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Creates realm `{letter}{n}` with users: two whose emails exist in the
/// other realm of the case too, and one of its own.
async fn make_realm(server: &TestServer, n: usize, letter: &'static str) -> Realm {
    let id = format!("{}{n}", letter.to_lowercase());
    server.create_realm(&id);
    let mut users = Vec::new();
    for i in 0..USERS_PER_REALM {
        let email = if i < 2 {
            format!("shared{i}-{n}@both.test")
        } else {
            format!("only-{id}@{id}.test")
        };
        users.push(server.create_user(&id, &email, false).await);
    }
    Realm { users, letter }
}

#[test]
fn the_leak_check_sees_every_kind_of_mark() {
    let other = Realm {
        users: vec![User {
            id: 41,
            email: "only-b@b.test".to_owned(),
            key: String::new(),
        }],
        letter: "B",
    };
    for body in [
        serde_json::json!({"presences": {"41": {}}}),
        serde_json::json!({"presences": {"only-b@b.test": {}}}),
        serde_json::json!({"members": [{"user_id": 41}]}),
        serde_json::json!({"presence": {"B-client0": {"client": "x"}}}),
        serde_json::json!({"presence": {"aggregated": {"client": "B-client2"}}}),
    ] {
        assert!(!leaks(&body, &other, &[]).is_empty(), "{body}");
    }
    let clean = serde_json::json!({"presences": {"7": {"A-client0": {"timestamp": 41}}}});
    assert!(leaks(&clean, &other, &[]).is_empty());
    // An email both realms have is no leak.
    let shared = serde_json::json!({"presences": {"only-b@b.test": {}}});
    assert!(leaks(&shared, &other, &["only-b@b.test"]).is_empty());
}
