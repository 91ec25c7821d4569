//! `cargo xtask soak [--minutes N]`: a long run of mixed load against a
//! release build of the server, on loopback, with attacks mixed in.
//!
//! It builds the release binary, creates a realm and users in a temporary
//! data directory, starts the server with tight limits, and for N minutes
//! (10 by default) drives:
//!
//! - writers: presence reports over keep-alive connections, each
//!   acknowledged report noted with the time it was sent;
//! - readers: the realm-wide and single-user reads and the full POST;
//! - slow clients: connections that send their headers a byte at a time,
//!   which the server must cut off;
//! - every minute, a burst of bad requests (garbage, oversized bodies,
//!   long URLs, huge headers, bad credentials, unknown paths, bodies that
//!   never arrive) and a flood of connections past the connection limit.
//!
//! It samples the server's resident memory as it goes. At the end it checks
//! that every acknowledged report is there, stops the server with SIGTERM
//! (it must exit 0), starts it again and checks once more. It exits non-zero
//! if the server died, lost an acknowledged report, or grew its memory.
//! Only std is used: the load generator speaks HTTP/1.1 over `TcpStream`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::workspace_root;
use client::{Connection, base64, get, post};

mod client;

const USERS: usize = 40;
const CLIENTS_PER_USER: usize = 4;
const WRITERS: usize = 4;
const READERS: usize = 2;
const SLOW_CLIENTS: usize = 16;
const MAX_CONNECTIONS: usize = 128;
/// Requests per second each writer and reader aims at: enough to keep the
/// server busy, not so much that a shared two-core machine is swamped.
const PACE_PER_THREAD: u32 = 60;
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
const BURST_EVERY: Duration = Duration::from_secs(60);

/// Runs the soak; `args` are what follows `soak` on the command line.
pub fn run(args: &[&str]) -> Result<(), String> {
    let minutes: f64 = match args {
        [] => 10.0,
        ["--minutes", n] => n
            .parse()
            .ok()
            .filter(|m: &f64| *m > 0.0 && *m <= 24.0 * 60.0)
            .ok_or_else(|| format!("--minutes wants a number of minutes, not {n:?}"))?,
        _ => return Err("usage: cargo xtask soak [--minutes N]".to_owned()),
    };
    let binary = build_release()?;
    let dir = std::env::temp_dir().join(format!("presence-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = soak(&binary, &dir, Duration::from_secs_f64(minutes * 60.0));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn build_release() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("building the release server...");
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--release", "--quiet", "-p", "presence-server"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("the release build failed".to_owned());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("release").join("presence-server"))
}

/// A user of the soak realm.
#[derive(Clone)]
struct User {
    email: String,
    auth: String,
}

fn admin(binary: &Path, dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(binary)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("PRESENCE_CONFIG")
        .output()
        .map_err(|e| format!("cannot run the server binary: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The running server.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(binary: &Path, dir: &Path) -> Result<Server, String> {
        let log = dir.join(format!("server-{}.log", now_secs() as u64));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot log: {e}"))?;
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--rate-limit", "off"])
            .args(["--ip-rate-limit", "100/60"])
            .args(["--presence-update-min-freq-secs", "1"])
            .args(["--header-read-timeout-secs", "5"])
            .args(["--keep-alive-timeout-secs", "10"])
            .args(["--request-timeout-secs", "10"])
            .args(["--max-connections", &MAX_CONNECTIONS.to_string()])
            // The default level: one line per request, as in production.
            .env("RUST_LOG", "info")
            .env_remove("PRESENCE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut server = Server {
            child,
            address: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on http://").nth(1) {
                server.address = rest.split_whitespace().next().unwrap_or("").to_owned();
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("the server exited at start ({status}):\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the server did not say where it listens".to_owned())
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A line of `/proc/PID/status`, in KiB (Linux only; `None` elsewhere).
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Resident memory in all.
    fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS")
    }

    /// Resident memory that is not a mapped file: the heap and stacks,
    /// where a leak would show. The rest is mostly the binary's own pages,
    /// which grow as more code paths first run.
    fn anon_kib(&self) -> Option<u64> {
        self.status_kib("RssAnon")
    }

    /// SIGTERM, then waits for the exit code.
    fn stop(mut self) -> Result<i32, String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().ok_or_else(|| format!("ended by {status}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("the server did not stop within 30 s of SIGTERM".to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Never leave a server running, whatever happened.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Counters shared by the load threads.
#[derive(Default)]
struct Counters {
    writes_acked: AtomicU64,
    reads_ok: AtomicU64,
    /// Answers to good requests that were neither success nor an expected
    /// refusal, and transport failures on good requests.
    failures: AtomicU64,
    /// Good requests refused 503 (connections full during a flood).
    overloaded: AtomicU64,
    slow_cut_off: AtomicU64,
    bad_sent: AtomicU64,
    flood_refused: AtomicU64,
}

/// When each (user, client) last had a report acknowledged: the time the
/// report was sent.
type Acks = Arc<Mutex<HashMap<(usize, usize), f64>>>;

/// Sleeps so that a loop runs at about `PACE_PER_THREAD` a second.
fn pace(started: Instant, done: u64) {
    let due = started + Duration::from_secs_f64(done as f64 / f64::from(PACE_PER_THREAD));
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

fn writer(
    id: usize,
    address: String,
    users: Arc<Vec<User>>,
    acks: Acks,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let mut connection = Connection::new(&address);
    let started = Instant::now();
    let mut n: u64 = 0;
    // Each writer owns the users `u % WRITERS == id`, so one thread alone
    // reports for each (user, client) and its last acknowledged time is exact.
    let mine: Vec<usize> = (0..users.len()).filter(|u| u % WRITERS == id).collect();
    while !stop.load(Ordering::Relaxed) {
        let user = mine[(n as usize) % mine.len()];
        let client = (n as usize / mine.len()) % CLIENTS_PER_USER;
        let sent = now_secs();
        let request = post(
            "/api/v1/users/me/presence",
            &users[user].auth,
            &format!("status=active&ping_only=true&client=soak-c{client}"),
        );
        match connection.request(&request) {
            Ok(a) if a.status == 200 => {
                acks.lock().unwrap().insert((user, client), sent);
                counters.writes_acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(a) if a.status == 503 => {
                counters.overloaded.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        n += 1;
        pace(started, n);
    }
}

fn reader(address: String, users: Arc<Vec<User>>, counters: Arc<Counters>, stop: Arc<AtomicBool>) {
    let mut connection = Connection::new(&address);
    let started = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let me = &users[(n as usize * 7) % users.len()];
        let other = &users[(n as usize * 13 + 1) % users.len()];
        let request = match n % 3 {
            0 => get("/api/v1/realm/presence", &me.auth),
            1 => get(&format!("/api/v1/users/{}/presence", other.email), &me.auth),
            _ => post(
                "/api/v1/users/me/presence",
                &me.auth,
                "status=idle&client=soak-reader&last_update_id=-1",
            ),
        };
        match connection.request(&request) {
            // 400 is `No presence data` for a user no writer reached yet.
            Ok(a) if a.status == 200 || a.status == 400 => {
                counters.reads_ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(a) if a.status == 503 => {
                counters.overloaded.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        n += 1;
        pace(started, n);
    }
}

/// A client that sends a request's headers one byte every 200 ms, forever;
/// the server must cut it off, and it comes back.
fn slow_client(address: String, counters: Arc<Counters>, stop: Arc<AtomicBool>) {
    let head = b"GET /api/v1/server_settings HTTP/1.1\r\nhost: soak\r\nx-slow: ";
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(&address) else {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if stream.write_all(&[*byte]).is_err() {
                counters.slow_cut_off.fetch_add(1, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Bad requests of every kind, each on its own connection; answers are
/// read when there are any, and nothing about them is expected beyond the
/// server staying up.
fn burst(address: &str, users: &[User], counters: &Counters) {
    let auth = &users[0].auth;
    let wrong = base64(format!("{}:{}", users[0].email, "X".repeat(32)).as_bytes());
    let mut requests: Vec<Vec<u8>> = vec![
        b"\x16\x03\x01garbage that is not HTTP\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nhost: soak\r\nbad header line\r\n\r\n".to_vec(),
        get(&format!("/api/v1/users/me?pad={}", "x".repeat(20_000)), auth),
        format!("GET /api/v1/users/me HTTP/1.1\r\nhost: soak\r\nx-pad: {}\r\n\r\n", "y".repeat(100_000)).into_bytes(),
        format!(
            "POST /api/v1/users/me/presence HTTP/1.1\r\nhost: soak\r\nauthorization: Basic {auth}\r\n\
             content-length: 10000000\r\n\r\n{}",
            "z".repeat(70_000)
        )
        .into_bytes(),
        get("/api/v1/users/me", &wrong),
        b"GET /api/v1/users/me HTTP/1.1\r\nhost: soak\r\nauthorization: Bearer nope\r\n\r\n".to_vec(),
        get("/api/v1/no/such/path", auth),
        b"BREW /api/v1/users/me HTTP/1.1\r\nhost: soak\r\n\r\n".to_vec(),
        post("/api/v1/users/me/presence", auth, "status=%FF%FE&ping_only=maybe"),
        // A body that never arrives: the request deadline ends it.
        format!(
            "POST /api/v1/users/me/presence HTTP/1.1\r\nhost: soak\r\nauthorization: Basic {auth}\r\n\
             content-length: 500\r\n\r\nstatus="
        )
        .into_bytes(),
    ];
    requests = requests.into_iter().cycle().take(220).collect();
    let handles: Vec<_> = requests
        .chunks(20)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let address = address.to_owned();
            std::thread::spawn(move || {
                for raw in chunk {
                    if let Ok(mut stream) = TcpStream::connect(&address) {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
                        let _ = stream.write_all(&raw);
                        let mut sink = [0u8; 4096];
                        let _ = stream.read(&mut sink);
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
    counters.bad_sent.fetch_add(220, Ordering::Relaxed);

    // A flood of connections past the limit, each asking for something
    // small: some are served, the rest are told 503 and closed.
    let mut flood = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 64 {
        if let Ok(stream) = TcpStream::connect(address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
            flood.push(stream);
        }
    }
    for stream in &mut flood {
        let _ = stream.write_all(b"GET /api/v1/server_settings HTTP/1.1\r\nhost: soak\r\n\r\n");
    }
    for stream in flood {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_ok() && line.contains(" 503 ") {
            counters.flood_refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Checks that every acknowledged report is in the server's answers;
/// returns how many were checked.
fn verify(
    address: &str,
    users: &[User],
    acks: &HashMap<(usize, usize), f64>,
) -> Result<usize, String> {
    let mut connection = Connection::new(address);
    let mut missing = Vec::new();
    for (user_index, user) in users.iter().enumerate() {
        let answer = connection.request(&get(
            &format!("/api/v1/users/{}/presence", user.email),
            &user.auth,
        ))?;
        for client in 0..CLIENTS_PER_USER {
            let Some(&sent) = acks.get(&(user_index, client)) else {
                continue;
            };
            // With a 1 s coalescing window, the record is at most 1 s
            // older than the last report it acknowledged.
            let needed = sent.floor() as i64 - 1;
            let found = timestamp_of(&answer.body, &format!("soak-c{client}"));
            if found.is_none_or(|t| t < needed) {
                missing.push(format!(
                    "{} soak-c{client}: need >= {needed}, have {found:?}",
                    user.email
                ));
            }
        }
    }
    if missing.is_empty() {
        Ok(acks.len())
    } else {
        Err(format!("acknowledged reports missing: {missing:?}"))
    }
}

/// The `timestamp` of a client's entry in a legacy presence answer.
fn timestamp_of(body: &str, client: &str) -> Option<i64> {
    let entry = body.split(&format!("\"{client}\":{{")).nth(1)?;
    let rest = entry.split("\"timestamp\":").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn soak(binary: &Path, dir: &Path, length: Duration) -> Result<(), String> {
    let users = Arc::new(create_users(binary, dir)?);
    let mut server = Server::start(binary, dir)?;
    let address = server.address.clone();
    println!(
        "soaking http://{address} for {:.1} min: {WRITERS} writers and {READERS} readers at {PACE_PER_THREAD}/s each, \
         {SLOW_CLIENTS} slow clients, a burst of bad requests and a connection flood every {} s",
        length.as_secs_f64() / 60.0,
        BURST_EVERY.as_secs()
    );
    let mut load = Load::start(&address, &users);
    let started = Instant::now();
    let watched = watch(
        &mut server,
        &address,
        &users,
        &load.counters,
        started,
        length,
    );
    load.stop();
    let Some(mut samples) = watched.filter(|_| server.alive()) else {
        return Err("the server died during the soak".to_owned());
    };
    let rss = server.rss_kib().unwrap_or(0);
    let anon_at_end = server.anon_kib().unwrap_or(0);
    samples.push((started.elapsed().as_secs_f64() / 60.0, rss));

    let acks = load.acks.lock().unwrap().clone();
    let checked = verify(&address, &users, &acks)?;
    let exit_codes = restart_and_verify(server, binary, dir, &users, &acks)?;
    let memory = Memory::after_warm_up(&samples, rss);
    let counters = &load.counters;
    summarize(length, exit_codes, counters, &memory, anon_at_end, checked);
    judge(&memory, counters)
}

/// Creates the soak realm and its users with the admin command.
fn create_users(binary: &Path, dir: &Path) -> Result<Vec<User>, String> {
    admin(binary, dir, &["realm", "create", "soak"])?;
    let mut users = Vec::new();
    for i in 0..USERS {
        let email = format!("user{i}@soak.test");
        let key = admin(
            binary,
            dir,
            &[
                "user",
                "create",
                "--realm",
                "soak",
                "--email",
                &email,
                "--full-name",
                &format!("User {i}"),
            ],
        )?;
        users.push(User {
            auth: base64(format!("{email}:{key}").as_bytes()),
            email,
        });
    }
    Ok(users)
}

/// The load threads, and what they share.
struct Load {
    acks: Acks,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts the writers, the readers and the slow clients.
    fn start(address: &str, users: &Arc<Vec<User>>) -> Load {
        let mut load = Load {
            acks: Arc::default(),
            counters: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
        };
        for id in 0..WRITERS {
            let (address, users, acks, counters, stop) = (
                address.to_owned(),
                users.clone(),
                load.acks.clone(),
                load.counters.clone(),
                load.stop.clone(),
            );
            load.threads.push(std::thread::spawn(move || {
                writer(id, address, users, acks, counters, stop)
            }));
        }
        for _ in 0..READERS {
            let (address, users, counters, stop) = (
                address.to_owned(),
                users.clone(),
                load.counters.clone(),
                load.stop.clone(),
            );
            load.threads.push(std::thread::spawn(move || {
                reader(address, users, counters, stop)
            }));
        }
        for _ in 0..SLOW_CLIENTS {
            let (address, counters, stop) =
                (address.to_owned(), load.counters.clone(), load.stop.clone());
            load.threads.push(std::thread::spawn(move || {
                slow_client(address, counters, stop)
            }));
        }
        load
    }

    /// Tells every thread to stop, and waits for them.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Watches the server from `started` for `length`: samples its memory and
/// prints a line every `SAMPLE_EVERY`, and sends a burst of bad requests
/// and a flood every `BURST_EVERY` (the first after 5 s). The samples, as
/// (minute, RSS in KiB); `None` if the server died.
fn watch(
    server: &mut Server,
    address: &str,
    users: &[User],
    counters: &Counters,
    started: Instant,
    length: Duration,
) -> Option<Vec<(f64, u64)>> {
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut next_sample = started;
    let mut next_burst = started + Duration::from_secs(5);
    println!(
        "{:>7} {:>9} {:>9} {:>9} {:>8} {:>6} {:>6} {:>7} {:>6}",
        "minute", "rss_kib", "anon_kib", "writes", "reads", "fail", "503", "slowcut", "flood"
    );
    while started.elapsed() < length {
        if !server.alive() {
            return None;
        }
        let now = Instant::now();
        if now >= next_sample {
            let rss = server.rss_kib().unwrap_or(0);
            let anon = server.anon_kib().unwrap_or(0);
            let minute = started.elapsed().as_secs_f64() / 60.0;
            samples.push((minute, rss));
            let c = counters;
            println!(
                "{minute:>7.1} {rss:>9} {anon:>9} {:>9} {:>8} {:>6} {:>6} {:>7} {:>6}",
                c.writes_acked.load(Ordering::Relaxed),
                c.reads_ok.load(Ordering::Relaxed),
                c.failures.load(Ordering::Relaxed),
                c.overloaded.load(Ordering::Relaxed),
                c.slow_cut_off.load(Ordering::Relaxed),
                c.flood_refused.load(Ordering::Relaxed),
            );
            next_sample += SAMPLE_EVERY;
        }
        if now >= next_burst {
            burst(address, users, counters);
            next_burst += BURST_EVERY;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(samples)
}

/// Stops the server with SIGTERM (it must exit 0), starts it again on the
/// same data and checks every acknowledged report once more; the two exit
/// codes.
fn restart_and_verify(
    server: Server,
    binary: &Path,
    dir: &Path,
    users: &[User],
    acks: &HashMap<(usize, usize), f64>,
) -> Result<(i32, i32), String> {
    let code = server.stop()?;
    if code != 0 {
        return Err(format!("the server exited {code} on SIGTERM"));
    }
    let again = Server::start(binary, dir)?;
    verify(&again.address, users, acks)?;
    let code_again = again.stop()?;
    Ok((code, code_again))
}

/// Resident memory after the first minute, in KiB: caches and buffers warm
/// up in that minute, so it is left out of the judgement.
struct Memory {
    first: u64,
    last: u64,
    peak: u64,
}

impl Memory {
    /// From the samples, (minute, RSS); `rss` (the last measure) if none
    /// came after the first minute.
    fn after_warm_up(samples: &[(f64, u64)], rss: u64) -> Memory {
        let warm: Vec<u64> = samples
            .iter()
            .filter(|(m, _)| *m >= 1.0)
            .map(|(_, r)| *r)
            .collect();
        Memory {
            first: warm.first().copied().unwrap_or(rss),
            last: warm.last().copied().unwrap_or(rss),
            peak: warm.iter().copied().max().unwrap_or(rss),
        }
    }
}

/// Prints what the soak did and found.
fn summarize(
    length: Duration,
    (code, code_again): (i32, i32),
    c: &Counters,
    memory: &Memory,
    anon_at_end: u64,
    checked: usize,
) {
    let Memory { first, last, peak } = memory;
    println!("\nsoak summary ({:.1} min)", length.as_secs_f64() / 60.0);
    println!("  server stayed up: yes; SIGTERM exit codes: {code}, {code_again}");
    println!(
        "  requests: {} acknowledged writes, {} reads, {} bad requests, {} slow clients cut off, \
         {} flood connections refused 503",
        c.writes_acked.load(Ordering::Relaxed),
        c.reads_ok.load(Ordering::Relaxed),
        c.bad_sent.load(Ordering::Relaxed),
        c.slow_cut_off.load(Ordering::Relaxed),
        c.flood_refused.load(Ordering::Relaxed),
    );
    println!(
        "  good requests that failed: {}; refused 503 while the connections were full: {}",
        c.failures.load(Ordering::Relaxed),
        c.overloaded.load(Ordering::Relaxed)
    );
    println!(
        "  RSS after warm-up: first {first} KiB, last {last} KiB, peak {peak} KiB \
         (of which not file-backed at the end: {anon_at_end} KiB)"
    );
    println!(
        "  every acknowledged report present: yes ({checked} client records, before and after a restart)"
    );
}

/// The soak's verdict on what is left to judge once the server has proved
/// it stays up and keeps what it acknowledged: memory must not keep
/// growing (the last sample within 25 % of the first after warm-up), and
/// no good request may have failed.
fn judge(memory: &Memory, counters: &Counters) -> Result<(), String> {
    let Memory { first, last, .. } = *memory;
    if last > first + first / 4 + 2048 {
        return Err(format!(
            "memory grew: {first} KiB after warm-up, {last} KiB at the end"
        ));
    }
    if counters.failures.load(Ordering::Relaxed) > 0 {
        return Err("some good requests failed".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_found_by_client() {
        let body = r#"{"presence":{"aggregated":{"client":"soak-c1","status":"active","timestamp":7},"soak-c0":{"client":"soak-c0","status":"active","timestamp":5,"pushable":false},"soak-c1":{"client":"soak-c1","status":"active","timestamp":7,"pushable":false}}}"#;
        assert_eq!(timestamp_of(body, "soak-c0"), Some(5));
        assert_eq!(timestamp_of(body, "soak-c1"), Some(7));
        assert_eq!(timestamp_of(body, "soak-c2"), None);
    }
}
