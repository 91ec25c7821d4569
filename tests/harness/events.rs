//! Event queues and presence streams: registering, polling with bounded
//! waits, waiting for readers, and showing that nothing else happened.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::requests::Answer;
use crate::{PATIENCE, TestServer, User, event_is_about, sse};

impl TestServer {
    /// `POST /register` as `user`; the success body.
    pub async fn register(&self, user: &User, form: &[(&str, &str)]) -> Value {
        self.post(user, "/register", form).await.ok()
    }

    /// `GET /events` as `user`.
    pub async fn poll(
        &self,
        user: &User,
        queue_id: &str,
        last_event_id: i64,
        dont_block: bool,
    ) -> Answer {
        let last = last_event_id.to_string();
        let dont_block = if dont_block { "true" } else { "false" };
        let request = self.request(reqwest::Method::GET, user, "/events").query(&[
            ("queue_id", queue_id),
            ("last_event_id", &last),
            ("dont_block", dont_block),
        ]);
        tokio::time::timeout(PATIENCE, self.send(request))
            .await
            .expect("GET /events answers in time")
    }

    /// Long-polls a queue until it holds `presence` events after `*last`,
    /// acknowledging heartbeats on the way; returns those events and moves
    /// `*last` past them.
    pub async fn next_presence(&self, user: &User, queue_id: &str, last: &mut i64) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(
                Instant::now() < deadline,
                "no presence event within {PATIENCE:?}"
            );
            let body = self.poll(user, queue_id, *last, false).await.ok();
            let events = body["events"].as_array().cloned().unwrap_or_default();
            for event in &events {
                *last = (*last).max(event["id"].as_i64().expect("an event id"));
            }
            let presence: Vec<Value> = events
                .into_iter()
                .filter(|e| e["type"] == "presence")
                .collect();
            if !presence.is_empty() {
                return presence;
            }
        }
    }

    /// Long-polls a queue until it holds events of type `kind` after
    /// `*last`, acknowledging the others on the way; returns those events
    /// and moves `*last` past everything read.
    pub async fn next_of_kind(
        &self,
        user: &User,
        queue_id: &str,
        last: &mut i64,
        kind: &str,
    ) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(
                Instant::now() < deadline,
                "no {kind} event within {PATIENCE:?}"
            );
            let body = self.poll(user, queue_id, *last, false).await.ok();
            let events = body["events"].as_array().cloned().unwrap_or_default();
            for event in &events {
                *last = (*last).max(event["id"].as_i64().expect("an event id"));
            }
            let found: Vec<Value> = events.into_iter().filter(|e| e["type"] == kind).collect();
            if !found.is_empty() {
                return found;
            }
        }
    }

    /// Waits until `n` event queues have a reader waiting on them (a
    /// long-poll of `GET /events`, or a stream): each such request has
    /// reached its queue, and what happens to the queue now reaches it.
    pub async fn until_waiting(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let waiting = self.service.waiting_readers();
            if waiting >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} of {n} queues have a reader waiting after {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Creates a user of `realm` with presence off, for
    /// [`TestServer::assert_no_news`]; turning presence off before any
    /// report makes no event.
    pub async fn marker(&self, realm: &str) -> User {
        let marker = self
            .create_user(realm, &format!("marker@{realm}.test"), false)
            .await;
        self.patch(&marker, "/settings", &[("presence_enabled", "false")])
            .await
            .ok();
        marker
    }

    /// Asserts that a queue of `marker`'s realm gets no presence event
    /// after `*last`, neither from what was acknowledged so far nor from
    /// anything due by the server's clock as it is, and moves `*last` past
    /// what it read.
    ///
    /// Instead of waiting a while and finding nothing, it makes two events
    /// it knows and checks that they are the first to come: `marker` (see
    /// [`TestServer::marker`]) turns presence on, then off again, which
    /// leaves it with nothing that ages. An acknowledged change has its
    /// event queued already. The writer takes the second change in a turn
    /// of its loop after the one that took the first, and ends every turn
    /// by publishing the idle and offline transitions due by the clock; so
    /// an event due now would come before the second marker event.
    pub async fn assert_no_news(
        &self,
        reader: &User,
        queue_id: &str,
        last: &mut i64,
        marker: &User,
    ) {
        for on in ["true", "false"] {
            self.patch(
                marker,
                "/settings",
                &[("presence_enabled", on), ("client", "marker")],
            )
            .await
            .ok();
        }
        let mut markers = 0;
        while markers < 2 {
            for event in self.next_presence(reader, queue_id, last).await {
                assert!(
                    event_is_about(&event, marker.id),
                    "an event came before the marker's: {event}"
                );
                markers += 1;
            }
        }
        assert_eq!(markers, 2, "the marker's two events, and no more");
    }

    /// Opens `GET /presence/stream` as `user`, resuming after
    /// `last_event_id` if given.
    pub async fn open_stream(
        &self,
        user: &User,
        query: &[(&str, &str)],
        last_event_id: Option<&str>,
    ) -> sse::EventStream {
        let mut request = self
            .request(reqwest::Method::GET, user, "/presence/stream")
            .query(query);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the stream opens in time")
            .expect("the stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        sse::EventStream::new(response)
    }
}

impl TestServer {
    /// Opens the presence stream as the web components do: with an embed
    /// key, the modern format and modern events.
    pub async fn open_page_stream(&self, key: &str) -> sse::EventStream {
        let request = self
            .http
            .get(self.url("/presence/stream"))
            .bearer_auth(key)
            .query(&[
                ("slim_presence", "true"),
                (
                    "client_capabilities",
                    r#"{"simplified_presence_events":true}"#,
                ),
            ]);
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the stream opens in time")
            .expect("the stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        sse::EventStream::new(response)
    }
}
