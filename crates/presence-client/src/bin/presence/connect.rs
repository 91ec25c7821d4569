//! A client from the connection flags, the environment and the zuliprc.

use presence_client::config::{CredentialSources, Environment, PartialCredentials};
use presence_client::{Client, ClientBuilder, ConfigError, RetryPolicy};

use crate::cli::ConnectionArgs;

/// The client the flags describe; settings the flags leave open come from
/// the environment, then the zuliprc.
pub fn client(args: &ConnectionArgs) -> Result<Client, ConfigError> {
    // An empty flag counts as not given, as an empty variable does.
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let sources = CredentialSources {
        explicit: PartialCredentials {
            site: given(&args.site),
            email: given(&args.email),
            api_key: given(&args.api_key),
        },
        config_file: args.config.clone(),
        env: Environment::from_process(),
    };
    let mut builder = ClientBuilder::from_sources(&sources)?
        .timeout(args.timeout)
        .retry_policy(RetryPolicy {
            max_retries: args.retries,
            ..RetryPolicy::default()
        });
    if let Some(name) = given(&args.client) {
        builder = builder.client_name(name);
    }
    builder.build()
}
