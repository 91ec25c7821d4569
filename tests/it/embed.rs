//! Embed keys, as pages use them: what they may read, what they may not
//! do, the origins they are bound to, the CORS answers browsers check, and
//! revocation honoured from the next request.

use presence_server::clock::Clock;
use presence_server::config::RateLimit;
use presence_tests::{Answer, Options, TestServer, User};
use reqwest::Method;
use serde_json::Value;

const INTRANET: &str = "https://intranet.acme.test";
const ELSEWHERE: &str = "https://evil.example";

/// A realm with two users (one reported active) and a bot, another realm,
/// and an embed key of the first for pages on the intranet.
async fn setup(server: &TestServer) -> (Vec<User>, String) {
    let users = server.realm_with_users("acme", 2).await;
    server.create_user("acme", "bot@acme.test", true).await;
    server.realm_with_users("other", 1).await;
    server.report(&users[0], "website", "active").await;
    let key = server
        .create_embed_key("acme", "intranet", &[INTRANET])
        .await;
    (users, key)
}

fn emails(answer: &Value) -> Vec<String> {
    answer["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap().to_owned())
        .collect()
}

/// The page's request, with a method other than GET.
async fn page_send(
    server: &TestServer,
    method: Method,
    key: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Answer {
    server
        .send(
            reqwest::Client::new()
                .request(method, server.url(path))
                .bearer_auth(key)
                .header("origin", INTRANET)
                .form(form),
        )
        .await
}

#[tokio::test]
async fn a_page_reads_its_realms_presence_and_people() {
    let server = TestServer::start().await;
    let (users, key) = setup(&server).await;

    let realm = server
        .page_get(&key, "/realm/presence", Some(INTRANET))
        .await;
    assert_eq!(realm.header("access-control-allow-origin"), Some(INTRANET));
    assert!(realm.header("vary").unwrap().contains("origin"));
    let realm = realm.ok();
    assert!(realm["presences"][&users[0].email]["website"].is_object());

    let one = server
        .page_get(&key, &format!("/users/{}/presence", users[0].email), None)
        .await
        .ok();
    assert_eq!(one["presence"]["aggregated"]["status"], "active");
    let by_id = server
        .page_get(&key, &format!("/users/{}/presence", users[0].id), None)
        .await
        .ok();
    assert_eq!(by_id["presence"], one["presence"]);

    // People, without bots unless asked; deactivated users are no one's.
    server.admin_change(|store| {
        store
            .set_user_active("acme", &users[1].email, false)
            .unwrap()
    });
    let people = server.page_get(&key, "/users", None).await.ok();
    assert_eq!(emails(&people), [users[0].email.clone()]);
    let with_bots = server
        .page_get(&key, "/users?include_bots=true", None)
        .await
        .ok();
    assert_eq!(
        emails(&with_bots),
        [users[0].email.clone(), "bot@acme.test".to_owned()]
    );
    // A user still sees everyone, as Zulip shows them.
    let everyone = server.get(&users[0], "/users").await.ok();
    assert_eq!(everyone["members"].as_array().unwrap().len(), 3);
    // `include_bots` is a JSON boolean for every caller, as the spec says,
    // though a user's answer lists bots whatever it says.
    let flagged = server
        .get(&users[0], "/users?include_bots=false")
        .await
        .ok();
    assert_eq!(flagged["members"], everyone["members"]);
    for (bad, msg) in [
        ("null", "include_bots is not a boolean"),
        ("1", "include_bots is not a boolean"),
        ("yes", "include_bots is not valid JSON"),
    ] {
        server
            .get(&users[0], &format!("/users?include_bots={bad}"))
            .await
            .error(400, "BAD_REQUEST", msg);
    }
}

#[tokio::test]
async fn a_page_reaches_no_other_realm() {
    let server = TestServer::start().await;
    let (_, key) = setup(&server).await;
    let stranger = "user0@other.test";
    server
        .page_get(&key, &format!("/users/{stranger}/presence"), None)
        .await
        .error(400, "BAD_REQUEST", "No such user");
    let people = server.page_get(&key, "/users", None).await.ok();
    assert!(!emails(&people).contains(&stranger.to_owned()));
    let realm = server.page_get(&key, "/realm/presence", None).await.ok();
    assert!(realm["presences"].get(stranger).is_none());
}

#[tokio::test]
async fn an_embed_key_writes_nothing_and_registers_no_queue() {
    let server = TestServer::start().await;
    let (users, key) = setup(&server).await;
    let before = server.page_get(&key, "/realm/presence", None).await.ok();
    let forbidden = "This endpoint does not accept embed keys";
    for (method, path, form) in [
        (Method::POST, "/users/me/presence", vec![("status", "idle")]),
        (
            Method::PATCH,
            "/settings",
            vec![("presence_enabled", "false")],
        ),
        (Method::POST, "/register", vec![]),
        (Method::GET, "/events", vec![]),
        (Method::DELETE, "/events", vec![("queue_id", "x")]),
        (Method::GET, "/users/me", vec![]),
        (
            Method::POST,
            "/users/me/android_gcm_reg_id",
            vec![("token", "abc")],
        ),
    ] {
        let answer = page_send(&server, method.clone(), &key, path, &form).await;
        answer.error(403, "BAD_REQUEST", forbidden);
        // The page on its own origin may read the refusal.
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some(INTRANET),
            "{method} {path}"
        );
    }
    let after = server.page_get(&key, "/realm/presence", None).await.ok();
    assert_eq!(before["presences"], after["presences"], "nothing changed");
    // And no user's queue or setting moved either.
    let me = server.get(&users[0], "/users/me").await.ok();
    assert_eq!(me["user_id"], users[0].id);
}

#[tokio::test]
async fn bad_and_foreign_keys_are_refused() {
    let server = TestServer::start().await;
    let (_, key) = setup(&server).await;
    let invalid = server
        .page_get(&format!("embed_{}", "0".repeat(32)), "/users", None)
        .await;
    invalid.error(401, "UNAUTHORIZED", "Invalid embed key");
    assert_eq!(
        invalid.header("www-authenticate"),
        Some("Bearer realm=\"zulip\""),
        "no Basic challenge, which would make a browser prompt for a password"
    );
    server.page_get("embed_short", "/users", None).await.error(
        401,
        "UNAUTHORIZED",
        "Invalid embed key",
    );
    // Where embed keys are taken, any Bearer token is one, and one that no
    // key has is refused as such; elsewhere a token that does not look like
    // an embed key gets Zulip's refusal of whatever is not Basic.
    for path in [
        "/realm/presence",
        "/users",
        "/users/1/presence",
        "/presence/stream",
    ] {
        let answer = server.page_get("not-an-embed-key", path, None).await;
        answer.error(401, "UNAUTHORIZED", "Invalid embed key");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer realm=\"zulip\""),
            "{path}"
        );
    }
    server
        .page_get("not-an-embed-key", "/users/me", None)
        .await
        .error(
            400,
            "BAD_REQUEST",
            "This endpoint requires HTTP basic authentication.",
        );
    // A page elsewhere gets neither the data nor a grant to read the refusal.
    let elsewhere = server.page_get(&key, "/users", Some(ELSEWHERE)).await;
    elsewhere.error(
        403,
        "BAD_REQUEST",
        "This embed key may not be used from this origin",
    );
    assert_eq!(elsewhere.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn preflights_are_granted_for_known_origins_only() {
    let server = TestServer::start().await;
    let (users, _) = setup(&server).await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(Method::OPTIONS, server.url("/realm/presence"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let granted = preflight(INTRANET).await.unwrap();
    assert_eq!(granted.status(), 204);
    let headers = granted.headers();
    assert_eq!(headers["access-control-allow-origin"], INTRANET);
    assert_eq!(headers["access-control-allow-methods"], "GET, HEAD");
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(headers["vary"].to_str().unwrap().contains("origin"));

    let refused = preflight(ELSEWHERE).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // A user's key never gets a grant, from any origin.
    let user = server
        .send(
            server
                .request(Method::GET, &users[0], "/realm/presence")
                .header("origin", INTRANET),
        )
        .await
        .ok();
    assert!(user["presences"].is_object());
    let user = server
        .request(Method::GET, &users[0], "/realm/presence")
        .header("origin", INTRANET)
        .send()
        .await
        .unwrap();
    assert!(user.headers().get("access-control-allow-origin").is_none());
    // Writes cannot even be preflighted.
    let write = reqwest::Client::new()
        .request(Method::OPTIONS, server.url("/users/me/presence"))
        .header("origin", INTRANET)
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 405);
}

#[tokio::test]
async fn a_revocation_holds_from_the_next_request_and_ends_streams() {
    let server = TestServer::start().await;
    let (_, key) = setup(&server).await;
    let mut stream = server.open_page_stream(&key).await;
    stream.next_data().await;

    let now = server.clock.now_secs();
    server.admin_change(|store| store.revoke_embed_key("acme", "intranet", now).unwrap());
    // No waiting: the admin change returned once the server had it.
    let revoked = server.page_get(&key, "/users", Some(INTRANET)).await;
    revoked.error(401, "UNAUTHORIZED", "This embed key has been revoked");
    assert_eq!(
        revoked.header("access-control-allow-origin"),
        Some(INTRANET),
        "the page may read why"
    );
    // The open stream ends.
    while stream.next().await.is_some() {}
}

#[tokio::test]
async fn a_deactivated_realm_turns_its_keys_away() {
    let server = TestServer::start().await;
    let (_, key) = setup(&server).await;
    server.admin_change(|store| store.set_realm_deactivated("acme", true).unwrap());
    server.page_get(&key, "/users", None).await.error(
        401,
        "UNAUTHORIZED",
        "This organization has been deactivated",
    );
}

#[tokio::test]
async fn pages_count_against_their_key_and_their_address() {
    let mut options = Options::default();
    options.config.embed_rate_limit = RateLimit::PerUser {
        requests: 3,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    let (_, key) = setup(&server).await;
    server.clock.advance(60);
    for _ in 0..3 {
        server.page_get(&key, "/users", Some(INTRANET)).await.ok();
    }
    let limited = server.page_get(&key, "/users", Some(INTRANET)).await;
    limited.error(429, "RATE_LIMIT_HIT", "API usage exceeded rate limit");
    assert_eq!(
        limited.header("access-control-allow-origin"),
        Some(INTRANET)
    );
    assert!(limited.header("retry-after").is_some());

    let mut options = Options::default();
    options.config.ip_rate_limit = RateLimit::PerUser {
        requests: 2,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    let (users, key) = setup(&server).await;
    server.clock.advance(60);
    // Preflights and the embed's files spend none of the address's budget:
    // an office behind one address loads pages without running it down.
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let preflight = http
            .request(Method::OPTIONS, server.url("/users"))
            .header("origin", INTRANET)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization");
        assert_eq!(preflight.send().await.unwrap().status(), 204);
        let script = http.get(format!("{}/embed/presence.js", server.base));
        assert_eq!(script.send().await.unwrap().status(), 200);
    }
    for _ in 0..2 {
        server.page_get(&key, "/users", None).await.ok();
    }
    server.page_get(&key, "/users", None).await.error(
        429,
        "RATE_LIMIT_HIT",
        "API usage exceeded rate limit",
    );
    // A user at the same address is not held back by pages.
    server.get(&users[0], "/users/me").await.ok();
}

#[tokio::test]
async fn a_page_streams_presence_changes() {
    let server = TestServer::start().await;
    let (users, key) = setup(&server).await;
    let mut stream = server.open_page_stream(&key).await;
    let register = stream.next_data().await.json();
    assert!(register["presences"][users[0].id.to_string()].is_object());
    assert_eq!(register["server_presence_offline_threshold_seconds"], 200);
    server.report(&users[1], "website", "active").await;
    let event = stream.next_data().await.json();
    assert_eq!(event["type"], "presence");
    assert!(event["presences"][users[1].id.to_string()].is_object());
}

#[tokio::test]
async fn keys_are_recorded_as_used_and_listed_without_the_key() {
    let mut server = TestServer::start().await;
    let (_, key) = setup(&server).await;
    server.page_get(&key, "/users", None).await.ok();
    // A stopping node writes down what it has not yet.
    server.shutdown().await;
    let listed = server.with_admin(|store| store.list_embed_keys("acme").unwrap());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "intranet");
    assert_eq!(listed[0].origins, [INTRANET]);
    assert_eq!(listed[0].last_used_at, Some(server.clock.now_secs()));
    assert_eq!(listed[0].key_hash, presence_server::keys::hash(&key));
}
