//! One way to run a server, used by the binary and by every test harness:
//! load a store into memory ([`Server::load`]), serve a bound listener
//! until a shutdown future completes ([`Server::serve`]), then commit what
//! the writer holds ([`Server::close`]).
//!
//! The caller owns the listener, the store's opening, the clock and the
//! shutdown signal, so a test can bind port 0, wrap its store, move time by
//! hand and stop the server when it likes, through the same code the
//! binary runs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::routes::{Endpoint, METHOD_LABELS};
use crate::http::tls::{Tls, TlsError};
use crate::http::{App, serve};
use crate::metrics::Metrics;
use crate::service::{self, Service};
use crate::store::{Store, StoreError};

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error(transparent)]
    Open(StoreError),
    /// The store opened, but loading it into memory failed.
    #[error("cannot load the store: {0}")]
    Load(StoreError),
    /// The state loaded, but the writer thread could not be started.
    #[error("cannot start the writer thread")]
    Writer(#[source] std::io::Error),
    /// The thread that opens and loads the store ended without a word.
    #[error("the thread loading the store failed")]
    Thread,
    /// HTTPS was asked for, and its certificate or key cannot be used.
    #[error(transparent)]
    Tls(TlsError),
}

/// A server whose state is loaded: ready to serve.
pub struct Server {
    service: Arc<Service>,
    app: Arc<App>,
    /// HTTPS's certificate, when the configuration names one.
    tls: Option<Tls>,
}

impl Server {
    /// Opens the store with `open` and loads it into memory, both on a
    /// blocking thread: stores block, and PostgreSQL's client runs a
    /// runtime of its own, which an async worker must not start.
    pub async fn load(
        config: &Config,
        clock: SharedClock,
        open: impl FnOnce() -> Result<Box<dyn Store>, StoreError> + Send + 'static,
    ) -> Result<Server, StartError> {
        // Read first: a bad certificate is refused before the store is opened.
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::load(cert, key).map_err(StartError::Tls)?),
            _ => None,
        };
        let starting = config.clone();
        let metrics = Arc::new(Metrics::new(Endpoint::labels(), &METHOD_LABELS));
        let service = tokio::task::spawn_blocking(move || {
            let store = open().map_err(StartError::Open)?;
            Service::start(store, &starting, clock, metrics).map_err(|e| match e {
                service::StartError::Store(e) => StartError::Load(e),
                service::StartError::WriterThread(e) => StartError::Writer(e),
            })
        })
        .await
        .map_err(|_| StartError::Thread)??;
        let service = Arc::new(service);
        let app = Arc::new(App::new(service.clone(), config));
        Ok(Server { service, app, tls })
    }

    /// The service: what tests look at beside HTTP answers.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Whether the server speaks HTTPS.
    pub fn is_https(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads the certificate and key files again (see [`Tls::reload`]);
    /// `None` for a server without HTTPS.
    pub fn reload_tls(&self) -> Option<Result<(), TlsError>> {
        self.tls.as_ref().map(Tls::reload)
    }

    /// Serves `listener` until `shutdown` completes and the connections
    /// have drained (see [`crate::http::serve`]). The state stays loaded:
    /// [`Server::close`] commits it.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        serve(listener, self.app.clone(), self.tls.clone(), shutdown).await;
    }

    /// Stops the writer after it has committed what it holds, waiting at
    /// most `within`; whether it finished. A writer stuck on a locked store
    /// is left behind: what it has not committed was never acknowledged.
    pub async fn close(&self, within: Duration) -> bool {
        let service = self.service.clone();
        let (done, closed) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            service.close();
            let _ = done.send(());
        });
        tokio::time::timeout(within, closed).await.is_ok()
    }
}
