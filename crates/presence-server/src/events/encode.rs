//! Events encoded once and shared by every queue that receives them.
//!
//! An event's JSON differs between queues only in its `id`. The wire type
//! writes `id` last, so the encoding up to and including `"id":` is the
//! same everywhere: it is made once, kept as [`Bytes`] (a reference-counted
//! buffer), and each queue appends its own id and the closing brace when it
//! answers. Ten thousand queues cost ten thousand pointers, not ten
//! thousand copies.

use std::collections::BTreeMap;

use bytes::Bytes;
use presence_types::endpoints::events::{Event, PresenceEvent};
use presence_types::{ClientPresence, ModernPresence};

use super::EventFormat;
use crate::ids::UserId;

/// One event's JSON without its id: a queue writes `prefix`, its own id for
/// the event, and `}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    prefix: Bytes,
    kind: &'static str,
}

impl EncodedEvent {
    /// Encodes `event`, whose `id` must be 0 (it is cut off and replaced per
    /// queue). `None` if the encoding does not end in the id, which the wire
    /// type's field order rules out (a test holds it to that).
    pub fn new(event: &Event) -> Option<Self> {
        let kind = match event {
            Event::Presence(_) => "presence",
            Event::UserStatus(_) => "user_status",
            Event::Heartbeat(_) => "heartbeat",
        };
        let json = serde_json::to_vec(event).ok()?;
        let prefix = json.strip_suffix(b"0}")?;
        if !prefix.ends_with(br#""id":"#) {
            return None;
        }
        Some(EncodedEvent {
            prefix: Bytes::copy_from_slice(prefix),
            kind,
        })
    }

    /// The `heartbeat` event.
    pub fn heartbeat() -> Self {
        EncodedEvent {
            prefix: Bytes::from_static(br#"{"type":"heartbeat","id":"#),
            kind: "heartbeat",
        }
    }

    /// The event's `type`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Appends the event's JSON, with `id`, to `out`.
    pub fn write_json(&self, id: i64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(id.to_string().as_bytes());
        out.push(b'}');
    }

    /// The event's JSON with `id`.
    pub fn to_json(&self, id: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 12);
        self.write_json(id, &mut out);
        out
    }

    /// The size of the shared encoding, in bytes.
    pub fn shared_len(&self) -> usize {
        self.prefix.len()
    }
}

/// What others now see of one user, as the writer describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceChange {
    /// The user.
    pub user_id: UserId,
    /// The user's email.
    pub email: String,
    /// The user's legacy entry per client.
    pub clients: BTreeMap<String, ClientPresence>,
    /// The user's modern presence.
    pub modern: ModernPresence,
    /// The server's clock when the change was seen.
    pub server_timestamp: f64,
}

/// One change in each event shape, each encoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvents {
    legacy: EncodedEvent,
    slim: EncodedEvent,
    modern: EncodedEvent,
}

impl PresenceEvents {
    /// Encodes a change in the three shapes (see [`EncodedEvent::new`] for `None`).
    pub fn encode(change: &PresenceChange) -> Option<Self> {
        let legacy = PresenceEvent {
            user_id: Some(change.user_id.0),
            email: Some(change.email.clone()),
            server_timestamp: Some(change.server_timestamp),
            presence: Some(change.clients.clone()),
            presences: None,
            id: 0,
        };
        let slim = PresenceEvent {
            email: None,
            ..legacy.clone()
        };
        let modern = PresenceEvent {
            user_id: None,
            email: None,
            server_timestamp: None,
            presence: None,
            presences: Some(BTreeMap::from([(
                change.user_id.to_string(),
                change.modern,
            )])),
            id: 0,
        };
        Some(PresenceEvents {
            legacy: EncodedEvent::new(&Event::Presence(legacy))?,
            slim: EncodedEvent::new(&Event::Presence(slim))?,
            modern: EncodedEvent::new(&Event::Presence(modern))?,
        })
    }

    /// The encoding for queues of `format`.
    pub fn for_format(&self, format: EventFormat) -> &EncodedEvent {
        match format {
            EventFormat::Legacy => &self.legacy,
            EventFormat::Slim => &self.slim,
            EventFormat::Modern => &self.modern,
        }
    }
}

#[cfg(test)]
mod tests {
    use presence_types::PresenceStatus;
    use presence_types::endpoints::events::HeartbeatEvent;

    use super::*;

    fn change() -> PresenceChange {
        PresenceChange {
            user_id: UserId(7),
            email: "a@b.test".to_owned(),
            clients: BTreeMap::from([(
                "website".to_owned(),
                ClientPresence {
                    client: "website".to_owned(),
                    status: PresenceStatus::Active,
                    timestamp: 100,
                    pushable: false,
                },
            )]),
            modern: ModernPresence {
                active_timestamp: 100,
                idle_timestamp: 100,
            },
            server_timestamp: 100.25,
        }
    }

    fn decode(event: &EncodedEvent, id: i64) -> Event {
        serde_json::from_slice(&event.to_json(id)).expect("valid JSON of the wire type")
    }

    #[test]
    fn each_shape_decodes_with_the_queues_id() {
        let events = PresenceEvents::encode(&change()).unwrap();
        let Event::Presence(legacy) = decode(events.for_format(EventFormat::Legacy), 12) else {
            panic!("presence")
        };
        assert_eq!(legacy.id, 12);
        assert_eq!(legacy.email.as_deref(), Some("a@b.test"));
        assert_eq!(legacy.presence.unwrap()["website"].timestamp, 100);
        let Event::Presence(slim) = decode(events.for_format(EventFormat::Slim), 0) else {
            panic!("presence")
        };
        assert_eq!((slim.user_id, slim.email), (Some(7), None));
        let Event::Presence(modern) = decode(events.for_format(EventFormat::Modern), 3) else {
            panic!("presence")
        };
        assert_eq!(modern.user_id, None);
        assert_eq!(modern.presences.unwrap()["7"].active_timestamp, 100);
    }

    #[test]
    fn the_heartbeat_is_the_wire_types_heartbeat() {
        assert_eq!(
            decode(&EncodedEvent::heartbeat(), 41),
            Event::Heartbeat(HeartbeatEvent { id: 41 })
        );
        let made = EncodedEvent::new(&Event::Heartbeat(HeartbeatEvent { id: 0 })).unwrap();
        assert_eq!(made, EncodedEvent::heartbeat());
    }

    #[test]
    fn an_event_whose_id_is_not_zero_is_refused() {
        assert!(EncodedEvent::new(&Event::Heartbeat(HeartbeatEvent { id: 5 })).is_none());
    }
}
