//! Several server nodes on one PostgreSQL database (docs/ARCHITECTURE.md,
//! several nodes): what one node or the admin command writes is served by the
//! other within a second (and reaches its event queues), and a node that
//! loses its database refuses writes cleanly, keeps serving reads and
//! recovers by itself. (Incremental readers across busy nodes are in
//! `nodes_busy`.)
//!
//! Every test needs `PRESENCE_TEST_DATABASE_URL`; without it each says so
//! and returns (under `CI` it fails instead). Each test has a schema of its
//! own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use presence_server::clock::{Clock, ManualClock};
use presence_server::config::Config;
use presence_server::store::Dump;
use presence_tests::{Backing, Options, START, TestServer, User};

/// How soon the issue's contract says another node must show a change.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Node settings for these tests. The poll is slow on purpose, so that
/// meeting [`PROPAGATION`] takes the store's notifications.
pub(crate) fn node_config() -> Config {
    Config {
        directory_poll_ms: 5_000,
        max_clients_per_user: 1_000,
        ..Options::default().config
    }
}

/// Two nodes on a new schema, sharing one clock; `None` without a database.
async fn two_nodes(config: Config) -> Option<(TestServer, TestServer)> {
    let backing = Backing::postgres()?;
    let clock = Arc::new(ManualClock::new(START));
    let a = TestServer::start_on(backing.clone(), clock.clone(), config.clone()).await;
    let b = TestServer::start_on(backing, clock, config).await;
    Some((a, b))
}

/// Waits until `check` holds, failing if that takes longer than [`PROPAGATION`].
pub(crate) async fn within_propagation<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PROPAGATION;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {PROPAGATION:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The realm's users, known to both nodes.
async fn users_on_both(a: &TestServer, b: &TestServer, n: usize) -> Vec<User> {
    let users = a.realm_with_users("acme", n).await;
    for user in &users {
        within_propagation("a new user on the other node", || async {
            b.get(user, "/users/me").await.status == 200
        })
        .await;
    }
    users
}

#[tokio::test]
async fn changes_through_one_node_are_served_by_the_other() {
    let Some((a, b)) = two_nodes(node_config()).await else {
        return;
    };
    let users = users_on_both(&a, &b, 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let before = b.incremental(bob, -1).await["presence_last_update_id"]
        .as_i64()
        .unwrap();

    a.report(alice, "website", "active").await;
    within_propagation("single-user GET", || async {
        let p = b
            .get(bob, &format!("/users/{}/presence", alice.email))
            .await;
        p.status == 200 && p.body["presence"]["website"]["status"] == "active"
    })
    .await;
    let realm = b.get(bob, "/realm/presence").await.ok();
    assert_eq!(
        realm["presences"][&alice.email]["website"]["timestamp"],
        START
    );
    let since = b.incremental(bob, before).await;
    let changed = since["presences"].as_object().unwrap();
    assert!(changed.contains_key(&alice.id.to_string()), "{since}");
    assert!(since["presence_last_update_id"].as_i64().unwrap() > before);

    // The other way round, with a later report.
    a.clock.advance(100);
    b.report(alice, "ZulipMobile", "idle").await;
    within_propagation("a report through the second node", || async {
        let p = a.presence_of(bob, &alice.email).await;
        p.get("ZulipMobile").is_some_and(|c| c["status"] == "idle")
    })
    .await;

    // Settings and push devices count too.
    a.report(bob, "website", "active").await;
    a.patch(bob, "/settings", &[("presence_enabled", "false")])
        .await
        .ok();
    let offline_before = a.clock.now_secs() - a.config.offline_threshold_secs;
    within_propagation("presence_enabled turned off", || async {
        // Turning presence off backdates the user's records.
        let p = b.presence_of(alice, &bob.email).await;
        // The report may not have reached this node yet either.
        p["website"]["timestamp"]
            .as_i64()
            .is_some_and(|t| t < offline_before)
    })
    .await;
    a.post(
        alice,
        "/users/me/android_gcm_reg_id",
        &[("token", "fcm-token-1")],
    )
    .await
    .ok();
    within_propagation("a push device", || async {
        b.presence_of(bob, &alice.email).await["website"]["pushable"] == true
    })
    .await;
    // The device registered through A can be removed through B.
    b.delete(
        alice,
        "/users/me/android_gcm_reg_id",
        &[("token", "fcm-token-1")],
    )
    .await
    .ok();
    within_propagation("a removed push device", || async {
        a.presence_of(bob, &alice.email).await["website"]["pushable"] == false
    })
    .await;
}

#[tokio::test]
async fn a_queue_on_one_node_gets_events_of_changes_made_through_another() {
    let Some((a, b)) = two_nodes(node_config()).await else {
        return;
    };
    let users = users_on_both(&a, &b, 2).await;
    let (alice, bob) = (&users[0], &users[1]);
    let registered = b.register(bob, &[("event_types", r#"["presence"]"#)]).await;
    let queue = registered["queue_id"].as_str().unwrap().to_owned();
    a.report(alice, "website", "active").await;
    let events = b.next_presence(bob, &queue, &mut -1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["user_id"], alice.id);
    assert_eq!(events[0]["presence"]["website"]["status"], "active");
}

#[tokio::test]
async fn admin_changes_are_honoured_by_every_node() {
    let Some((a, b)) = two_nodes(node_config()).await else {
        return;
    };
    let users = users_on_both(&a, &b, 1).await;
    let admin = &users[0];

    // Created through the admin path (a third connection, as the admin
    // command on any machine): both nodes let the user in.
    let now = a.clock.now_secs();
    let (row, key) = a
        .with_admin(|store| {
            presence_server::admin::create_user(
                store,
                "acme",
                "carol@acme.test",
                "Carol",
                false,
                now,
            )
        })
        .unwrap();
    let carol = User {
        id: row.id.0,
        email: row.email,
        key,
    };
    for node in [&a, &b] {
        within_propagation("a created user", || async {
            node.get(&carol, "/users/me").await.status == 200
        })
        .await;
    }
    b.report(&carol, "website", "active").await;

    a.with_admin(|store| store.set_user_active("acme", &carol.email, false))
        .unwrap();
    for node in [&a, &b] {
        within_propagation("a deactivated user", || async {
            node.get(&carol, "/users/me").await.status == 401
        })
        .await;
        node.get(admin, &format!("/users/{}/presence", carol.email))
            .await
            .error(400, "BAD_REQUEST", "No such user");
    }

    a.with_admin(|store| store.set_realm_presence_disabled("acme", true))
        .unwrap();
    for node in [&a, &b] {
        within_propagation("a realm setting", || async {
            node.get(admin, "/realm/presence").await.ok()["presences"] == serde_json::json!({})
        })
        .await;
    }
    a.with_admin(|store| store.set_realm_deactivated("acme", true))
        .unwrap();
    for node in [&a, &b] {
        within_propagation("a deactivated realm", || async {
            node.get(admin, "/users/me").await.status == 401
        })
        .await;
    }
}

/// A TCP relay to PostgreSQL that a test can cut: the database "goes away"
/// for the node behind it, as on a network or server failure.
///
/// It runs on a runtime of its own: a node's store blocks its caller, and a
/// test that stops a node (which waits for its writer) on the test's own
/// runtime must not stall the relay the writer's last queries go through.
struct Relay {
    address: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relay {
    async fn to(upstream: String) -> Relay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let links = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (is_cut, open_links) = (cut.clone(), links.clone());
        let accept = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let link = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                open_links.lock().unwrap().push(link.abort_handle());
            }
        });
        Relay {
            address,
            cut,
            links,
            accept,
            runtime: Some(runtime),
        }
    }

    /// Breaks every open connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Lets connections through again.
    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `url` with its `host:port` replaced by `address`.
fn through(url: &str, address: std::net::SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let start = rest.find('@').map_or(0, |at| at + 1);
    let end = rest[start..]
        .find(['/', '?'])
        .map_or(rest.len(), |i| start + i);
    let mut upstream = rest[start..end].to_owned();
    if !upstream.contains(':') {
        upstream.push_str(":5432");
    }
    let relayed = format!("{scheme}://{}{address}{}", &rest[..start], &rest[end..]);
    (relayed, upstream)
}

/// What a writer task ends with: the acknowledged (user id, client) pairs,
/// and how many writes were refused.
type WriterOutcome = (Vec<(i64, String)>, usize);

/// What the writer and reader tasks have done so far, for the test to wait
/// on instead of letting them run for a while.
#[derive(Default)]
struct Progress {
    acknowledged: AtomicUsize,
    refused: AtomicUsize,
    reads: AtomicUsize,
}

impl Progress {
    fn acknowledged(&self) -> usize {
        self.acknowledged.load(Ordering::SeqCst)
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// Waits until `check` holds, failing the test after
    /// [`presence_tests::PATIENCE`].
    async fn until(&self, what: &str, check: impl Fn(&Progress) -> bool) {
        let deadline = Instant::now() + presence_tests::PATIENCE;
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {:?} ({} writes acknowledged, {} refused, {} reads)",
                presence_tests::PATIENCE,
                self.acknowledged(),
                self.refused(),
                self.reads()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Writes from several users, each naming a new client per report, until
/// `stop`; returns the acknowledged (user id, client) pairs. Every answer
/// must come within a few seconds, and every refusal must be a clean 503.
fn spawn_writers(
    node: Arc<TestServer>,
    users: &[User],
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Vec<tokio::task::JoinHandle<WriterOutcome>> {
    users
        .iter()
        .cloned()
        .map(|user| {
            let (node, stop, progress) = (node.clone(), stop.clone(), progress.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut refused = 0;
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let client = format!("c{n}");
                    let started = Instant::now();
                    let answer = node
                        .post(
                            &user,
                            "/users/me/presence",
                            &[
                                ("status", "active"),
                                ("client", &client),
                                ("ping_only", "true"),
                            ],
                        )
                        .await;
                    assert!(
                        started.elapsed() < Duration::from_secs(8),
                        "a write hung for {:?}",
                        started.elapsed()
                    );
                    match answer.status.as_u16() {
                        200 => {
                            acknowledged.push((user.id, client));
                            progress.acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        503 => {
                            assert_eq!(
                                answer.body["code"], "SERVICE_UNAVAILABLE",
                                "{}",
                                answer.body
                            );
                            refused += 1;
                            progress.refused.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("a write answered {other}: {}", answer.body),
                    }
                }
                (acknowledged, refused)
            })
        })
        .collect()
}

/// Reads realm presence until `stop`; every read must succeed.
fn spawn_reader(
    node: Arc<TestServer>,
    reader: User,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut reads = 0;
        while !stop.load(Ordering::SeqCst) {
            node.get(&reader, "/realm/presence").await.ok();
            reads += 1;
            progress.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        reads
    })
}

/// Every acknowledged record is in the database.
fn assert_all_stored(dump: &Dump, acknowledged: &[(i64, String)]) {
    let stored: std::collections::HashSet<(i64, &str)> = dump
        .presence
        .iter()
        .map(|p| (p.user_id.0, p.client.as_str()))
        .collect();
    for (user, client) in acknowledged {
        assert!(
            stored.contains(&(*user, client.as_str())),
            "acknowledged ({user}, {client}) is not in the database"
        );
    }
}

/// Waits until a write through `node` succeeds again.
async fn recovered(node: &TestServer, user: &User) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = node
            .post(
                user,
                "/users/me/presence",
                &[
                    ("status", "active"),
                    ("client", "after"),
                    ("ping_only", "true"),
                ],
            )
            .await;
        if answer.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not recover: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn killed_database_connections_refuse_writes_cleanly_and_lose_nothing() {
    let Some(backing) = Backing::postgres() else {
        return;
    };
    let Backing::Postgres(schema) = &backing else {
        unreachable!()
    };
    let clock = Arc::new(ManualClock::new(START));
    let node = Arc::new(TestServer::start_on(backing.clone(), clock, node_config()).await);
    let users = node.realm_with_users("acme", 5).await;
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let writers = spawn_writers(node.clone(), &users[..4], stop.clone(), progress.clone());
    let reader = spawn_reader(
        node.clone(),
        users[4].clone(),
        stop.clone(),
        progress.clone(),
    );

    // A connection of the test's own kills every other connection of this
    // schema's nodes (on a thread: the blocking client may not run on the
    // test's async worker), each time once the node has taken writes and
    // served reads since the last time.
    let mut killed = 0;
    for round in 0..3 {
        let (acknowledged, reads) = (progress.acknowledged(), progress.reads());
        progress
            .until(&format!("writes and reads before cut {round}"), |p| {
                p.acknowledged() >= acknowledged + 3 && p.reads() > reads
            })
            .await;
        let (url, name) = (schema.url(), schema.name().to_owned());
        killed += std::thread::spawn(move || {
            let mut killer = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            killer
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .unwrap()
                .len()
        })
        .join()
        .unwrap();
    }
    assert!(killed >= 3, "the node's connections were cut ({killed})");
    // Writes are taken again after the last cut.
    let acknowledged = progress.acknowledged();
    progress
        .until("writes after the last cut", |p| {
            p.acknowledged() >= acknowledged + 3
        })
        .await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap().0);
    }
    assert!(reader.await.unwrap() > 0);
    recovered(&node, &users[0]).await;
    assert!(!acknowledged.is_empty());
    assert_all_stored(
        &node.with_admin(|store| store.export()).unwrap(),
        &acknowledged,
    );
}

#[tokio::test]
async fn a_node_without_its_database_serves_reads_and_catches_up_after() {
    let Some(backing) = Backing::postgres() else {
        return;
    };
    let Backing::Postgres(schema) = &backing else {
        unreachable!()
    };
    let (relayed_url, upstream) = through(&schema.url(), "127.0.0.1:1".parse().unwrap());
    let relay = Relay::to(upstream).await;
    let (relayed_url, _) = through(&relayed_url, relay.address);
    let clock = Arc::new(ManualClock::new(START));
    // Node A reaches the database through the relay; node B directly.
    let a_config = Config {
        database_url: Some(relayed_url),
        ..node_config()
    };
    let a = Arc::new(TestServer::start_on(backing.clone(), clock.clone(), a_config).await);
    let b = TestServer::start_on(backing.clone(), clock, node_config()).await;
    let users = users_on_both(&a, &b, 5).await;
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let writers = spawn_writers(a.clone(), &users[..4], stop.clone(), progress.clone());
    let reader = spawn_reader(a.clone(), users[4].clone(), stop.clone(), progress.clone());

    progress
        .until("writes and reads through the relay", |p| {
            p.acknowledged() >= 3 && p.reads() > 0
        })
        .await;
    relay.cut();
    // Meanwhile the other node takes a change that A must catch up with.
    b.report(&users[4], "during-outage", "active").await;
    progress
        .until("a write refused without the database", |p| p.refused() > 0)
        .await;
    relay.restore();
    let acknowledged = progress.acknowledged();
    progress
        .until("writes taken again once the database is back", |p| {
            p.acknowledged() > acknowledged
        })
        .await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for writer in writers {
        let (acked, failed) = writer.await.unwrap();
        acknowledged.extend(acked);
        refused += failed;
    }
    assert!(refused > 0, "writes without a database were refused");
    assert!(reader.await.unwrap() > 0);
    recovered(&a, &users[0]).await;
    within_propagation("the change made during the outage", || async {
        a.presence_of(&users[0], &users[4].email)
            .await
            .get("during-outage")
            .is_some()
    })
    .await;
    assert_all_stored(
        &a.with_admin(|store| store.export()).unwrap(),
        &acknowledged,
    );
}
