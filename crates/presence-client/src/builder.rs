//! Setting up a [`Client`]: credentials, client name, timeouts, retries.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::client::Client;
use crate::config::{ConfigError, CredentialSources, Credentials, Environment, normalize_site};
use crate::retry::RetryPolicy;

/// The `User-Agent` every request carries: `PresenceClient/<version>`.
pub const USER_AGENT: &str = concat!("PresenceClient/", env!("CARGO_PKG_VERSION"));

/// The default time a request may take, connection included (the Python
/// client's figure for calls that do not long-poll).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Builds a [`Client`].
///
/// ```no_run
/// use std::time::Duration;
/// use presence_client::{ClientBuilder, RetryPolicy};
///
/// let client = ClientBuilder::new("chat.example.com", "bot@example.com", "0123456789abcdefghijABCDEFGHIJ01")
///     .client_name("pager-bot")
///     .timeout(Duration::from_secs(5))
///     .retry_policy(RetryPolicy::none())
///     .build()?;
/// # Ok::<(), presence_client::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    credentials: Credentials,
    client_name: Option<String>,
    timeout: Duration,
    connect_timeout: Option<Duration>,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// A builder from explicit values; `site` is written as in a zuliprc
    /// (see [`normalize_site`]).
    pub fn new(
        site: impl Into<String>,
        email: impl Into<String>,
        api_key: impl Into<String>,
    ) -> ClientBuilder {
        ClientBuilder::from_credentials(Credentials {
            site: site.into(),
            email: email.into(),
            api_key: api_key.into(),
        })
    }

    /// A builder from resolved credentials.
    pub fn from_credentials(credentials: Credentials) -> ClientBuilder {
        ClientBuilder {
            credentials,
            client_name: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: None,
            retry: RetryPolicy::default(),
        }
    }

    /// A builder from the sources of [`CredentialSources`] (explicit values,
    /// environment, zuliprc).
    pub fn from_sources(sources: &CredentialSources) -> Result<ClientBuilder, ConfigError> {
        sources.resolve().map(ClientBuilder::from_credentials)
    }

    /// Like the Python client's `zulip.Client()`: `ZULIP_SITE`, `ZULIP_EMAIL`
    /// and `ZULIP_API_KEY`, then the zuliprc that `ZULIP_CONFIG` names, or
    /// `~/.zuliprc`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = presence_client::ClientBuilder::from_env()?.build()?;
    /// let me = client.own_user().await?;
    /// println!("I am {} ({})", me.full_name, me.email);
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<ClientBuilder, ConfigError> {
        ClientBuilder::from_sources(&CredentialSources::from_process_env())
    }

    /// Like the Python client's `zulip.Client(config_file=path)`: the named
    /// zuliprc, which must exist, with `ZULIP_SITE`, `ZULIP_EMAIL` and
    /// `ZULIP_API_KEY` overriding its values.
    pub fn from_zuliprc(path: impl AsRef<Path>) -> Result<ClientBuilder, ConfigError> {
        ClientBuilder::from_sources(&CredentialSources {
            config_file: Some(path.as_ref().to_path_buf()),
            env: Environment::from_process(),
            ..CredentialSources::default()
        })
    }

    /// The client name the server records presence under (sent as the
    /// `client` parameter of the requests that report presence). Without
    /// it, the server takes the name from the `User-Agent`: `PresenceClient`.
    pub fn client_name(mut self, name: impl Into<String>) -> ClientBuilder {
        self.client_name = Some(name.into());
        self
    }

    /// The longest a request may take, from connecting to the last byte of
    /// the answer (default 15 s). Each retry gets the full time again.
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// The longest connecting may take (default: only the overall timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How GET requests are retried (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> ClientBuilder {
        self.retry = policy;
        self
    }

    /// Creates the client. Fails if the site is not a usable URL or the HTTP
    /// client cannot be set up; nothing is sent yet.
    pub fn build(self) -> Result<Client, ConfigError> {
        let site = &self.credentials.site;
        let base_url = normalize_site(site);
        let invalid = |reason: String| ConfigError::InvalidSite {
            site: site.clone(),
            reason,
        };
        // Checked on the text first: the URL parser would read `http:/api`
        // (what `http://` normalises to) as the host `api`.
        let authority = base_url
            .split_once("://")
            .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        if authority.is_empty() {
            return Err(invalid("it names no host".to_owned()));
        }
        let url = reqwest::Url::parse(&base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "the scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it has a query or fragment".to_owned()));
        }
        let mut http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(self.timeout);
        if let Some(connect) = self.connect_timeout {
            http = http.connect_timeout(connect);
        }
        let http = http.build().map_err(ConfigError::HttpClient)?;
        Ok(Client::from_parts(
            http,
            base_url,
            self.credentials.email,
            self.credentials.api_key,
            self.client_name,
            self.retry,
        ))
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("credentials", &self.credentials)
            .field("client_name", &self.client_name)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(site: &str) -> Result<Client, ConfigError> {
        ClientBuilder::new(site, "a@b.c", "k").build()
    }

    #[test]
    fn sites_become_base_urls() {
        assert_eq!(
            build("localhost:9991").unwrap().base_url(),
            "http://localhost:9991/api"
        );
        assert_eq!(
            build("https://chat.example.com/").unwrap().base_url(),
            "https://chat.example.com/api"
        );
    }

    #[test]
    fn unusable_sites_are_refused() {
        for site in [
            "http://",
            "https://exa mple.com",
            "http://x.y/?q=1",
            "httpx://x.y",
        ] {
            assert!(
                matches!(build(site), Err(ConfigError::InvalidSite { .. })),
                "{site}"
            );
        }
    }

    #[test]
    fn the_user_agent_names_the_client_and_version() {
        assert_eq!(
            USER_AGENT,
            format!("PresenceClient/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
