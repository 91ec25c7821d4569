//! `presence realm`: everyone in the organization, as a table.

use std::collections::BTreeMap;

use presence_client::types::LegacyPresence;
use presence_client::{ActivityTimestamps, Reachability};

use super::{Context, columns};
use crate::cli::{RealmArgs, SortKey};
use crate::duration::ago;

/// One person's row.
struct Row {
    name: String,
    email: String,
    status: String,
    state: Reachability,
    last_seen: Option<i64>,
}

/// Prints a table of every active human user, with names from `GET /users`.
pub async fn run(context: &Context, args: &RealmArgs) -> anyhow::Result<()> {
    if context.json {
        let answer = context.client.realm_presence().await?;
        crate::output::line(answer.raw_body())?;
        return Ok(());
    }
    let (presence, users) =
        tokio::try_join!(context.client.realm_presence(), context.client.users())?;
    // A server without statuses shows none; the table is about presence.
    let statuses = context.client.statuses().await.unwrap_or_default();
    // Ages against the server's clock, as the web app measures them.
    let now = presence.server_timestamp;
    let mut presences: BTreeMap<&str, &LegacyPresence> = presence
        .presences
        .iter()
        .map(|(email, p)| (email.as_str(), p))
        .collect();
    let mut rows = Vec::new();
    let mut row =
        |name: String, email: String, id: Option<i64>, presence: Option<&LegacyPresence>| {
            let timestamps = presence.map(ActivityTimestamps::from).unwrap_or_default();
            let status = id
                .and_then(|id| statuses.get(&id.to_string()))
                .and_then(super::get::describe)
                .unwrap_or_default();
            rows.push(Row {
                name,
                email,
                status,
                state: timestamps.reachability(args.offline_threshold, now),
                last_seen: timestamps.last_active(),
            });
        };
    for user in users.members.iter().filter(|u| u.is_active && !u.is_bot) {
        let presence = presences.remove(user.email.as_str());
        row(
            user.full_name.clone(),
            user.email.clone(),
            Some(user.user_id),
            presence,
        );
    }
    // Presence for someone the user list does not name (it changed between
    // the two requests): still worth a row.
    for (email, presence) in presences {
        row(String::new(), email.to_owned(), None, Some(presence));
    }
    sort(&mut rows, args.sort);

    let table = table(context, &rows, now);
    for line in columns(&table) {
        crate::output::line(&line)?;
    }
    Ok(())
}

/// The table's cells: a header, then a row per person; a status column
/// only when someone has a status.
fn table(context: &Context, rows: &[Row], now: f64) -> Vec<Vec<String>> {
    let mut table = vec![vec![
        " ".to_owned(),
        "NAME".to_owned(),
        "EMAIL".to_owned(),
        "STATE".to_owned(),
        "LAST SEEN".to_owned(),
    ]];
    // A status column only when someone has a status.
    let with_status = rows.iter().any(|row| !row.status.is_empty());
    if with_status {
        table[0].push("STATUS".to_owned());
    }
    for row in rows {
        table.push(vec![
            context.style.dot(row.state),
            row.name.clone(),
            row.email.clone(),
            row.state.as_str().to_owned(),
            row.last_seen
                .map_or("never".to_owned(), |at| ago(now as i64 - at)),
        ]);
        if with_status {
            table
                .last_mut()
                .expect("just pushed")
                .push(row.status.clone());
        }
    }
    table
}

fn sort(rows: &mut [Row], key: SortKey) {
    let by_name = |a: &Row, b: &Row| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then_with(|| a.email.cmp(&b.email))
    };
    match key {
        SortKey::Name => rows.sort_by(by_name),
        SortKey::State => rows.sort_by(|a, b| a.state.cmp(&b.state).then_with(|| by_name(a, b))),
        // Most recent first; `None` (never seen) sorts below every time.
        SortKey::LastSeen => {
            rows.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| by_name(a, b)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: Reachability, last_seen: Option<i64>) -> Row {
        Row {
            name: name.to_owned(),
            email: format!("{}@x.test", name.to_lowercase()),
            status: String::new(),
            state,
            last_seen,
        }
    }

    fn names(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn sorting_by_each_key() {
        let mut rows = vec![
            row("carol", Reachability::Offline, None),
            row("Alice", Reachability::Idle, Some(50)),
            row("bob", Reachability::Active, Some(40)),
            row("Dave", Reachability::Offline, Some(10)),
        ];
        sort(&mut rows, SortKey::Name);
        assert_eq!(names(&rows), ["Alice", "bob", "carol", "Dave"]);
        sort(&mut rows, SortKey::State);
        assert_eq!(names(&rows), ["bob", "Alice", "carol", "Dave"]);
        sort(&mut rows, SortKey::LastSeen);
        assert_eq!(names(&rows), ["Alice", "bob", "Dave", "carol"]);
    }
}
