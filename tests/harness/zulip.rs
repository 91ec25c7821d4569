//! Holds every answer of the end-to-end tests to Zulip's own shapes as
//! well, for the operations this server shares with Zulip.
//!
//! `zulip_schemas.json`, beside this file, writes Zulip's answers as JSON
//! Schema from the facts of Zulip's OpenAPI description, and lists this
//! server's deliberate differences as changes to them (see its `about`).
//! [`check`] validates a body against Zulip's shape with those changes
//! made: a success against its operation's schema, an error against
//! Zulip's family of error bodies. Answers to what Zulip does not have (the
//! presence stream, pages' files, unknown paths, methods a path does not
//! take) are held to nothing here; [`crate::contract`] holds them to this
//! server's own spec.
//!
//! The differences are kept honest by the tests below: each one's example,
//! an answer this server gives, passes with every change made and fails
//! with that difference left out.

use std::sync::OnceLock;

use serde_json::Value;

use crate::schemas::{Validators, find_template, problems, read_json};

/// The fixture with its differences applied, and the validators compiled
/// from it so far.
struct Shapes {
    fixture: Value,
    validators: Validators,
}

/// The fixture as written, without its differences applied.
fn raw_fixture() -> &'static Value {
    static RAW: OnceLock<Value> = OnceLock::new();
    RAW.get_or_init(|| read_json("harness/zulip_schemas.json", "the Zulip fixture"))
}

fn shapes() -> &'static Shapes {
    static SHAPES: OnceLock<Shapes> = OnceLock::new();
    SHAPES.get_or_init(|| Shapes {
        fixture: with_differences(raw_fixture(), None),
        validators: Validators::default(),
    })
}

/// The fixture with every difference's changes made, but the one at
/// index `leave_out`, if any.
fn with_differences(raw: &Value, leave_out: Option<usize>) -> Value {
    let mut fixture = raw.clone();
    let differences = raw["differences"]
        .as_array()
        .expect("the fixture lists its differences");
    for (i, difference) in differences.iter().enumerate() {
        if Some(i) == leave_out {
            continue;
        }
        let Some(operation) = difference["operation"].as_str() else {
            continue;
        };
        let target = if operation == "error" {
            &mut fixture["error"]
        } else {
            &mut fixture["operations"][operation]
        };
        assert!(
            !target.is_null(),
            "the difference {} changes {operation}, which the fixture does not have",
            difference["name"]
        );
        for change in difference["changes"].as_array().into_iter().flatten() {
            let at = change["at"].as_str().expect("a change says where");
            set(target, at, change["schema"].clone());
        }
    }
    fixture
}

/// Puts `value` at a JSON pointer in `root`, making the objects on the way.
fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut here = root;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        here = match here {
            Value::Array(items) => {
                let index: usize = token.parse().expect("an index into an array");
                &mut items[index]
            }
            other => &mut other[token.as_str()],
        };
    }
    *here = value;
}

/// The fixture's operation for a method and a path under `/api/v1`:
/// literal templates first, so `/users/me/presence` is never taken for
/// `/users/{user_id_or_email}/presence`. `None` when Zulip and this server
/// do not share it.
fn operation_for(fixture: &Value, method: &str, path: &str) -> Option<String> {
    let path = path.strip_prefix("/api/v1")?;
    let templates = fixture["operations"]
        .as_object()?
        .keys()
        .filter_map(|key| key.split_once(' ').map(|(_, template)| template));
    let template = find_template(templates, path)?;
    let key = format!("{} {template}", method.to_uppercase());
    fixture["operations"].get(&key).map(|_| key)
}

/// Validates one answer's body against Zulip's shape for it, panicking with
/// the path and the validation errors if it does not conform.
pub fn check(method: &str, path: &str, status: u16, body: &Value) {
    let shapes = shapes();
    let Some(operation) = operation_for(&shapes.fixture, method, path) else {
        return;
    };
    let (key, schema) = if (200..300).contains(&status) {
        (
            operation.clone(),
            shapes.fixture["operations"][&operation].clone(),
        )
    } else {
        ("error".to_owned(), shapes.fixture["error"].clone())
    };
    let validator = shapes
        .validators
        .get(&key, || compile(&shapes.fixture, schema, &key));
    let errors = problems(&validator, body);
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body that Zulip's shape ({key}) refuses:\n  {}\nbody: {body}",
        errors.join("\n  ")
    );
}

/// A validator for `schema`, with the fixture's shared definitions.
fn compile(fixture: &Value, mut schema: Value, what: &str) -> jsonschema::Validator {
    schema["$defs"] = fixture["$defs"].clone();
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("the Zulip fixture's schema for {what} does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The schema a difference's example is checked against.
    fn schema_of(fixture: &Value, operation: &str) -> Value {
        if operation == "error" {
            fixture["error"].clone()
        } else {
            fixture["operations"][operation].clone()
        }
    }

    #[test]
    fn each_difference_is_needed_and_enough_for_its_example() {
        let raw = raw_fixture();
        let all = with_differences(raw, None);
        let differences = raw["differences"].as_array().unwrap();
        let mut checked = 0;
        for (i, difference) in differences.iter().enumerate() {
            let name = &difference["name"];
            let (Some(operation), example) =
                (difference["operation"].as_str(), &difference["example"])
            else {
                assert!(
                    difference["changes"].as_array().unwrap().is_empty(),
                    "{name} changes a shape without naming it"
                );
                continue;
            };
            let with_it = compile(&all, schema_of(&all, operation), operation);
            assert_eq!(
                problems(&with_it, example),
                Vec::<String>::new(),
                "{name}: its example fails even with every difference"
            );
            let without = with_differences(raw, Some(i));
            let without_it = compile(&without, schema_of(&without, operation), operation);
            assert!(
                !problems(&without_it, example).is_empty(),
                "{name}: its example passes without it, so it changes nothing"
            );
            checked += 1;
        }
        assert!(
            checked >= 3,
            "the differences that change shapes are checked"
        );
    }

    /// The fixture describes only what this server serves, in its own spec.
    #[test]
    fn every_operation_is_one_this_server_serves() {
        let path = crate::source_path("../openapi/presence.json");
        let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for key in raw_fixture()["operations"].as_object().unwrap().keys() {
            let (method, template) = key.split_once(' ').unwrap();
            let operation = &spec["paths"][format!("/api/v1{template}")][method.to_lowercase()];
            assert!(
                !operation.is_null(),
                "{key} is not an operation of the spec"
            );
        }
    }

    #[test]
    fn paths_find_their_operations() {
        let fixture = &shapes().fixture;
        let found = |method, path| operation_for(fixture, method, path);
        assert_eq!(
            found("POST", "/api/v1/users/me/presence").as_deref(),
            Some("POST /users/me/presence")
        );
        assert_eq!(
            found("GET", "/api/v1/users/a@b.c/presence").as_deref(),
            Some("GET /users/{user_id_or_email}/presence")
        );
        // Zulip routes GET on this path nowhere either: not shared.
        assert_eq!(found("GET", "/api/v1/users/me/presence"), None);
        assert_eq!(found("GET", "/api/v1/presence/stream"), None);
        assert_eq!(found("GET", "/embed/presence.js"), None);
    }

    #[test]
    #[should_panic(expected = "refuses")]
    fn a_key_zulip_does_not_have_fails() {
        check(
            "GET",
            "/api/v1/events",
            200,
            &json!({"result": "success", "msg": "", "events": [], "extra": 1}),
        );
    }

    #[test]
    #[should_panic(expected = "refuses")]
    fn an_error_outside_zulips_family_fails() {
        check(
            "GET",
            "/api/v1/users",
            400,
            &json!({"result": "error", "msg": "No"}),
        );
    }

    #[test]
    fn what_zulip_does_not_have_is_left_alone() {
        check(
            "GET",
            "/api/v1/presence/stream",
            200,
            &json!({"anything": 1}),
        );
        check("GET", "/api/v1/nope", 404, &json!({"anything": 1}));
    }
}
