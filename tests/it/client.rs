//! The `presence-client` library against a real server: every endpoint, the
//! error cases, configuration from a zuliprc and the environment, and the
//! reachability helper on live answers.

use std::time::{Duration, Instant};

use presence_client::config::{CredentialSources, Environment, PartialCredentials};
use presence_client::types::endpoints::push_devices::{
    AddAndroidTokenParams, AddApnsTokenParams, RemoveAndroidTokenParams, RemoveApnsTokenParams,
};
use presence_client::types::endpoints::settings::UpdateSettingsParams;
use presence_client::types::endpoints::update_presence::{Presences, UpdatePresenceParams};
use presence_client::types::{ErrorCode, PresenceStatus, ReportedStatus};
use presence_client::{
    Client, ClientBuilder, ConfigError, DEFAULT_OFFLINE_THRESHOLD, Error, Reachability,
    RetryPolicy, StatusCode, UserRef,
};
use presence_server::config::RateLimit;
use presence_tests::{Options, START, TestServer, User};

fn client(server: &TestServer, user: &User) -> Client {
    Client::builder(&server.base, &user.email, &user.key)
        .build()
        .expect("a client")
}

fn named_client(server: &TestServer, user: &User, name: &str) -> Client {
    Client::builder(&server.base, &user.email, &user.key)
        .client_name(name)
        .build()
        .expect("a client")
}

fn report(status: ReportedStatus) -> UpdatePresenceParams {
    UpdatePresenceParams {
        status,
        ping_only: false,
        new_user_input: false,
        slim_presence: false,
        last_update_id: None,
        history_limit_days: None,
    }
}

#[tokio::test]
async fn server_settings_users_and_own_user() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let alice = client(&server, &users[0]);

    let settings = alice.server_settings().await.unwrap();
    assert_eq!(settings.status(), StatusCode::OK);
    assert!(settings.zulip_version.starts_with("presence-server "));
    assert!(settings.zulip_feature_level > 0);

    let me = alice.own_user().await.unwrap();
    assert_eq!(
        (me.user_id, me.email.as_str()),
        (users[0].id, "user0@acme.test")
    );
    assert_eq!(me.full_name, "Name of user0@acme.test");
    assert!(me.is_active && !me.is_bot);

    let members = alice.users().await.unwrap().into_inner().members;
    let emails: Vec<&str> = members.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["user0@acme.test", "user1@acme.test"]);
}

#[tokio::test]
async fn server_settings_need_no_valid_credentials() {
    let server = TestServer::start().await;
    let nobody = Client::builder(&server.base, "nobody@x.test", "k")
        .build()
        .unwrap();
    assert!(nobody.server_settings().await.is_ok());
}

#[tokio::test]
async fn reports_and_reads_under_the_chosen_client_name() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let pager = named_client(&server, alice, "pager");
    let answer = pager.ping(ReportedStatus::Active).await.unwrap();
    assert_eq!(answer.raw_body(), r#"{"result":"success","msg":""}"#);
    assert_eq!(answer.presences, None);
    assert_eq!(answer.ignored_parameters_unsupported, None);

    // Without a name the server takes it from our User-Agent.
    client(&server, alice)
        .ping(ReportedStatus::Idle)
        .await
        .unwrap();

    let reader = client(&server, bob);
    for target in [UserRef::from(alice.id), UserRef::parse(&alice.email)] {
        let p = reader
            .user_presence(target)
            .await
            .unwrap()
            .into_inner()
            .presence;
        assert_eq!(p.aggregated.client, "pager");
        assert_eq!(p.aggregated.status, PresenceStatus::Active);
        assert_eq!(p.aggregated.timestamp, START);
        let names: Vec<&str> = p.clients.keys().map(String::as_str).collect();
        assert_eq!(names, ["PresenceClient", "pager"]);
        assert_eq!(p.clients["PresenceClient"].status, PresenceStatus::Idle);
    }
    // Numbers in a string are ids too, as the server reads the path.
    let by_text = reader.user_presence(alice.id.to_string()).await.unwrap();
    assert_eq!(by_text.presence.aggregated.client, "pager");
}

#[tokio::test]
async fn emails_with_special_characters_reach_the_right_user() {
    let server = TestServer::start().await;
    server.create_realm("acme");
    let plus = server
        .create_user("acme", "alice+work@acme.test", false)
        .await;
    let reader = server.create_user("acme", "reader@acme.test", false).await;
    named_client(&server, &plus, "website")
        .ping(ReportedStatus::Active)
        .await
        .unwrap();
    let p = client(&server, &reader)
        .user_presence("Alice+Work@acme.test")
        .await
        .unwrap();
    assert_eq!(p.presence.aggregated.client, "website");
}

#[tokio::test]
async fn update_presence_with_every_parameter() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let alice_client = named_client(&server, alice, "website");
    let bob_client = named_client(&server, bob, "website");

    // Legacy: keyed by email, with a server timestamp and an update id.
    let mut params = report(ReportedStatus::Active);
    params.new_user_input = true;
    let answer = alice_client.update_presence(&params).await.unwrap();
    assert_eq!(answer.server_timestamp, Some(START as f64));
    let Some(Presences::Legacy(legacy)) = &answer.presences else {
        panic!("legacy expected: {}", answer.raw_body());
    };
    assert_eq!(
        legacy["user0@acme.test"].aggregated.status,
        PresenceStatus::Active
    );
    let first_id = answer.presence_last_update_id.unwrap();
    assert!(first_id > 0);

    // slim_presence: modern, keyed by id.
    let mut params = report(ReportedStatus::Idle);
    params.slim_presence = true;
    let answer = bob_client.update_presence(&params).await.unwrap();
    let Some(Presences::Modern(modern)) = &answer.presences else {
        panic!("modern expected: {}", answer.raw_body());
    };
    assert_eq!(modern[&alice.id.to_string()].active_timestamp, START);
    assert_eq!(modern.len(), 2);
    let second_id = answer.presence_last_update_id.unwrap();
    assert!(second_id > first_id);

    // last_update_id: only what changed since.
    server.clock.advance(60);
    let mut params = report(ReportedStatus::Active);
    params.last_update_id = Some(second_id);
    let answer = alice_client.update_presence(&params).await.unwrap();
    let Some(Presences::Modern(changed)) = &answer.presences else {
        panic!("modern expected: {}", answer.raw_body());
    };
    let ids: Vec<&str> = changed.keys().map(String::as_str).collect();
    assert_eq!(ids, [alice.id.to_string().as_str()]);
    assert_eq!(changed[&alice.id.to_string()].active_timestamp, START + 60);

    // last_update_id=-1: everyone, modern.
    let mut params = report(ReportedStatus::Idle);
    params.last_update_id = Some(-1);
    let answer = bob_client.update_presence(&params).await.unwrap();
    assert!(matches!(&answer.presences, Some(Presences::Modern(m)) if m.len() == 2));

    // history_limit_days=0: nobody.
    let mut params = report(ReportedStatus::Idle);
    params.history_limit_days = Some(0);
    let answer = bob_client.update_presence(&params).await.unwrap();
    // An empty map reads as either format: the wire cannot tell them apart.
    let empty = match &answer.presences {
        Some(Presences::Legacy(m)) => m.is_empty(),
        Some(Presences::Modern(m)) => m.is_empty(),
        None => false,
    };
    assert!(empty, "{}", answer.raw_body());
    assert_eq!(answer.ignored_parameters_unsupported, None);

    // The raw body is the typed value's source.
    let reparsed: serde_json::Value = serde_json::from_str(answer.raw_body()).unwrap();
    assert_eq!(reparsed["presence_last_update_id"], -1);
}

#[tokio::test]
async fn realm_presence_is_keyed_by_email() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 3).await;
    named_client(&server, &users[0], "website")
        .ping(ReportedStatus::Active)
        .await
        .unwrap();
    named_client(&server, &users[1], "ZulipMobile")
        .ping(ReportedStatus::Idle)
        .await
        .unwrap();
    let answer = client(&server, &users[2]).realm_presence().await.unwrap();
    assert_eq!(answer.server_timestamp, START as f64);
    let emails: Vec<&str> = answer.presences.keys().map(String::as_str).collect();
    assert_eq!(emails, ["user0@acme.test", "user1@acme.test"]);
    assert_eq!(
        answer.presences["user1@acme.test"].aggregated.client,
        "ZulipMobile"
    );
}

#[tokio::test]
async fn settings_hide_and_show_presence() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let alice = named_client(&server, &users[0], "website");
    let reader = client(&server, &users[1]);
    alice.ping(ReportedStatus::Active).await.unwrap();

    let hidden = alice
        .update_settings(&UpdateSettingsParams {
            presence_enabled: Some(false),
            enable_offline_push_notifications: None,
        })
        .await
        .unwrap();
    assert_eq!(hidden.raw_body(), r#"{"result":"success","msg":""}"#);
    let p = reader.user_presence(users[0].id).await.unwrap();
    assert_eq!(p.presence.aggregated.status, PresenceStatus::Offline);

    server.clock.advance(5);
    alice
        .update_settings(&UpdateSettingsParams {
            presence_enabled: Some(true),
            enable_offline_push_notifications: Some(true),
        })
        .await
        .unwrap();
    let p = reader.user_presence(users[0].id).await.unwrap();
    assert_eq!(p.presence.aggregated.status, PresenceStatus::Active);
    // Turning presence on records the caller under its own client name.
    assert_eq!(p.presence.aggregated.client, "website");
    assert_eq!(p.presence.aggregated.timestamp, START + 5);
}

#[tokio::test]
async fn push_devices_make_a_user_pushable() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let alice = named_client(&server, &users[0], "website");
    let reader = client(&server, &users[1]);
    alice.ping(ReportedStatus::Active).await.unwrap();
    let pushable = || async {
        reader
            .user_presence(users[0].id)
            .await
            .unwrap()
            .presence
            .clients["website"]
            .pushable
    };
    assert!(!pushable().await);

    alice
        .add_apns_token(&AddApnsTokenParams {
            token: "C0FFEE".to_owned(),
            appid: "org.zulip.Zulip".to_owned(),
        })
        .await
        .unwrap();
    assert!(pushable().await);
    alice
        .add_android_token(&AddAndroidTokenParams {
            token: "fcm-token-1".to_owned(),
        })
        .await
        .unwrap();
    // APNs tokens are stored lowercased; removing in either case works.
    alice
        .remove_apns_token(&RemoveApnsTokenParams {
            token: "c0ffee".to_owned(),
        })
        .await
        .unwrap();
    assert!(pushable().await, "the Android device remains");
    alice
        .remove_android_token(&RemoveAndroidTokenParams {
            token: "fcm-token-1".to_owned(),
        })
        .await
        .unwrap();
    assert!(!pushable().await);

    let e = alice
        .add_apns_token(&AddApnsTokenParams {
            token: "not hex".to_owned(),
            appid: "org.zulip.Zulip".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BadRequest));
    assert_eq!(e.api_error().unwrap().msg, "Invalid APNS token");
}

#[tokio::test]
async fn a_bad_key_is_a_typed_unauthorized_error() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let wrong = Client::builder(&server.base, &alice.email, "A".repeat(32))
        .build()
        .unwrap();
    let e = wrong.realm_presence().await.unwrap_err();
    let Error::Api { status, body } = &e else {
        panic!("an API error expected: {e:?}");
    };
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert_eq!(body.code, Some(ErrorCode::Unauthorized));
    assert_eq!(body.msg, "Invalid API key");
    assert_eq!(e.code(), Some(ErrorCode::Unauthorized));
    assert!(!e.is_transport());

    let malformed = Client::builder(&server.base, &alice.email, "short")
        .build()
        .unwrap();
    let e = malformed.own_user().await.unwrap_err();
    assert_eq!(e.api_error().unwrap().msg, "Malformed API key");
}

#[tokio::test]
async fn unknown_users_and_bots_are_refused() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let bot = server.create_user("acme", "bot@acme.test", true).await;
    let reader = client(&server, &users[0]);

    for target in [UserRef::parse("nobody@acme.test"), UserRef::Id(999_999)] {
        let e = reader.user_presence(target).await.unwrap_err();
        assert_eq!(e.status(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(e.code(), Some(ErrorCode::BadRequest));
        assert_eq!(e.api_error().unwrap().msg, "No such user");
    }
    let e = reader.user_presence("user1@acme.test").await.unwrap_err();
    assert_eq!(
        e.api_error().unwrap().msg,
        "No presence data for user1@acme.test"
    );
    let e = reader.user_presence(bot.id).await.unwrap_err();
    assert_eq!(
        e.api_error().unwrap().msg,
        "Presence is not supported for bot users."
    );
    let e = client(&server, &bot)
        .ping(ReportedStatus::Active)
        .await
        .unwrap_err();
    assert_eq!(
        e.api_error().unwrap().msg,
        "This endpoint does not accept bot requests."
    );
}

#[tokio::test]
async fn a_stopped_server_is_a_transport_error_after_retries() {
    let mut server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    let base = server.base.clone();
    server.shutdown().await;

    let policy = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };
    let retrying = ClientBuilder::new(&base, &alice.email, &alice.key)
        .retry_policy(policy)
        .build()
        .unwrap();
    let started = Instant::now();
    let e = retrying.realm_presence().await.unwrap_err();
    assert!(e.is_transport(), "{e:?}");
    assert!(matches!(e, Error::Transport(_)));
    assert_eq!(e.status(), None);
    assert_eq!(e.code(), None);
    // Two retries: 100 ms, then 200 ms.
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Reports are not retried: a repeated POST could be applied twice.
    let started = Instant::now();
    let e = retrying.ping(ReportedStatus::Active).await.unwrap_err();
    assert!(e.is_transport());
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Accept and hold connections without answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = ClientBuilder::new(&base, "a@b.c", "k")
        .timeout(Duration::from_millis(200))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client.server_settings().await.unwrap_err();
    let Error::Transport(inner) = &e else {
        panic!("a transport error expected: {e:?}");
    };
    assert!(inner.is_timeout(), "{inner:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    holder.abort();
}

#[tokio::test]
async fn a_rate_limit_is_reported_not_waited_out() {
    let mut options = Options::default();
    options.config.rate_limit = RateLimit::PerUser {
        requests: 2,
        per_secs: 60,
    };
    let server = TestServer::start_with(options).await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    // The harness used one request per user to wait for it; use up the rest.
    let c = client(&server, &alice);
    let (e, took) = loop {
        let started = Instant::now();
        if let Err(e) = c.own_user().await {
            break (e, started.elapsed());
        }
    };
    assert_eq!(e.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(e.code(), Some(ErrorCode::RateLimitHit));
    assert!(e.api_error().unwrap().retry_after.unwrap() > 5.0);
    // Retry-After is longer than the policy's longest wait: no retry.
    assert!(took < Duration::from_secs(1));
}

#[tokio::test]
async fn a_zuliprc_and_the_environment_configure_a_client() {
    let server = TestServer::start().await;
    let alice = server.realm_with_users("acme", 1).await.remove(0);
    named_client(&server, &alice, "website")
        .ping(ReportedStatus::Active)
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let wrong_key = "W".repeat(32);
    // As Zulip's "Download zuliprc" writes it, with a wrong key.
    std::fs::write(
        home.path().join(".zuliprc"),
        format!(
            "[api]\nemail={}\nkey={wrong_key}\nsite={}\n",
            alice.email, server.base
        ),
    )
    .unwrap();
    let env = Environment {
        home: Some(home.path().to_path_buf()),
        ..Environment::default()
    };
    let from_file = CredentialSources {
        env: env.clone(),
        ..CredentialSources::default()
    };
    let c = ClientBuilder::from_sources(&from_file)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(c.base_url(), format!("{}/api", server.base));
    let e = c.own_user().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Unauthorized));

    // ZULIP_API_KEY overrides the file's key.
    let mut overridden = from_file.clone();
    overridden.env.credentials.api_key = Some(alice.key.clone());
    let c = ClientBuilder::from_sources(&overridden)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(c.own_user().await.unwrap().email, alice.email);

    // An explicit value overrides the environment.
    let mut explicit = overridden.clone();
    explicit.explicit = PartialCredentials {
        api_key: Some(wrong_key.clone()),
        ..PartialCredentials::default()
    };
    let c = ClientBuilder::from_sources(&explicit)
        .unwrap()
        .build()
        .unwrap();
    assert!(c.own_user().await.is_err());

    // ZULIP_CONFIG names another file; the process-wide variant reads a named file.
    let other = home.path().join("work.zuliprc");
    std::fs::write(
        &other,
        format!(
            "; written by hand\n[api]\nemail = {}\nkey = {}\nsite = {}/\n",
            alice.email, alice.key, server.base
        ),
    )
    .unwrap();
    let mut named = from_file.clone();
    named.env.config_file = Some(other.clone());
    let c = ClientBuilder::from_sources(&named)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(c.own_user().await.unwrap().user_id, alice.id);
    if std::env::var_os("ZULIP_API_KEY").is_none() && std::env::var_os("ZULIP_SITE").is_none() {
        let c = ClientBuilder::from_zuliprc(&other)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.own_user().await.unwrap().user_id, alice.id);
    }

    // A broken file names itself and the line.
    std::fs::write(&other, "[api]\nemail\n").unwrap();
    let e = ClientBuilder::from_sources(&named).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { line: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("work.zuliprc, line 2"), "{e}");
}

#[tokio::test]
async fn reachability_follows_the_web_app_on_live_answers() {
    let server = TestServer::start().await;
    let users = server.realm_with_users("acme", 2).await;
    let alice = &users[0];
    let reader = client(&server, &users[1]);
    named_client(&server, alice, "website")
        .ping(ReportedStatus::Active)
        .await
        .unwrap();
    server.clock.advance(150);
    named_client(&server, alice, "ZulipMobile")
        .ping(ReportedStatus::Idle)
        .await
        .unwrap();

    // At each moment, decide from the realm answer against its own clock,
    // and from the modern format of the same moment.
    let states_at = |offset: i64| {
        let reader = reader.clone();
        let server = &server;
        async move {
            server.clock.set(START + offset);
            let realm = reader.realm_presence().await.unwrap();
            let now = realm.server_timestamp;
            let legacy = &realm.presences[&alice.email];
            let mut params = report(ReportedStatus::Idle);
            params.last_update_id = Some(-1);
            params.ping_only = false;
            let answer = reader.update_presence(&params).await.unwrap();
            let Some(Presences::Modern(modern)) = answer.presences.clone() else {
                panic!("modern expected");
            };
            let modern = modern[&alice.id.to_string()];
            (
                Reachability::of(legacy, DEFAULT_OFFLINE_THRESHOLD, now),
                Reachability::of(&modern, DEFAULT_OFFLINE_THRESHOLD, now),
            )
        }
    };
    // Active report at START is recent: active, though the idle one is newer.
    assert_eq!(
        states_at(199).await,
        (Reachability::Active, Reachability::Active)
    );
    // Active report too old, idle report (START+150) recent: idle.
    assert_eq!(
        states_at(250).await,
        (Reachability::Idle, Reachability::Idle)
    );
    // Both too old: offline, and the server's own verdict agrees.
    assert_eq!(
        states_at(351).await,
        (Reachability::Offline, Reachability::Offline)
    );
    let p = reader.user_presence(alice.id).await.unwrap();
    assert_eq!(p.presence.aggregated.status, PresenceStatus::Offline);
}
