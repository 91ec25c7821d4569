//! The commands, one module each, and what they share.

mod get;
mod ping;
mod realm;
mod set;
mod status;

use presence_client::Client;

use crate::cli::{Cli, Command};
use crate::connect;
use crate::style::Style;

/// What every command works with.
pub struct Context {
    /// The connected client.
    pub client: Client,
    /// How to decorate output.
    pub style: Style,
    /// Print raw answers instead of text.
    pub json: bool,
}

/// Runs the command the command line names.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let context = Context {
        client: connect::client(&cli.connection)?,
        style: Style::new(cli.output.color),
        json: cli.output.json,
    };
    match &cli.command {
        Command::Get(args) => get::run(&context, args).await,
        Command::Realm(args) => realm::run(&context, args).await,
        Command::Ping(args) => ping::run(&context, args).await,
        Command::Set(args) => set::run(&context, args).await,
        Command::Status(command) => status::run(&context, command).await,
    }
}

/// Lays out rows in columns padded to the widest cell; the last column is
/// not padded, so lines carry no trailing spaces.
pub fn columns(rows: &[Vec<String>]) -> Vec<String> {
    let width_count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; width_count];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_align_by_characters() {
        let rows = vec![
            vec!["NAME".to_owned(), "STATE".to_owned()],
            vec!["Zoë".to_owned(), "active".to_owned()],
            vec!["Bartholomew".to_owned(), "idle".to_owned()],
        ];
        assert_eq!(
            columns(&rows),
            [
                "NAME         STATE",
                "Zoë          active",
                "Bartholomew  idle"
            ]
        );
    }
}
