//! `serve`: opening the store, loading it, serving until SIGTERM or
//! Ctrl-C, and committing what the writer holds before exiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::server::{Server, StartError};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// Opens the store the configuration names (applying schema migrations).
pub fn open_store(config: &Config) -> anyhow::Result<Box<dyn Store>> {
    open(config).with_context(|| format!("cannot open the store {}", store_name(config)))
}

fn open(config: &Config) -> Result<Box<dyn Store>, StoreError> {
    match &config.database_url {
        Some(url) => PgStore::open(url).map(|store| Box::new(store) as Box<dyn Store>),
        None => SqliteStore::open(&config.data_dir).map(|store| Box::new(store) as Box<dyn Store>),
    }
}

/// The store a configuration names, for messages: a database URL without
/// its password, or the SQLite file.
pub fn store_name(config: &Config) -> String {
    match &config.database_url {
        Some(url) => redact_password(url),
        None => config
            .data_dir
            .join(crate::store::sqlite::DATABASE_FILE)
            .display()
            .to_string(),
    }
}

/// The least time the writer gets to commit what it holds at shutdown,
/// even when the connections used up the whole grace period.
const MIN_FLUSH_TIME: Duration = Duration::from_secs(1);

/// `serve`: runs the server until SIGTERM or Ctrl-C.
pub fn serve_command(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The delay is spent serving; the grace for draining follows it.
    let grace = Duration::from_secs_f64(config.shutdown_delay_secs)
        + Duration::from_secs_f64(config.shutdown_grace_secs);
    let result = runtime.block_on(async {
        let loading = Instant::now();
        let opening = config.clone();
        let server = Server::load(&config, Arc::new(SystemClock), move || {
            let mut store = open(&opening)?;
            store.set_durability(opening.durability)?;
            tracing::info!(
                database = %store_name(&opening),
                durability = %opening.durability,
                "store opened"
            );
            Ok(store)
        })
        .await
        .map_err(|e| match e {
            StartError::Open(e) => anyhow::Error::new(e)
                .context(format!("cannot open the store {}", store_name(&config))),
            other => other.into(),
        })?;
        tracing::info!(
            millis = loading.elapsed().as_millis() as u64,
            "state loaded into memory"
        );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        // Taken over before anyone can know the address: a SIGTERM that
        // comes as soon as the server answers must stop it gracefully, not
        // kill it.
        let shutdown = shutdown_signal()?;
        let server = Arc::new(server);
        if server.is_https() {
            reload_on_hangup(server.clone())?;
        }
        let scheme = if server.is_https() { "https" } else { "http" };
        tracing::info!(%address, "listening on {scheme}://{address}");
        let signalled = Arc::new(std::sync::OnceLock::new());
        let noted = signalled.clone();
        server
            .serve(listener, async move {
                shutdown.await;
                let _ = noted.set(Instant::now());
            })
            .await;
        // Commit whatever the writer still holds, within what is left of
        // the grace period (and at least a second).
        let started = signalled.get().copied().unwrap_or_else(Instant::now);
        let left = (started + grace)
            .saturating_duration_since(Instant::now())
            .max(MIN_FLUSH_TIME);
        if server.close(left).await {
            tracing::info!("stopped");
        } else {
            tracing::warn!("the store did not finish its last commit in time; stopping without it");
        }
        Ok(())
    });
    // Tasks still running are connections being cut off; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Reads the certificate and key again at every SIGHUP, for as long as the
/// runtime runs; a reload that fails is logged and changes nothing.
#[cfg(unix)]
fn reload_on_hangup(server: Arc<Server>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match server.reload_tls() {
                Some(Ok(())) => tracing::info!("TLS certificate reloaded"),
                Some(Err(e)) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays");
                }
                None => {}
            }
        }
    });
    Ok(())
}

/// Without SIGHUP, the certificate is read at start only.
#[cfg(not(unix))]
fn reload_on_hangup(_server: Arc<Server>) -> std::io::Result<()> {
    Ok(())
}

/// Takes over SIGINT (Ctrl-C) and SIGTERM at once, and returns a future
/// that completes on the first of them.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down");
    })
}

/// Returns a future that completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}

/// A connection string without its password, for logs and messages: the
/// part between `user:` and `@` of a URL, or the value of `password=`.
fn redact_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            return format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]);
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/presence?sslmode=disable"),
            "postgres://app:***@db:5432/presence?sslmode=disable"
        );
        assert_eq!(
            redact_password("postgres://app@db/presence"),
            "postgres://app@db/presence"
        );
        assert_eq!(
            redact_password("host=db user=app password=s3cret dbname=presence"),
            "host=db user=app password=*** dbname=presence"
        );
    }
}
