//! The scenarios of the benchmark, each run against our server and then,
//! with the same requests, against the baseline answering the same number
//! of bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use rand::Rng;

use crate::load::{self, Connection, Request, Workload};
use crate::process::Process;
use crate::provision::{self, Realm};
use crate::report::{self, Row};

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
}

impl Plan {
    fn wants(&self, scenario: char) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }
}

/// A: one user's presence, for random users, read by one reader.
struct ReadOneUser(Realm);

impl Workload for ReadOneUser {
    fn next(&self, c: &mut Connection) -> Request {
        let target = &self.0.users[c.rng.random_range(0..self.0.users.len())];
        Request {
            method: Method::GET,
            path: format!("/api/v1/users/{}/presence", target.email),
            authorization: Some(self.0.users[0].authorization.clone()),
            body: Bytes::new(),
        }
    }
}

/// B: the steady-state ping, which changes nothing.
struct IdlePing(Realm);

impl Workload for IdlePing {
    fn next(&self, c: &mut Connection) -> Request {
        let user = &self.0.users[c.rng.random_range(0..self.0.users.len())];
        Request {
            method: Method::POST,
            path: "/api/v1/users/me/presence".to_owned(),
            authorization: Some(user.authorization.clone()),
            body: Bytes::from_static(b"status=active&ping_only=true&client=website"),
        }
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
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        Request {
            method: Method::POST,
            path: "/api/v1/users/me/presence".to_owned(),
            authorization: Some(user.authorization.clone()),
            body: Bytes::from(format!("status=active&ping_only=true&client=bench{n}")),
        }
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
struct IncrementalReader(Realm);

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

/// The flags every benchmarked server runs with.
pub fn server_args(data_dir: &Path) -> Vec<String> {
    [
        "--data-dir",
        &data_dir.display().to_string(),
        "--rate-limit",
        "off",
        "--ip-rate-limit",
        "off",
        // Long enough that a provisioned record stays fresh for the whole
        // run, so scenario B's pings really change nothing.
        "--presence-update-min-freq-secs",
        "3600",
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Runs `workload` against our server, then against a baseline answering
/// the mean number of bytes ours did; `trickle` runs beside both.
async fn compare(
    plan: &Plan,
    ours: &Process,
    name: &str,
    users: usize,
    workload: Arc<dyn Workload>,
    trickle: Option<Arc<dyn Workload>>,
) -> anyhow::Result<Row> {
    let measure =
        |address: String, workload: Arc<dyn Workload>, trickle: Option<Arc<dyn Workload>>| {
            let plan = plan.clone();
            async move {
                let background = trickle.map(|t| {
                    let address = address.clone();
                    let (warmup, window) = (plan.warmup, plan.window);
                    tokio::spawn(async move { load::run(&address, t, 1, warmup, window).await })
                });
                let outcome = load::run(
                    &address,
                    workload,
                    plan.connections,
                    plan.warmup,
                    plan.window,
                )
                .await;
                if let Some(background) = background {
                    background.await??;
                }
                outcome
            }
        };
    let cpu_before = ours.cpu_seconds()?;
    let ours_outcome = measure(ours.address.clone(), workload.clone(), trickle.clone()).await?;
    // The warm-up's CPU is included; it is the same share for both servers.
    let ours_cpu = (ours.cpu_seconds()? - cpu_before) * plan.window.as_secs_f64()
        / (plan.window + plan.warmup).as_secs_f64();

    let baseline = Process::start(
        &plan.this,
        &[
            "baseline".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--body-bytes".to_owned(),
            ours_outcome.mean_body_bytes().to_string(),
        ],
        Duration::from_secs(10),
    )?;
    let cpu_before = baseline.cpu_seconds()?;
    let baseline_outcome = measure(baseline.address.clone(), workload, trickle).await?;
    let baseline_cpu = (baseline.cpu_seconds()? - cpu_before) * plan.window.as_secs_f64()
        / (plan.window + plan.warmup).as_secs_f64();
    let row = Row {
        scenario: name.to_owned(),
        users,
        ours: ours_outcome,
        ours_cpu,
        baseline: baseline_outcome,
        baseline_cpu,
    };
    println!("{}", row.markdown());
    Ok(row)
}

/// Runs every scenario and prints the table; returns the rows.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
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
    provision::import(&plan.server, &data, &dump)?;
    let realm = |size: usize| {
        realms
            .iter()
            .find(|r| r.users.len() == size)
            .cloned()
            .expect("provisioned")
    };

    let server = Process::start(&plan.server, &server_args(&data), Duration::from_secs(60))?;
    println!("{}", report::header());
    let mut rows = Vec::new();
    // C goes last: its reports add client records, which would make the
    // other scenarios' realms bigger than provisioned.
    for &size in &plan.sizes {
        let r = realm(size);
        rows.push(
            compare(
                plan,
                &server,
                "A. GET one user's presence",
                size,
                Arc::new(ReadOneUser(r.clone())),
                None,
            )
            .await?,
        );
        rows.push(
            compare(
                plan,
                &server,
                "B. ping that changes nothing",
                size,
                Arc::new(IdlePing(r)),
                None,
            )
            .await?,
        );
    }
    let r = realm(plan.full_answer_size);
    rows.push(
        compare(
            plan,
            &server,
            "D. full legacy realm answer",
            plan.full_answer_size,
            Arc::new(FullAnswer(r)),
            None,
        )
        .await?,
    );
    for &size in &plan.sizes {
        let r = realm(size);
        // About a hundred changes a second by other users of the realm.
        let trickle = Arc::new(ChangingReport {
            realm: r.clone(),
            counter: AtomicU64::new(1 << 40),
            pause: Some(Duration::from_millis(10)),
        });
        rows.push(
            compare(
                plan,
                &server,
                "E. incremental answer, trickle of changes",
                size,
                Arc::new(IncrementalReader(r)),
                Some(trickle),
            )
            .await?,
        );
    }
    for &size in plan.sizes.iter().filter(|_| plan.wants('C')) {
        let changing = Arc::new(ChangingReport {
            realm: realm(size),
            counter: AtomicU64::new(0),
            pause: None,
        });
        rows.push(
            compare(
                plan,
                &server,
                "C. report that changes state (durable)",
                size,
                changing,
                None,
            )
            .await?,
        );
    }
    drop(server);
    if plan.wants('F') {
        memory(plan, dir.path()).await?;
    }
    if plan.wants('G') {
        crate::events::fan_out(plan, dir.path(), plan.queues).await?;
    }
    Ok(rows)
}

/// F: resident bytes per client record, and the time to start with them.
async fn memory(plan: &Plan, dir: &Path) -> anyhow::Result<()> {
    let empty_dir = dir.join("empty");
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
    let full_dir = dir.join("full");
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
