//! Requests as users and pages send them, and their answers: status,
//! headers and JSON, every body held to the spec.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::{TestServer, User, contract};

/// An answer: status, headers, and the body parsed as JSON.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` for an empty body, as after HEAD).
    pub body: Value,
}

impl Answer {
    /// Asserts a success answer and returns its body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body["result"], "success", "{}", self.body);
        assert_eq!(self.body["msg"], "", "{}", self.body);
        self.body
    }

    /// Asserts an error answer with this status, code and message.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str, msg: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.body["result"], "error", "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["msg"], msg, "{}", self.body);
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestServer {
    /// `GET path` as a page would send it: the embed key as a Bearer token,
    /// and `origin` as the page's `Origin`.
    pub async fn page_get(&self, key: &str, path: &str, origin: Option<&str>) -> Answer {
        let mut request = self.http.get(self.url(path)).bearer_auth(key);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request).await
    }

    /// The URL of an API path (`/users/me` becomes `{base}/api/v1/users/me`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    /// Sends a request and reads the answer, holding its body to the spec.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let (client, request) = request.build_split();
        let request = request.expect("a valid request");
        let method = request.method().as_str().to_owned();
        let path = request.url().path().to_owned();
        let response = client
            .execute(request)
            .await
            .expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        if !bytes.is_empty() {
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "every body is JSON"
            );
        }
        if !body.is_null() {
            contract::check(&method, &path, status.as_u16(), &body);
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request builder with the user's Basic credentials.
    pub fn request(
        &self,
        method: reqwest::Method,
        user: &User,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth(&user.email, Some(&user.key))
    }

    /// `GET path` as `user`.
    pub async fn get(&self, user: &User, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::GET, user, path))
            .await
    }

    /// `POST path` as `user` with a form body.
    pub async fn post(&self, user: &User, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.request(reqwest::Method::POST, user, path).form(form))
            .await
    }

    /// `PATCH path` as `user` with a form body.
    pub async fn patch(&self, user: &User, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.request(reqwest::Method::PATCH, user, path).form(form))
            .await
    }

    /// `DELETE path` as `user` with a form body.
    pub async fn delete(&self, user: &User, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.request(reqwest::Method::DELETE, user, path).form(form))
            .await
    }

    /// Reports presence from a named client and checks that it succeeded.
    pub async fn report(&self, user: &User, client: &str, status: &str) {
        self.post(
            user,
            "/users/me/presence",
            &[
                ("status", status),
                ("client", client),
                ("ping_only", "true"),
            ],
        )
        .await
        .ok();
    }

    /// The single-user GET's `presence` object for `target` (id or email).
    pub async fn presence_of(&self, reader: &User, target: &str) -> Value {
        self.get(reader, &format!("/users/{target}/presence"))
            .await
            .ok()["presence"]
            .take()
    }

    /// The client names of `target`'s single-user presence as `reader`
    /// sees it, sorted: the entries, not `aggregated` nor the modern
    /// timestamps that stand beside them.
    pub async fn clients_of(&self, reader: &User, target: &str) -> Vec<String> {
        client_names(&self.presence_of(reader, target).await)
    }

    /// [`clients_of`](Self::clients_of), but none (rather than a failed
    /// assertion) while the server has no presence data for `target`: for
    /// waiting until a node has learned of a user's first records.
    pub async fn clients_if_any(&self, reader: &User, target: &str) -> Vec<String> {
        let answer = self.get(reader, &format!("/users/{target}/presence")).await;
        let no_data = answer.status == StatusCode::BAD_REQUEST
            && answer.body["msg"]
                .as_str()
                .is_some_and(|msg| msg.starts_with("No presence data"));
        if no_data {
            return Vec::new();
        }
        client_names(&answer.ok()["presence"])
    }

    /// `POST /users/me/presence` with `last_update_id` (and idle status from a
    /// reader's own client), returning the body.
    pub async fn incremental(&self, reader: &User, last_update_id: i64) -> Value {
        let id = last_update_id.to_string();
        self.post(
            reader,
            "/users/me/presence",
            &[
                ("status", "idle"),
                ("client", "reader"),
                ("last_update_id", &id),
            ],
        )
        .await
        .ok()
    }
}

/// The client names of a single-user `presence` object, sorted: its
/// entries, not `aggregated` nor the modern timestamps beside them.
fn client_names(presence: &Value) -> Vec<String> {
    let mut clients: Vec<String> = presence
        .as_object()
        .expect("a presence object")
        .iter()
        .filter(|(name, entry)| *name != "aggregated" && entry.is_object())
        .map(|(name, _)| name.clone())
        .collect();
    clients.sort();
    clients
}
