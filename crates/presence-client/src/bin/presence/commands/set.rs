//! `presence set`: change your presence settings.

use presence_client::types::endpoints::settings::UpdateSettingsParams;

use super::Context;
use crate::cli::{SetArgs, Toggle};

/// `--invisible on` turns `presence_enabled` off, and the reverse.
pub async fn run(context: &Context, args: &SetArgs) -> anyhow::Result<()> {
    let invisible = args.invisible == Toggle::On;
    let answer = context
        .client
        .update_settings(&UpdateSettingsParams {
            presence_enabled: Some(!invisible),
            enable_offline_push_notifications: None,
        })
        .await?;
    if context.json {
        crate::output::line(answer.raw_body())?;
    } else if invisible {
        crate::output::line("invisible: on (others now see you as offline)")?;
    } else {
        crate::output::line("invisible: off (others see your presence again)")?;
    }
    Ok(())
}
