//! `presence get USER`: one line saying whether the user is reachable.

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
