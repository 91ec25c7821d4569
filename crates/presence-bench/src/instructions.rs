//! Instructions per request, counted by `valgrind --tool=callgrind`: the
//! figure that does not depend on how busy the machine is.
//!
//! Each scenario starts the release server under callgrind on a freshly
//! imported data directory, primes it as in the steady state (every user
//! pings once and every user's presence is read once, see `prime`), sends
//! a warm-up over one keep-alive connection, zeroes the counters
//! (`callgrind_control -z`), sends a fixed number of requests one after
//! the other on the same connection, dumps the counters
//! (`callgrind_control -d`) and divides the instructions of every thread of
//! the process by the requests. The baseline (a bare hyper server answering
//! the same number of bytes) is measured the same way, so each row is a
//! ratio of two counts taken alike.
//!
//! Both processes run with one runtime worker thread. Valgrind runs one
//! thread at a time anyway; a second worker only adds the wake-ups of an
//! idle worker looking for work, whose number follows the timing of the
//! run and made the same binary's count differ by up to 4% between runs.
//! With one, a count repeats to a few instructions per request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::Method;

use crate::load::{self, Connection, Request, Workload};
use crate::process::{LogLevel, Process};
use crate::provision::{self, Realm};
use crate::scenarios::{self, IdlePing, IncrementalReader, Plan, ReadOneUser};
use crate::stores::Storage;

/// The variable tokio reads the number of a runtime's worker threads
/// from: both our server and the baseline run on tokio's multi-threaded
/// runtime without setting it themselves.
const WORKER_THREADS: &str = "TOKIO_WORKER_THREADS";

/// How an instruction-count run is sized, and where its profiles go.
#[derive(Debug, Clone)]
pub struct Counts {
    /// Requests sent before the counters are zeroed.
    pub warmup: u64,
    /// Requests counted.
    pub requests: u64,
    /// A directory to keep each count's callgrind profile in (for
    /// `callgrind_annotate`), if any.
    pub profiles: Option<PathBuf>,
}

/// One scenario's count, ours beside the baseline's.
struct CountRow {
    scenario: &'static str,
    users: usize,
    ours: f64,
    baseline: f64,
    body_bytes: usize,
}

impl CountRow {
    fn markdown(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {} |",
            self.scenario,
            self.users,
            self.ours,
            self.baseline,
            self.ours / self.baseline.max(1.0),
            self.body_bytes
        )
    }
}

/// How many requests of E's sequence are the reader's fetches for each
/// change another user makes.
const FETCHES_PER_CHANGE: u64 = 9;

/// E, as a fixed sequence: one request in ten is a report by another user
/// that changes state (a client never seen before, so a durable write and
/// a change to fetch), and the nine between are the reader's incremental
/// fetch of what changed since the update id it last saw, as a client
/// polling a busy realm mostly finds one change or none.
struct ChangeThenFetch {
    realm: Realm,
    reader: IncrementalReader,
    counter: AtomicU64,
}

impl Workload for ChangeThenFetch {
    fn next(&self, c: &mut Connection) -> Request {
        if !c.sent.is_multiple_of(FETCHES_PER_CHANGE + 1) {
            return self.reader.next(c);
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Never the reader (user 0 of connection 0).
        let user = &self.realm.users[1 + (n as usize) % (self.realm.users.len() - 1)];
        Request {
            method: Method::POST,
            path: "/api/v1/users/me/presence".to_owned(),
            authorization: Some(user.authorization.clone()),
            body: Bytes::from(format!("status=active&ping_only=true&client=count{n}")),
        }
    }

    fn observe(&self, c: &mut Connection, body: &[u8]) {
        self.reader.observe(c, body);
    }
}

/// Runs A, A with the default log, B and E (those of them `--only`
/// names) at each size of the plan under callgrind, with the baseline
/// beside each, and prints the table.
pub async fn run(plan: &Plan, counts: Counts) -> anyhow::Result<()> {
    check_tools()?;
    let dir = tempfile::tempdir()?;
    let dump = dir.path().join("dump.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    eprintln!("provisioning realms of {:?} users", plan.sizes);
    let realms = provision::write_dump(&dump, &plan.sizes, now)?;
    println!(
        "| scenario | users | ours instructions per request | baseline instructions per request | ratio | body bytes |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (index, realm) in realms.iter().enumerate() {
        let data = Storage::Dir(dir.path().join(format!("data-{index}")));
        provision::import(&plan.server, &data, &dump)?;
        let users = realm.users.len();
        let scenarios: [(&'static str, LogLevel, Arc<dyn Workload>); 4] = [
            (
                "A. GET one user's presence",
                LogLevel::Quiet,
                Arc::new(ReadOneUser(realm.clone())),
            ),
            (
                "A. GET one user's presence, default log",
                LogLevel::Default,
                Arc::new(ReadOneUser(realm.clone())),
            ),
            (
                "B. ping that changes nothing",
                LogLevel::Quiet,
                Arc::new(IdlePing(realm.clone())),
            ),
            (
                "E. a change, then nine incremental answers",
                LogLevel::Quiet,
                Arc::new(ChangeThenFetch {
                    realm: realm.clone(),
                    reader: IncrementalReader(realm.clone()),
                    counter: AtomicU64::new(0),
                }),
            ),
        ];
        for (scenario, log, workload) in scenarios {
            let letter = scenario.chars().next().unwrap_or('?');
            if !plan.wants(letter) {
                continue;
            }
            let label = format!("{}-{users}", &scenario[..1]);
            let label = if log == LogLevel::Default {
                format!("{label}-log")
            } else {
                label
            };
            let setup = Setup {
                plan,
                dir: dir.path(),
                counts: &counts,
                label: &label,
            };
            let row = count_scenario(&setup, &data, log, realm, workload).await?;
            let row = CountRow {
                scenario,
                users,
                ..row
            };
            println!("{}", row.markdown());
        }
    }
    Ok(())
}

/// What every count of a run shares.
struct Setup<'a> {
    plan: &'a Plan,
    /// Where callgrind writes.
    dir: &'a Path,
    counts: &'a Counts,
    /// The scenario's short name, for its profiles' file names.
    label: &'a str,
}

/// Counts one workload on our server (on `data`), then on the baseline.
async fn count_scenario(
    setup: &Setup<'_>,
    data: &Storage,
    log: LogLevel,
    realm: &Realm,
    workload: Arc<dyn Workload>,
) -> anyhow::Result<CountRow> {
    let (plan, dir) = (setup.plan, setup.dir);
    let ours = Counted::start(dir, &plan.server, &scenarios::server_args(data), log)?;
    ours.prime(realm).await?;
    let (ours_count, body_bytes) = ours
        .count(
            workload.clone(),
            setup.counts,
            &format!("{}-ours", setup.label),
        )
        .await?;
    drop(ours);
    let baseline_args = [
        "baseline".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--body-bytes".to_owned(),
        body_bytes.to_string(),
    ];
    let baseline = Counted::start(dir, &plan.this, &baseline_args, LogLevel::Quiet)?;
    baseline.prime(realm).await?;
    let (baseline_count, _) = baseline
        .count(workload, setup.counts, &format!("{}-baseline", setup.label))
        .await?;
    Ok(CountRow {
        scenario: "",
        users: 0,
        ours: ours_count,
        baseline: baseline_count,
        body_bytes,
    })
}

/// A process running under callgrind, its counters dumped to a file of its
/// own.
struct Counted {
    process: Process,
    out_file: PathBuf,
}

impl Counted {
    fn start(dir: &Path, program: &Path, args: &[String], log: LogLevel) -> anyhow::Result<Self> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let out_file = dir.join(format!(
            "callgrind.{}",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut valgrind_args = vec![
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", out_file.display()),
            program.display().to_string(),
        ];
        valgrind_args.extend(args.iter().cloned());
        // Slow under valgrind: loading a realm takes a while. One runtime
        // worker: see the module's documentation.
        let process = Process::start_logging(
            Path::new("valgrind"),
            &valgrind_args,
            Duration::from_secs(300),
            log,
            &[(WORKER_THREADS, "1")],
        )?;
        Ok(Counted { process, out_file })
    }

    /// Primes the process as the steady state would be (see `prime`),
    /// over one connection, uncounted.
    async fn prime(&self, realm: &Realm) -> anyhow::Result<()> {
        crate::prime::prime(&self.process.address, realm, 1).await
    }

    /// Sends the warm-up, zeroes, sends the counted requests and dumps:
    /// instructions per counted request, and the mean body size. The
    /// profile is kept as `LABEL.callgrind` if the counts say where.
    async fn count(
        &self,
        workload: Arc<dyn Workload>,
        counts: &Counts,
        label: &str,
    ) -> anyhow::Result<(f64, usize)> {
        let address = &self.process.address;
        let mut connection = load::Sequence::open(address, workload).await?;
        connection.send(counts.warmup).await?;
        control(self.process.id(), "-z")?;
        let outcome = connection.send(counts.requests).await?;
        control(self.process.id(), "-d")?;
        if outcome.failures > 0 {
            bail!("{} of the counted requests failed", outcome.failures);
        }
        let (instructions, dump) = read_total(&self.out_file)?;
        if let Some(profiles) = &counts.profiles {
            std::fs::create_dir_all(profiles)?;
            std::fs::copy(&dump, profiles.join(format!("{label}.callgrind")))?;
        }
        Ok((
            instructions as f64 / counts.requests as f64,
            outcome.mean_body_bytes(),
        ))
    }
}

/// Runs `callgrind_control OPTION PID`, which returns once the process has
/// done it.
fn control(pid: u32, option: &str) -> anyhow::Result<()> {
    let status = Command::new("callgrind_control")
        .args([option, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("cannot run callgrind_control")?;
    if !status.success() {
        bail!("callgrind_control {option} {pid} failed");
    }
    Ok(())
}

/// The instructions of the newest dump of `out_file` (callgrind numbers
/// the dumps it is asked for: `FILE.1`, `FILE.2`, ...), and that dump.
fn read_total(out_file: &Path) -> anyhow::Result<(u64, PathBuf)> {
    let name = out_file
        .file_name()
        .and_then(|n| n.to_str())
        .context("a callgrind file name")?;
    let dir = out_file.parent().context("a callgrind directory")?;
    let mut newest: Option<(u32, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(number) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if newest.as_ref().is_none_or(|(n, _)| number > *n) {
            newest = Some((number, path));
        }
    }
    let (_, path) = newest.context("callgrind wrote no dump")?;
    let text = std::fs::read_to_string(&path)?;
    // Every thread's part has its own `summary:`; the process is their sum.
    let total = text
        .lines()
        .filter_map(|line| line.strip_prefix("summary:"))
        .map(|n| n.trim().parse::<u64>())
        .sum::<Result<u64, _>>()?;
    if total == 0 {
        bail!("{} holds no instructions", path.display());
    }
    Ok((total, path))
}

/// Refuses early, with the reason, when valgrind is not installed.
fn check_tools() -> anyhow::Result<()> {
    for tool in ["valgrind", "callgrind_control"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        if !found {
            bail!("--instructions needs {tool} (Debian's valgrind package)");
        }
    }
    Ok(())
}
