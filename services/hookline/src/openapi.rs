//! The OpenAPI document of the whole public API: ingest's routes and the ledger's, with the
//! conventions every route shares. `schemas/openapi.json` is its committed copy, which every
//! service serves at `GET /openapi.json`; the tests below keep it current.

use hookline_ingest::IngestApi;
use hookline_ledger::LedgerApi;
use hookline_runtime::openapi::ApiConventions;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hookline API",
        description = "Outgoing webhooks: publish events, manage webhooks, and inspect, replay and recover deliveries. Errors are `{\"error\":{\"code\",\"message\"}}` with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "events", description = "Publishing events, and reading them back."),
        (name = "webhooks", description = "Subscribed endpoints and their lifecycle."),
        (name = "deliveries", description = "The ledger: deliveries, attempts, statistics, replay and recovery."),
        (name = "tenants", description = "Operator routes: tenants and their API keys."),
    )
)]
struct HooklineApi;

/// The document of every public route.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = HooklineApi::openapi()
        .merge_from(IngestApi::openapi())
        .merge_from(LedgerApi::openapi());
    ApiConventions.modify(&mut document);
    document
}

/// The document as committed in `schemas/openapi.json`.
pub fn document_json() -> String {
    document()
        .to_pretty_json()
        .expect("the document serializes")
        + "\n"
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The committed copy (served at `/openapi.json`) matches the code. Set `HOOKLINE_BLESS=1`
    /// to rewrite it.
    #[test]
    fn committed_document_matches_the_code() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.json");
        let generated = document_json();
        if std::env::var_os("HOOKLINE_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        assert!(
            hookline_schemas::OPENAPI_JSON == generated,
            "schemas/openapi.json is stale; run `HOOKLINE_BLESS=1 cargo test -p hookline openapi`"
        );
    }
}
