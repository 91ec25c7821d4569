//! The wire types' parameter structs, read from a request's [`Params`]:
//! one [`FromParams`] implementation per struct of
//! `presence_types::endpoints`.
//!
//! The structs are shared with the client and the OpenAPI document, and
//! know nothing of the server; how the server reads them is here. Each
//! implementation reads its fields in the order docs/PROTOCOL.md §6 gives
//! the endpoint's refusals, so the first bad parameter is the one named.

use presence_types::ReportedStatus;
use presence_types::endpoints::events::{
    ClientCapabilities, DeleteQueueParams, GetEventsParams, PresenceStreamParams, RegisterParams,
};
use presence_types::endpoints::push_devices::{
    AddAndroidTokenParams, AddApnsTokenParams, RemoveAndroidTokenParams, RemoveApnsTokenParams,
};
use presence_types::endpoints::settings::UpdateSettingsParams;
use presence_types::endpoints::update_presence::UpdatePresenceParams;
use presence_types::endpoints::user_status::UpdateStatusParams;
use presence_types::endpoints::users::GetUsersParams;

use super::{FromParams, Params};
use crate::http::error::{ApiError, Expected};

impl FromParams for UpdatePresenceParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        let status = params.required_str("status")?;
        let status =
            ReportedStatus::parse(status).ok_or_else(|| ApiError::invalid_status(status))?;
        Ok(UpdatePresenceParams {
            status,
            ping_only: params.bool("ping_only")?.unwrap_or(false),
            new_user_input: params.bool("new_user_input")?.unwrap_or(false),
            slim_presence: params.bool("slim_presence")?.unwrap_or(false),
            last_update_id: params.int("last_update_id")?,
            history_limit_days: params.int("history_limit_days")?,
        })
    }
}

impl FromParams for UpdateSettingsParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        Ok(UpdateSettingsParams {
            presence_enabled: params.bool("presence_enabled")?,
            enable_offline_push_notifications: params.bool("enable_offline_push_notifications")?,
        })
    }
}

/// Zulip's parameters in its view's order (only `away` can fail to
/// parse), then this server's `expires_at`.
impl FromParams for UpdateStatusParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        let text = |name: &str| params.str(name).map(str::to_owned);
        Ok(UpdateStatusParams {
            away: params.bool("away")?,
            emoji_code: text("emoji_code"),
            emoji_name: text("emoji_name"),
            reaction_type: text("reaction_type"),
            status_text: text("status_text"),
            expires_at: params.int("expires_at")?,
        })
    }
}

/// `include_bots` is this server's own; Zulip's `client_gravatar` is
/// checked and dropped, since the answer carries no avatars for it to
/// shape.
impl FromParams for GetUsersParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        let include_bots = params.bool("include_bots")?.unwrap_or(false);
        params.bool("client_gravatar")?;
        Ok(GetUsersParams { include_bots })
    }
}

/// Both are required; `token` is asked for first, as Zulip does.
impl FromParams for AddApnsTokenParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        Ok(AddApnsTokenParams {
            token: params.required_str("token")?.to_owned(),
            appid: params.required_str("appid")?.to_owned(),
        })
    }
}

impl FromParams for AddAndroidTokenParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        Ok(AddAndroidTokenParams {
            token: params.required_str("token")?.to_owned(),
        })
    }
}

impl FromParams for RemoveApnsTokenParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        Ok(RemoveApnsTokenParams {
            token: params.required_str("token")?.to_owned(),
        })
    }
}

impl FromParams for RemoveAndroidTokenParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        Ok(RemoveAndroidTokenParams {
            token: params.required_str("token")?.to_owned(),
        })
    }
}

/// Register parameters Zulip accepts that concern messages, not presence:
/// checked for their type, then without effect.
const MESSAGE_BOOLEANS: [&str; 4] = [
    "apply_markdown",
    "client_gravatar",
    "include_subscribers",
    "all_public_streams",
];

/// The presence-shaping parameters first, as the stream reads them; then
/// the event types; then Zulip's message parameters, checked and dropped.
impl FromParams for RegisterParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        let presence: PresenceStreamParams = params.read()?;
        let event_types = params.str_list("event_types")?;
        let fetch_event_types = params.str_list("fetch_event_types")?;
        for name in MESSAGE_BOOLEANS {
            params.bool(name)?;
        }
        params.any_list("narrow")?;
        Ok(RegisterParams {
            event_types,
            fetch_event_types,
            slim_presence: presence.slim_presence,
            presence_history_limit_days: presence.presence_history_limit_days,
            client_capabilities: presence.client_capabilities,
        })
    }
}

impl FromParams for PresenceStreamParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        let client_capabilities = client_capabilities(params)?;
        Ok(PresenceStreamParams {
            slim_presence: params.bool("slim_presence")?.unwrap_or(false),
            presence_history_limit_days: params.int("presence_history_limit_days")?,
            client_capabilities,
        })
    }
}

/// `client_capabilities`: an object whose `simplified_presence_events`, if
/// there, is a boolean; other keys are left alone.
fn client_capabilities(params: &Params) -> Result<Option<ClientCapabilities>, ApiError> {
    const NAME: &str = "client_capabilities";
    const SIMPLIFIED: &str = "simplified_presence_events";
    let Some(object) = params.object(NAME)? else {
        return Ok(None);
    };
    let simplified_presence_events = match object.get(SIMPLIFIED) {
        None => false,
        Some(serde_json::Value::Bool(on)) => *on,
        Some(_) => {
            return Err(ApiError::not_a(
                &format!("{NAME}['{SIMPLIFIED}']"),
                Expected::Boolean,
            ));
        }
    };
    Ok(Some(ClientCapabilities {
        simplified_presence_events,
    }))
}

/// The boolean options Zulip's `GET /events` parses for a queue it would
/// make itself, when `queue_id` is absent (this server never does so,
/// docs/PROTOCOL.md §6.11).
const QUEUE_OPTION_BOOLEANS: [&str; 13] = [
    "apply_markdown",
    "client_gravatar",
    "slim_presence",
    "all_public_streams",
    "bulk_message_deletion",
    "stream_typing_notifications",
    "pronouns_field_type_supported",
    "linkifier_url_template",
    "user_list_incomplete",
    "include_deactivated_groups",
    "archived_channels",
    "empty_topic_name",
    "simplified_presence_events",
];

/// Zulip refuses a missing `queue_id` or `last_event_id` of `GET /events`
/// with a plain `BAD_REQUEST`, not `REQUEST_VARIABLE_MISSING`.
///
/// Zulip's view also parses the options of a queue it would make itself
/// (`event_types`, `narrow`, `lifespan_secs`, `user_client` and
/// [`QUEUE_OPTION_BOOLEANS`]) whether or not it makes one; they are
/// checked for their JSON type here too and then dropped, so that only
/// what Zulip would not parse is reported as ignored.
impl FromParams for GetEventsParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        let queue_id = params
            .str("queue_id")
            .ok_or_else(|| ApiError::missing_plain("queue_id"))?;
        let last_event_id = params
            .int("last_event_id")?
            .ok_or_else(|| ApiError::missing_plain("last_event_id"))?;
        let dont_block = params.bool("dont_block")?.unwrap_or(false);
        for name in QUEUE_OPTION_BOOLEANS {
            params.bool(name)?;
        }
        params.str_list("event_types")?;
        params.any_list("narrow")?;
        params.int("lifespan_secs")?;
        params.str("user_client");
        Ok(GetEventsParams {
            queue_id: queue_id.to_owned(),
            last_event_id,
            dont_block,
        })
    }
}

impl FromParams for DeleteQueueParams {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        Ok(DeleteQueueParams {
            queue_id: params.required_str("queue_id")?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::params::encode_form;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let form = encode_form(pairs.iter().copied());
        Params::parse(None, form.as_bytes()).expect("a form")
    }

    fn refusal<T: FromParams + std::fmt::Debug>(pairs: &[(&str, &str)]) -> String {
        params(pairs).read::<T>().unwrap_err().body.msg
    }

    #[test]
    fn the_first_bad_parameter_is_the_one_refused() {
        // `status` before the rest, whatever the order sent.
        let msg = refusal::<UpdatePresenceParams>(&[("ping_only", "1"), ("status", "away")]);
        assert_eq!(msg, "Invalid status: away");
        // The presence-shaping parameters before the event types.
        let msg = refusal::<RegisterParams>(&[
            ("event_types", "5"),
            ("client_capabilities", "{\"simplified_presence_events\":1}"),
        ]);
        assert_eq!(
            msg,
            "client_capabilities['simplified_presence_events'] is not a boolean"
        );
        // `token` before `appid`.
        let e = params(&[]).read::<AddApnsTokenParams>().unwrap_err();
        assert_eq!(e.body.var_name.as_deref(), Some("token"));
    }

    #[test]
    fn what_is_read_is_used_and_the_rest_ignored() {
        let p = params(&[
            ("narrow", "[]"),
            ("apply_markdown", "true"),
            ("event_types", "[\"presence\"]"),
            ("client_capabilities", "{\"other\":5}"),
            ("mystery", "1"),
        ]);
        let register: RegisterParams = p.read().unwrap();
        assert_eq!(register.event_types, Some(vec!["presence".to_owned()]));
        assert_eq!(
            register.client_capabilities,
            Some(ClientCapabilities::default())
        );
        assert_eq!(p.ignored(), Some(vec!["mystery".to_owned()]));
    }

    #[test]
    fn a_polls_queue_options_are_checked_and_not_reported() {
        let p = params(&[
            ("queue_id", "q"),
            ("last_event_id", "-1"),
            ("apply_markdown", "true"),
            ("event_types", "[\"presence\"]"),
            ("lifespan_secs", "30"),
            ("user_client", "website"),
            ("mystery", "1"),
        ]);
        p.read::<GetEventsParams>().unwrap();
        assert_eq!(p.ignored(), Some(vec!["mystery".to_owned()]));
        let msg = refusal::<GetEventsParams>(&[
            ("queue_id", "q"),
            ("last_event_id", "-1"),
            ("simplified_presence_events", "1"),
        ]);
        assert_eq!(msg, "simplified_presence_events is not a boolean");
    }

    #[test]
    fn a_missing_queue_is_a_plain_refusal_on_get_only() {
        let e = params(&[("last_event_id", "-1")])
            .read::<GetEventsParams>()
            .unwrap_err();
        assert_eq!(e.body.msg, "Missing 'queue_id' argument");
        assert_eq!(e.body.var_name, None);
        let e = params(&[]).read::<DeleteQueueParams>().unwrap_err();
        assert_eq!(e.body.var_name.as_deref(), Some("queue_id"));
    }
}
