//! The [`Client`]: one async method per endpoint of the presence API.
//!
//! Every method sends one request (GETs may be retried, see
//! [`RetryPolicy`]), decodes the answer into the `presence-types` value the
//! contract documents, and returns it with its status, headers and raw body
//! in a [`ResponseValue`]. A refusal comes back as [`Error::Api`] with the
//! server's error body.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use presence_types::endpoints::EmptySuccess;
use presence_types::endpoints::events::RegisterResponse;
use presence_types::endpoints::get_realm_presence::GetRealmPresenceResponse;
use presence_types::endpoints::get_user_presence::GetUserPresenceResponse;
use presence_types::endpoints::push_devices::{
    AddAndroidTokenParams, AddApnsTokenParams, RemoveAndroidTokenParams, RemoveApnsTokenParams,
};
use presence_types::endpoints::server_settings::ServerSettingsResponse;
use presence_types::endpoints::settings::UpdateSettingsParams;
use presence_types::endpoints::update_presence::{UpdatePresenceParams, UpdatePresenceResponse};
use presence_types::endpoints::user_status::{
    GetUserStatusResponse, UpdateStatusParams, UserStatus,
};
use presence_types::endpoints::users::{GetOwnUserResponse, GetUsersResponse};
use presence_types::{ErrorBody, ReportedStatus};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::builder::ClientBuilder;
use crate::error::Error;
use crate::params::Params;
use crate::response::ResponseValue;
use crate::retry::RetryPolicy;
use crate::user_ref::UserRef;

/// An async client for one account on one presence server.
///
/// Cheap to clone: clones share one connection pool.
///
/// ```no_run
/// use presence_client::{Client, Reachability, DEFAULT_OFFLINE_THRESHOLD, unix_now};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::builder("chat.example.com", "bot@example.com", "0123456789abcdefghijABCDEFGHIJ01")
///     .build()?;
/// let answer = client.user_presence("alice@example.com").await?;
/// let state = Reachability::of(&answer.presence, DEFAULT_OFFLINE_THRESHOLD, unix_now());
/// println!("alice is {}", state.as_str());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    email: String,
    api_key: String,
    client_name: Option<String>,
    retry: RetryPolicy,
}

/// Whether a request carries the account's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Basic,
}

/// An answer before decoding: what the retry decision looks at.
struct RawAnswer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl RawAnswer {
    /// `Retry-After` in seconds (the form this API sends; an HTTP date is ignored).
    fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        let secs: f64 = value.trim().parse().ok()?;
        Duration::try_from_secs_f64(secs).ok()
    }
}

impl Client {
    /// A builder from explicit values; see [`ClientBuilder`] for the other ways.
    pub fn builder(
        site: impl Into<String>,
        email: impl Into<String>,
        api_key: impl Into<String>,
    ) -> ClientBuilder {
        ClientBuilder::new(site, email, api_key)
    }

    pub(crate) fn from_parts(
        http: reqwest::Client,
        base_url: String,
        email: String,
        api_key: String,
        client_name: Option<String>,
        retry: RetryPolicy,
    ) -> Client {
        Client {
            http,
            base_url,
            email,
            api_key,
            client_name,
            retry,
        }
    }

    /// The base URL requests go under (`https://chat.example.com/api`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The account's email.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The client name presence is reported under, if one was chosen.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// `GET /server_settings`: what the server is. Needs no credentials, so it
    /// also tells whether the server is reachable at all.
    pub async fn server_settings(&self) -> Result<ResponseValue<ServerSettingsResponse>, Error> {
        self.call(
            Method::GET,
            "server_settings",
            Params::default(),
            Auth::None,
        )
        .await
    }

    /// `GET /users/{user_id_or_email}/presence`: one user's presence per
    /// client, with `aggregated.status` set to `offline` by the server when
    /// the user's last report is older than its offline threshold.
    ///
    /// `user` is an id (`17`), an email (`"alice@example.com"`) or a [`UserRef`].
    pub async fn user_presence(
        &self,
        user: impl Into<UserRef>,
    ) -> Result<ResponseValue<GetUserPresenceResponse>, Error> {
        let path = format!("users/{}/presence", user.into().path_segment());
        self.call(Method::GET, &path, Params::default(), Auth::Basic)
            .await
    }

    /// `GET /realm/presence`: everyone's presence in the legacy format, keyed
    /// by email, with the server's clock in `server_timestamp`.
    pub async fn realm_presence(&self) -> Result<ResponseValue<GetRealmPresenceResponse>, Error> {
        self.call(
            Method::GET,
            "realm/presence",
            Params::default(),
            Auth::Basic,
        )
        .await
    }

    /// `POST /users/me/presence`: reports the caller's status under this
    /// client's name and, unless `ping_only`, returns everyone's presence
    /// (modern format when `last_update_id` or `slim_presence` is set,
    /// legacy otherwise).
    ///
    /// ```no_run
    /// use presence_client::types::ReportedStatus;
    /// use presence_client::types::endpoints::update_presence::UpdatePresenceParams;
    ///
    /// # async fn run(client: presence_client::Client) -> Result<(), presence_client::Error> {
    /// let answer = client
    ///     .update_presence(&UpdatePresenceParams {
    ///         status: ReportedStatus::Active,
    ///         ping_only: false,
    ///         new_user_input: true,
    ///         slim_presence: false,
    ///         last_update_id: Some(-1),
    ///         history_limit_days: None,
    ///     })
    ///     .await?;
    /// println!("next time ask for changes after {:?}", answer.presence_last_update_id);
    /// # Ok(()) }
    /// ```
    pub async fn update_presence(
        &self,
        params: &UpdatePresenceParams,
    ) -> Result<ResponseValue<UpdatePresenceResponse>, Error> {
        let params = Params::default()
            .text("status", status_word(params.status))
            .json("ping_only", params.ping_only)
            .json("new_user_input", params.new_user_input)
            .json("slim_presence", params.slim_presence)
            .json_opt("last_update_id", params.last_update_id)
            .json_opt("history_limit_days", params.history_limit_days)
            .text_opt("client", self.client_name.as_deref());
        self.call(Method::POST, "users/me/presence", params, Auth::Basic)
            .await
    }

    /// Reports the caller's status and asks for nothing back
    /// (`ping_only=true`): the heartbeat that keeps a user shown online.
    pub async fn ping(
        &self,
        status: ReportedStatus,
    ) -> Result<ResponseValue<UpdatePresenceResponse>, Error> {
        self.update_presence(&UpdatePresenceParams {
            status,
            ping_only: true,
            new_user_input: false,
            slim_presence: false,
            last_update_id: None,
            history_limit_days: None,
        })
        .await
    }

    /// `GET /users/me`: the caller's own account.
    pub async fn own_user(&self) -> Result<ResponseValue<GetOwnUserResponse>, Error> {
        self.call(Method::GET, "users/me", Params::default(), Auth::Basic)
            .await
    }

    /// `GET /users`: every user of the caller's organization, deactivated
    /// ones and bots included, ordered by id.
    pub async fn users(&self) -> Result<ResponseValue<GetUsersResponse>, Error> {
        self.call(Method::GET, "users", Params::default(), Auth::Basic)
            .await
    }

    /// `PATCH /settings`: changes the caller's presence settings; a field
    /// left `None` is not sent and stays as it is.
    ///
    /// Turning `presence_enabled` off makes the caller look offline at once;
    /// turning it on records the caller active now under this client's name.
    pub async fn update_settings(
        &self,
        params: &UpdateSettingsParams,
    ) -> Result<ResponseValue<EmptySuccess>, Error> {
        let params = Params::default()
            .json_opt("presence_enabled", params.presence_enabled)
            .json_opt(
                "enable_offline_push_notifications",
                params.enable_offline_push_notifications,
            )
            .text_opt("client", self.client_name.as_deref());
        self.call(Method::PATCH, "settings", params, Auth::Basic)
            .await
    }

    /// `POST /users/me/status`: changes the caller's custom status; a field
    /// left `None` is not sent and stays as it is (`Some("")` clears it).
    /// `expires_at` is the server's extension: Unix seconds at which it
    /// clears the status by itself.
    pub async fn update_status(
        &self,
        params: &UpdateStatusParams,
    ) -> Result<ResponseValue<EmptySuccess>, Error> {
        let params = Params::default()
            .text_opt("status_text", params.status_text.as_deref())
            .json_opt("away", params.away)
            .text_opt("emoji_name", params.emoji_name.as_deref())
            .text_opt("emoji_code", params.emoji_code.as_deref())
            .text_opt("reaction_type", params.reaction_type.as_deref())
            .json_opt("expires_at", params.expires_at)
            .text_opt("client", self.client_name.as_deref());
        self.call(Method::POST, "users/me/status", params, Auth::Basic)
            .await
    }

    /// `GET /users/{user_id}/status`: a user's custom status (an empty
    /// object when none is set).
    pub async fn user_status(
        &self,
        user_id: i64,
    ) -> Result<ResponseValue<GetUserStatusResponse>, Error> {
        let path = format!("users/{user_id}/status");
        self.call(Method::GET, &path, Params::default(), Auth::Basic)
            .await
    }

    /// The custom statuses of everyone in the caller's organization who has
    /// one, keyed by user id: `user_status` of a `POST /register` that
    /// fetches nothing else, whose queue is deleted again at once.
    pub async fn statuses(&self) -> Result<BTreeMap<String, UserStatus>, Error> {
        let params = Params::default()
            .text("event_types", r#"["user_status"]"#)
            .text("fetch_event_types", r#"["user_status"]"#);
        let answer: ResponseValue<RegisterResponse> = self
            .call(Method::POST, "register", params, Auth::Basic)
            .await?;
        let delete = Params::default().text("queue_id", answer.queue_id.clone());
        let _: ResponseValue<EmptySuccess> = self
            .call(Method::DELETE, "events", delete, Auth::Basic)
            .await?;
        Ok(answer.into_inner().user_status.unwrap_or_default())
    }

    /// `POST /users/me/apns_device_token`: registers an iOS device, which
    /// makes the caller `pushable`.
    pub async fn add_apns_token(
        &self,
        params: &AddApnsTokenParams,
    ) -> Result<ResponseValue<EmptySuccess>, Error> {
        let params = Params::default()
            .text("token", &params.token)
            .text("appid", &params.appid);
        self.call(
            Method::POST,
            "users/me/apns_device_token",
            params,
            Auth::Basic,
        )
        .await
    }

    /// `DELETE /users/me/apns_device_token`: removes an iOS device.
    pub async fn remove_apns_token(
        &self,
        params: &RemoveApnsTokenParams,
    ) -> Result<ResponseValue<EmptySuccess>, Error> {
        let params = Params::default().text("token", &params.token);
        self.call(
            Method::DELETE,
            "users/me/apns_device_token",
            params,
            Auth::Basic,
        )
        .await
    }

    /// `POST /users/me/android_gcm_reg_id`: registers an Android device,
    /// which makes the caller `pushable`.
    pub async fn add_android_token(
        &self,
        params: &AddAndroidTokenParams,
    ) -> Result<ResponseValue<EmptySuccess>, Error> {
        let params = Params::default().text("token", &params.token);
        self.call(
            Method::POST,
            "users/me/android_gcm_reg_id",
            params,
            Auth::Basic,
        )
        .await
    }

    /// `DELETE /users/me/android_gcm_reg_id`: removes an Android device.
    pub async fn remove_android_token(
        &self,
        params: &RemoveAndroidTokenParams,
    ) -> Result<ResponseValue<EmptySuccess>, Error> {
        let params = Params::default().text("token", &params.token);
        self.call(
            Method::DELETE,
            "users/me/android_gcm_reg_id",
            params,
            Auth::Basic,
        )
        .await
    }

    /// Sends a request, retrying GETs as the policy allows, and decodes the answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: Params,
        auth: Auth,
    ) -> Result<ResponseValue<T>, Error> {
        let url = format!("{}/v1/{}", self.base_url, path);
        let idempotent = method == Method::GET;
        let mut retry = 0;
        loop {
            let answer = self.send_once(&method, &url, &params, auth).await;
            let wait = match &answer {
                _ if !idempotent => None,
                Err(_) => self.retry.delay(retry, None),
                Ok(raw) if RetryPolicy::is_retryable_status(raw.status) => {
                    self.retry.delay(retry, raw.retry_after())
                }
                Ok(_) => None,
            };
            match wait {
                Some(wait) => {
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                None => return decode(answer.map_err(Error::Transport)?),
            }
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        params: &Params,
        auth: Auth,
    ) -> Result<RawAnswer, reqwest::Error> {
        let mut request = self.http.request(method.clone(), url);
        if auth == Auth::Basic {
            request = request.basic_auth(&self.email, Some(&self.api_key));
        }
        if !params.pairs().is_empty() {
            request = if *method == Method::GET {
                request.query(params.pairs())
            } else {
                request.form(params.pairs())
            };
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }
}

fn status_word(status: ReportedStatus) -> &'static str {
    match status {
        ReportedStatus::Active => "active",
        ReportedStatus::Idle => "idle",
    }
}

/// A success body decodes into `T`; anything else becomes the matching [`Error`].
fn decode<T: DeserializeOwned>(raw: RawAnswer) -> Result<ResponseValue<T>, Error> {
    let RawAnswer {
        status,
        headers,
        body,
    } = raw;
    let text = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() {
        return match serde_json::from_str::<T>(&text) {
            Ok(value) => Ok(ResponseValue::new(value, status, headers, text)),
            Err(source) => Err(Error::InvalidResponse {
                status,
                body: text,
                source,
            }),
        };
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Err(Error::Api {
            status,
            body: Box::new(body),
        }),
        Err(_) => Err(Error::UnexpectedStatus { status, body: text }),
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("email", &self.email)
            .field("api_key", &"<redacted>")
            .field("client_name", &self.client_name)
            .field("retry", &self.retry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> RawAnswer {
        RawAnswer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_sort_into_the_four_cases() {
        let ok: ResponseValue<EmptySuccess> =
            decode(raw(200, r#"{"result":"success","msg":""}"#)).unwrap();
        assert_eq!(ok.raw_body(), r#"{"result":"success","msg":""}"#);

        let e = decode::<EmptySuccess>(raw(
            400,
            r#"{"result":"error","msg":"No such user","code":"BAD_REQUEST"}"#,
        ))
        .unwrap_err();
        assert_eq!(e.api_error().unwrap().msg, "No such user");

        let e = decode::<EmptySuccess>(raw(200, "<html>")).unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }), "{e:?}");

        let e = decode::<EmptySuccess>(raw(502, "<html>bad gateway</html>")).unwrap_err();
        assert!(matches!(e, Error::UnexpectedStatus { .. }), "{e:?}");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut answer = raw(429, "{}");
        answer.headers.insert(RETRY_AFTER, "1.5".parse().unwrap());
        assert_eq!(answer.retry_after(), Some(Duration::from_millis(1500)));
        answer.headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(answer.retry_after(), None);
    }
}
