//! The settings as command-line flags, built from their one declaration
//! (`config::settings`): the store's flags, which every command that opens
//! the store takes, and the serving flags, which only `serve` takes (and
//! the command line with no command, which serves).
//!
//! Each flag also reads its environment variable; the value is checked as
//! it is parsed, so a bad one is a usage error naming the flag.

use std::path::PathBuf;

use clap::builder::ValueParser;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

use crate::config::{Config, SETTINGS, Scope, Setting};

/// A value given for a setting.
#[derive(Debug, Clone)]
struct Value {
    setting: &'static Setting,
    text: String,
    /// Given as a flag, not by its environment variable.
    flag: bool,
}

/// Where every command's `--help` lists the flags that choose the store.
const STORE_HEADING: &str = "Store and settings file";

/// The values given for some settings, by flag or environment variable.
#[derive(Debug, Clone, Default)]
pub struct Given(Vec<Value>);

impl Given {
    /// Applies the values on top of `config`.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
        for value in &self.0 {
            (value.setting.apply)(&value.text, config)
                .map_err(|e| format!("--{}: {e}", value.setting.flag()))?;
        }
        Ok(())
    }

    /// The flags given on the command line (not by variables), by name.
    pub fn flags(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|v| v.flag)
            .map(|v| format!("--{}", v.setting.flag()))
            .collect()
    }

    fn read(matches: &ArgMatches, scope: Scope) -> Given {
        Given(
            SETTINGS
                .iter()
                .filter(|s| s.scope == scope)
                .filter_map(|setting| {
                    Some(Value {
                        setting,
                        text: matches.get_one::<String>(setting.key)?.clone(),
                        flag: matches.value_source(setting.key)
                            == Some(clap::parser::ValueSource::CommandLine),
                    })
                })
                .collect(),
        )
    }
}

/// Adds the flags of the settings of `scope`.
fn augment(mut command: Command, scope: Scope, hidden: bool) -> Command {
    for setting in SETTINGS.iter().filter(|s| s.scope == scope) {
        let check = move |value: &str| -> Result<String, String> {
            (setting.apply)(value, &mut Config::default()).map(|()| value.to_owned())
        };
        let help = format!(
            "{} [default: {}]",
            capitalized(setting.help),
            setting.shown_default.trim_matches('`')
        );
        command = command.arg(
            Arg::new(setting.key)
                .long(setting.flag())
                .env(setting.env)
                .value_name(setting.value_name)
                .value_parser(ValueParser::new(check))
                .help(help)
                .global(scope == Scope::Store)
                .help_heading((scope == Scope::Store).then_some(STORE_HEADING))
                .hide(hidden),
        );
    }
    command
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The store's flags (`--data-dir`, `--database-url`) and `--config`.
#[derive(Debug, Clone, Default)]
pub struct StoreFlags {
    /// The TOML settings file, if one is named.
    pub config: Option<PathBuf>,
    /// The store settings given.
    pub given: Given,
}

impl FromArgMatches for StoreFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(StoreFlags {
            config: matches.get_one::<PathBuf>("config").cloned(),
            given: Given::read(matches, Scope::Store),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for StoreFlags {
    fn augment_args(command: Command) -> Command {
        let command = command.arg(
            Arg::new("config")
                .long("config")
                .env("PRESENCE_CONFIG")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .global(true)
                .help_heading(STORE_HEADING)
                .help("A TOML file of settings (the names of the flags, with underscores)"),
        );
        augment(command, Scope::Store, false)
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// The serving flags of `serve`.
#[derive(Debug, Clone, Default)]
pub struct ServeFlags(pub Given);

impl FromArgMatches for ServeFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ServeFlags(Given::read(matches, Scope::Serve)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServeFlags {
    fn augment_args(command: Command) -> Command {
        augment(command, Scope::Serve, false)
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// The serving flags given without `serve` (which is then implied): taken,
/// but left out of the top-level help, which points to `serve --help`.
#[derive(Debug, Clone, Default)]
pub struct ImpliedServeFlags(pub Given);

impl FromArgMatches for ImpliedServeFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ImpliedServeFlags(Given::read(matches, Scope::Serve)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ImpliedServeFlags {
    fn augment_args(command: Command) -> Command {
        augment(command, Scope::Serve, true)
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// The configuration: the defaults, then the file, then the store's and
/// the serving flags and variables.
pub fn config(store: &StoreFlags, serve: Option<&Given>) -> anyhow::Result<Config> {
    let mut config = match &store.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    store.given.apply(&mut config).map_err(anyhow::Error::msg)?;
    if let Some(serve) = serve {
        serve.apply(&mut config).map_err(anyhow::Error::msg)?;
    }
    config.validate()?;
    Ok(config)
}
