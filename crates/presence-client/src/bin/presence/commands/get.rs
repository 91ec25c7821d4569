//! `presence get USER`: one line saying whether the user is reachable.

use presence_client::types::endpoints::user_status::UserStatus;
use presence_client::{ActivityTimestamps, UserRef, unix_now};

use super::{Context, columns};
use crate::cli::GetArgs;
use crate::duration::ago;

/// Prints `● USER is active, last seen 12s ago`, and with `-v` one line per client.
pub async fn run(context: &Context, args: &GetArgs) -> anyhow::Result<()> {
    let user = UserRef::parse(&args.user);
    let answer = context.client.user_presence(user.clone()).await?;
    if context.json {
        crate::output::line(answer.raw_body())?;
        return Ok(());
    }
    // Measured against the server's clock; an older server's answer has no
    // `server_timestamp`, and then the local clock stands in.
    let now = answer.server_timestamp.unwrap_or_else(unix_now);
    let timestamps = ActivityTimestamps::from(&answer.presence);
    let state = timestamps.reachability(args.offline_threshold, now);
    let seen = match timestamps.last_active() {
        Some(at) => format!("last seen {}", ago(now as i64 - at)),
        None => "never seen".to_owned(),
    };
    crate::output::line(format!(
        "{} {user} is {}, {seen}",
        context.style.dot(state),
        state.as_str()
    ))?;
    if let Some(text) = status_text(context, &user).await {
        crate::output::line(format!("  status: {text}"))?;
    }
    if args.verbose {
        let rows: Vec<Vec<String>> = answer
            .presence
            .clients
            .values()
            .map(|entry| {
                let state =
                    ActivityTimestamps::from(entry).reachability(args.offline_threshold, now);
                vec![
                    format!("  {}", context.style.dot(state)),
                    entry.client.clone(),
                    state.as_str().to_owned(),
                    ago(now as i64 - entry.timestamp),
                    if entry.pushable { "pushable" } else { "" }.to_owned(),
                ]
            })
            .collect();
        for line in columns(&rows) {
            crate::output::line(&line)?;
        }
    }
    Ok(())
}

/// The user's status as one line (`:calendar: In a meeting`), if one is
/// set. A server without statuses, or a failed look-up, shows none: the
/// status is a detail beside presence.
async fn status_text(context: &Context, user: &UserRef) -> Option<String> {
    let id = match user {
        UserRef::Id(id) => *id,
        UserRef::Email(email) => {
            let users = context.client.users().await.ok()?;
            let email = email.trim().to_lowercase();
            users
                .members
                .iter()
                .find(|u| u.email.to_lowercase() == email)?
                .user_id
        }
    };
    let answer = context.client.user_status(id).await.ok()?;
    describe(&answer.status)
}

/// A status in a few words: the emoji's name between colons, then the text.
pub fn describe(status: &UserStatus) -> Option<String> {
    let emoji = status.emoji_name.as_deref().map(|name| format!(":{name}:"));
    let parts: Vec<String> = emoji
        .into_iter()
        .chain(status.status_text.clone())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
