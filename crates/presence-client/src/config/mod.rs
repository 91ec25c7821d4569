//! Where the connection settings (site, email, API key) come from.
//!
//! The rules are those of Zulip's official Python client, so a user's
//! existing setup works unchanged:
//!
//! 1. values given explicitly (by the program, e.g. from command-line flags);
//! 2. then the environment: `ZULIP_SITE`, `ZULIP_EMAIL`, `ZULIP_API_KEY`;
//! 3. then the `[api]` section of a zuliprc: the file named explicitly, else
//!    the one `ZULIP_CONFIG` names, else `~/.zuliprc`.
//!
//! Each setting is looked up on its own, so a flag can override the key of a
//! file that provides everything else. An empty environment variable counts
//! as unset.
//!
//! The environment is captured into an [`Environment`] value rather than read
//! in the middle of resolution, so that callers (and tests) can supply one.

mod site;
mod zuliprc;

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use site::normalize_site;
pub use zuliprc::{API_SECTION, Zuliprc};

/// One of the three connection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The server address (`site`).
    Site,
    /// The account's email (`email`).
    Email,
    /// The account's API key (`key`).
    ApiKey,
}

impl Setting {
    /// The option's name in a zuliprc's `[api]` section.
    pub fn zuliprc_key(self) -> &'static str {
        match self {
            Setting::Site => "site",
            Setting::Email => "email",
            Setting::ApiKey => "key",
        }
    }

    /// The environment variable that sets it.
    pub fn env_var(self) -> &'static str {
        match self {
            Setting::Site => "ZULIP_SITE",
            Setting::Email => "ZULIP_EMAIL",
            Setting::ApiKey => "ZULIP_API_KEY",
        }
    }

    /// What it is, in words.
    pub fn description(self) -> &'static str {
        match self {
            Setting::Site => "server address",
            Setting::Email => "email",
            Setting::ApiKey => "API key",
        }
    }
}

/// Why connection settings could not be found, or a client not be set up.
///
/// Every message is one sentence that names the file and the setting involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A config file named explicitly (or by `ZULIP_CONFIG`) does not exist.
    #[error("the config file {} does not exist", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The config file exists but cannot be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid INI.
    #[error("the config file {}, line {line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No source provides a setting.
    #[error("{}", missing_message(*setting, file.as_deref(), *file_exists))]
    Missing {
        /// The setting nobody gave.
        setting: Setting,
        /// The zuliprc that was looked at, if any (none when `HOME` is unset).
        file: Option<PathBuf>,
        /// Whether that file exists.
        file_exists: bool,
    },
    /// The site is not a usable URL.
    #[error("the site {site:?} is not a valid server address: {reason}")]
    InvalidSite {
        /// The site as given.
        site: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be created (e.g. no TLS backend).
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

fn missing_message(setting: Setting, file: Option<&Path>, file_exists: bool) -> String {
    let (what, key, var) = (
        setting.description(),
        setting.zuliprc_key(),
        setting.env_var(),
    );
    match file {
        Some(path) if file_exists => format!(
            "no {what}: {} has no `{key}` in its [api] section and {var} is not set",
            path.display()
        ),
        Some(path) => format!(
            "no {what}: {var} is not set and the config file {} does not exist",
            path.display()
        ),
        None => format!("no {what}: {var} is not set and there is no ~/.zuliprc (HOME is not set)"),
    }
}

/// Connection settings of which some may be missing: one layer of sources.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PartialCredentials {
    /// The server address, as written (normalised later by [`normalize_site`]).
    pub site: Option<String>,
    /// The account's email.
    pub email: Option<String>,
    /// The account's API key.
    pub api_key: Option<String>,
}

impl PartialCredentials {
    fn get(&self, setting: Setting) -> Option<&str> {
        match setting {
            Setting::Site => self.site.as_deref(),
            Setting::Email => self.email.as_deref(),
            Setting::ApiKey => self.api_key.as_deref(),
        }
    }

    fn is_complete(&self) -> bool {
        self.site.is_some() && self.email.is_some() && self.api_key.is_some()
    }
}

// The key is a password: keep it out of logs and panic messages.
impl fmt::Debug for PartialCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialCredentials")
            .field("site", &self.site)
            .field("email", &self.email)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Complete connection settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The server address as written; [`normalize_site`] turns it into the base URL.
    pub site: String,
    /// The account's email (the Basic auth user name).
    pub email: String,
    /// The account's API key (the Basic auth password).
    pub api_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("site", &self.site)
            .field("email", &self.email)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// The environment variables the connection settings come from, captured once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `ZULIP_SITE`, `ZULIP_EMAIL` and `ZULIP_API_KEY`.
    pub credentials: PartialCredentials,
    /// `ZULIP_CONFIG`: the zuliprc to read instead of `~/.zuliprc`.
    pub config_file: Option<PathBuf>,
    /// `HOME`, where `.zuliprc` is looked for.
    pub home: Option<PathBuf>,
}

impl Environment {
    /// The current process's environment.
    pub fn from_process() -> Environment {
        Environment::from_lookup(|name| std::env::var(name).ok())
    }

    /// An environment read through `lookup` (a variable's value, or `None`).
    ///
    /// ```
    /// use presence_client::config::Environment;
    ///
    /// let env = Environment::from_lookup(|name| match name {
    ///     "ZULIP_EMAIL" => Some("bot@example.com".to_owned()),
    ///     "HOME" => Some("/home/bot".to_owned()),
    ///     _ => None,
    /// });
    /// assert_eq!(env.credentials.email.as_deref(), Some("bot@example.com"));
    /// assert_eq!(env.default_config_file().unwrap().to_str(), Some("/home/bot/.zuliprc"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Environment {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        Environment {
            credentials: PartialCredentials {
                site: get(Setting::Site.env_var()),
                email: get(Setting::Email.env_var()),
                api_key: get(Setting::ApiKey.env_var()),
            },
            config_file: get("ZULIP_CONFIG").map(PathBuf::from),
            home: get("HOME").map(PathBuf::from),
        }
    }

    /// `~/.zuliprc`, or `None` when `HOME` is unset.
    pub fn default_config_file(&self) -> Option<PathBuf> {
        self.home.as_ref().map(|home| home.join(".zuliprc"))
    }
}

/// All the places connection settings may come from, in priority order.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// Values given explicitly (e.g. command-line flags); they win.
    pub explicit: PartialCredentials,
    /// A zuliprc named explicitly (e.g. `--config`); it must exist.
    pub config_file: Option<PathBuf>,
    /// The environment.
    pub env: Environment,
}

impl CredentialSources {
    /// No explicit values, the process's environment, and its default zuliprc:
    /// what the Python client does when constructed without arguments.
    pub fn from_process_env() -> CredentialSources {
        CredentialSources {
            env: Environment::from_process(),
            ..CredentialSources::default()
        }
    }

    /// The zuliprc these sources point at, and whether it was named
    /// explicitly (explicitly named files must exist).
    pub fn config_file(&self) -> Option<(PathBuf, bool)> {
        if let Some(path) = &self.config_file {
            return Some((path.clone(), true));
        }
        if let Some(path) = &self.env.config_file {
            return Some((path.clone(), true));
        }
        self.env.default_config_file().map(|path| (path, false))
    }

    /// Combines the sources into complete credentials.
    ///
    /// The zuliprc is read when it was named explicitly, or when the flags
    /// and the environment leave a setting open; a file that was only
    /// looked for by default may be absent.
    ///
    /// ```no_run
    /// use presence_client::config::CredentialSources;
    ///
    /// // Like `zulip.Client()` in Python: environment, then ~/.zuliprc.
    /// let credentials = CredentialSources::from_process_env().resolve()?;
    /// println!("talking to {} as {}", credentials.site, credentials.email);
    /// # Ok::<(), presence_client::ConfigError>(())
    /// ```
    pub fn resolve(&self) -> Result<Credentials, ConfigError> {
        let given = PartialCredentials {
            site: self
                .explicit
                .site
                .clone()
                .or(self.env.credentials.site.clone()),
            email: self
                .explicit
                .email
                .clone()
                .or(self.env.credentials.email.clone()),
            api_key: self
                .explicit
                .api_key
                .clone()
                .or(self.env.credentials.api_key.clone()),
        };
        let file = self.config_file();
        let mut file_exists = false;
        let mut from_file = PartialCredentials::default();
        if let Some((path, named)) = &file
            && (*named || !given.is_complete())
        {
            match Zuliprc::read(path) {
                Ok(rc) => {
                    file_exists = true;
                    from_file = PartialCredentials {
                        site: rc.api("site").map(str::to_owned),
                        email: rc.api("email").map(str::to_owned),
                        api_key: rc.api("key").map(str::to_owned),
                    };
                }
                Err(ConfigError::NotFound { .. }) if !named => {}
                Err(e) => return Err(e),
            }
        }
        let pick = |setting: Setting| -> Result<String, ConfigError> {
            given
                .get(setting)
                .or(from_file.get(setting).filter(|value| !value.is_empty()))
                .map(str::to_owned)
                .ok_or_else(|| ConfigError::Missing {
                    setting,
                    file: file.as_ref().map(|(path, _)| path.clone()),
                    file_exists,
                })
        };
        Ok(Credentials {
            site: pick(Setting::Site)?,
            email: pick(Setting::Email)?,
            api_key: pick(Setting::ApiKey)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_rc(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn env(home: &Path) -> Environment {
        Environment {
            home: Some(home.to_path_buf()),
            ..Environment::default()
        }
    }

    #[test]
    fn the_default_file_provides_everything() {
        let home = tempfile::tempdir().unwrap();
        write_rc(
            home.path(),
            ".zuliprc",
            "[api]\nemail=a@b.c\nkey=k1\nsite=localhost:9991\n",
        );
        let sources = CredentialSources {
            env: env(home.path()),
            ..CredentialSources::default()
        };
        let c = sources.resolve().unwrap();
        assert_eq!(
            (c.site.as_str(), c.email.as_str(), c.api_key.as_str()),
            ("localhost:9991", "a@b.c", "k1")
        );
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let home = tempfile::tempdir().unwrap();
        write_rc(
            home.path(),
            ".zuliprc",
            "[api]\nemail=file@b.c\nkey=file\nsite=file.example\n",
        );
        let mut environment = env(home.path());
        environment.credentials.email = Some("env@b.c".into());
        environment.credentials.api_key = Some("env".into());
        let sources = CredentialSources {
            explicit: PartialCredentials {
                api_key: Some("flag".into()),
                ..PartialCredentials::default()
            },
            config_file: None,
            env: environment,
        };
        let c = sources.resolve().unwrap();
        assert_eq!(
            (c.site.as_str(), c.email.as_str(), c.api_key.as_str()),
            ("file.example", "env@b.c", "flag")
        );
    }

    #[test]
    fn zulip_config_names_the_file_and_must_exist() {
        let home = tempfile::tempdir().unwrap();
        let other = write_rc(home.path(), "other", "[api]\nemail=o@b.c\nkey=o\nsite=o\n");
        let mut environment = env(home.path());
        environment.config_file = Some(other);
        let sources = CredentialSources {
            env: environment.clone(),
            ..CredentialSources::default()
        };
        assert_eq!(sources.resolve().unwrap().email, "o@b.c");

        environment.config_file = Some(home.path().join("absent"));
        let sources = CredentialSources {
            env: environment,
            ..CredentialSources::default()
        };
        assert!(matches!(
            sources.resolve(),
            Err(ConfigError::NotFound { .. })
        ));
    }

    #[test]
    fn a_missing_default_file_is_fine_when_nothing_is_missing() {
        let home = tempfile::tempdir().unwrap();
        let mut environment = env(home.path());
        environment.credentials = PartialCredentials {
            site: Some("s".into()),
            email: Some("e".into()),
            api_key: Some("k".into()),
        };
        let sources = CredentialSources {
            env: environment,
            ..CredentialSources::default()
        };
        assert_eq!(sources.resolve().unwrap().api_key, "k");
    }

    #[test]
    fn missing_settings_name_the_file_and_the_key() {
        let home = tempfile::tempdir().unwrap();
        let sources = CredentialSources {
            env: env(home.path()),
            ..CredentialSources::default()
        };
        let message = sources.resolve().unwrap_err().to_string();
        let rc = home.path().join(".zuliprc");
        assert_eq!(
            message,
            format!(
                "no server address: ZULIP_SITE is not set and the config file {} does not exist",
                rc.display()
            )
        );

        write_rc(home.path(), ".zuliprc", "[api]\nemail=a@b.c\nsite=x\n");
        let message = sources.resolve().unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "no API key: {} has no `key` in its [api] section and ZULIP_API_KEY is not set",
                rc.display()
            )
        );

        let nowhere = CredentialSources::default();
        assert_eq!(
            nowhere.resolve().unwrap_err().to_string(),
            "no server address: ZULIP_SITE is not set and there is no ~/.zuliprc (HOME is not set)"
        );
    }

    #[test]
    fn empty_environment_variables_count_as_unset() {
        let env = Environment::from_lookup(|name| (name == "ZULIP_EMAIL").then(String::new));
        assert_eq!(env.credentials.email, None);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let c = Credentials {
            site: "s".into(),
            email: "e".into(),
            api_key: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
        let p = PartialCredentials {
            api_key: Some("secret".into()),
            ..PartialCredentials::default()
        };
        assert!(!format!("{p:?}").contains("secret"));
    }
}
