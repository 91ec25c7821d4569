//! The scenarios of the benchmark, each run against our server and, with
//! the same requests, against the baseline answering the same number of
//! bytes, the two taking short turns (`load::run_in_turns`). A, B, C, D
//! and E run once per store of the plan (SQLite, or PostgreSQL with one or
//! two nodes), each store freshly provisioned; F, G and H run on the
//! embedded store only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use rand::Rng;

use crate::load::{self, Connection, Outcome, Request, Workload};
use crate::process::Process;
use crate::provision::{self, Realm, User};
use crate::report::{self, Row};
use crate::stores::{Backends, Fresh, Storage, Store};

/// How a run is sized.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The realm sizes (users) of scenarios A, B, C and E.
    pub sizes: Vec<usize>,
    /// The realm size of scenario D.
    pub full_answer_size: usize,
    /// The client records of scenario F.
    pub memory_records: usize,
    /// Unmeasured time before each measurement.
    pub warmup: Duration,
    /// The measured time of each scenario.
    pub window: Duration,
    /// Open connections of the load generator.
    pub connections: usize,
    /// The `presence-server` binary.
    pub server: PathBuf,
    /// This binary (it also serves the baseline).
    pub this: PathBuf,
    /// Scenario letters to run; all when empty.
    pub only: Vec<char>,
    /// Event queues (and long polls) of scenario G.
    pub queues: usize,
    /// Pages streaming in scenario H.
    pub page_streams: usize,
    /// Users of the realm the pages of scenario H show.
    pub page_realm_users: usize,
    /// The stores to run A to E on, one after the other.
    pub stores: Vec<Store>,
    /// The PostgreSQL database the PostgreSQL stores make scratch schemas in.
    pub database_url: Option<String>,
    /// How the servers of A to E commit (`--durability`).
    pub durability: String,
    /// Measurements of each throughput scenario, ours and the baseline in
    /// turns each time; the table shows the round with the median ratio.
    pub rounds: usize,
}

impl Plan {
    pub fn wants(&self, scenario: char) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }
}

/// A's request: `reader` reads `target`'s presence.
pub fn read_presence(reader: &User, target: &User) -> Request {
    Request {
        method: Method::GET,
        path: format!("/api/v1/users/{}/presence", target.email),
        authorization: Some(reader.authorization.clone()),
        body: Bytes::new(),
    }
}

/// B's request: `user` pings, which changes nothing while its record is
/// fresh.
pub fn idle_ping(user: &User) -> Request {
    Request {
        method: Method::POST,
        path: "/api/v1/users/me/presence".to_owned(),
        authorization: Some(user.authorization.clone()),
        body: Bytes::from_static(b"status=active&ping_only=true&client=website"),
    }
}

/// C's request: `user` reports active from client `{prefix}{n}`, a name
/// never used before when `n` is, so the report changes state.
pub fn new_client_report(user: &User, prefix: &str, n: u64) -> Request {
    Request {
        method: Method::POST,
        path: "/api/v1/users/me/presence".to_owned(),
        authorization: Some(user.authorization.clone()),
        body: Bytes::from(format!("status=active&ping_only=true&client={prefix}{n}")),
    }
}

/// The arguments that start the baseline (this binary) answering
/// `body_bytes` bytes, on a port of its choosing.
pub fn baseline_args(body_bytes: usize) -> [String; 5] {
    [
        "baseline".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--body-bytes".to_owned(),
        body_bytes.to_string(),
    ]
}

/// A: one user's presence, for random users, read by one reader.
pub struct ReadOneUser(pub Realm);

impl Workload for ReadOneUser {
    fn next(&self, c: &mut Connection) -> Request {
        let target = &self.0.users[c.rng.random_range(0..self.0.users.len())];
        read_presence(&self.0.users[0], target)
    }
}

/// B: the steady-state ping, which changes nothing.
pub struct IdlePing(pub Realm);

impl Workload for IdlePing {
    fn next(&self, c: &mut Connection) -> Request {
        idle_ping(&self.0.users[c.rng.random_range(0..self.0.users.len())])
    }
}

/// C: a report that changes something every time (a client never seen
/// before), so every answer waits for a durable write.
struct ChangingReport {
    realm: Realm,
    counter: AtomicU64,
    pause: Option<Duration>,
}

impl Workload for ChangingReport {
    fn next(&self, c: &mut Connection) -> Request {
        let user = &self.realm.users[c.rng.random_range(0..self.realm.users.len())];
        new_client_report(user, "bench", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    fn pause(&self) -> Option<Duration> {
        self.pause
    }
}

/// D: the full legacy answer (everyone, by email), fetched with a ping.
struct FullAnswer(Realm);

impl Workload for FullAnswer {
    fn next(&self, c: &mut Connection) -> Request {
        let user = &self.0.users[c.rng.random_range(0..self.0.users.len())];
        Request {
            method: Method::POST,
            path: "/api/v1/users/me/presence".to_owned(),
            authorization: Some(user.authorization.clone()),
            body: Bytes::from_static(b"status=active&client=website"),
        }
    }
}

/// E: the incremental answer: each reader sends the last update id it saw.
pub struct IncrementalReader(pub Realm);

impl Workload for IncrementalReader {
    fn next(&self, c: &mut Connection) -> Request {
        // A fixed reader per connection, as a client polling every minute.
        let user = &self.0.users[c.index % self.0.users.len()];
        Request {
            method: Method::POST,
            path: "/api/v1/users/me/presence".to_owned(),
            authorization: Some(user.authorization.clone()),
            body: Bytes::from(format!(
                "status=active&client=website&last_update_id={}",
                c.last_update_id
            )),
        }
    }

    fn observe(&self, c: &mut Connection, body: &[u8]) {
        if let Some(id) = last_update_id(body) {
            c.last_update_id = id;
        }
    }
}

/// `presence_last_update_id` from an answer, without parsing all of it.
fn last_update_id(body: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"presence_last_update_id\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .take_while(|b| b.is_ascii_digit() || *b == b'-')
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The flags every benchmarked server runs with, on `storage`.
pub fn server_args(storage: &Storage) -> Vec<String> {
    let mut args = storage.flags();
    args.extend(
        [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "off",
            "--ip-rate-limit",
            "off",
            // Long enough that a provisioned record stays fresh for the whole
            // run, so scenario B's pings really change nothing.
            "--presence-update-min-freq-secs",
            "3600",
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    args
}

/// User plus system CPU seconds of all the nodes so far.
fn cpu_seconds(nodes: &[Process]) -> anyhow::Result<f64> {
    nodes.iter().map(Process::cpu_seconds).sum()
}

/// A store's running servers, as a scenario drives them.
#[derive(Clone, Copy)]
struct Servers<'a> {
    /// The store they run on.
    store: Store,
    /// The server processes (the nodes).
    nodes: &'a [Process],
    /// The database's processes serving them.
    backends: &'a Backends,
}

/// How long each turn of our server and the baseline lasts when they are
/// measured in turns (see [`load::run_in_turns`]): short against the
/// machine's slow swings, long against the requests in flight when a turn
/// ends (a few milliseconds at most, counted for the turn they began in).
const TURN: Duration = Duration::from_millis(250);

/// Runs `workload` against our server (its connections spread over the
/// nodes) and a baseline answering the mean number of bytes ours did, in
/// turns of [`TURN`], `plan.rounds` times; `trickle` runs beside each on
/// its first node. Ours runs alone before, a warm-up then as long again
/// measured, for the size of its answers (which the baseline copies).
/// Returns (and prints) the round whose ratio is the median, with the
/// range of the rounds' ratios.
async fn compare(
    plan: &Plan,
    servers: Servers<'_>,
    name: &str,
    users: usize,
    workload: Arc<dyn Workload>,
    trickle: Option<Arc<dyn Workload>>,
) -> anyhow::Result<Row> {
    // Measured after a warm-up, as the rounds are: an incremental reader's
    // first answer is the whole realm, which is not what it reads after.
    let look = Plan {
        window: plan.warmup,
        ..plan.clone()
    };
    let first = measure(&look, servers.nodes, servers.backends, &workload, &trickle).await?;
    let baseline = Process::start(
        &plan.this,
        &baseline_args(first.outcome.mean_body_bytes()),
        Duration::from_secs(10),
    )?;
    let mut rounds = Vec::with_capacity(plan.rounds);
    for _ in 0..plan.rounds.max(1) {
        let [ours, theirs] =
            measure_in_turns(plan, servers, &baseline, &workload, &trickle).await?;
        let sizes = [&ours, &theirs].map(|m| m.outcome.mean_body_bytes());
        if sizes[0].abs_diff(sizes[1]) > sizes[0] / 4 + 16 {
            eprintln!(
                "warning: {name}: the baseline answered {} bytes on average, ours {}; \
                 the ratio compares unlike answers",
                sizes[1], sizes[0]
            );
        }
        rounds.push(Row {
            scenario: name.to_owned(),
            users,
            store: servers.store.to_string(),
            ours: ours.outcome,
            ours_cpu: ours.cpu,
            baseline: theirs.outcome,
            baseline_cpu: theirs.cpu,
            database_cpu: ours.database_cpu,
            ratio_range: None,
        });
    }
    let row = Row::median(rounds);
    println!("{}", row.markdown());
    Ok(row)
}

/// Measures our server's nodes and `baseline` in turns (see
/// [`load::run_in_turns`]): each side's load and the CPU seconds it (and,
/// for ours, its database) spent, scaled to its measured turns.
async fn measure_in_turns(
    plan: &Plan,
    servers: Servers<'_>,
    baseline: &Process,
    workload: &Arc<dyn Workload>,
    trickle: &Option<Arc<dyn Workload>>,
) -> anyhow::Result<[Measured; 2]> {
    let ours: Vec<String> = servers.nodes.iter().map(|p| p.address.clone()).collect();
    let theirs = [baseline.address.clone()];
    let baseline = std::slice::from_ref(baseline);
    let cpu_before = [cpu_seconds(servers.nodes)?, cpu_seconds(baseline)?];
    let database_before = servers.backends.cpu_seconds();
    let turns = load::Turns {
        warmup: plan.warmup,
        window: plan.window,
        slice: TURN,
    };
    let [ours, theirs] = load::run_in_turns(
        [&ours, &theirs],
        workload.clone(),
        trickle.clone(),
        plan.connections,
        turns,
    )
    .await?;
    // Each side spends its CPU in its warm-up and its turns, next to none
    // while the other has the machine.
    let measured = ours.window.as_secs_f64();
    let in_turns = |seconds: f64| seconds * measured / (measured + plan.warmup.as_secs_f64());
    Ok([
        Measured {
            outcome: ours,
            cpu: in_turns(cpu_seconds(servers.nodes)? - cpu_before[0]),
            database_cpu: database_before
                .zip(servers.backends.cpu_seconds())
                .map(|(before, after)| in_turns(after - before)),
        },
        Measured {
            outcome: theirs,
            cpu: in_turns(cpu_seconds(baseline)? - cpu_before[1]),
            database_cpu: None,
        },
    ])
}

/// One measurement of a server: the load's outcome, and the CPU seconds
/// its processes and their database's spent over the window.
struct Measured {
    outcome: Outcome,
    cpu: f64,
    database_cpu: Option<f64>,
}

/// Runs `workload` (and `trickle` beside it, on the first process)
/// against `processes`, its connections spread over them.
async fn measure(
    plan: &Plan,
    processes: &[Process],
    backends: &Backends,
    workload: &Arc<dyn Workload>,
    trickle: &Option<Arc<dyn Workload>>,
) -> anyhow::Result<Measured> {
    let addresses: Vec<String> = processes.iter().map(|p| p.address.clone()).collect();
    let cpu_before = cpu_seconds(processes)?;
    let database_before = backends.cpu_seconds();
    let background = trickle.clone().map(|t| {
        let first = addresses[..1].to_vec();
        let (warmup, window) = (plan.warmup, plan.window);
        tokio::spawn(async move { load::run(&first, t, 1, warmup, window).await })
    });
    let outcome = load::run(
        &addresses,
        workload.clone(),
        plan.connections,
        plan.warmup,
        plan.window,
    )
    .await;
    if let Some(background) = background {
        background.await??;
    }
    let outcome = outcome?;
    // The warm-up's CPU is included; it is the same share for both servers.
    let in_window = |seconds: f64| {
        seconds * plan.window.as_secs_f64() / (plan.window + plan.warmup).as_secs_f64()
    };
    Ok(Measured {
        outcome,
        cpu: in_window(cpu_seconds(processes)? - cpu_before),
        database_cpu: database_before
            .zip(backends.cpu_seconds())
            .map(|(before, after)| in_window(after - before)),
    })
}

/// Runs every scenario and prints the table; returns the rows.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let dump = dir.path().join("dump.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let mut sizes = plan.sizes.clone();
    if !sizes.contains(&plan.full_answer_size) {
        sizes.push(plan.full_answer_size);
    }
    eprintln!("provisioning realms of {sizes:?} users");
    let realms = provision::write_dump(&dump, &sizes, now)?;

    println!("{}", report::header());
    let mut runs = Vec::new();
    for (index, &store) in plan.stores.iter().enumerate() {
        let data_dir = dir.path().join(format!("data-{index}"));
        runs.push(run_store(plan, store, &data_dir, &dump, &realms).await?);
    }
    if runs.len() > 1 {
        println!();
        println!("The same rows, the stores side by side:");
        println!();
        println!("{}", report::header());
        for row in report::side_by_side(&runs) {
            println!("{}", row.markdown());
        }
    }

    let on_sqlite = plan.stores.contains(&Store::Sqlite);
    let skipped: Vec<String> = plan
        .stores
        .iter()
        .filter(|store| store.is_postgres())
        .map(Store::to_string)
        .collect();
    for (letter, name) in [
        ('F', "memory and start-up"),
        ('G', "event fan-out"),
        ('H', "page streams"),
    ] {
        if plan.wants(letter) && !skipped.is_empty() {
            println!();
            println!(
                "{letter} ({name}) not run on {}: it runs on the embedded store only{}.",
                skipped.join(", "),
                if on_sqlite { " (below)" } else { "" }
            );
        }
    }
    if on_sqlite && plan.wants('F') {
        memory(plan, dir.path()).await?;
    }
    if on_sqlite && plan.wants('G') {
        crate::events::fan_out(plan, dir.path(), plan.queues).await?;
    }
    if on_sqlite && plan.wants('H') {
        crate::pages::audience(plan, dir.path(), plan.page_streams, plan.page_realm_users).await?;
    }
    Ok(runs.into_iter().flatten().collect())
}

/// A, B, D, E and C on one store: provisions a fresh data directory or
/// scratch schema from `dump`, starts the store's nodes, drives them, and
/// stops them before the storage is removed.
async fn run_store(
    plan: &Plan,
    store: Store,
    data_dir: &Path,
    dump: &Path,
    realms: &[Realm],
) -> anyhow::Result<Vec<Row>> {
    eprintln!("{store}: importing");
    let fresh = Fresh::create(store, data_dir, plan.database_url.as_deref())?;
    provision::import(&plan.server, &fresh.storage, dump)?;
    let realm = |size: usize| {
        realms
            .iter()
            .find(|r| r.users.len() == size)
            .cloned()
            .expect("provisioned")
    };
    let mut args = server_args(&fresh.storage);
    args.extend(["--durability".to_owned(), plan.durability.clone()]);
    let mut nodes = Vec::new();
    for _ in 0..store.nodes() {
        nodes.push(Process::start(
            &plan.server,
            &args,
            Duration::from_secs(60),
        )?);
    }
    let backends = fresh.backends();
    let servers = Servers {
        store,
        nodes: &nodes,
        backends: &backends,
    };
    let rows = drive(plan, servers, &realm).await;
    // The servers go before their schema: DROP SCHEMA would wait on them.
    drop(nodes);
    drop(fresh);
    rows
}

/// The scenarios A to E against running `servers`, printing each row.
async fn drive(
    plan: &Plan,
    servers: Servers<'_>,
    realm: &dyn Fn(usize) -> Realm,
) -> anyhow::Result<Vec<Row>> {
    let nodes = servers.nodes;
    // Each scenario compared on these nodes and this store.
    let run = |name: &'static str,
               users: usize,
               workload: Arc<dyn Workload>,
               trickle: Option<Arc<dyn Workload>>| {
        compare(plan, servers, name, users, workload, trickle)
    };
    let mut rows = Vec::new();
    // C goes last: its reports add client records, which would make the
    // other scenarios' realms bigger than provisioned.
    for &size in &plan.sizes {
        if plan.wants('A') || plan.wants('B') || plan.wants('E') {
            // The steady state of A, B and E: no client new, every user's
            // object written (`prime`); the baseline needs none.
            for node in nodes {
                crate::prime::prime(&node.address, &realm(size), plan.connections).await?;
            }
        }
        if plan.wants('A') {
            let workload = Arc::new(ReadOneUser(realm(size)));
            rows.push(run("A. GET one user's presence", size, workload, None).await?);
        }
        if plan.wants('B') {
            let workload = Arc::new(IdlePing(realm(size)));
            rows.push(run("B. ping that changes nothing", size, workload, None).await?);
        }
    }
    if plan.wants('D') {
        let size = plan.full_answer_size;
        let workload = Arc::new(FullAnswer(realm(size)));
        rows.push(run("D. full legacy realm answer", size, workload, None).await?);
    }
    for &size in plan.sizes.iter().filter(|_| plan.wants('E')) {
        let r = realm(size);
        // About a hundred changes a second by other users of the realm.
        let trickle = Arc::new(ChangingReport {
            realm: r.clone(),
            counter: AtomicU64::new(1 << 40),
            pause: Some(Duration::from_millis(10)),
        });
        let workload = Arc::new(IncrementalReader(r));
        let name = "E. incremental answer, trickle of changes";
        rows.push(run(name, size, workload, Some(trickle)).await?);
    }
    for &size in plan.sizes.iter().filter(|_| plan.wants('C')) {
        let changing = Arc::new(ChangingReport {
            realm: realm(size),
            counter: AtomicU64::new(0),
            pause: None,
        });
        let name = "C. report that changes state (durable)";
        rows.push(run(name, size, changing, None).await?);
    }
    Ok(rows)
}

/// F: resident bytes per client record, and the time to start with them.
async fn memory(plan: &Plan, dir: &Path) -> anyhow::Result<()> {
    let empty_dir = Storage::Dir(dir.join("empty"));
    let empty = Process::start(
        &plan.server,
        &server_args(&empty_dir),
        Duration::from_secs(60),
    )?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let empty_rss = empty.resident_bytes()?;
    drop(empty);

    // Two records per user on average (1, 2, 3, 1, 2, 3, ...).
    let users = plan.memory_records / 2;
    let full_dir = Storage::Dir(dir.join("full"));
    let dump = dir.join("memory.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let realms = provision::write_dump(&dump, &[users], now)?;
    let records = realms[0].records();
    provision::import(&plan.server, &full_dir, &dump)?;
    let full = Process::start(
        &plan.server,
        &server_args(&full_dir),
        Duration::from_secs(120),
    )?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let full_rss = full.resident_bytes()?;
    let per_record = (full_rss.saturating_sub(empty_rss)) as f64 / records as f64;
    println!();
    println!(
        "| F. memory | client records | users | resident bytes per record | start-up | RSS empty | RSS loaded |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| F. memory | {records} | {users} | {per_record:.0} | {:.2} s | {:.1} MiB | {:.1} MiB |",
        full.startup.as_secs_f64(),
        empty_rss as f64 / 1048576.0,
        full_rss as f64 / 1048576.0
    );
    Ok(())
}
