//! `GET /health/live` and `GET /health/ready`: what load balancers and
//! Kubernetes probes ask, and their operations in the OpenAPI document.
//!
//! Both need no credentials, read no body, and are never counted against
//! their address (a probe failing because the office behind one address
//! used its share would take a healthy server out of service). They cost
//! two atomic loads: the writer thread records what it last learned of the
//! store (`service::health`), and the accept loop whether shutdown began.
//!
//! - live: the process answers HTTP. Always 200 while it does.
//! - ready: the server should be sent traffic. 503 with a `reason` when
//!   the store failed the writer's last look or write (`store_failing`:
//!   writes are refused, others' changes unseen), or shutdown has begun
//!   (`shutting_down`); 200 once neither holds.

use http::StatusCode;
use presence_types::endpoints::EmptySuccess;
use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref};

use super::App;
use super::error::ApiError;
use super::handlers::{HandlerResult, json};
use crate::http::embed::spec::no_credentials;
use crate::openapi::{error_response, request_id_header, shared_limits};

/// Which probe a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `GET /health/live`.
    Live,
    /// `GET /health/ready`.
    Ready,
}

/// Why the server is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The store failed the writer's last look or write.
    StoreFailing,
    /// Shutdown has begun.
    ShuttingDown,
}

impl NotReady {
    /// The `reason` field of the 503 answer.
    pub fn reason(self) -> &'static str {
        match self {
            NotReady::StoreFailing => "store_failing",
            NotReady::ShuttingDown => "shutting_down",
        }
    }

    /// The answer's `msg`.
    fn message(self) -> &'static str {
        match self {
            NotReady::StoreFailing => "Not ready: the store is failing",
            NotReady::ShuttingDown => "Not ready: the server is shutting down",
        }
    }
}

/// Answers a probe.
pub fn answer(app: &App, probe: Probe) -> HandlerResult {
    let not_ready = match probe {
        Probe::Live => None,
        Probe::Ready => readiness(app),
    };
    match not_ready {
        None => Ok(json(StatusCode::OK, &EmptySuccess::default())),
        Some(why) => Err(ApiError::not_ready(why.reason(), why.message())),
    }
}

/// Why the server is not ready, if it is not; shutting down comes first,
/// since it is final.
fn readiness(app: &App) -> Option<NotReady> {
    if app.is_shutting_down() {
        Some(NotReady::ShuttingDown)
    } else if app.service.store_failing() {
        Some(NotReady::StoreFailing)
    } else {
        None
    }
}

/// Adds the probes' operations. Runs after the shared responses are
/// added, so that the readiness 503 says what it means.
pub struct HealthOperations;

impl Modify for HealthOperations {
    fn modify(&self, openapi: &mut Document) {
        for (path, probe) in [
            ("/health/live", Probe::Live),
            ("/health/ready", Probe::Ready),
        ] {
            openapi.paths.paths.insert(
                path.to_owned(),
                PathItem::new(HttpMethod::Get, operation(probe)),
            );
        }
    }
}

fn operation(probe: Probe) -> Operation {
    let (id, summary, description) = match probe {
        Probe::Live => (
            "get_health_live",
            "Liveness: the process answers",
            "200 whenever the server answers HTTP at all. Needs no credentials, and is never \
             counted against the address's limit.",
        ),
        Probe::Ready => (
            "get_health_ready",
            "Readiness: the server should be sent traffic",
            "200 when the store took the server's last look and last write and the server is \
             not shutting down; 503 with a `reason` otherwise. Needs no credentials, and is never \
             counted against the address's limit.",
        ),
    };
    let ok = ResponseBuilder::new()
        .description("Live, or ready")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("EmptySuccess")))
                .example(Some(serde_json::json!({"result": "success", "msg": ""})))
                .build(),
        );
    let mut operation = OperationBuilder::new()
        .tag("server")
        .operation_id(Some(id))
        .summary(Some(summary))
        .description(Some(description))
        .securities(Some(no_credentials()))
        .response("200", ok)
        .build();
    // Never counted against the address: no per-address 429.
    shared_limits(&mut operation, true);
    if probe == Probe::Ready {
        let not_ready = error_response(
            "Not ready: the store failed the last look or write (`reason`: `store_failing`), or \
             the server is shutting down (`shutting_down`); or, as any request, overloaded or late",
            serde_json::json!({"result": "error", "msg": "Not ready: the store is failing",
                "code": "SERVICE_UNAVAILABLE", "reason": "store_failing"}),
        );
        let not_ready = not_ready.header("X-Request-Id", request_id_header());
        operation
            .responses
            .responses
            .insert("503".to_owned(), not_ready.into());
    }
    operation
}
