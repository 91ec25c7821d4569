//! The whole admin lifecycle through the binary, on the embedded store and
//! on PostgreSQL, with a server running: every change holds from the very
//! next request, listings come as tables or JSON, and changes made already
//! or not allowed say so.

use serde_json::Value;

use crate::support::{ServerProcess, admin, run};
use presence_server::store::testing::{ScratchSchema, test_database_url};

/// The binary with a store chosen by `store` (`--database-url URL`, or
/// nothing for the data directory).
struct Admin<'a> {
    dir: &'a std::path::Path,
    store: Vec<String>,
}

impl Admin<'_> {
    fn args<'b>(&'b self, args: &[&'b str]) -> Vec<&'b str> {
        let mut all: Vec<&str> = self.store.iter().map(String::as_str).collect();
        all.extend(args);
        all
    }

    fn ok(&self, args: &[&str]) -> String {
        admin(self.dir, &self.args(args))
    }

    /// Runs a command expected to succeed; its standard error.
    fn says(&self, args: &[&str]) -> String {
        let out = run(self.dir, &self.args(args));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs a command expected to fail with exit code 1; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = run(self.dir, &self.args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
        assert!(out.stdout.is_empty());
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn user(&self, realm: &str, email: &str) -> String {
        self.ok(&[
            "user",
            "create",
            "--realm",
            realm,
            "--email",
            email,
            "--full-name",
            "Someone",
        ])
        .trim_end()
        .to_owned()
    }
}

async fn status(server: &ServerProcess, email: &str, key: &str, path: &str) -> (u16, Value) {
    crate::support::get(server, email, key, path).await
}

async fn lifecycle(store: Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let admin = Admin {
        dir: dir.path(),
        store: store.clone(),
    };
    admin.ok(&["realm", "create", "acme", "--name", "Acme"]);
    admin.ok(&["realm", "create", "beta"]);
    let server = ServerProcess::start(
        dir.path(),
        &store.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let alice = admin.user("acme", "alice@acme.test");
    let bob = admin.user("acme", "bob@acme.test");

    // Realms: a table and JSON, renaming.
    let table = admin.ok(&["realm", "list"]);
    assert_eq!(
        table.lines().next(),
        Some("string_id\tname\tactive_users\tusers\tpresence_disabled\tdeactivated")
    );
    assert!(table.contains("acme\tAcme\t2\t2\tfalse\tfalse"), "{table}");
    admin.ok(&["realm", "rename", "acme", "--name", "Acme Inc"]);
    let realms: Value = serde_json::from_str(&admin.ok(&["realm", "list", "--json"])).unwrap();
    assert_eq!(realms[0]["name"], "Acme Inc");
    assert_eq!(realms[0]["users"], 2);

    // A new email and name hold at once; another user's email is refused.
    admin.ok(&[
        "user",
        "set",
        "--realm",
        "acme",
        "--email",
        "alice@acme.test",
        "--new-email",
        "alice@new.test",
        "--full-name",
        "Alice A",
    ]);
    assert_eq!(
        status(&server, "alice@acme.test", &alice, "/users/me")
            .await
            .0,
        401
    );
    let (code, me) = status(&server, "alice@new.test", &alice, "/users/me").await;
    assert_eq!((code, me["full_name"].as_str()), (200, Some("Alice A")));
    let refused = admin.fails(&[
        "user",
        "set",
        "--realm",
        "acme",
        "--email",
        "alice@new.test",
        "--new-email",
        "bob@acme.test",
    ]);
    assert!(refused.contains("has a user with email"), "{refused}");

    // Deleting a user: the key stops at once, the presence and the user go.
    let bob_presence = reqwest::Client::new()
        .post(server.url("/users/me/presence"))
        .basic_auth("bob@acme.test", Some(&bob))
        .form(&[("status", "active"), ("ping_only", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(bob_presence.status(), 200);
    admin.ok(&[
        "user",
        "delete",
        "--realm",
        "acme",
        "--email",
        "bob@acme.test",
    ]);
    assert_eq!(
        status(&server, "bob@acme.test", &bob, "/users/me").await.0,
        401
    );
    let (_, realm) = status(&server, "alice@new.test", &alice, "/realm/presence").await;
    assert!(realm["presences"].get("bob@acme.test").is_none(), "{realm}");
    let (_, users) = status(&server, "alice@new.test", &alice, "/users").await;
    assert_eq!(users["members"].as_array().unwrap().len(), 1, "{users}");
    let listed: Value =
        serde_json::from_str(&admin.ok(&["user", "list", "--realm", "acme", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["email"], "alice@new.test");
    // The email is free again, for a new user with a new id.
    let again = admin.user("acme", "bob@acme.test");
    let (code, me) = status(&server, "bob@acme.test", &again, "/users/me").await;
    assert_eq!(code, 200);
    assert_ne!(me["user_id"], listed[0]["user_id"]);

    // Twice is fine, and says so.
    let deactivate = [
        "user",
        "deactivate",
        "--realm",
        "acme",
        "--email",
        "alice@new.test",
    ];
    assert!(
        admin
            .says(&deactivate)
            .contains("deactivated alice@new.test")
    );
    assert!(admin.says(&deactivate).contains("already deactivated"));
    assert_eq!(
        status(&server, "alice@new.test", &alice, "/users/me")
            .await
            .0,
        401
    );
    admin.ok(&[
        "user",
        "reactivate",
        "--realm",
        "acme",
        "--email",
        "alice@new.test",
    ]);
    assert_eq!(
        status(&server, "alice@new.test", &alice, "/users/me")
            .await
            .0,
        200
    );

    // Nothing is added to a deactivated realm, until it is reactivated.
    admin.ok(&["realm", "deactivate", "beta"]);
    assert!(
        admin
            .says(&["realm", "deactivate", "beta"])
            .contains("already deactivated")
    );
    let refused = admin.fails(&[
        "user",
        "create",
        "--realm",
        "beta",
        "--email",
        "c@beta.test",
        "--full-name",
        "C",
    ]);
    assert!(
        refused.contains("realm \"beta\" is deactivated"),
        "{refused}"
    );
    let refused = admin.fails(&[
        "embed-key",
        "create",
        "--realm",
        "beta",
        "--name",
        "x",
        "--origin",
        "https://beta.test",
    ]);
    assert!(refused.contains("is deactivated"), "{refused}");
    admin.ok(&["realm", "reactivate", "beta"]);
    let carol = admin.user("beta", "c@beta.test");
    assert_eq!(
        status(&server, "c@beta.test", &carol, "/users/me").await.0,
        200
    );

    // Embed keys list as JSON too, never with the key.
    let key = admin
        .ok(&[
            "embed-key",
            "create",
            "--realm",
            "acme",
            "--name",
            "intranet",
            "--origin",
            "https://a.test",
        ])
        .trim_end()
        .to_owned();
    let keys = admin.ok(&["embed-key", "list", "--realm", "acme", "--json"]);
    let keys: Value = serde_json::from_str(&keys).unwrap();
    assert_eq!(keys[0]["name"], "intranet");
    assert_eq!(keys[0]["origins"][0], "https://a.test");
    assert!(!keys.to_string().contains(&key[6..]));
}

#[tokio::test]
async fn the_admin_lifecycle_on_the_embedded_store() {
    lifecycle(Vec::new()).await;
}

#[tokio::test]
async fn the_admin_lifecycle_on_postgres() {
    let Some(base) = test_database_url() else {
        return;
    };
    let schema = ScratchSchema::create(&base).unwrap();
    lifecycle(vec!["--database-url".to_owned(), schema.url()]).await;
}
