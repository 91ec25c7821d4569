//! The route table: which paths exist and which methods each accepts.
//!
//! Routing is by hand over path segments: the API is small and fixed, and a
//! table makes 404 and 405 (with `allowed_methods`) fall out of one lookup.

use std::borrow::Cow;

use http::Method;

use super::error::ApiError;
use super::health::Probe;
use super::params::decode_path_segment;

/// The prefix of every API path.
pub const API_PREFIX: &str = "/api/v1";

/// An endpoint the server serves. A path value is borrowed from the
/// request's path unless it had escapes to decode (routing makes no
/// allocation for the usual request); [`Route::into_owned`] keeps it past
/// the request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'p> {
    /// `GET /server_settings`.
    ServerSettings,
    /// `GET /users/{user_id_or_email}/presence`, with the decoded path value.
    UserPresence(Cow<'p, str>),
    /// `GET /realm/presence`.
    RealmPresence,
    /// `POST /users/me/presence`.
    UpdatePresence,
    /// `GET /users/me`.
    OwnUser,
    /// `GET /users`.
    Users,
    /// `PATCH /settings`.
    UpdateSettings,
    /// `POST /users/me/status`.
    UpdateStatus,
    /// `GET /users/{user_id}/status`, with the id as the path gives it.
    UserStatus(Cow<'p, str>),
    /// `POST /users/me/apns_device_token`.
    AddApnsToken,
    /// `DELETE /users/me/apns_device_token`.
    RemoveApnsToken,
    /// `POST /users/me/android_gcm_reg_id`.
    AddAndroidToken,
    /// `DELETE /users/me/android_gcm_reg_id`.
    RemoveAndroidToken,
    /// `POST /register`.
    Register,
    /// `GET /events`.
    GetEvents,
    /// `DELETE /events`.
    DeleteQueue,
    /// `GET /presence/stream`.
    PresenceStream,
    /// `OPTIONS` on an endpoint that pages may call: a browser's CORS
    /// preflight.
    Preflight,
    /// A file of the web embed, outside the API.
    Asset(Asset),
    /// `GET /health/live` or `GET /health/ready`, outside the API.
    Health(Probe),
    /// `GET /metrics`, outside the API: Prometheus's scrape.
    Metrics,
}

/// The files of the web embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `GET /embed/presence.js`: the web components.
    Components,
    /// `GET /embed/directory.js`: the who's-online page's own script.
    DirectoryScript,
    /// `GET /directory`: the who's-online page.
    DirectoryPage,
}

impl Route<'_> {
    /// The route with its path value, if any, its own: for work that
    /// outlives the request's head.
    pub fn into_owned(self) -> Route<'static> {
        match self {
            Route::UserPresence(target) => Route::UserPresence(Cow::Owned(target.into_owned())),
            Route::UserStatus(id) => Route::UserStatus(Cow::Owned(id.into_owned())),
            Route::ServerSettings => Route::ServerSettings,
            Route::RealmPresence => Route::RealmPresence,
            Route::UpdatePresence => Route::UpdatePresence,
            Route::OwnUser => Route::OwnUser,
            Route::Users => Route::Users,
            Route::UpdateSettings => Route::UpdateSettings,
            Route::UpdateStatus => Route::UpdateStatus,
            Route::AddApnsToken => Route::AddApnsToken,
            Route::RemoveApnsToken => Route::RemoveApnsToken,
            Route::AddAndroidToken => Route::AddAndroidToken,
            Route::RemoveAndroidToken => Route::RemoveAndroidToken,
            Route::Register => Route::Register,
            Route::GetEvents => Route::GetEvents,
            Route::DeleteQueue => Route::DeleteQueue,
            Route::PresenceStream => Route::PresenceStream,
            Route::Preflight => Route::Preflight,
            Route::Asset(asset) => Route::Asset(asset),
            Route::Health(probe) => Route::Health(probe),
            Route::Metrics => Route::Metrics,
        }
    }

    /// Whether the route needs an authenticated caller.
    pub fn needs_auth(&self) -> bool {
        !matches!(
            self,
            Route::ServerSettings
                | Route::Preflight
                | Route::Asset(_)
                | Route::Health(_)
                | Route::Metrics
        )
    }

    /// Whether a page may call the route with an embed key: the reads of a
    /// realm's presence and directory, nothing else.
    pub fn is_embeddable(&self) -> bool {
        matches!(
            self,
            Route::UserPresence(_) | Route::RealmPresence | Route::Users | Route::PresenceStream
        )
    }
}

/// What metrics count requests by: a route without its data, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// No route: an unknown path, or a method its path does not accept.
    Unmatched,
    /// A browser's preflight, of any path.
    Preflight,
    /// `/api/v1/server_settings`.
    ServerSettings,
    /// `/api/v1/users/{user_id_or_email}/presence`.
    UserPresence,
    /// `/api/v1/realm/presence`.
    RealmPresence,
    /// `/api/v1/users/me/presence`.
    OwnPresence,
    /// `/api/v1/users/me/status`.
    OwnStatus,
    /// `/api/v1/users/{user_id}/status`.
    UserStatus,
    /// `/api/v1/users/me`.
    OwnUser,
    /// `/api/v1/users`.
    Users,
    /// `/api/v1/settings`.
    Settings,
    /// `/api/v1/users/me/apns_device_token`.
    ApnsToken,
    /// `/api/v1/users/me/android_gcm_reg_id`.
    AndroidToken,
    /// `/api/v1/register`.
    Register,
    /// `/api/v1/events`.
    Events,
    /// `/api/v1/presence/stream`.
    PresenceStream,
    /// `/embed/presence.js`.
    Components,
    /// `/embed/directory.js`.
    DirectoryScript,
    /// `/directory`.
    DirectoryPage,
    /// `/health/live`.
    Live,
    /// `/health/ready`.
    Ready,
    /// `/metrics`.
    Metrics,
}

impl Endpoint {
    /// Every endpoint, each at the index its discriminant gives.
    pub const ALL: [Endpoint; 22] = [
        Endpoint::Unmatched,
        Endpoint::Preflight,
        Endpoint::ServerSettings,
        Endpoint::UserPresence,
        Endpoint::RealmPresence,
        Endpoint::OwnPresence,
        Endpoint::OwnStatus,
        Endpoint::UserStatus,
        Endpoint::OwnUser,
        Endpoint::Users,
        Endpoint::Settings,
        Endpoint::ApnsToken,
        Endpoint::AndroidToken,
        Endpoint::Register,
        Endpoint::Events,
        Endpoint::PresenceStream,
        Endpoint::Components,
        Endpoint::DirectoryScript,
        Endpoint::DirectoryPage,
        Endpoint::Live,
        Endpoint::Ready,
        Endpoint::Metrics,
    ];

    /// The `route` label in metrics: the path template, as [`ROUTES`]
    /// lists it, or `unmatched`, or `preflight`.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Unmatched => "unmatched",
            Endpoint::Preflight => "preflight",
            Endpoint::ServerSettings => "/api/v1/server_settings",
            Endpoint::UserPresence => "/api/v1/users/{user_id_or_email}/presence",
            Endpoint::RealmPresence => "/api/v1/realm/presence",
            Endpoint::OwnPresence => "/api/v1/users/me/presence",
            Endpoint::OwnStatus => "/api/v1/users/me/status",
            Endpoint::UserStatus => "/api/v1/users/{user_id}/status",
            Endpoint::OwnUser => "/api/v1/users/me",
            Endpoint::Users => "/api/v1/users",
            Endpoint::Settings => "/api/v1/settings",
            Endpoint::ApnsToken => "/api/v1/users/me/apns_device_token",
            Endpoint::AndroidToken => "/api/v1/users/me/android_gcm_reg_id",
            Endpoint::Register => "/api/v1/register",
            Endpoint::Events => "/api/v1/events",
            Endpoint::PresenceStream => "/api/v1/presence/stream",
            Endpoint::Components => "/embed/presence.js",
            Endpoint::DirectoryScript => "/embed/directory.js",
            Endpoint::DirectoryPage => "/directory",
            Endpoint::Live => "/health/live",
            Endpoint::Ready => "/health/ready",
            Endpoint::Metrics => "/metrics",
        }
    }

    /// Every endpoint's label, in the order of [`Endpoint::ALL`].
    pub fn labels() -> Vec<&'static str> {
        Endpoint::ALL.iter().map(|e| e.label()).collect()
    }
}

impl Route<'_> {
    /// The endpoint metrics count the route's requests under.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Route::ServerSettings => Endpoint::ServerSettings,
            Route::UserPresence(_) => Endpoint::UserPresence,
            Route::RealmPresence => Endpoint::RealmPresence,
            Route::UpdatePresence => Endpoint::OwnPresence,
            Route::UpdateStatus => Endpoint::OwnStatus,
            Route::UserStatus(_) => Endpoint::UserStatus,
            Route::OwnUser => Endpoint::OwnUser,
            Route::Users => Endpoint::Users,
            Route::UpdateSettings => Endpoint::Settings,
            Route::AddApnsToken | Route::RemoveApnsToken => Endpoint::ApnsToken,
            Route::AddAndroidToken | Route::RemoveAndroidToken => Endpoint::AndroidToken,
            Route::Register => Endpoint::Register,
            Route::GetEvents | Route::DeleteQueue => Endpoint::Events,
            Route::PresenceStream => Endpoint::PresenceStream,
            Route::Preflight => Endpoint::Preflight,
            Route::Asset(Asset::Components) => Endpoint::Components,
            Route::Asset(Asset::DirectoryScript) => Endpoint::DirectoryScript,
            Route::Asset(Asset::DirectoryPage) => Endpoint::DirectoryPage,
            Route::Health(Probe::Live) => Endpoint::Live,
            Route::Health(Probe::Ready) => Endpoint::Ready,
            Route::Metrics => Endpoint::Metrics,
        }
    }
}

/// The `method` labels in metrics: the methods the server serves by name,
/// then `other` for the rest (which no route accepts), so that a client
/// cannot make new series by inventing methods.
pub const METHOD_LABELS: [&str; 8] = [
    "GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "PUT", "other",
];

/// A request method's index in [`METHOD_LABELS`].
pub fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PATCH => 3,
        Method::DELETE => 4,
        Method::OPTIONS => 5,
        Method::PUT => 6,
        _ => 7,
    }
}

/// Every (method, path template) the server serves, for documentation and
/// for checking the OpenAPI spec against the router.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/server_settings"),
    ("GET", "/api/v1/users/{user_id_or_email}/presence"),
    ("GET", "/api/v1/realm/presence"),
    ("POST", "/api/v1/users/me/presence"),
    ("GET", "/api/v1/users/me"),
    ("GET", "/api/v1/users"),
    ("PATCH", "/api/v1/settings"),
    ("POST", "/api/v1/users/me/status"),
    ("GET", "/api/v1/users/{user_id}/status"),
    ("POST", "/api/v1/users/me/apns_device_token"),
    ("DELETE", "/api/v1/users/me/apns_device_token"),
    ("POST", "/api/v1/users/me/android_gcm_reg_id"),
    ("DELETE", "/api/v1/users/me/android_gcm_reg_id"),
    ("POST", "/api/v1/register"),
    ("GET", "/api/v1/events"),
    ("DELETE", "/api/v1/events"),
    ("GET", "/api/v1/presence/stream"),
    ("OPTIONS", "/api/v1/users/{user_id_or_email}/presence"),
    ("OPTIONS", "/api/v1/realm/presence"),
    ("OPTIONS", "/api/v1/users"),
    ("OPTIONS", "/api/v1/presence/stream"),
    ("GET", "/embed/presence.js"),
    ("GET", "/embed/directory.js"),
    ("GET", "/directory"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
];

/// A path's resource, before the method is looked at.
enum Resource<'p> {
    ServerSettings,
    UserPresence(Cow<'p, str>),
    OwnPresence,
    RealmPresence,
    OwnUser,
    Users,
    Settings,
    OwnStatus,
    UserStatus(Cow<'p, str>),
    ApnsToken,
    AndroidToken,
    Register,
    Events,
    PresenceStream,
    Asset(Asset),
    Health(Probe),
    Metrics,
}

fn resource(path: &str) -> Result<Option<Resource<'_>>, ApiError> {
    let asset = match path {
        "/embed/presence.js" => Some(Asset::Components),
        "/embed/directory.js" => Some(Asset::DirectoryScript),
        "/directory" => Some(Asset::DirectoryPage),
        "/health/live" => return Ok(Some(Resource::Health(Probe::Live))),
        "/health/ready" => return Ok(Some(Resource::Health(Probe::Ready))),
        "/metrics" => return Ok(Some(Resource::Metrics)),
        _ => None,
    };
    if let Some(asset) = asset {
        return Ok(Some(Resource::Asset(asset)));
    }
    let Some(rest) = path
        .strip_prefix(API_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Ok(None);
    };
    // The most frequent path, a single user's presence by a value that
    // needs no decoding, is taken in one look at the value's bytes.
    if let Some(target) = plain_user_presence_target(rest) {
        return Ok(Some(Resource::UserPresence(Cow::Borrowed(target))));
    }
    // The next most frequent, every client's report each minute.
    if rest == "users/me/presence" {
        return Ok(Some(Resource::OwnPresence));
    }
    // No path served has more than three segments: a longer one is not
    // collected at all. (Split by hand: `str::split` costs more than the
    // rest of routing.)
    let mut segments = [""; 3];
    let mut count = 0;
    let mut rest = Some(rest);
    while let Some(text) = rest {
        if count == segments.len() {
            return Ok(None);
        }
        let (segment, after) = match text.bytes().position(|b| b == b'/') {
            Some(slash) => (&text[..slash], Some(&text[slash + 1..])),
            None => (text, None),
        };
        segments[count] = segment;
        count += 1;
        rest = after;
    }
    Ok(Some(match &segments[..count] {
        ["server_settings"] => Resource::ServerSettings,
        ["users", "me", "presence"] => Resource::OwnPresence,
        ["users", target, "presence"] if !target.is_empty() => {
            // The path is UTF-8 already: only an escape can make the value
            // something else.
            let value = if target.as_bytes().contains(&b'%') {
                let decoded = decode_path_segment(target.as_bytes())
                    .ok_or_else(ApiError::path_user_not_utf8)?;
                Cow::Owned(decoded)
            } else {
                Cow::Borrowed(*target)
            };
            Resource::UserPresence(value)
        }
        ["users", "me", "status"] => Resource::OwnStatus,
        // Zulip's route takes digits only; anything else is no path of it.
        ["users", id, "status"] if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            Resource::UserStatus(Cow::Borrowed(*id))
        }
        ["realm", "presence"] => Resource::RealmPresence,
        ["users", "me"] => Resource::OwnUser,
        ["users"] => Resource::Users,
        ["settings"] => Resource::Settings,
        ["users", "me", "apns_device_token"] => Resource::ApnsToken,
        ["users", "me", "android_gcm_reg_id"] => Resource::AndroidToken,
        ["register"] => Resource::Register,
        ["events"] => Resource::Events,
        ["presence", "stream"] => Resource::PresenceStream,
        _ => return Ok(None),
    }))
}

/// The value of `users/{value}/presence` (the path after the API prefix)
/// if it is another user's, whole and without escapes; anything else is
/// left to the general split.
fn plain_user_presence_target(rest: &str) -> Option<&str> {
    let target = rest.strip_prefix("users/")?.strip_suffix("/presence")?;
    let plain =
        !target.is_empty() && target != "me" && !target.bytes().any(|b| b == b'/' || b == b'%');
    plain.then_some(target)
}

/// Finds the route for a request; 404 for an unknown path, 405 for a known
/// path with a method it does not accept. `HEAD` is served wherever `GET` is.
pub fn route<'p>(method: &Method, path: &'p str) -> Result<Route<'p>, ApiError> {
    let resource = resource(path)?.ok_or_else(ApiError::not_found)?;
    let get = *method == Method::GET || *method == Method::HEAD;
    let post = *method == Method::POST;
    let delete = *method == Method::DELETE;
    let options = *method == Method::OPTIONS;
    const GET: &[&str] = &["GET", "HEAD"];
    // What pages may call is also open to their browsers' preflights.
    const READ: &[&str] = &["GET", "HEAD", "OPTIONS"];
    let read = |route: Route<'p>| {
        if get {
            Some(route)
        } else if options {
            Some(Route::Preflight)
        } else {
            None
        }
    };
    let (route, allowed): (Option<Route<'p>>, &[&str]) = match resource {
        Resource::ServerSettings => (get.then_some(Route::ServerSettings), GET),
        Resource::UserPresence(target) => (read(Route::UserPresence(target)), READ),
        Resource::OwnPresence => (post.then_some(Route::UpdatePresence), &["POST"]),
        Resource::RealmPresence => (read(Route::RealmPresence), READ),
        Resource::OwnUser => (get.then_some(Route::OwnUser), GET),
        Resource::Users => (read(Route::Users), READ),
        Resource::Settings => (
            (*method == Method::PATCH).then_some(Route::UpdateSettings),
            &["PATCH"],
        ),
        Resource::OwnStatus => (post.then_some(Route::UpdateStatus), &["POST"]),
        Resource::UserStatus(id) => (get.then_some(Route::UserStatus(id)), GET),
        Resource::ApnsToken => (
            if post {
                Some(Route::AddApnsToken)
            } else if delete {
                Some(Route::RemoveApnsToken)
            } else {
                None
            },
            &["POST", "DELETE"],
        ),
        Resource::AndroidToken => (
            if post {
                Some(Route::AddAndroidToken)
            } else if delete {
                Some(Route::RemoveAndroidToken)
            } else {
                None
            },
            &["POST", "DELETE"],
        ),
        Resource::Register => (post.then_some(Route::Register), &["POST"]),
        Resource::Events => (
            if get {
                Some(Route::GetEvents)
            } else if delete {
                Some(Route::DeleteQueue)
            } else {
                None
            },
            &["GET", "HEAD", "DELETE"],
        ),
        Resource::PresenceStream => (read(Route::PresenceStream), READ),
        Resource::Asset(asset) => (get.then_some(Route::Asset(asset)), GET),
        Resource::Health(probe) => (get.then_some(Route::Health(probe)), GET),
        Resource::Metrics => (get.then_some(Route::Metrics), GET),
    };
    route.ok_or_else(|| ApiError::method_not_allowed(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve() {
        assert_eq!(
            route(&Method::GET, "/api/v1/users/a%40b.c/presence").unwrap(),
            Route::UserPresence("a@b.c".into())
        );
        assert_eq!(
            route(&Method::HEAD, "/api/v1/realm/presence").unwrap(),
            Route::RealmPresence
        );
        assert_eq!(
            route(&Method::POST, "/api/v1/users/me/presence").unwrap(),
            Route::UpdatePresence
        );
    }

    #[test]
    fn a_plain_value_is_borrowed_and_only_whole_values_are_taken() {
        let plain = route(&Method::GET, "/api/v1/users/a@b.c/presence").unwrap();
        assert!(matches!(plain, Route::UserPresence(Cow::Borrowed("a@b.c"))));
        let decoded = route(&Method::GET, "/api/v1/users/%41/presence").unwrap();
        assert!(matches!(decoded, Route::UserPresence(Cow::Owned(ref v)) if v == "A"));
        for path in [
            "/api/v1/users//presence",
            "/api/v1/users/a/b/presence",
            "/api/v1/users/a/presence/",
            "/api/v1/users/presence",
        ] {
            assert_eq!(route(&Method::GET, path).unwrap_err().status, 404, "{path}");
        }
        assert_eq!(
            route(&Method::GET, "/api/v1/users/me/presence")
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/users/7/presence")
                .unwrap()
                .into_owned(),
            Route::UserPresence(Cow::Owned("7".to_owned()))
        );
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "/",
            "/api/v1",
            "/api/v1/",
            "/api/v1/nope",
            "/api/v1/users/",
            "/api/v2/users",
        ] {
            assert_eq!(route(&Method::GET, path).unwrap_err().status, 404, "{path}");
        }
        let e = route(&Method::GET, "/api/v1/users/me/presence").unwrap_err();
        assert_eq!(e.status, 405);
        assert_eq!(e.body.allowed_methods, Some(vec!["POST".to_owned()]));
        let e = route(&Method::PUT, "/api/v1/users/me/apns_device_token").unwrap_err();
        assert_eq!(e.status, 405);
        let e = route(&Method::POST, "/api/v1/events").unwrap_err();
        assert_eq!(
            e.body.allowed_methods,
            Some(vec![
                "GET".to_owned(),
                "HEAD".to_owned(),
                "DELETE".to_owned()
            ])
        );
    }

    #[test]
    fn pages_may_preflight_only_what_they_may_call() {
        for path in [
            "/api/v1/realm/presence",
            "/api/v1/users/7/presence",
            "/api/v1/users",
            "/api/v1/presence/stream",
        ] {
            let route = route(&Method::OPTIONS, path).unwrap();
            assert_eq!(route, Route::Preflight, "{path}");
        }
        for path in [
            "/api/v1/users/me/presence",
            "/api/v1/register",
            "/api/v1/events",
        ] {
            assert_eq!(
                route(&Method::OPTIONS, path).unwrap_err().status,
                405,
                "{path}"
            );
        }
        assert!(Route::RealmPresence.is_embeddable());
        assert!(!Route::Register.is_embeddable() && !Route::OwnUser.is_embeddable());
        assert_eq!(
            route(&Method::GET, "/embed/presence.js").unwrap(),
            Route::Asset(Asset::Components)
        );
        assert_eq!(route(&Method::POST, "/directory").unwrap_err().status, 405);
    }

    #[test]
    fn probes_resolve_outside_the_api_and_need_no_caller() {
        let live = route(&Method::GET, "/health/live").unwrap();
        assert_eq!(live, Route::Health(Probe::Live));
        assert!(!live.needs_auth());
        let ready = route(&Method::HEAD, "/health/ready").unwrap();
        assert_eq!(ready, Route::Health(Probe::Ready));
        assert_eq!(
            route(&Method::POST, "/health/ready").unwrap_err().status,
            405
        );
        assert_eq!(route(&Method::GET, "/health").unwrap_err().status, 404);
        assert_eq!(
            route(&Method::GET, "/api/v1/health/live")
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn every_listed_route_resolves_and_is_labelled_by_its_template() {
        for (method, template) in ROUTES {
            let path = template
                .replace("{user_id_or_email}", "7")
                .replace("{user_id}", "7");
            let method: Method = method.parse().unwrap();
            let route = route(&method, &path).unwrap();
            if route != Route::Preflight {
                assert_eq!(route.endpoint().label(), *template, "{method} {path}");
            }
        }
    }

    #[test]
    fn endpoints_sit_at_their_own_index() {
        for (i, endpoint) in Endpoint::ALL.iter().enumerate() {
            assert_eq!(*endpoint as usize, i, "{endpoint:?}");
        }
    }

    #[test]
    fn methods_are_labelled_by_name_and_invented_ones_share_one_label() {
        for method in ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "PUT"] {
            let index = method_index(&method.parse().unwrap());
            assert_eq!(METHOD_LABELS[index], method);
        }
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(METHOD_LABELS[method_index(&invented)], "other");
    }
}
