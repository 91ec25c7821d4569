//! `presence status set|clear`: your custom status.

use presence_client::types::endpoints::user_status::UpdateStatusParams;
use presence_client::unix_now;

use super::Context;
use crate::cli::StatusCommand;

/// Sets the text (with the emoji, and the expiry `--for` asks), or clears
/// the text and the emoji.
pub async fn run(context: &Context, command: &StatusCommand) -> anyhow::Result<()> {
    let (params, said) = match command {
        StatusCommand::Set(args) => {
            let expires_at = args
                .lasts
                .map(|lasts| unix_now() as i64 + lasts.as_secs().max(1) as i64);
            let params = UpdateStatusParams {
                status_text: Some(args.text.clone()),
                emoji_name: Some(args.emoji.clone().unwrap_or_default()),
                expires_at,
                ..UpdateStatusParams::default()
            };
            let until = match args.lasts {
                Some(lasts) => format!(
                    " for {}",
                    crate::duration::ago(lasts.as_secs() as i64).trim_end_matches(" ago")
                ),
                None => String::new(),
            };
            (params, format!("status: {}{until}", args.text.trim()))
        }
        StatusCommand::Clear => (
            UpdateStatusParams {
                status_text: Some(String::new()),
                emoji_name: Some(String::new()),
                ..UpdateStatusParams::default()
            },
            "status cleared".to_owned(),
        ),
    };
    let answer = context.client.update_status(&params).await?;
    if context.json {
        crate::output::line(answer.raw_body())?;
    } else {
        crate::output::line(said)?;
    }
    Ok(())
}
