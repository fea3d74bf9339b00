//! What the OpenAPI document says the same way for every route: the two bearer schemes and the
//! error responses that come from the shared extractors rather than from one handler.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Object, OpenApi, Ref, RefOr, ResponseBuilder, Type};
use utoipa::Modify;

/// Security scheme of the routes a tenant's API key calls.
pub const API_KEY: &str = "api_key";
/// Security scheme of the operator routes.
pub const ADMIN_TOKEN: &str = "admin_token";

/// Adds the security schemes, and to each operation the errors its extractors can answer:
/// 401 (and 403 for a key without the scope) when it is authenticated; 400, 413 and 415 when it
/// takes a JSON body (unparseable, too large, not JSON); 503 everywhere (Kafka or the ledger
/// store unavailable, or the service still starting), with a `Retry-After`.
pub struct ApiConventions;

impl Modify for ApiConventions {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            bearer("A tenant's API key (`hk_…`); its scopes decide what it may do."),
        );
        components.add_security_scheme(
            ADMIN_TOKEN,
            bearer("The operator's admin token (`HOOKLINE_ADMIN_TOKEN`)."),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_errors(operation);
            }
        }
    }
}

fn bearer(description: &str) -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(description))
            .build(),
    )
}

fn add_common_errors(operation: &mut Operation) {
    let schemes: Vec<String> = operation
        .security
        .iter()
        .flatten()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|value| {
            value
                .as_object()
                .map(|map| map.keys().cloned().collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    let mut errors = vec![(
        503,
        "A dependency (Kafka, the ledger store) is unavailable, or the service is still starting; \
         retry after `Retry-After` seconds.",
    )];
    if !schemes.is_empty() {
        errors.push((401, "The bearer token is missing or not valid."));
    }
    if schemes.iter().any(|scheme| scheme == API_KEY) {
        errors.push((403, "The API key lacks the scope this route needs."));
    }
    if operation.request_body.is_some() {
        errors.extend([
            (400, "The body is not well-formed JSON."),
            (413, "The body is larger than allowed."),
            (415, "The body is not `application/json`."),
        ]);
    }
    for (status, description) in errors {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description, status == 503));
    }
}

/// A response whose body is the API's error body; with a `Retry-After` header when
/// `retry_after`.
fn error_response(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Object::with_type(Type::Integer))
                .description(Some("Seconds to wait before retrying."))
                .build(),
        );
    }
    RefOr::T(response.build())
}
