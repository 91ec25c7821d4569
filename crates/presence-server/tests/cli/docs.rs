//! The code map of docs/ARCHITECTURE.md names only paths that exist, so a
//! file moved or renamed cannot leave the map behind unnoticed.

use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every path the code map names: a line's first column, nested under the
/// folder of the nearest shallower line (two spaces a level). Lines whose
/// text starts in the description column continue the line above.
fn code_map_paths() -> Vec<String> {
    let doc =
        std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let block = doc
        .split("\n## Code map\n")
        .nth(1)
        .and_then(|rest| rest.split("```\n").nth(1))
        .expect("a code block under \"Code map\"");
    let mut folders: Vec<String> = Vec::new();
    let mut paths = Vec::new();
    for line in block.lines() {
        let indent = line.len() - line.trim_start().len();
        if line.trim().is_empty() || indent >= 20 {
            continue;
        }
        let depth = indent / 2;
        folders.truncate(depth);
        let names = line
            .trim_start()
            .split("  ")
            .next()
            .expect("a first column");
        for name in names.split(", ") {
            let prefix = folders.concat();
            paths.push(format!("{prefix}{name}"));
        }
        if names.ends_with('/') {
            folders.push(names.to_owned());
        }
    }
    paths
}

#[test]
fn the_code_map_names_only_paths_that_exist() {
    let paths = code_map_paths();
    assert!(paths.len() > 40, "the map was read: {paths:?}");
    assert!(paths.contains(&"crates/presence-server/src/http/pipeline.rs".to_owned()));
    let missing: Vec<&String> = paths.iter().filter(|p| !root().join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "the code map names paths that do not exist: {missing:?}"
    );
}
