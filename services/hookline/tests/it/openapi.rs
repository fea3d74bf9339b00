//! The OpenAPI document is true: the routes the services register are exactly the ones it
//! describes, path for path and method for method, and `/openapi.json` serves it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Router;
use hookline_runtime::{serve, Context, StartupArgs};
use hookline_testkit::eventually;
use reqwest::{Method, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::PathItem;

use crate::{config, sender_args};

/// The path templates a router routes. Axum has no API to list them; its `Debug` output names
/// each one, as the only quoted text starting with `/` before its fallback router.
fn route_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let (routes, _fallback) = debug
        .split_once("fallback_router")
        .expect("a router's Debug output names its fallback router");
    let paths: BTreeSet<String> = routes
        .split("\"/")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(path, _)| format!("/{path}"))
        .collect();
    paths
}

fn documented_methods(item: &PathItem) -> BTreeSet<String> {
    let operations = [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("PATCH", &item.patch),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("TRACE", &item.trace),
    ];
    operations
        .into_iter()
        .filter(|(_, operation)| operation.is_some())
        .map(|(method, _)| method.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_describes_exactly_the_registered_routes() {
    let (config, _) = config(sender_args());
    let shutdown = CancellationToken::new();
    let context = Context::new(shutdown.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = listener.local_addr().unwrap();
    let services = hookline::start(config, listen, &context).await.unwrap();
    // The console's pages under `/console` are HTML for people, served beside the API but no
    // part of it: the document describes the API alone.
    let registered: BTreeSet<String> = services
        .iter()
        .flat_map(|service| route_paths(&service.routes))
        .filter(|path| !path.starts_with("/console"))
        .collect();
    assert!(
        registered.contains("/v1/webhooks/{webhook_id}"),
        "the router's Debug output no longer names its paths: {registered:?}"
    );
    let document = hookline::openapi::document();
    let documented: BTreeMap<&String, BTreeSet<String>> = document
        .paths
        .paths
        .iter()
        .map(|(path, item)| (path, documented_methods(item)))
        .collect();
    let documented_paths: BTreeSet<String> = documented.keys().map(|p| p.to_string()).collect();
    assert_eq!(
        registered, documented_paths,
        "registered routes (left) and documented paths (right) differ"
    );

    // A method a path does not route answers 405 with `Allow` listing those it does.
    let base_url = format!("http://{listen}");
    let server = tokio::spawn(async move {
        serve(listener, &context, &StartupArgs::default(), async {
            Ok(services)
        })
        .await
    });
    let http = reqwest::Client::new();
    // The listener answers at once; the routes once `serve` has installed the services.
    eventually(
        "the services to be ready",
        Duration::from_secs(10),
        || async {
            let ready = http.get(format!("{base_url}/readyz")).send().await.ok()?;
            ready.status().is_success().then_some(())
        },
    )
    .await;
    for (path, methods) in &documented {
        let concrete = path.replace('{', "x-").replace('}', "");
        let response = http
            .request(Method::TRACE, format!("{base_url}{concrete}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allowed: BTreeSet<String> = response
            .headers()
            .get("allow")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|method| method.trim().to_owned())
            // Axum answers HEAD wherever it answers GET.
            .filter(|method| method != "HEAD" || methods.contains("HEAD"))
            .collect();
        assert_eq!(
            &allowed, methods,
            "methods of {path}: routed (left), documented (right)"
        );
    }

    let served: serde_json::Value = http
        .get(format!("{base_url}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, serde_json::to_value(&document).unwrap());

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
