//! The binary on PostgreSQL (`--database-url`): `migrate`, every admin
//! command, moving an embedded installation over with `export` and
//! `import`, and two server processes sharing the database as two nodes.
//!
//! Needs `PRESENCE_TEST_DATABASE_URL`; without it the test says so and
//! returns (under `CI` it fails instead).

use std::time::{Duration, Instant};

use presence_server::store::testing::{ScratchSchema, test_database_url};

use crate::support::{ServerProcess, admin, create_user, get, run};

#[tokio::test]
async fn an_installation_moves_to_postgres_and_runs_on_two_nodes() {
    let Some(base) = test_database_url() else {
        return;
    };
    let schema = ScratchSchema::create(&base).unwrap();
    let url = schema.url();
    let on_pg = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--database-url".to_owned(), url.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    let unused = tempfile::tempdir().unwrap();
    let pg_admin = |args: &[&str]| {
        let args = on_pg(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        admin(unused.path(), &args)
    };

    // migrate: twice is fine.
    pg_admin(&["migrate"]);
    pg_admin(&["migrate"]);

    // An embedded installation with a realm, users and presence...
    let old = tempfile::tempdir().unwrap();
    admin(old.path(), &["realm", "create", "acme"]);
    let alice = create_user(old.path(), "acme", "alice@acme.test", false);
    let dump = old.path().join("dump.jsonl");
    admin(old.path(), &["export", "--output", dump.to_str().unwrap()]);
    // ...moves over.
    pg_admin(&["import", dump.to_str().unwrap()]);
    let again = old.path().join("again.jsonl");
    pg_admin(&["export", "--output", again.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&dump).unwrap(),
        std::fs::read_to_string(&again).unwrap()
    );

    // Every admin command works on PostgreSQL.
    pg_admin(&["realm", "create", "other", "--name", "Other"]);
    let bob = pg_admin(&[
        "user",
        "create",
        "--realm",
        "acme",
        "--email",
        "bob@acme.test",
        "--full-name",
        "Bob",
    ])
    .trim_end()
    .to_owned();
    assert_eq!(bob.len(), 32);
    let list = pg_admin(&["user", "list", "--realm", "acme"]);
    assert!(
        list.contains("alice@acme.test") && list.contains("bob@acme.test"),
        "{list}"
    );
    let args = on_pg(&[
        "user",
        "create",
        "--realm",
        "acme",
        "--email",
        "BOB@acme.test",
        "--full-name",
        "B",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(unused.path(), &args);
    assert_eq!(out.status.code(), Some(1), "a duplicate email is refused");

    // Two server processes on the database are two nodes.
    let node_a = ServerProcess::start(
        unused.path(),
        &on_pg(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let node_b = ServerProcess::start(
        unused.path(),
        &on_pg(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let http = reqwest::Client::new();
    let status = http
        .post(node_a.url("/users/me/presence"))
        .basic_auth("alice@acme.test", Some(&alice))
        .form(&[
            ("status", "active"),
            ("ping_only", "true"),
            ("client", "website"),
        ])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (status, body) = get(
            &node_b,
            "bob@acme.test",
            &bob,
            "/users/alice@acme.test/presence",
        )
        .await;
        if status == 200 && body["presence"]["website"]["status"] == "active" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node B did not show node A's change: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A user deactivated by the admin command is refused by both nodes.
    pg_admin(&[
        "user",
        "deactivate",
        "--realm",
        "acme",
        "--email",
        "bob@acme.test",
    ]);
    for node in [&node_a, &node_b] {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let (status, _) = get(node, "bob@acme.test", &bob, "/users/me").await;
            if status == 401 {
                break;
            }
            assert!(Instant::now() < deadline, "a deactivated user still served");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
