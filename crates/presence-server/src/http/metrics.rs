//! `GET /metrics`: Prometheus's scrape, and its operation in the OpenAPI
//! document.
//!
//! Like the health probes it needs no credentials, reads no body and is
//! never counted against its address: a scraper refused for the traffic of
//! the office behind its address would lose the figures that show the
//! overload. What it shows is counts and durations by route, never a user,
//! a realm or a path a client sent; an operator who would rather not show
//! even that keeps `/metrics` off the public side of the proxy (README,
//! "Running in production").

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi as Document};

use super::App;
use super::body::Body;
use crate::http::embed::spec::no_credentials;
use crate::metrics::{self, CLASSIC_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE};
use crate::openapi::shared_limits;

/// Answers a scrape: OpenMetrics to a scraper that asks for it (as
/// Prometheus does), the classic text format to anyone else.
pub fn answer(app: &App, headers: &HeaderMap, head: bool) -> Response<Body> {
    let service = &app.service;
    let accept = headers.get(http::header::ACCEPT).map(|v| v.as_bytes());
    let openmetrics = metrics::wants_openmetrics(accept);
    let text = service.metrics().render(service.sampled(), openmetrics);
    let content_type = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        CLASSIC_CONTENT_TYPE
    };
    let body = if head {
        Body::default()
    } else {
        Body::from_vec(text.into_bytes())
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let out = response.headers_mut();
    out.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    out.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// Adds the scrape's operation.
pub struct MetricsOperation;

impl Modify for MetricsOperation {
    fn modify(&self, openapi: &mut Document) {
        let text = || {
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        };
        let ok = ResponseBuilder::new()
            .description(
                "Every metric: in OpenMetrics if `Accept` asks for \
                 `application/openmetrics-text`, else in Prometheus's text format 0.0.4",
            )
            .content("text/plain", text())
            .content("application/openmetrics-text", text());
        let mut operation = OperationBuilder::new()
            .tag("server")
            .operation_id(Some("get_metrics"))
            .summary(Some("Metrics, for Prometheus"))
            .description(Some(
                "The server's counters, histograms and gauges (requests by route template, \
                 method and status; request and commit durations; refusals by limiter; store \
                 errors; event queues and streams; log lines dropped) and the usual \
                 `process_*` metrics. Needs no credentials, and is never counted against the \
                 address's limit.",
            ))
            .securities(Some(no_credentials()))
            .response("200", ok)
            .build();
        shared_limits(&mut operation, true);
        openapi.paths.paths.insert(
            "/metrics".to_owned(),
            PathItem::new(HttpMethod::Get, operation),
        );
    }
}
