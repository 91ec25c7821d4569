//! Parameters whose value is JSON text inside a form field or a query
//! parameter, as Zulip's clients send lists and objects
//! (`event_types=["presence"]`).
//!
//! OpenAPI has no way to say "this form field holds JSON of this shape"
//! that generators and validators follow, so each such value is described
//! as a string whose `pattern` admits exactly the JSON text the server
//! accepts, with `contentMediaType` and `contentSchema` saying what it
//! decodes to. The patterns are written for both JSON Schema's regular
//! expressions (ECMA-262) and Python's, which OpenAPI tools use.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// JSON's whitespace: space, tab, line feed and carriage return.
const WS: &str = r"[ \t\n\r]*";

/// A JSON string: any character but `"`, `\` and the controls below
/// U+0020, or an escape; a `\u` escape of a surrogate only as a pair, since
/// a lone surrogate stands for no character and the server's parser
/// refuses it.
const STRING: &str = concat!(
    r#""(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:"#,
    r"[0-9a-cA-CefEF][0-9a-fA-F]{3}",
    r"|[dD][0-7][0-9a-fA-F]{2}",
    r"|[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}",
    r#"))*""#,
);

/// `items` separated by commas, or nothing, between `open` and `close`.
fn sequence(open: &str, item: &str, close: &str) -> String {
    format!(r"{open}{WS}(?:{item}(?:{WS},{WS}{item})*)?{WS}{close}")
}

/// The whole value: `inner` or `null`, with whitespace around.
fn whole_or_null(inner: &str) -> String {
    format!("^{WS}(?:null|{inner}){WS}$")
}

/// The pattern of a JSON list of strings, or `null`.
pub fn string_list_pattern() -> String {
    whole_or_null(&sequence(r"\[", STRING, r"\]"))
}

/// The pattern of a JSON object whose values are booleans, or `null`.
pub fn boolean_object_pattern() -> String {
    let member = format!("{STRING}{WS}:{WS}(?:true|false)");
    whole_or_null(&sequence(r"\{", &member, r"\}"))
}

/// A string holding JSON that decodes to `decoded`, restricted by `pattern`.
fn json_text(
    description: &str,
    pattern: String,
    decoded: serde_json::Value,
    examples: [&str; 2],
) -> RefOr<Schema> {
    // utoipa has no builder for `contentSchema`, a plain JSON Schema
    // keyword; it goes beside `contentMediaType` as such.
    let content_schema: Extensions = [("contentSchema", decoded)].into_iter().collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .content_media_type("application/json")
        .extensions(Some(content_schema))
        .examples(examples)
        .into()
}

/// JSON text of a list of strings, such as `["presence"]`; `null` counts as
/// absent. Never constructed: it names the schema of such parameters.
pub enum JsonStringList {}

impl PartialSchema for JsonStringList {
    fn schema() -> RefOr<Schema> {
        json_text(
            "JSON text: a list of strings, such as `[\"presence\"]`, or `null` (as if absent). \
             The pattern admits exactly the JSON the server accepts.",
            string_list_pattern(),
            serde_json::json!({"type": ["array", "null"], "items": {"type": "string"}}),
            [r#"["presence"]"#, "null"],
        )
    }
}

impl ToSchema for JsonStringList {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("JsonStringList")
    }
}

/// JSON text of a client's capabilities, an object of booleans such as
/// `{"simplified_presence_events": true}`; `null` counts as absent. Never
/// constructed: it names the schema of such parameters.
pub enum JsonCapabilities {}

impl PartialSchema for JsonCapabilities {
    fn schema() -> RefOr<Schema> {
        json_text(
            "JSON text: an object of the client's capabilities, each a boolean as in Zulip, such \
             as `{\"simplified_presence_events\": true}`, or `null` (as if absent). The pattern \
             admits exactly such objects; the server also ignores keys it does not know whatever \
             their values, and refuses a `simplified_presence_events` that is not a boolean.",
            boolean_object_pattern(),
            serde_json::json!({
                "type": ["object", "null"],
                "properties": {"simplified_presence_events": {"type": "boolean"}},
            }),
            [r#"{"simplified_presence_events": true}"#, "{}"],
        )
    }
}

impl ToSchema for JsonCapabilities {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("JsonCapabilities")
    }
}
