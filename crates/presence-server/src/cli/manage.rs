//! The admin commands on realms, users and embed keys: their arguments,
//! and what they print.
//!
//! A command that changes something returns once every running server has
//! taken the change ([`applied`]). One that finds the change made already
//! (deactivating twice) says so and succeeds. Listings print a
//! tab-separated table with a header, or with `--json` an array of
//! objects; keys are printed only by the commands that make them.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::serve::open_store;
use crate::admin;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::service::iso8601;
use crate::store::{Store, StoreError, UserChange};

/// `realm ...`: the realms (organizations).
#[derive(Debug, Subcommand)]
pub enum RealmCommand {
    /// Create a realm.
    Create {
        /// Its short unique id: lower-case letters, digits and dashes.
        string_id: String,
        /// Its display name [default: the id].
        #[arg(long)]
        name: Option<String>,
    },
    /// List the realms, with their users counted.
    List(Listing),
    /// Give a realm a new display name.
    Rename {
        /// The realm's id.
        string_id: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Deactivate a realm: nobody of it can log in any more, nor any page
    /// with one of its embed keys.
    Deactivate {
        /// The realm's id.
        string_id: String,
    },
    /// Reactivate a deactivated realm.
    Reactivate {
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

/// A listing's output format.
#[derive(Debug, Args)]
pub struct Listing {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// A user of a realm.
#[derive(Debug, Args)]
pub struct UserRef {
    /// The realm's id.
    #[arg(long)]
    realm: String,
    /// The user's email.
    #[arg(long)]
    email: String,
}

/// `user ...`: the users of a realm.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print its API key.
    Create {
        /// The realm's id (an active realm).
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
    /// List a realm's users.
    List {
        /// The realm's id.
        #[arg(long)]
        realm: String,
        /// Table or JSON.
        #[command(flatten)]
        listing: Listing,
    },
    /// Change a user's email or name.
    Set {
        /// Whom to change.
        #[command(flatten)]
        user: UserRef,
        /// The new email (unique within the realm).
        #[arg(long)]
        new_email: Option<String>,
        /// The new name.
        #[arg(long)]
        full_name: Option<String>,
    },
    /// Deactivate a user: the key stops working and the user leaves presence.
    Deactivate(UserRef),
    /// Reactivate a deactivated user.
    Reactivate(UserRef),
    /// Give a user a new API key and print it; the old key stops working.
    ResetKey(UserRef),
    /// Delete a user with their presence and push devices, for good.
    Delete(UserRef),
}

/// `embed-key ...`: the read-only keys of web pages.
#[derive(Debug, Subcommand)]
pub enum EmbedKeyCommand {
    /// Create a key for the pages on the given origins and print it.
    Create {
        /// The realm's id (an active realm).
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
    /// List a realm's keys (never the keys themselves).
    List {
        /// The realm's id.
        #[arg(long)]
        realm: String,
        /// Table or JSON.
        #[command(flatten)]
        listing: Listing,
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

fn now() -> i64 {
    SystemClock.now_secs()
}

/// Waits until the running servers have installed what the command just
/// changed; says so on standard error if some did not in time.
pub(super) fn applied(store: &mut dyn Store) -> anyhow::Result<()> {
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

/// Says what a change did, or that it was so already.
fn report(changed: bool, done: &str, already: &str) {
    eprintln!("{}", if changed { done } else { already });
}

/// Writes rows as a table with a header, or as JSON.
fn print_rows(
    listing: &Listing,
    header: &str,
    rows: Vec<(String, serde_json::Value)>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if listing.json {
        let values: Vec<serde_json::Value> = rows.into_iter().map(|(_, v)| v).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&values)?)?;
    } else {
        writeln!(out, "{header}")?;
        for (line, _) in rows {
            writeln!(out, "{line}")?;
        }
    }
    Ok(out.flush()?)
}

/// `realm ...`.
pub fn realm(config: &Config, command: RealmCommand) -> anyhow::Result<()> {
    let mut store = open_store(config)?;
    let store = store.as_mut();
    match command {
        RealmCommand::Create { string_id, name } => {
            let realm = admin::create_realm(store, &string_id, name.as_deref(), now())?;
            applied(store)?;
            eprintln!("created realm {} ({})", realm.string_id, realm.name);
        }
        RealmCommand::List(listing) => {
            let rows = store
                .list_realms()?
                .into_iter()
                .map(|r| {
                    let line = format!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        r.realm.string_id,
                        r.realm.name,
                        r.active_users,
                        r.users,
                        r.realm.presence_disabled,
                        r.realm.deactivated
                    );
                    let value = json!({
                        "string_id": r.realm.string_id, "name": r.realm.name,
                        "active_users": r.active_users, "users": r.users,
                        "presence_disabled": r.realm.presence_disabled,
                        "deactivated": r.realm.deactivated,
                        "date_created": iso8601(r.realm.date_created),
                    });
                    (line, value)
                })
                .collect();
            let header = "string_id\tname\tactive_users\tusers\tpresence_disabled\tdeactivated";
            print_rows(&listing, header, rows)?;
        }
        RealmCommand::Rename { string_id, name } => {
            admin::validate_name(&name)?;
            store.rename_realm(&string_id, name.trim())?;
            applied(store)?;
            eprintln!("renamed realm {string_id} to {}", name.trim());
        }
        RealmCommand::Deactivate { string_id } => {
            let changed = store.set_realm_deactivated(&string_id, true)?;
            applied(store)?;
            let done = format!("deactivated realm {string_id}");
            report(
                changed,
                &done,
                &format!("realm {string_id} is already deactivated"),
            );
        }
        RealmCommand::Reactivate { string_id } => {
            let changed = store.set_realm_deactivated(&string_id, false)?;
            applied(store)?;
            let done = format!("reactivated realm {string_id}");
            report(
                changed,
                &done,
                &format!("realm {string_id} is already active"),
            );
        }
        RealmCommand::Set {
            string_id,
            presence_disabled,
        } => {
            let changed = store.set_realm_presence_disabled(&string_id, presence_disabled)?;
            applied(store)?;
            let done = format!("realm {string_id}: presence_disabled = {presence_disabled}");
            let already =
                format!("realm {string_id}: presence_disabled is {presence_disabled} already");
            report(changed, &done, &already);
        }
    }
    Ok(())
}

/// `user ...`.
pub fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let mut store = open_store(config)?;
    let store = store.as_mut();
    match command {
        UserCommand::Create {
            realm,
            email,
            full_name,
            bot,
        } => {
            let (_, key) = admin::create_user(store, &realm, &email, &full_name, bot, now())?;
            applied(store)?;
            print_key(&key)?;
        }
        UserCommand::List { realm, listing } => {
            let rows = store
                .list_users(&realm)?
                .into_iter()
                .map(|u| {
                    let line = format!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.id, u.email, u.full_name, u.is_bot, u.is_active
                    );
                    let value = json!({
                        "user_id": u.id, "email": u.email, "full_name": u.full_name,
                        "is_bot": u.is_bot, "is_active": u.is_active,
                        "date_joined": iso8601(u.date_joined),
                    });
                    (line, value)
                })
                .collect();
            print_rows(
                &listing,
                "user_id\temail\tfull_name\tis_bot\tis_active",
                rows,
            )?;
        }
        UserCommand::Set {
            user,
            new_email,
            full_name,
        } => {
            if new_email.is_none() && full_name.is_none() {
                anyhow::bail!("nothing to change: give --new-email or --full-name");
            }
            if let Some(email) = &new_email {
                admin::validate_email(email)?;
            }
            if let Some(name) = &full_name {
                admin::validate_name(name)?;
            }
            let change = UserChange {
                email: new_email.as_deref(),
                full_name: full_name.as_deref().map(str::trim),
            };
            let row = store.update_user(&user.realm, &user.email, &change)?;
            applied(store)?;
            eprintln!("user {} is now {} ({})", row.id, row.email, row.full_name);
        }
        UserCommand::Deactivate(user) => {
            let changed = store.set_user_active(&user.realm, &user.email, false)?;
            applied(store)?;
            let done = format!("deactivated {}", user.email);
            report(
                changed,
                &done,
                &format!("{} is already deactivated", user.email),
            );
        }
        UserCommand::Reactivate(user) => {
            let changed = store.set_user_active(&user.realm, &user.email, true)?;
            applied(store)?;
            let done = format!("reactivated {}", user.email);
            report(changed, &done, &format!("{} is already active", user.email));
        }
        UserCommand::ResetKey(user) => {
            let key = admin::reset_key(store, &user.realm, &user.email)?;
            applied(store)?;
            print_key(&key)?;
        }
        UserCommand::Delete(user) => {
            let row = store.delete_user(&user.realm, &user.email)?;
            applied(store)?;
            eprintln!(
                "deleted {} (user {}) with their presence and devices",
                row.email, row.id
            );
        }
    }
    Ok(())
}

/// `embed-key ...`.
pub fn embed_key(config: &Config, command: EmbedKeyCommand) -> anyhow::Result<()> {
    let mut store = open_store(config)?;
    let store = store.as_mut();
    match command {
        EmbedKeyCommand::Create {
            realm,
            name,
            origins,
        } => {
            let (_, key) = admin::create_embed_key(store, &realm, &name, &origins, now())?;
            applied(store)?;
            print_key(&key)?;
        }
        EmbedKeyCommand::List { realm, listing } => {
            let time = |t: Option<i64>| t.map(iso8601).unwrap_or_default();
            let rows = store
                .list_embed_keys(&realm)?
                .into_iter()
                .map(|k| {
                    let line = format!(
                        "{}\t{}\t{}\t{}\t{}",
                        k.name,
                        k.origins.join(" "),
                        time(Some(k.created_at)),
                        time(k.last_used_at),
                        time(k.revoked_at)
                    );
                    let value = json!({
                        "name": k.name, "origins": k.origins,
                        "created": time(Some(k.created_at)),
                        "last_used": k.last_used_at.map(iso8601),
                        "revoked": k.revoked_at.map(iso8601),
                    });
                    (line, value)
                })
                .collect();
            print_rows(&listing, "name\torigins\tcreated\tlast_used\trevoked", rows)?;
        }
        EmbedKeyCommand::Revoke { realm, name } => {
            match store.revoke_embed_key(&realm, &name, now()) {
                Ok(_) => {
                    applied(store)?;
                    eprintln!("revoked embed key {name} of realm {realm}");
                }
                Err(StoreError::UnknownEmbedKey { .. }) if was_revoked(store, &realm, &name)? => {
                    eprintln!("embed key {name} of realm {realm} is already revoked");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Whether the realm has a revoked key of this name.
fn was_revoked(store: &mut dyn Store, realm: &str, name: &str) -> anyhow::Result<bool> {
    Ok(store
        .list_embed_keys(realm)
        .context("cannot list the realm's embed keys")?
        .iter()
        .any(|k| k.name == name && k.revoked_at.is_some()))
}

/// Prints a new key, and nothing else, on standard output.
fn print_key(key: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{key}")?;
    Ok(out.flush()?)
}
