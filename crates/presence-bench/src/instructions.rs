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
//!
//! With `--cache-misses`, callgrind also simulates the caches, on a fixed
//! geometry (see [`CACHE_GEOMETRY`]) so that counts compare across
//! machines, and each row adds the last-level misses per request: what a
//! request costs in memory traffic, which instructions do not show (a
//! realm of 100,000 users reads the same instructions as one of 1,000 and
//! is slower).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::load::{self, Connection, Request, Workload};
use crate::process::{LogLevel, Process};
use crate::provision::{self, Realm};
use crate::scenarios::{self, IdlePing, IncrementalReader, Plan, ReadOneUser};
use crate::stores::Storage;

/// The variable tokio reads the number of a runtime's worker threads
/// from: both our server and the baseline run on tokio's multi-threaded
/// runtime without setting it themselves.
const WORKER_THREADS: &str = "TOKIO_WORKER_THREADS";

/// The caches callgrind simulates with `--cache-misses`: 32 KiB
/// first-level caches and a 32 MiB last level, 64-byte lines, as one
/// core's share of a current server processor.
const CACHE_GEOMETRY: [&str; 4] = [
    "--cache-sim=yes",
    "--I1=32768,8,64",
    "--D1=32768,8,64",
    "--LL=33554432,16,64",
];

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
    /// Simulate the caches too, and count last-level misses.
    pub cache_misses: bool,
}

/// One scenario's count, ours beside the baseline's.
struct CountRow {
    scenario: &'static str,
    users: usize,
    ours: PerRequest,
    baseline: PerRequest,
    body_bytes: usize,
}

impl CountRow {
    /// The table's header, with the misses' columns if they are counted.
    fn header(cache_misses: bool) -> String {
        let (misses, rule) = if cache_misses {
            (
                " ours LL misses per request | baseline LL misses per request |",
                "---:|---:|",
            )
        } else {
            ("", "")
        };
        format!(
            "| scenario | users | ours instructions per request | baseline instructions per request | ratio |{misses} body bytes |\n\
             |---|---:|---:|---:|---:|{rule}---:|"
        )
    }

    fn markdown(&self) -> String {
        let misses = match (self.ours.misses, self.baseline.misses) {
            (Some(ours), Some(baseline)) => format!(" {ours:.1} | {baseline:.1} |"),
            _ => String::new(),
        };
        format!(
            "| {} | {} | {:.0} | {:.0} | {:.2} |{misses} {} |",
            self.scenario,
            self.users,
            self.ours.instructions,
            self.baseline.instructions,
            self.ours.instructions / self.baseline.instructions.max(1.0),
            self.body_bytes
        )
    }
}

/// A count divided by the requests counted.
#[derive(Debug, Clone, Copy)]
struct PerRequest {
    instructions: f64,
    /// Last-level cache misses (instruction and data), if simulated.
    misses: Option<f64>,
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
        scenarios::new_client_report(user, "count", n)
    }

    fn observe(&self, c: &mut Connection, body: &[u8]) {
        self.reader.observe(c, body);
    }
}

/// C, as a fixed sequence: each request a report from a client never seen
/// before (so a durable write), by each user in turn.
///
/// One connection sends them one after the other, so each report is a
/// batch of its own: the count holds the writer's and the store's cost per
/// batch whole for every report (under load a batch holds about ten).
/// Before counting, every user reports from one client more than a user
/// may have ([`c_warmup`]), so each counted report also removes the
/// user's least recently connected client: the state the throughput C
/// reaches at 1,000 users.
struct ReportInTurn {
    realm: Realm,
    counter: AtomicU64,
}

impl Workload for ReportInTurn {
    fn next(&self, _: &mut Connection) -> Request {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let user = &self.realm.users[(n as usize) % self.realm.users.len()];
        scenarios::new_client_report(user, "turn", n)
    }
}

/// The uncounted reports of C in a realm of `users`: enough for every user
/// to pass the server's default bound on clients per user, and at least
/// `warmup`.
fn c_warmup(users: usize, warmup: u64) -> u64 {
    let bound = presence_server::config::Config::default().max_clients_per_user;
    warmup.max((users * (bound + 1)) as u64)
}

/// Runs A, A with the default log, B and E (those of them `--only`
/// names) at each size of the plan under callgrind, with the baseline
/// beside each, and C when `--only` names it (its warm-up grows with the
/// realm: see [`ReportInTurn`]), and prints the table.
pub async fn run(plan: &Plan, counts: Counts) -> anyhow::Result<()> {
    check_tools()?;
    let dir = tempfile::tempdir()?;
    let dump = dir.path().join("dump.jsonl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    eprintln!("provisioning realms of {:?} users", plan.sizes);
    let realms = provision::write_dump(&dump, &plan.sizes, now)?;
    println!("{}", CountRow::header(counts.cache_misses));
    for (index, realm) in realms.iter().enumerate() {
        let data = Storage::Dir(dir.path().join(format!("data-{index}")));
        provision::import(&plan.server, &data, &dump)?;
        let users = realm.users.len();
        let scenarios: [(&'static str, LogLevel, Arc<dyn Workload>); 5] = [
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
            (
                "C. report that changes state",
                LogLevel::Quiet,
                Arc::new(ReportInTurn {
                    realm: realm.clone(),
                    counter: AtomicU64::new(0),
                }),
            ),
        ];
        for (scenario, log, workload) in scenarios {
            let letter = scenario.chars().next().unwrap_or('?');
            // C runs only when named, and warms up past the client bound.
            let (asked, warmup) = if letter == 'C' {
                (plan.only.contains(&letter), c_warmup(users, counts.warmup))
            } else {
                (plan.wants(letter), counts.warmup)
            };
            if !asked {
                continue;
            }
            let counts = Counts {
                warmup,
                ..counts.clone()
            };
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
    let cache = setup.counts.cache_misses;
    let ours = Counted::start(dir, &plan.server, &scenarios::server_args(data), log, cache)?;
    ours.prime(realm).await?;
    let (ours_count, body_bytes) = ours
        .count(
            workload.clone(),
            setup.counts,
            &format!("{}-ours", setup.label),
        )
        .await?;
    drop(ours);
    let baseline_args = scenarios::baseline_args(body_bytes);
    let baseline = Counted::start(dir, &plan.this, &baseline_args, LogLevel::Quiet, cache)?;
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
    fn start(
        dir: &Path,
        program: &Path,
        args: &[String],
        log: LogLevel,
        cache_misses: bool,
    ) -> anyhow::Result<Self> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let out_file = dir.join(format!(
            "callgrind.{}",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut valgrind_args = vec![
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", out_file.display()),
        ];
        if cache_misses {
            valgrind_args.extend(CACHE_GEOMETRY.map(str::to_owned));
        }
        valgrind_args.push(program.display().to_string());
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
    /// instructions (and misses, if simulated) per counted request, and
    /// the mean body size. The profile is kept as `LABEL.callgrind` if the
    /// counts say where.
    async fn count(
        &self,
        workload: Arc<dyn Workload>,
        counts: &Counts,
        label: &str,
    ) -> anyhow::Result<(PerRequest, usize)> {
        let address = &self.process.address;
        let mut connection = load::Sequence::open(address, workload).await?;
        connection.send(counts.warmup).await?;
        control(self.process.id(), "-z")?;
        let outcome = connection.send(counts.requests).await?;
        control(self.process.id(), "-d")?;
        if outcome.failures > 0 {
            bail!("{} of the counted requests failed", outcome.failures);
        }
        let (totals, dump) = read_totals(&self.out_file)?;
        if let Some(profiles) = &counts.profiles {
            std::fs::create_dir_all(profiles)?;
            std::fs::copy(&dump, profiles.join(format!("{label}.callgrind")))?;
        }
        let per_request = |total: u64| total as f64 / counts.requests as f64;
        Ok((
            PerRequest {
                instructions: per_request(totals.instructions),
                misses: totals.last_level_misses.map(per_request),
            },
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

/// What a dump counted, over every thread of the process.
struct Totals {
    instructions: u64,
    /// Last-level misses, instruction and data (reads and writes), when
    /// the caches were simulated.
    last_level_misses: Option<u64>,
}

/// The totals of the newest dump of `out_file` (callgrind numbers the
/// dumps it is asked for: `FILE.1`, `FILE.2`, ...), and that dump.
fn read_totals(out_file: &Path) -> anyhow::Result<(Totals, PathBuf)> {
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
    let totals = parse_totals(&std::fs::read_to_string(&path)?)?;
    if totals.instructions == 0 {
        bail!("{} holds no instructions", path.display());
    }
    Ok((totals, path))
}

/// Sums a dump's `summary:` lines (every thread's part has its own), each
/// a count per event in the order of the `events:` line.
fn parse_totals(text: &str) -> anyhow::Result<Totals> {
    let events: Vec<&str> = text
        .lines()
        .find_map(|line| line.strip_prefix("events:"))
        .context("a callgrind dump names its events")?
        .split_whitespace()
        .collect();
    let mut sums = vec![0u64; events.len()];
    for line in text.lines().filter_map(|l| l.strip_prefix("summary:")) {
        for (sum, count) in sums.iter_mut().zip(line.split_whitespace()) {
            *sum += count.parse::<u64>()?;
        }
    }
    let total = |event: &str| events.iter().position(|e| *e == event).map(|i| sums[i]);
    let misses: Option<Vec<u64>> = ["ILmr", "DLmr", "DLmw"].into_iter().map(total).collect();
    Ok(Totals {
        instructions: total("Ir").context("a callgrind dump counts instructions")?,
        last_level_misses: misses.map(|m| m.iter().sum()),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_warms_up_until_every_user_is_past_the_client_bound() {
        let bound = presence_server::config::Config::default().max_clients_per_user as u64;
        assert_eq!(c_warmup(1_000, 300), 1_000 * (bound + 1));
        assert_eq!(c_warmup(2, 300), 300, "never fewer than asked");
    }

    #[test]
    fn totals_sum_every_threads_summary_by_event() {
        let plain = "events: Ir\nsummary: 100\nfn=x\nsummary: 20\n";
        let totals = parse_totals(plain).unwrap();
        assert_eq!(totals.instructions, 120);
        assert_eq!(totals.last_level_misses, None);
        let simulated = "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n\
                         summary: 1000 10 10 5 5 5 1 2 3\n\
                         summary: 500 0 0 0 0 0 0 4 0\n";
        let totals = parse_totals(simulated).unwrap();
        assert_eq!(totals.instructions, 1500);
        assert_eq!(totals.last_level_misses, Some(10));
    }
}
