//! `export`, `import` and `migrate`: the store's long admin work, which
//! shows its progress on a terminal (and nothing when standard error is
//! not one, so scripts and logs see only the closing line).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::serve::{open_store, store_name};
use crate::config::Config;
use crate::store::Dump;
use crate::transfer;

/// A spinner saying what is being done, until it is finished.
fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A spinner that counts the bytes written through it.
fn bytes_spinner(message: &str) -> ProgressBar {
    let bar = spinner(message);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}: {bytes} ({binary_bytes_per_sec})")
            .expect("a valid template"),
    );
    bar
}

fn counts(dump: &Dump) -> String {
    format!(
        "{} realms, {} users, {} presence records, {} devices, {} embed keys",
        dump.realms.len(),
        dump.users.len(),
        dump.presence.len(),
        dump.devices.len(),
        dump.embed_keys.len()
    )
}

/// `export [--output FILE]`.
pub fn export(config: &Config, output: Option<PathBuf>) -> anyhow::Result<()> {
    let mut store = open_store(config)?;
    let reading = spinner("reading the store");
    let dump = store.export()?;
    reading.finish_and_clear();
    let writing = bytes_spinner("writing the dump");
    match output {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(writing.wrap_write(file));
            transfer::write_dump(&dump, &mut out)?;
            out.flush()?;
        }
        None => {
            let mut out = writing.wrap_write(std::io::stdout().lock());
            transfer::write_dump(&dump, &mut out)?;
        }
    }
    writing.finish_and_clear();
    eprintln!("exported {}", counts(&dump));
    Ok(())
}

/// `import FILE|-`.
pub fn import(config: &Config, file: &Path) -> anyhow::Result<()> {
    let dump = if file == Path::new("-") {
        let reading = bytes_spinner("reading the dump");
        let dump = transfer::read_dump(std::io::BufReader::new(
            reading.wrap_read(std::io::stdin().lock()),
        ))?;
        reading.finish_and_clear();
        dump
    } else {
        let opened =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
        let reading = ProgressBar::new(size).with_style(
            ProgressStyle::with_template("reading the dump {wide_bar} {bytes}/{total_bytes}")
                .expect("a valid template"),
        );
        let dump = transfer::read_dump(std::io::BufReader::new(reading.wrap_read(opened)))
            .with_context(|| format!("{} is not a valid dump", file.display()))?;
        reading.finish_and_clear();
        dump
    };
    let mut store = open_store(config)?;
    let writing = spinner(&format!("adding {} in one transaction", counts(&dump)));
    store.import(&dump)?;
    writing.set_message("waiting for running servers to take it");
    super::manage::applied(store.as_mut())?;
    writing.finish_and_clear();
    eprintln!("imported {}", counts(&dump));
    Ok(())
}

/// `migrate`: opening the store brings its schema up to date.
pub fn migrate(config: &Config) -> anyhow::Result<()> {
    let migrating = spinner("bringing the schema up to date");
    open_store(config)?;
    migrating.finish_and_clear();
    eprintln!("the schema of {} is up to date", store_name(config));
    Ok(())
}
