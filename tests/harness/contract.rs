//! Holds every answer of the end-to-end tests to the committed OpenAPI spec,
//! and to Zulip's own shapes where Zulip has the operation too.
//!
//! For each JSON body received, the schema the spec gives for that path,
//! method and status is looked up and the body validated against it; a
//! status the spec does not list for the operation fails too. Answers to
//! paths or methods the spec does not have (404, 405) are held to the
//! spec's `ErrorBody`. Then [`crate::zulip::check`] holds the same body to
//! Zulip's shape for the operation, with this server's listed differences.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::schemas::{Validators, find_template, problems, read_json};

/// The spec and the validators compiled from it so far.
struct Contract {
    spec: Value,
    validators: Validators,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        spec: read_json("../openapi/presence.json", "the spec"),
        validators: Validators::default(),
    })
}

/// The spec's path template for a concrete path: literal templates first,
/// so `/users/me/presence` is not taken for `/users/{user_id_or_email}/presence`.
fn template_for(spec: &Value, path: &str) -> Option<String> {
    let templates = spec["paths"].as_object()?.keys().map(String::as_str);
    find_template(templates, path).map(str::to_owned)
}

/// Validates one answer's body against the spec, panicking with the path
/// and the validation errors if it does not conform.
pub fn check(method: &str, path: &str, status: u16, body: &Value) {
    let contract = contract();
    let spec = &contract.spec;
    let method = method.to_lowercase();
    let operation = template_for(spec, path).and_then(|template| {
        let op = &spec["paths"][&template][&method];
        (!op.is_null()).then(|| (template, op.clone()))
    });
    let (key, schema) = match operation {
        Some((template, op)) => {
            let response = &op["responses"][status.to_string()];
            assert!(
                !response.is_null(),
                "{method} {path} answered {status}, which the spec does not list for {template}: {body}"
            );
            let schema = response["content"]["application/json"]["schema"].clone();
            assert!(
                !schema.is_null(),
                "{method} {template} {status} has no JSON schema in the spec"
            );
            (format!("{method} {template} {status}"), schema)
        }
        None => {
            assert!(
                status == 404 || status == 405,
                "{method} {path} is not in the spec but answered {status}: {body}"
            );
            (
                "error body".to_owned(),
                json!({"$ref": "#/components/schemas/ErrorBody"}),
            )
        }
    };
    let validator = contract.validators.get(&key, || {
        let mut root = schema;
        root["components"] = spec["components"].clone();
        jsonschema::draft202012::new(&root)
            .unwrap_or_else(|e| panic!("the spec's schema for {key} does not compile: {e}"))
    });
    let errors = problems(&validator, body);
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body that does not match the spec ({key}):\n  {}\nbody: {body}",
        errors.join("\n  ")
    );
    crate::zulip::check(&method, path, status, body);
}

/// Validates a value against one of the spec's component schemas (for
/// bodies that are not JSON answers, such as a stream's message data).
pub fn check_schema(name: &str, value: &Value) {
    let spec = &contract().spec;
    assert!(
        !spec["components"]["schemas"][name].is_null(),
        "the spec has no schema {name}"
    );
    let mut root = json!({"$ref": format!("#/components/schemas/{name}")});
    root["components"] = spec["components"].clone();
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("the spec's schema {name} does not compile: {e}"));
    let errors = problems(&validator, value);
    assert!(
        errors.is_empty(),
        "a value does not match the spec's {name}:\n  {}\nvalue: {value}",
        errors.join("\n  ")
    );
}

/// Every operation of the spec that takes a request body: its method (upper
/// case), path template, and whether the body is required.
pub fn operations_with_bodies() -> Vec<(String, String, bool)> {
    let spec = &contract().spec;
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let body = &operation["requestBody"];
            if !body.is_null() {
                let required = body["required"].as_bool().unwrap_or(false);
                found.push((method.to_uppercase(), path.clone(), required));
            }
        }
    }
    found
}

/// Whether the spec's schema for one string field of a request admits
/// `value`: a form field of the operation's body, else one of its
/// parameters. Panics if the operation has no such field.
pub fn request_field_admits(method: &str, template: &str, field: &str, value: &str) -> bool {
    let spec = &contract().spec;
    let operation = &spec["paths"][template][method.to_lowercase()];
    assert!(!operation.is_null(), "the spec has no {method} {template}");
    let mut form =
        &operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    if let Some(name) = form["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        form = &spec["components"]["schemas"][name];
    }
    let schema = match &form["properties"][field] {
        Value::Null => operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|parameter| parameter["name"] == field)
            .map(|parameter| parameter["schema"].clone())
            .unwrap_or_else(|| panic!("{method} {template} has no field {field}")),
        schema => schema.clone(),
    };
    let mut root = schema;
    root["components"] = spec["components"].clone();
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("the schema of {field} does not compile: {e}"));
    validator.is_valid(&Value::String(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_prefer_literal_paths() {
        let spec = &contract().spec;
        assert_eq!(
            template_for(spec, "/api/v1/users/me/presence").as_deref(),
            Some("/api/v1/users/me/presence")
        );
        assert_eq!(
            template_for(spec, "/api/v1/users/a@b.c/presence").as_deref(),
            Some("/api/v1/users/{user_id_or_email}/presence")
        );
        assert_eq!(template_for(spec, "/api/v1/nope"), None);
    }

    #[test]
    #[should_panic(expected = "does not match the spec")]
    fn a_body_that_breaks_the_schema_fails() {
        check(
            "GET",
            "/api/v1/users/me",
            200,
            &json!({"result": "success", "msg": ""}),
        );
    }

    #[test]
    #[should_panic(expected = "which the spec does not list")]
    fn an_undocumented_status_fails() {
        check("GET", "/api/v1/users/me", 418, &json!({}));
    }
}
