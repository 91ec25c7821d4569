//! A small Server-Sent Events reader for the presence stream's tests.
//!
//! It reads the response body as it arrives and splits it into messages
//! (blocks ending in a blank line). Every read is bounded by
//! [`crate::PATIENCE`].

use serde_json::Value;

use crate::PATIENCE;

/// One message of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The `id:` field.
    pub id: Option<String>,
    /// The `event:` field.
    pub event: Option<String>,
    /// The `data:` field.
    pub data: Option<String>,
    /// The `retry:` field.
    pub retry: Option<String>,
    /// Comment lines (`: ...`), without the colon.
    pub comments: Vec<String>,
}

impl Message {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("a message with data"))
            .expect("the data is JSON")
    }

    fn parse(block: &str) -> Message {
        let mut message = Message::default();
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                message.comments.push(comment.trim().to_owned());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "id" => message.id = Some(value),
                "event" => message.event = Some(value),
                "data" => message.data = Some(value),
                "retry" => message.retry = Some(value),
                other => panic!("unknown field {other:?} in {block:?}"),
            }
        }
        message
    }
}

/// An open stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
}

impl EventStream {
    /// Reads `response` as a stream.
    pub fn new(response: reqwest::Response) -> Self {
        EventStream {
            response,
            buffer: String::new(),
            ended: false,
        }
    }

    /// The next message, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(Message::parse(block.trim_end_matches('\n')));
            }
            if self.ended {
                assert!(self.buffer.is_empty(), "a cut message: {:?}", self.buffer);
                return None;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the stream sends something in time")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                None => self.ended = true,
            }
        }
    }

    /// The next message that carries data (skipping `retry` and comments).
    pub async fn next_data(&mut self) -> Message {
        loop {
            let message = self.next().await.expect("the stream goes on");
            if message.data.is_some() {
                return message;
            }
        }
    }
}
