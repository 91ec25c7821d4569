//! `cargo xtask openapi [--check]`: the committed spec is generated, never
//! hand-edited, and a stale one is caught.

use std::process::Command;

use crate::workspace_root;

/// Where the spec is committed, relative to the workspace root.
const SPEC: &str = "openapi/presence.json";

/// The spec as the code generates it, from `presence-server openapi`.
fn generate() -> Result<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "run",
            "--quiet",
            "--package",
            "presence-server",
            "--",
            "openapi",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`presence-server openapi` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "the spec is not UTF-8".to_owned())
}

/// Writes the generated spec.
pub fn write() -> Result<(), String> {
    let spec = generate()?;
    let path = workspace_root().join(SPEC);
    std::fs::write(&path, spec).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {SPEC}");
    Ok(())
}

/// Fails with a summary of the differences if the committed spec is stale.
pub fn check() -> Result<(), String> {
    let generated = generate()?;
    let path = workspace_root().join(SPEC);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        println!("{SPEC} is up to date");
        return Ok(());
    }
    Err(format!(
        "{SPEC} is stale.\n{}\nRun `cargo xtask openapi` and commit the result.",
        diff_summary(&committed, &generated)
    ))
}

/// The first few lines that differ, and how many do.
fn diff_summary(committed: &str, generated: &str) -> String {
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let mut out = String::new();
    let mut differing = 0;
    for i in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(i), new.get(i));
        if a != b {
            differing += 1;
            if differing <= 5 {
                out.push_str(&format!(
                    "  line {}:\n    committed: {}\n    generated: {}\n",
                    i + 1,
                    a.unwrap_or(&"(none)").trim(),
                    b.unwrap_or(&"(none)").trim()
                ));
            }
        }
    }
    format!(
        "{differing} line(s) differ (committed {} lines, generated {}):\n{out}",
        old.len(),
        new.len()
    )
}

#[cfg(test)]
mod tests {
    use super::diff_summary;

    #[test]
    fn the_summary_names_the_differing_lines() {
        let summary = diff_summary("a\nb\nc\n", "a\nX\nc\nd\n");
        assert!(summary.starts_with("2 line(s) differ"), "{summary}");
        assert!(summary.contains("line 2:"), "{summary}");
        assert!(summary.contains("generated: X"), "{summary}");
        assert!(summary.contains("line 4:"), "{summary}");
    }
}
