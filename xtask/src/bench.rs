//! `cargo xtask bench [--] [ARGS...]`: builds the server and the benchmark
//! in release mode and runs `presence-bench run ARGS...`, which prints the
//! table of BENCHMARKS.md. `--database-url URL` (or the environment's
//! `PRESENCE_BENCH_DATABASE_URL`), `--nodes N` and `--stores` reach it
//! unchanged, so the same command measures the PostgreSQL store, and
//! `--instructions` counts instructions per request under callgrind.

use std::process::Command;

use crate::workspace_root;

/// Builds, then runs the benchmark with `args` passed through (after a
/// leading `--`, if any, which is the usual way to say "these are not
/// xtask's").
pub fn run(args: &[&str]) -> Result<(), String> {
    let args = args.strip_prefix(&["--"]).unwrap_or(args);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root();
    let built = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--package",
            "presence-server",
            "--package",
            "presence-bench",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !built.success() {
        return Err("the release build failed".to_owned());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let status = Command::new(target.join("release/presence-bench"))
        .current_dir(&root)
        .arg("run")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run presence-bench: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("the benchmark failed".to_owned())
    }
}
