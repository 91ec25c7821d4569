//! The `presence-server` command line: `serve` (the default) and the admin
//! commands. Its flags, outputs and exit codes are a contract for scripts:
//! `user create` and `user reset-key` print the key and nothing else on
//! standard output; every failure is one line on standard error and a
//! non-zero exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::admin;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, RateLimit};
use crate::http::{App, serve};
use crate::service::Service;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::transfer;

/// A Zulip-compatible presence server.
#[derive(Debug, Parser)]
#[command(name = "presence-server", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Options every command accepts, before or after its name. Each overrides
/// the config file, which overrides the defaults.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Directory of the embedded database (created on first use).
    #[arg(long, global = true, env = "PRESENCE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL at this URL instead of the embedded database, e.g.
    /// `postgres://presence@db.internal/presence` (several nodes may share it).
    #[arg(long, global = true, env = "PRESENCE_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// A TOML file of settings (same names as the flags, with underscores).
    #[arg(long, global = true, env = "PRESENCE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9991].
    #[arg(long, global = true, env = "PRESENCE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Seconds without a report after which a user is offline [default: 200].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_OFFLINE_THRESHOLD_SECS",
        value_name = "N"
    )]
    offline_threshold_secs: Option<i64>,
    /// Reports closer together than this many seconds are coalesced [default: 55].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_UPDATE_MIN_FREQ_SECS",
        value_name = "N"
    )]
    presence_update_min_freq_secs: Option<i64>,
    /// Ping interval advertised to clients, in seconds [default: 60].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_PING_INTERVAL_SECS",
        value_name = "N"
    )]
    ping_interval_secs: Option<i64>,
    /// Default history window of realm-wide answers, in days [default: 14].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_HISTORY_LIMIT_DAYS",
        value_name = "N"
    )]
    history_limit_days: Option<i64>,
    /// Per-user rate limit, `REQUESTS/SECONDS` or `off` [default: 200/60].
    #[arg(long, global = true, env = "PRESENCE_RATE_LIMIT", value_name = "RULE")]
    rate_limit: Option<RateLimit>,
    /// Per-address limit on requests that are not authenticated, `REQUESTS/SECONDS` or `off` [default: 100/60].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_IP_RATE_LIMIT",
        value_name = "RULE"
    )]
    ip_rate_limit: Option<RateLimit>,
    /// Limit per embed key, shared by every page using it, `REQUESTS/SECONDS` or `off` [default: 6000/60].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_EMBED_RATE_LIMIT",
        value_name = "RULE"
    )]
    embed_rate_limit: Option<RateLimit>,
    /// Client records kept per user [default: 32].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_CLIENTS_PER_USER",
        value_name = "N"
    )]
    max_clients_per_user: Option<usize>,
    /// Push devices one user may register [default: 32].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_DEVICES_PER_USER",
        value_name = "N"
    )]
    max_devices_per_user: Option<usize>,
    /// Largest request body accepted, in bytes [default: 65536].
    #[arg(long, global = true, env = "PRESENCE_MAX_BODY_BYTES", value_name = "N")]
    max_body_bytes: Option<usize>,
    /// Longest request target (path and query) accepted, in bytes [default: 8192].
    #[arg(long, global = true, env = "PRESENCE_MAX_URL_BYTES", value_name = "N")]
    max_url_bytes: Option<usize>,
    /// Most bytes of request headers accepted [default: 16384].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_HEADER_BYTES",
        value_name = "N"
    )]
    max_header_bytes: Option<usize>,
    /// Most connections open at once [default: 1024].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_CONNECTIONS",
        value_name = "N"
    )]
    max_connections: Option<usize>,
    /// Most connections open at once from one address (IPv6: one /64) [default: 256].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_CONNECTIONS_PER_IP",
        value_name = "N"
    )]
    max_connections_per_ip: Option<usize>,
    /// Seconds a client has to send a request's headers [default: 30].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_HEADER_READ_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    header_read_timeout_secs: Option<f64>,
    /// Seconds an idle keep-alive connection stays open [default: 75].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_KEEP_ALIVE_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    keep_alive_timeout_secs: Option<f64>,
    /// Seconds a request may take, body included, before it is answered 503 [default: 30].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_REQUEST_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    request_timeout_secs: Option<f64>,
    /// Seconds in-flight requests get to finish on SIGTERM or Ctrl-C [default: 10].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_SHUTDOWN_GRACE_SECS",
        value_name = "SECS"
    )]
    shutdown_grace_secs: Option<f64>,
    /// Seconds without a poll after which an event queue is dropped [default: 600].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_EVENT_QUEUE_TIMEOUT_SECS",
        value_name = "N"
    )]
    event_queue_timeout_secs: Option<i64>,
    /// Milliseconds a waiting GET /events lasts before a heartbeat event [default: 50000].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_EVENT_HEARTBEAT_MS",
        value_name = "N"
    )]
    event_heartbeat_ms: Option<u64>,
    /// Milliseconds of silence before a presence stream's keep-alive comment [default: 15000].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_EVENT_STREAM_KEEPALIVE_MS",
        value_name = "N"
    )]
    event_stream_keepalive_ms: Option<u64>,
    /// Milliseconds after which a presence stream is ended for the client
    /// to resume, 0 for never [default: 1800000].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_EVENT_STREAM_MAX_MS",
        value_name = "N"
    )]
    event_stream_max_ms: Option<u64>,
    /// Event queues one user may hold [default: 32].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_QUEUES_PER_USER",
        value_name = "N"
    )]
    max_queues_per_user: Option<usize>,
    /// Presence streams one user may have open at once [default: 16].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_STREAMS_PER_USER",
        value_name = "N"
    )]
    max_streams_per_user: Option<usize>,
    /// Events one queue may hold before it is dropped [default: 1000].
    #[arg(
        long,
        global = true,
        env = "PRESENCE_MAX_EVENTS_PER_QUEUE",
        value_name = "N"
    )]
    max_events_per_queue: Option<usize>,
}

impl GlobalArgs {
    /// Defaults, then the config file, then these flags and variables.
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        macro_rules! apply {
            ($($field:ident),*) => {
                $(if let Some(value) = self.$field.clone() { config.$field = value; })*
            };
        }
        if let Some(url) = &self.database_url {
            config.database_url = Some(url.clone());
        }
        apply!(
            data_dir,
            listen,
            offline_threshold_secs,
            presence_update_min_freq_secs,
            ping_interval_secs,
            history_limit_days,
            rate_limit,
            ip_rate_limit,
            embed_rate_limit,
            max_clients_per_user,
            max_devices_per_user,
            max_body_bytes,
            max_url_bytes,
            max_header_bytes,
            max_connections,
            max_connections_per_ip,
            header_read_timeout_secs,
            keep_alive_timeout_secs,
            request_timeout_secs,
            shutdown_grace_secs,
            event_queue_timeout_secs,
            event_heartbeat_ms,
            event_stream_keepalive_ms,
            event_stream_max_ms,
            max_queues_per_user,
            max_streams_per_user,
            max_events_per_queue
        );
        config.validate()?;
        Ok(config)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve,
    /// Manage realms (organizations).
    #[command(subcommand)]
    Realm(RealmCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage embed keys: read-only keys for web pages (see README).
    #[command(subcommand)]
    EmbedKey(EmbedKeyCommand),
    /// Print the OpenAPI document of the API (JSON) on standard output.
    Openapi,
    /// Bring the database's schema up to date and exit (every start does
    /// this too; safe while other nodes start or run).
    Migrate,
    /// Write everything in the store (ids kept, keys hashed) as JSON Lines.
    Export {
        /// The file to write [default: standard output].
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add everything in a dump to the store, in one transaction. Meant for
    /// a new store; running servers pick up what it adds.
    Import {
        /// The dump to read, or `-` for standard input.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RealmCommand {
    /// Create a realm.
    Create {
        /// Its short unique id: lower-case letters, digits and dashes.
        string_id: String,
        /// Its display name [default: the id].
        #[arg(long)]
        name: Option<String>,
    },
    /// Deactivate a realm: nobody of it can log in any more.
    Deactivate {
        /// The realm's id.
        string_id: String,
    },
    /// Change a realm's settings.
    Set {
        /// The realm's id.
        string_id: String,
        /// Turn presence off (nothing stored or shown) or back on.
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
        presence_disabled: bool,
    },
}

#[derive(Debug, Args)]
struct UserRef {
    /// The realm's id.
    #[arg(long)]
    realm: String,
    /// The user's email.
    #[arg(long)]
    email: String,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user and print its API key.
    Create {
        /// The realm's id.
        #[arg(long)]
        realm: String,
        /// The user's email (unique within the realm).
        #[arg(long)]
        email: String,
        /// The user's name.
        #[arg(long)]
        full_name: String,
        /// Make a bot: it may read presence but has none.
        #[arg(long)]
        bot: bool,
    },
    /// Deactivate a user: the key stops working and the user leaves presence.
    Deactivate(UserRef),
    /// Reactivate a deactivated user.
    Reactivate(UserRef),
    /// List a realm's users, one per line, tab-separated.
    List {
        /// The realm's id.
        #[arg(long)]
        realm: String,
    },
    /// Give a user a new API key and print it; the old key stops working.
    ResetKey(UserRef),
}

#[derive(Debug, Subcommand)]
enum EmbedKeyCommand {
    /// Create a key for the pages on the given origins and print it.
    Create {
        /// The realm's id.
        #[arg(long)]
        realm: String,
        /// The key's name (unique among the realm's keys).
        #[arg(long)]
        name: String,
        /// An origin whose pages may use the key, e.g.
        /// `https://intranet.example.com` (repeat for more).
        #[arg(long = "origin", value_name = "ORIGIN", required = true)]
        origins: Vec<String>,
    },
    /// List a realm's keys (never the keys themselves), tab-separated.
    List {
        /// The realm's id.
        #[arg(long)]
        realm: String,
    },
    /// Revoke a key: pages using it stop working at once.
    Revoke {
        /// The realm's id.
        #[arg(long)]
        realm: String,
        /// The key's name.
        #[arg(long)]
        name: String,
    },
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.global.config()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve_command(config),
        Command::Realm(command) => realm_command(&config, command),
        Command::User(command) => user_command(&config, command),
        Command::EmbedKey(command) => embed_key_command(&config, command),
        Command::Openapi => {
            print!("{}", crate::openapi::document_json());
            Ok(())
        }
        Command::Migrate => {
            open_store(&config)?;
            eprintln!("the schema of {} is up to date", store_name(&config));
            Ok(())
        }
        Command::Export { output } => export_command(&config, output),
        Command::Import { file } => import_command(&config, &file),
    }
}

/// Opens the store the configuration names (applying schema migrations).
fn open_store(config: &Config) -> anyhow::Result<Box<dyn Store>> {
    let opened: Result<Box<dyn Store>, StoreError> = match &config.database_url {
        Some(url) => PgStore::open(url).map(|store| Box::new(store) as Box<dyn Store>),
        None => SqliteStore::open(&config.data_dir).map(|store| Box::new(store) as Box<dyn Store>),
    };
    opened.with_context(|| format!("cannot open the store {}", store_name(config)))
}

/// The store a configuration names, for messages: a database URL without
/// its password, or the SQLite file.
fn store_name(config: &Config) -> String {
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

fn serve_command(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let grace = Duration::from_secs_f64(config.shutdown_grace_secs);
    let result = runtime.block_on(async {
        // Stores block (PostgreSQL's client runs a runtime of its own), so
        // opening and loading happen off the async workers.
        let loading = std::time::Instant::now();
        let opening = config.clone();
        let service = tokio::task::spawn_blocking(move || {
            let store = open_store(&opening)?;
            tracing::info!(database = %store_name(&opening), "store opened");
            anyhow::Ok(Service::start(store, &opening, Arc::new(SystemClock))?)
        })
        .await
        .context("the loading thread failed")??;
        let service = Arc::new(service);
        tracing::info!(
            millis = loading.elapsed().as_millis() as u64,
            "state loaded into memory"
        );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "listening on http://{address}");
        let app = Arc::new(App::new(service.clone(), &config));
        let signalled = Arc::new(std::sync::OnceLock::new());
        let noted = signalled.clone();
        serve(listener, app, async move {
            shutdown_signal().await;
            let _ = noted.set(Instant::now());
        })
        .await;
        // Commit whatever the writer still holds, within what is left of
        // the grace period. A writer stuck on a locked store is left
        // behind: what it has not committed was never acknowledged.
        let started = signalled.get().copied().unwrap_or_else(Instant::now);
        let left = (started + grace)
            .saturating_duration_since(Instant::now())
            .max(MIN_FLUSH_TIME);
        let (done, flushed) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            service.close();
            let _ = done.send(());
        });
        match tokio::time::timeout(left, flushed).await {
            Ok(_) => tracing::info!("stopped"),
            Err(_) => tracing::warn!(
                "the store did not finish its last commit in time; stopping without it"
            ),
        }
        Ok(())
    });
    // Tasks still running are connections being cut off; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
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

fn export_command(config: &Config, output: Option<PathBuf>) -> anyhow::Result<()> {
    let dump = open_store(config)?.export()?;
    match output {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            transfer::write_dump(&dump, &mut std::io::BufWriter::new(file))?;
        }
        None => transfer::write_dump(&dump, &mut std::io::stdout().lock())?,
    }
    eprintln!(
        "exported {} realms, {} users, {} presence records, {} devices",
        dump.realms.len(),
        dump.users.len(),
        dump.presence.len(),
        dump.devices.len()
    );
    Ok(())
}

fn import_command(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let dump = if file == std::path::Path::new("-") {
        transfer::read_dump(std::io::stdin().lock())?
    } else {
        let opened =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        transfer::read_dump(std::io::BufReader::new(opened))
            .with_context(|| format!("{} is not a valid dump", file.display()))?
    };
    let mut store = open_store(config)?;
    store.import(&dump)?;
    applied(store.as_mut())?;
    eprintln!(
        "imported {} realms, {} users, {} presence records, {} devices",
        dump.realms.len(),
        dump.users.len(),
        dump.presence.len(),
        dump.devices.len()
    );
    Ok(())
}

fn now() -> i64 {
    SystemClock.now_secs()
}

/// Waits until the running servers have installed what the command just
/// changed; says so on standard error if some did not in time.
fn applied(store: &mut dyn Store) -> anyhow::Result<()> {
    let lagging = admin::wait_until_applied(store, now, admin::APPLY_WAIT)?;
    if !lagging.is_empty() {
        eprintln!(
            "warning: {} running server node(s) ({}) did not confirm the change within {} s; \
             they will apply it when they catch up",
            lagging.len(),
            lagging.join(", "),
            admin::APPLY_WAIT.as_secs()
        );
    }
    Ok(())
}

fn realm_command(config: &Config, command: RealmCommand) -> anyhow::Result<()> {
    let mut store = open_store(config)?;
    match command {
        RealmCommand::Create { string_id, name } => {
            let realm = admin::create_realm(store.as_mut(), &string_id, name.as_deref(), now())?;
            applied(store.as_mut())?;
            eprintln!("created realm {} ({})", realm.string_id, realm.name);
        }
        RealmCommand::Deactivate { string_id } => {
            store.set_realm_deactivated(&string_id, true)?;
            applied(store.as_mut())?;
            eprintln!("deactivated realm {string_id}");
        }
        RealmCommand::Set {
            string_id,
            presence_disabled,
        } => {
            store.set_realm_presence_disabled(&string_id, presence_disabled)?;
            applied(store.as_mut())?;
            eprintln!("realm {string_id}: presence_disabled = {presence_disabled}");
        }
    }
    Ok(())
}

fn user_command(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let mut store = open_store(config)?;
    match command {
        UserCommand::Create {
            realm,
            email,
            full_name,
            bot,
        } => {
            let (_, key) =
                admin::create_user(store.as_mut(), &realm, &email, &full_name, bot, now())?;
            applied(store.as_mut())?;
            println!("{key}");
        }
        UserCommand::Deactivate(user) => {
            store.set_user_active(&user.realm, &user.email, false)?;
            applied(store.as_mut())?;
            eprintln!("deactivated {}", user.email);
        }
        UserCommand::Reactivate(user) => {
            store.set_user_active(&user.realm, &user.email, true)?;
            applied(store.as_mut())?;
            eprintln!("reactivated {}", user.email);
        }
        UserCommand::List { realm } => {
            println!("user_id\temail\tfull_name\tis_bot\tis_active");
            for user in store.list_users(&realm)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    user.id, user.email, user.full_name, user.is_bot, user.is_active
                );
            }
        }
        UserCommand::ResetKey(user) => {
            let key = admin::reset_key(store.as_mut(), &user.realm, &user.email)?;
            applied(store.as_mut())?;
            println!("{key}");
        }
    }
    Ok(())
}

fn embed_key_command(config: &Config, command: EmbedKeyCommand) -> anyhow::Result<()> {
    let mut store = open_store(config)?;
    match command {
        EmbedKeyCommand::Create {
            realm,
            name,
            origins,
        } => {
            let (_, key) = admin::create_embed_key(store.as_mut(), &realm, &name, &origins, now())?;
            applied(store.as_mut())?;
            println!("{key}");
        }
        EmbedKeyCommand::List { realm } => {
            println!("name\torigins\tcreated\tlast_used\trevoked");
            let time = |t: Option<i64>| t.map(crate::service::iso8601).unwrap_or_default();
            for key in store.list_embed_keys(&realm)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    key.name,
                    key.origins.join(" "),
                    time(Some(key.created_at)),
                    time(key.last_used_at),
                    time(key.revoked_at)
                );
            }
        }
        EmbedKeyCommand::Revoke { realm, name } => {
            store.revoke_embed_key(&realm, &name, now())?;
            applied(store.as_mut())?;
            eprintln!("revoked embed key {name} of realm {realm}");
        }
    }
    Ok(())
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
