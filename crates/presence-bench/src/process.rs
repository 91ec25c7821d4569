//! Server processes under measurement: start, find the address in the log,
//! read CPU time and resident memory from `/proc`, stop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running server process, killed when dropped.
pub struct Process {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// From spawning to the address line in the log.
    pub startup: Duration,
}

/// How much a server under measurement logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Warnings, and the line that says where it listens: no line per
    /// request (`RUST_LOG` from the environment overrides it, and the log
    /// is then passed through: a way to look inside a slow scenario).
    Quiet,
    /// The server's own default: a line per request.
    Default,
}

impl Process {
    /// Spawns `program args...` and waits (up to `limit`) for `listening on http://ADDR`.
    pub fn start(program: &Path, args: &[String], limit: Duration) -> anyhow::Result<Process> {
        Process::start_logging(program, args, limit, LogLevel::Quiet, &[])
    }

    /// [`Process::start`], logging as `log` says, with the variables of
    /// `env` set.
    pub fn start_logging(
        program: &Path,
        args: &[String],
        limit: Duration,
        log: LogLevel,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Process> {
        let started = Instant::now();
        let passthrough = std::env::var_os("RUST_LOG").is_some();
        let mut command = Command::new(program);
        command.envs(env.iter().copied());
        match log {
            LogLevel::Quiet => {
                let filter = std::env::var("RUST_LOG")
                    .unwrap_or_else(|_| "warn,presence_server::cli=info".to_owned());
                command.env("RUST_LOG", filter);
            }
            LogLevel::Default => {
                command.env_remove("RUST_LOG");
            }
        }
        let mut child = command
            .args(args)
            // The store is chosen by the flags alone, so that a run labelled
            // `sqlite` cannot quietly use a database named in the environment.
            .env_remove("PRESENCE_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if passthrough {
                    eprintln!("{line}");
                }
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(address);
                }
            }
        });
        let address = match rx.recv_timeout(limit) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "{} did not report its address within {limit:?}",
                    program.display()
                );
            }
        };
        Ok(Process {
            child,
            address,
            startup: started.elapsed(),
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time so far, in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds_of(self.child.id())
    }

    /// Resident memory, in bytes.
    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS line")?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("no VmRSS value")?
            .parse()?;
        Ok(kib * 1024)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU time so far of the process `pid` (on this
/// machine), in seconds.
pub fn cpu_seconds_of(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th fields of the whole line.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("a short stat line")?.parse::<f64>()?)
    };
    Ok((field(11)? + field(12)?) / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
