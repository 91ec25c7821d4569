//! Every example in the committed OpenAPI spec decodes into the wire types
//! this client uses, and encodes back to the same JSON: the examples an
//! integrator copies are answers this client understands.

use presence_types::ErrorBody;
use presence_types::endpoints::EmptySuccess;
use presence_types::endpoints::events::{Event, GetEventsResponse, RegisterResponse};
use presence_types::endpoints::get_realm_presence::GetRealmPresenceResponse;
use presence_types::endpoints::get_user_presence::GetUserPresenceResponse;
use presence_types::endpoints::server_settings::ServerSettingsResponse;
use presence_types::endpoints::update_presence::UpdatePresenceResponse;
use presence_types::endpoints::user_status::GetUserStatusResponse;
use presence_types::endpoints::users::{GetOwnUserResponse, GetUsersResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes `example` as `T` and encodes it again.
fn round_trip<T: DeserializeOwned + Serialize>(example: &Value) -> Result<Value, String> {
    let decoded: T = serde_json::from_value(example.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(decoded).map_err(|e| e.to_string())
}

/// The success type of an operation, by its `operationId`.
fn success_round_trip(operation_id: &str, example: &Value) -> Result<Value, String> {
    match operation_id {
        "get_server_settings" => round_trip::<ServerSettingsResponse>(example),
        "get_user_presence" => round_trip::<GetUserPresenceResponse>(example),
        "get_realm_presence" => round_trip::<GetRealmPresenceResponse>(example),
        "update_presence" => round_trip::<UpdatePresenceResponse>(example),
        "get_own_user" => round_trip::<GetOwnUserResponse>(example),
        "get_users" => round_trip::<GetUsersResponse>(example),
        "register_queue" => round_trip::<RegisterResponse>(example),
        "get_events" => round_trip::<GetEventsResponse>(example),
        "get_user_status" => round_trip::<GetUserStatusResponse>(example),
        "update_settings"
        | "update_status"
        | "add_apns_token"
        | "remove_apns_token"
        | "add_android_token"
        | "remove_android_token"
        | "delete_queue"
        | "get_health_live"
        | "get_health_ready" => round_trip::<EmptySuccess>(example),
        other => Err(format!("no wire type is known for operation {other}")),
    }
}

/// Checks an event-stream example: every message's data is a wire type,
/// `register` the register answer and anything else an event.
fn stream_example_round_trips(example: &str) -> Result<(), String> {
    let mut messages = 0;
    for message in example.split("\n\n").filter(|m| !m.is_empty()) {
        let field = |name: &str| {
            message
                .lines()
                .find_map(|line| line.strip_prefix(name).map(str::to_owned))
        };
        let Some(data) = field("data: ") else {
            continue;
        };
        let data: Value = serde_json::from_str(&data).map_err(|e| e.to_string())?;
        let again = match field("event: ").as_deref() {
            Some("register") => round_trip::<RegisterResponse>(&data)?,
            _ => round_trip::<Event>(&data)?,
        };
        if again != data {
            return Err(format!("re-encoded differently:\n  {data}\n  {again}"));
        }
        messages += 1;
    }
    if messages == 0 {
        return Err("no message with data".to_owned());
    }
    Ok(())
}

#[test]
fn every_spec_example_round_trips_through_the_wire_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/presence.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the spec"))
        .expect("the spec is JSON");
    let mut checked = 0;
    let mut failures = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let id = operation["operationId"].as_str().expect("an operationId");
            let mut has_success_example = false;
            for (status, response) in operation["responses"].as_object().expect("responses") {
                if let Some(example) = response["content"]["text/event-stream"].get("example") {
                    has_success_example |= status.starts_with('2');
                    checked += 1;
                    let text = example.as_str().unwrap_or_default();
                    if let Err(e) = stream_example_round_trips(text) {
                        failures.push(format!("{method} {path} {status}: {e}"));
                    }
                    continue;
                }
                let Some(example) = response["content"]["application/json"].get("example") else {
                    continue;
                };
                let result = if status.starts_with('2') {
                    has_success_example = true;
                    success_round_trip(id, example)
                } else {
                    round_trip::<ErrorBody>(example)
                };
                checked += 1;
                match result {
                    Ok(again) if again == *example => {}
                    Ok(again) => failures.push(format!(
                        "{method} {path} {status}: re-encoded differently:\n  {example}\n  {again}"
                    )),
                    Err(e) => failures.push(format!("{method} {path} {status}: {e}")),
                }
            }
            // The web embed's files and browsers' preflights answer no JSON.
            let answers_json = operation["responses"]
                .as_object()
                .expect("responses")
                .iter()
                .filter(|(status, _)| status.starts_with('2'))
                .any(|(_, response)| {
                    let content = &response["content"];
                    content.get("application/json").is_some()
                        || content.get("text/event-stream").is_some()
                });
            assert!(
                has_success_example || !answers_json,
                "{method} {path} has no success example"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} examples found");
}
