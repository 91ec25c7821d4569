//! The web embed in the OpenAPI document: browsers' preflights on the
//! endpoints pages may call, the grant headers of their answers, and the
//! embed's files.

use utoipa::Modify;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, RefOr, Required};

use super::cors::PREFLIGHT_MAX_AGE_SECS;
use crate::openapi::{error_response, string_header};

/// The endpoints a page may call with an embed key.
pub const EMBEDDABLE_PATHS: [&str; 4] = [
    "/api/v1/users/{user_id_or_email}/presence",
    "/api/v1/realm/presence",
    "/api/v1/users",
    "/api/v1/presence/stream",
];

/// The headers every answer of an endpoint pages may call can carry.
pub fn add_grant_headers(operation: &mut Operation) {
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.insert(
                "Access-Control-Allow-Origin".to_owned(),
                string_header(
                    "The page's origin, echoed, when an embed key that names it made the request \
                     (refusals included, except for an origin the key does not name)",
                ),
            );
            response.headers.insert(
                "Vary".to_owned(),
                string_header("Includes `Origin`: the answer depends on the page's origin"),
            );
        }
    }
}

/// Adds the embed's operations.
pub struct EmbedOperations;

impl Modify for EmbedOperations {
    fn modify(&self, openapi: &mut Document) {
        for path in EMBEDDABLE_PATHS {
            if let Some(item) = openapi.paths.paths.get_mut(path) {
                let mut options = preflight(path);
                // A path's parameters are declared by each of its operations;
                // the preflight takes the GET's.
                let in_path = item
                    .get
                    .iter()
                    .flat_map(|get| get.parameters.iter().flatten())
                    .filter(|p| matches!(p.parameter_in, ParameterIn::Path))
                    .cloned();
                let declared = options.parameters.get_or_insert_with(Vec::new);
                let headers = std::mem::take(declared);
                declared.extend(in_path);
                declared.extend(headers);
                item.options = Some(options);
            }
        }
        for (path, summary, content_type) in [
            (
                "/embed/presence.js",
                "The web components `<presence-badge>` and `<presence-list>`, an ES module",
                "text/javascript",
            ),
            (
                "/embed/directory.js",
                "The who's-online page's script",
                "text/javascript",
            ),
            (
                "/directory",
                "The who's-online page: open it as `/directory#key=EMBED_KEY`",
                "text/html",
            ),
        ] {
            openapi.paths.paths.insert(
                path.to_owned(),
                PathItem::new(HttpMethod::Get, asset(path, summary, content_type)),
            );
        }
    }
}

/// The operation id of a path's operation, from its last words.
fn operation_id(prefix: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split(['/', '.'])
        .filter(|w| !w.is_empty() && !w.starts_with('{') && *w != "api" && *w != "v1")
        .collect();
    format!("{prefix}_{}", words.join("_"))
}

fn preflight(path: &str) -> Operation {
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let granted = ResponseBuilder::new()
        .description(
            "Granted, for an origin that some embed key names (or no preflight: without \
             `Origin` the answer only lists the methods)",
        )
        .header(
            "Access-Control-Allow-Origin",
            string_header("The page's origin, echoed"),
        )
        .header("Access-Control-Allow-Methods", string_header("`GET, HEAD`"))
        .header(
            "Access-Control-Allow-Headers",
            string_header("`authorization, last-event-id`"),
        )
        .header(
            "Access-Control-Max-Age",
            string_header(&format!(
                "`{PREFLIGHT_MAX_AGE_SECS}`: seconds the browser may reuse the answer"
            )),
        )
        .header("Allow", string_header("`GET, HEAD, OPTIONS`"));
    let refused = error_response(
        "No embed key names the page's origin: no grant",
        serde_json::json!({"result": "error", "msg": "No embed key may be used from this origin", "code": "BAD_REQUEST"}),
    );
    OperationBuilder::new()
        .tag("embed")
        .operation_id(Some(operation_id("preflight", path)))
        .summary(Some("A browser's CORS preflight before a page's request"))
        .description(Some(
            "Pages call this endpoint with an embed key in `Authorization`, so their browsers ask \
             first. Needs no credentials.",
        ))
        .parameter(header("Origin", "The page's origin"))
        .parameter(header(
            "Access-Control-Request-Method",
            "The method the page will use",
        ))
        .parameter(header(
            "Access-Control-Request-Headers",
            "The headers the page will send",
        ))
        .response("204", granted)
        .response("403", refused)
        .build()
}

fn asset(path: &str, summary: &str, content_type: &str) -> Operation {
    let file = ResponseBuilder::new()
        .description("The file, with its `ETag`")
        .content(
            content_type,
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        )
        .header("ETag", string_header("A digest of the file's bytes"))
        .header("Cache-Control", string_header("`public, max-age=300`"));
    let if_none_match = ParameterBuilder::new()
        .name("If-None-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some("An `ETag` the client holds"))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build();
    OperationBuilder::new()
        .tag("embed")
        .operation_id(Some(operation_id("get", path)))
        .summary(Some(summary))
        .description(Some("Needs no credentials."))
        .parameter(if_none_match)
        .response("200", file)
        .response(
            "304",
            ResponseBuilder::new().description("Not modified: the `ETag` is current"),
        )
        .build()
}
