//! The OpenAPI 3.1 description of the API, generated from the handlers'
//! annotations and the wire types, so it cannot drift from the code.
//!
//! `openapi/presence.json` is this document, committed; `cargo xtask
//! openapi` writes it and `cargo xtask openapi --check` (and a test below)
//! fails when it is stale. What every authenticated operation shares (the
//! Basic security requirement, the 401/429 refusals, the rate-limit headers,
//! 413 for writes) and what every operation shares (the limits' 414, 431,
//! 503, and the per-address 429 of unauthenticated requests) is added here
//! once rather than repeated on each handler, as is the empty security of
//! the operations that need no credentials. Two things utoipa writes in a
//! way OpenAPI tools misread are written again here: an optional form body,
//! and the links between operations.

use presence_types::ErrorBody;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::http::embed::spec::{EmbedOperations, no_credentials};
use crate::http::health::HealthOperations;
use crate::http::metrics::MetricsOperation;
use crate::http::status_handlers::{self, StatusExtension};
use crate::http::{event_handlers, handlers};

/// The name of the users' security scheme in the document.
const BASIC_AUTH: &str = "basicAuth";

/// The name of the pages' security scheme in the document.
const EMBED_KEY: &str = "embedKey";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "presence",
        version = env!("CARGO_PKG_VERSION"),
        description = "A Zulip-compatible presence API: who is active, idle or offline, per client, \
with Zulip's exact formats and errors. Every body is JSON. Non-string parameters are JSON inside \
form fields (`ping_only=true`, `last_update_id=-1`). Unknown parameters of POST/PATCH/DELETE are \
listed in `ignored_parameters_unsupported`. Authenticate with HTTP Basic: the user's email and API key. \
Web pages read a realm's presence and directory with an embed key instead (`Authorization: Bearer \
embed_...`), from the origins the key names: see the `embed` tag.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "http://127.0.0.1:9991", description = "A local server with the default settings")),
    paths(
        handlers::server_settings,
        handlers::get_user_presence,
        handlers::get_realm_presence,
        handlers::update_presence,
        handlers::own_user,
        handlers::users,
        handlers::update_settings,
        status_handlers::update_status,
        status_handlers::get_user_status,
        handlers::add_apns_token,
        handlers::remove_apns_token,
        handlers::add_android_token,
        handlers::remove_android_token,
        event_handlers::register,
        event_handlers::get_events,
        event_handlers::delete_queue,
        event_handlers::presence_stream,
    ),
    tags(
        (name = "presence", description = "Reporting and reading presence"),
        (name = "users", description = "Accounts and their settings"),
        (name = "push devices", description = "Devices that make a user `pushable`"),
        (name = "events", description = "Real-time presence: event queues, and the same events as a stream"),
        (name = "server", description = "About the server"),
        (name = "embed", description = "Presence on other sites: the web components, the who's-online page, and browsers' preflights"),
    ),
    // utoipa does not collect the value schema of a flattened map, so the
    // legacy format's per-client entry is named here.
    components(schemas(presence_types::ClientPresence)),
    modifiers(
        &EmbedOperations,
        &SharedResponses,
        &HealthOperations,
        &MetricsOperation,
        &StatusExtension
    ),
)]
struct ApiDoc;

/// The OpenAPI document of the API.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The document as the committed file holds it: pretty JSON and a newline.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the document serializes");
    json.push('\n');
    json
}

/// Adds what every authenticated operation shares.
struct SharedResponses;

/// An error answer's description in the document.
pub(crate) fn error_response(description: &str, example: serde_json::Value) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .example(Some(example))
            .build(),
    )
}

fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some(description))
        .build()
}

fn number_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Number))
        .description(Some(description))
        .build()
}

/// A header whose value is text, described.
pub(crate) fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

/// The `X-Request-Id` header every answer carries.
pub(crate) fn request_id_header() -> utoipa::openapi::header::Header {
    string_header(
        "The request's id, as in the server's log: the client's own `X-Request-Id` \
         if it is 1 to 64 of `A-Za-z0-9-_.:`, else one the server made",
    )
}

/// Adds the refusals any request can get to an operation built by hand;
/// `counted_per_user` leaves out the per-address 429 (an operation never
/// counted against its address says so too).
pub(crate) fn shared_limits(operation: &mut Operation, counted_per_user: bool) {
    SharedResponses::limits(operation, counted_per_user);
}

impl SharedResponses {
    fn authenticated(operation: &mut Operation, writes: bool, embeddable: bool) {
        let mut security = vec![SecurityRequirement::new::<_, _, &str>(BASIC_AUTH, [])];
        if embeddable {
            security.push(SecurityRequirement::new::<_, _, &str>(EMBED_KEY, []));
        }
        operation.security = Some(security);
        let responses = &mut operation.responses.responses;
        responses.insert(
            "403".to_owned(),
            error_response(
                if embeddable {
                    "An embed key used from a page on an origin it does not name: \
                     `This embed key may not be used from this origin`"
                } else {
                    "An embed key, which may only read: `This endpoint does not accept embed keys`"
                },
                serde_json::json!({"result": "error", "msg": "This endpoint does not accept embed keys", "code": "BAD_REQUEST"}),
            )
            .into(),
        );
        responses
            .entry("400".to_owned())
            .or_insert_with(|| {
                error_response(
                    "A refused request",
                    serde_json::json!({"result": "error", "msg": "This endpoint requires HTTP basic authentication.", "code": "BAD_REQUEST"}),
                )
                .into()
            });
        responses.insert(
            "401".to_owned(),
            error_response(
                "No or rejected credentials: `Not logged in: API authentication or user session required`, \
                 `Invalid authorization header for basic auth`, `Malformed API key`, `Invalid API key`, \
                 `Account is deactivated`, `This organization has been deactivated`; for an embed key, \
                 `Invalid embed key` or `This embed key has been revoked`",
                serde_json::json!({"result": "error", "msg": "Invalid API key", "code": "UNAUTHORIZED"}),
            )
            .header(
                "WWW-Authenticate",
                string_header("`Basic realm=\"zulip\"`; `Bearer realm=\"zulip\"` for an embed key"),
            )
            .into(),
        );
        responses.insert(
            "429".to_owned(),
            error_response(
                "Over the caller's rate limit (per user), or, without valid credentials, over the address's",
                serde_json::json!({"result": "error", "msg": "API usage exceeded rate limit", "code": "RATE_LIMIT_HIT", "retry-after": 12.5}),
            )
            .header("Retry-After", number_header("Seconds until a request will be accepted"))
            .into(),
        );
        if writes {
            responses.insert(
                "413".to_owned(),
                error_response(
                    "The request body is larger than the server accepts",
                    serde_json::json!({"result": "error", "msg": "Request body too large (the limit is 65536 bytes)", "code": "BAD_REQUEST"}),
                )
                .into(),
            );
        }
        // Every answer to an authenticated caller carries the rate-limit headers.
        for response in responses.values_mut() {
            if let RefOr::T(response) = response {
                let headers = &mut response.headers;
                headers.insert(
                    "X-RateLimit-Limit".to_owned(),
                    integer_header(
                        "Requests allowed per window (absent when rate limiting is off)",
                    ),
                );
                headers.insert(
                    "X-RateLimit-Remaining".to_owned(),
                    integer_header("Requests left now"),
                );
                headers.insert(
                    "X-RateLimit-Reset".to_owned(),
                    integer_header("Unix time at which the allowance is full again"),
                );
            }
        }
    }
}

impl SharedResponses {
    /// The refusals any request can get, whatever its operation.
    fn limits(operation: &mut Operation, authenticated: bool) {
        let responses = &mut operation.responses.responses;
        responses.insert(
            "414".to_owned(),
            error_response(
                "The URL (path and query) is longer than the server accepts",
                serde_json::json!({"result": "error", "msg": "URL too long (the limit is 8192 bytes)", "code": "BAD_REQUEST"}),
            )
            .into(),
        );
        responses.insert(
            "431".to_owned(),
            error_response(
                "The request headers are larger than the server accepts (far larger ones get a 431 without a body)",
                serde_json::json!({"result": "error", "msg": "Request headers too large (the limit is 16384 bytes)", "code": "BAD_REQUEST"}),
            )
            .into(),
        );
        responses.insert(
            "503".to_owned(),
            error_response(
                "The server is overloaded (too many open connections), could not answer within its deadline, \
                 or could not make a change durable; try again",
                serde_json::json!({"result": "error", "msg": "The server could not answer in time; try again", "code": "SERVICE_UNAVAILABLE"}),
            )
            .header("Retry-After", number_header("Seconds to wait before trying again (when the server is overloaded or late)"))
            .into(),
        );
        if !authenticated {
            responses.insert(
                "429".to_owned(),
                error_response(
                    "Too many requests from this address (the per-address limit on requests that are not authenticated)",
                    serde_json::json!({"result": "error", "msg": "API usage exceeded rate limit", "code": "RATE_LIMIT_HIT", "retry-after": 0.6}),
                )
                .header("Retry-After", number_header("Seconds until a request will be accepted"))
                .into(),
            );
        }
        for response in responses.values_mut() {
            if let RefOr::T(response) = response {
                response
                    .headers
                    .insert("X-Request-Id".to_owned(), request_id_header());
            }
        }
    }
}

/// An optional form body (`Option<T>` in the handler's annotation) is one
/// that may be absent, which utoipa writes as "null, or T"; a form cannot
/// be JSON's null, so the body's schema is T, and its being optional is
/// the request body's `required: false` alone.
fn form_body_may_be_absent(operation: &mut Operation) {
    let Some(body) = operation.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = content.schema.as_ref() else {
            continue;
        };
        let is_null = |item: &RefOr<Schema>| {
            matches!(item, RefOr::T(Schema::Object(object))
                if object.schema_type == SchemaType::Type(Type::Null))
        };
        if let [a, b] = one_of.items.as_slice()
            && (is_null(a) || is_null(b))
        {
            let body = if is_null(a) { b } else { a };
            content.schema = Some(body.clone());
        }
    }
}

/// Writes a response's links with the specification's field names.
///
/// utoipa 5 writes a link's `operationId`, `operationRef` and
/// `requestBody` in snake case, which OpenAPI tools do not read; the links
/// the handlers declare are moved out of the response's `links` and written
/// under the same key as JSON, with those fields renamed.
fn spell_links(response: &mut Response) {
    if response.links.is_empty() {
        return;
    }
    let links: serde_json::Map<String, serde_json::Value> = std::mem::take(&mut response.links)
        .into_iter()
        .map(|(name, link)| {
            let written = serde_json::to_value(&link).expect("a link serializes");
            let serde_json::Value::Object(fields) = written else {
                unreachable!("a link is an object")
            };
            let renamed = fields
                .into_iter()
                .map(|(field, value)| {
                    let field = match field.as_str() {
                        "operation_id" => "operationId".to_owned(),
                        "operation_ref" => "operationRef".to_owned(),
                        "request_body" => "requestBody".to_owned(),
                        _ => field,
                    };
                    (field, value)
                })
                .collect();
            (name, serde_json::Value::Object(renamed))
        })
        .collect();
    response
        .extensions
        .get_or_insert_with(Default::default)
        .insert("links".to_owned(), serde_json::Value::Object(links));
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut Document) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                BASIC_AUTH,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Basic)
                        .description(Some("The user's email and API key"))
                        .build(),
                ),
            );
            components.add_security_scheme(
                EMBED_KEY,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "An embed key (`embed_` and 32 letters and digits), for web pages: it \
                             reads its realm's presence and directory, from the origins it names",
                        ))
                        .build(),
                ),
            );
            // The error body is referenced by every operation's refusals.
            let schema = <ErrorBody as utoipa::PartialSchema>::schema();
            components
                .schemas
                .entry("ErrorBody".to_owned())
                .or_insert(schema);
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            // Needing no credentials: the server's settings, the web
            // embed's files, and browsers' preflights.
            if path == "/api/v1/server_settings" || !path.starts_with("/api/v1/") {
                if let Some(op) = item.get.as_mut() {
                    op.security = Some(no_credentials());
                    Self::limits(op, false);
                }
                continue;
            }
            if let Some(op) = item.options.as_mut() {
                op.security = Some(no_credentials());
                Self::limits(op, false);
            }
            for op in [&mut item.post, &mut item.patch, &mut item.delete]
                .into_iter()
                .flatten()
            {
                form_body_may_be_absent(op);
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        spell_links(response);
                    }
                }
            }
            let embeddable = crate::http::embed::spec::EMBEDDABLE_PATHS.contains(&path.as_str());
            let PathItem {
                get,
                post,
                patch,
                delete,
                ..
            } = item;
            if let Some(op) = get.as_mut() {
                Self::authenticated(op, false, embeddable);
                Self::limits(op, true);
                if embeddable {
                    crate::http::embed::spec::add_grant_headers(op);
                }
            }
            for op in [post, patch, delete].into_iter().flatten() {
                Self::authenticated(op, true, false);
                Self::limits(op, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;
    use crate::http::routes::ROUTES;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/presence.json")
    }

    #[test]
    fn committed_spec_is_current() {
        let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
        assert!(
            committed == document_json(),
            "openapi/presence.json is stale: run `cargo xtask openapi` and commit the result"
        );
    }

    #[test]
    fn spec_operations_equal_the_routes_served() {
        let spec: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let mut in_spec = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                in_spec.insert((method.to_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(in_spec, served);
    }

    #[test]
    fn security_says_what_each_route_takes() {
        let spec: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        for (method, template) in ROUTES {
            let path = template
                .replace("{user_id_or_email}", "7")
                .replace("{user_id}", "7");
            let route = crate::http::routes::route(&method.parse().unwrap(), &path).unwrap();
            let security = &spec["paths"][template][method.to_lowercase()]["security"];
            let schemes: BTreeSet<&str> = security
                .as_array()
                .unwrap_or_else(|| panic!("{method} {template} says nothing of credentials"))
                .iter()
                .flat_map(|requirement| requirement.as_object().unwrap().keys())
                .map(String::as_str)
                .collect();
            let expected: BTreeSet<&str> = match (route.needs_auth(), route.is_embeddable()) {
                (false, _) => BTreeSet::new(),
                (true, false) => [BASIC_AUTH].into(),
                (true, true) => [BASIC_AUTH, EMBED_KEY].into(),
            };
            assert_eq!(schemes, expected, "{method} {template}");
        }
    }

    #[test]
    fn links_lead_to_operations_with_the_fields_they_fill() {
        let spec: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let mut operations = std::collections::BTreeMap::new();
        for item in spec["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                operations.insert(operation["operationId"].as_str().unwrap(), operation);
            }
        }
        let mut links = 0;
        for (id, operation) in &operations {
            for response in operation["responses"].as_object().unwrap().values() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    links += 1;
                    let fields: BTreeSet<&str> = link
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(String::as_str)
                        .collect();
                    let known = ["operationId", "parameters", "requestBody", "description"];
                    assert!(
                        fields.iter().all(|f| known.contains(f)),
                        "{id} {name}: {fields:?}"
                    );
                    let target = link["operationId"].as_str().unwrap();
                    let target = operations
                        .get(target)
                        .unwrap_or_else(|| panic!("{id} {name}: no operation {target}"));
                    for parameter in link["parameters"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                    {
                        let declared = target["parameters"].as_array().unwrap();
                        assert!(
                            declared.iter().any(|p| p["name"] == parameter.as_str()),
                            "{id} {name}: no parameter {parameter}"
                        );
                    }
                    for field in link["requestBody"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                    {
                        let form =
                            &target["requestBody"]["content"]["application/x-www-form-urlencoded"];
                        let schema = form["schema"]["$ref"].as_str().unwrap();
                        let schema = schema.strip_prefix("#/components/schemas/").unwrap();
                        let properties = &spec["components"]["schemas"][schema]["properties"];
                        assert!(
                            !properties[field].is_null(),
                            "{id} {name}: no field {field}"
                        );
                    }
                }
            }
        }
        assert!(links >= 6, "{links} links");
    }

    #[test]
    fn the_spec_is_openapi_3_1_with_info_set() {
        let spec: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(spec["info"]["title"], "presence");
        assert_eq!(spec["info"]["license"]["identifier"], "Apache-2.0");
        assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
    }
}
