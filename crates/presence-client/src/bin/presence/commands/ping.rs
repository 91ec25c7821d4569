//! `presence ping`: report your own presence, once or as a heartbeat.
//!
//! The heartbeat keeps a service or bot account shown as online. It stops
//! after `--count` reports, or on Ctrl-C or SIGTERM (so a service manager
//! can stop it cleanly). A report that fails because the server is briefly
//! away is logged and the loop goes on; a refusal (bad key, deactivated
//! account) ends it, since repeating cannot help.

use std::future::Future;
use std::time::Duration;

use presence_client::Error;
use presence_client::RetryPolicy;
use presence_client::types::ReportedStatus;

use super::Context;
use crate::cli::{PingArgs, StatusArg};
use crate::failure::describe_request_error;

/// Reports presence once, or every `--every` until stopped.
pub async fn run(context: &Context, args: &PingArgs) -> anyhow::Result<()> {
    let status = match args.status {
        StatusArg::Active => ReportedStatus::Active,
        StatusArg::Idle => ReportedStatus::Idle,
    };
    let word = match status {
        ReportedStatus::Active => "active",
        ReportedStatus::Idle => "idle",
    };
    let Some(every) = args.every else {
        let answer = context.client.ping(status).await?;
        if context.json {
            crate::output::line(answer.raw_body())?;
        } else {
            crate::output::line(format!("reported {word} as {}", context.client.email()))?;
        }
        return Ok(());
    };

    let stop = stop_requested();
    tokio::pin!(stop);
    let mut last_failure: Option<Error> = None;
    let mut sent: u64 = 0;
    loop {
        sent += 1;
        let outcome = tokio::select! {
            outcome = context.client.ping(status) => outcome,
            () = &mut stop => break,
        };
        match outcome {
            Ok(answer) => {
                last_failure = None;
                if context.json {
                    crate::output::line(answer.raw_body())?;
                } else {
                    let of = args.count.map_or(String::new(), |n| format!(" of {n}"));
                    crate::output::line(format!("reported {word} ({sent}{of})"))?;
                }
            }
            Err(err) if passes(&err) => {
                let (message, _) = describe_request_error(&err);
                eprintln!(
                    "presence: report {sent} failed: {message}; next try in {}",
                    human(every)
                );
                last_failure = Some(err);
            }
            Err(err) => return Err(err.into()),
        }
        if args.count == Some(sent) {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut stop => break,
        }
    }
    // The exit code tells whether the user was left shown as online.
    match last_failure {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// Failures a later report may not meet: no answer, or a server that is
/// overloaded or failing for the moment.
fn passes(err: &Error) -> bool {
    err.is_transport() || err.status().is_some_and(RetryPolicy::is_retryable_status)
}

fn human(every: Duration) -> String {
    if every.subsec_millis() == 0 {
        format!("{}s", every.as_secs())
    } else {
        format!("{}ms", every.as_millis())
    }
}

/// Completes on Ctrl-C, or on SIGINT or SIGTERM where there are signals.
///
/// The handlers are installed before this returns, so a signal that comes
/// while the first report is under way is not lost.
fn stop_requested() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                // Without handlers the default action (exit) stops us anyway.
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
