//! The web console, driven over HTTP the way a browser without JavaScript drives it: sign-in,
//! the session cookie and CSRF token, the security headers, forms that create and change
//! webhooks, payloads rendered inert, and tenants kept apart. The same console in a real browser is `console_browser.rs`.

use std::time::Duration;

use hookline_testkit::{eventually, Api, Receiver, ADMIN_TOKEN};
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

use crate::{sender_args, start_hookline};

/// A browser of the console: keeps the session cookie, follows no redirects (so tests see
/// them), and knows the CSRF token of the last page it read.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    base_url: String,
    cookie: Option<String>,
    csrf: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookie(&self) -> &str {
        self.headers
            .get(SET_COOKIE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }
}

impl Browser {
    fn new(base_url: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base_url: base_url.to_owned(),
            cookie: None,
            csrf: None,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base_url));
        self.finish(request).await
    }

    /// Posts `fields` with the CSRF token of the last page read.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self
            .csrf
            .clone()
            .expect("a page with a form was read first");
        let mut fields = fields.to_vec();
        fields.push(("csrf", &csrf));
        self.post_without_csrf(path, &fields).await
    }

    async fn post_without_csrf(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .form(fields);
        self.finish(request).await
    }

    async fn finish(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        if let Some(cookie) = &self.cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        let response = request.send().await.expect("the console answers");
        let page = Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        };
        if let Some((pair, _)) = page.set_cookie().split_once(';') {
            self.cookie = Some(pair.to_owned());
        }
        if let Some(csrf) = page
            .body
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            self.csrf = Some(csrf.to_owned());
        }
        page
    }

    async fn sign_in(&mut self, key: &str) -> Page {
        self.get("/console/sign-in").await;
        self.post("/console/sign-in", &[("api_key", key)]).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_sessions_csrf_and_headers() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let mut browser = Browser::new(&hookline.base_url);

    let signed_out = browser.get("/console/webhooks").await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_out.location(), "/console/sign-in");

    let form = browser.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    let header = |name| form.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        header(CONTENT_SECURITY_POLICY),
        hookline_console::CONTENT_SECURITY_POLICY_VALUE
    );
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(header(CONTENT_SECURITY_POLICY).contains(directive));
    }
    assert_eq!(header(reqwest::header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header(reqwest::header::REFERRER_POLICY), "no-referrer");
    let cookie = form.set_cookie();
    assert!(cookie.starts_with("hookline_console="), "{cookie}");
    assert!(
        cookie.contains("; Path=/console; HttpOnly; SameSite=Strict"),
        "{cookie}"
    );

    let refused = browser
        .post("/console/sign-in", &[("api_key", "hk_not_a_key")])
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("unauthorized"), "{}", refused.body);
    assert!(refused.set_cookie().is_empty());

    let without_csrf = browser
        .post_without_csrf("/console/sign-in", &[("api_key", &key)])
        .await;
    assert_eq!(without_csrf.status, StatusCode::FORBIDDEN);

    let signed_in = browser.post("/console/sign-in", &[("api_key", &key)]).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/console/webhooks");
    assert!(!signed_in.set_cookie().contains(&key), "the key is sealed");
    let webhooks = browser.get("/console/webhooks").await;
    assert_eq!(webhooks.status, StatusCode::OK);
    assert!(webhooks.body.contains("No webhooks"));

    // Signed in, a POST without the session's token is still refused.
    let forged = browser
        .post_without_csrf("/console/webhooks", &[("url", "https://example.com/x")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = browser
        .post_without_csrf("/console/sign-out", &[("csrf", "not-the-session-token")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let signed_out = browser.post("/console/sign-out", &[]).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert!(signed_out.set_cookie().contains("Max-Age=0"));
    let after = browser.get("/console/webhooks").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);

    let css = browser.get("/console/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    let licence = browser.get("/console/assets/htmx-LICENSE").await;
    assert!(licence.body.contains("Zero-Clause BSD"));
    hookline.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_created_changed_and_inspected_inertly() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let mut browser = Browser::new(&hookline.base_url);
    browser.sign_in(&key).await;

    // A refused URL comes back beside its field with the API's code, the form kept.
    browser.get("/console/webhooks/new").await;
    let refused = browser
        .post(
            "/console/webhooks",
            &[("url", "not a url"), ("events_other", "order.*")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("invalid_url"), "{}", refused.body);
    assert!(refused.body.contains(r#"value="order.*""#));

    let url = receiver.url("/console");
    let created = browser
        .post(
            "/console/webhooks",
            &[
                ("url", &url),
                ("events_other", "order.*"),
                ("description", "from the console"),
                ("signature", "standard"),
                ("payload", "envelope"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(created.body.contains("shown only this once"));
    let secret = created
        .body
        .split(r#"readonly value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.configure("/console", &secret, 200).await;

    let listed = browser.get("/console/webhooks").await;
    assert!(listed.body.contains(&url), "{}", listed.body);
    let (_, webhooks) = api.get("/v1/webhooks", &key).await;
    let webhook_id = webhooks["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(!listed.body.contains(&secret), "the secret is shown once");
    let active_only = browser.get("/console/webhooks?status=inactive").await;
    assert!(!active_only.body.contains(&url));

    // Deactivate from the list, activate from the detail page.
    let detail_path = format!("/console/webhooks/{webhook_id}");
    let switched = browser
        .post(
            &format!("{detail_path}/deactivate"),
            &[("back", "/console/webhooks")],
        )
        .await;
    assert_eq!(switched.location(), "/console/webhooks");
    let (_, webhook) = api.get(&format!("/v1/webhooks/{webhook_id}"), &key).await;
    assert_eq!(webhook["status"], "inactive");
    browser.get(&detail_path).await;
    browser
        .post(
            &format!("{detail_path}/activate"),
            &[("back", &detail_path)],
        )
        .await;
    let (_, webhook) = api.get(&format!("/v1/webhooks/{webhook_id}"), &key).await;
    assert_eq!(webhook["status"], "active");

    // A hostile payload, delivered, shows on the detail page as text.
    let script = "<script>alert(1)</script>";
    let image = r#""><img src=x onerror=alert(1)>"#;
    let (status, _) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "order.created", "data": {"note": script, "name": image}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let detail = eventually(
        "the attempt on the detail page",
        Duration::from_secs(60),
        || {
            let path = detail_path.clone();
            let mut browser = browser.clone();
            async move {
                let page = browser.get(&path).await;
                page.body.contains("Replay this delivery").then_some(page)
            }
        },
    )
    .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(!detail.body.contains("<script>alert"), "{}", detail.body);
    assert!(!detail.body.contains("<img src=x"), "{}", detail.body);
    assert!(detail
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(detail.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(detail.body.contains("succeeded"));
    assert!(detail.body.contains("<svg"), "the stats chart");

    // Another tenant's console finds no such webhook.
    let mut stranger = Browser::new(&hookline.base_url);
    stranger.sign_in(&other_key).await;
    let hidden = stranger.get(&detail_path).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(hidden.body.contains("not_found"));
    assert!(!hidden.body.contains(&url));
    let hidden = stranger.get(&format!("{detail_path}/delete")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // Delete after the confirmation step.
    let confirm = browser.get(&format!("{detail_path}/delete")).await;
    assert!(confirm.body.contains("Delete webhook"));
    let deleted = browser.post(&format!("{detail_path}/delete"), &[]).await;
    assert_eq!(deleted.location(), "/console/webhooks");
    let (status, _) = api.get(&format!("/v1/webhooks/{webhook_id}"), &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    hookline.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_sends_replays_recovery_rotation_and_the_events_page() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_, created) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/flaky"), "events": ["order.*"]}),
        )
        .await;
    let webhook_id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    receiver.configure("/flaky", &secret, 500).await;
    let mut browser = Browser::new(&hookline.base_url);
    browser.sign_in(&key).await;
    let detail_path = format!("/console/webhooks/{webhook_id}");
    browser.get(&detail_path).await;

    let tested = browser
        .post(
            &format!("{detail_path}/test"),
            &[("type", "order.test"), ("data", r#"{"probe": true}"#)],
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert!(tested.body.contains("failed"), "{}", tested.body);
    assert!(tested.body.contains("<dd>500</dd>"), "{}", tested.body);

    let (status, _) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "order.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let failed_only = format!("{detail_path}?status=failed");
    let failed = eventually("the failed attempt", Duration::from_secs(60), || {
        let (mut browser, path) = (browser.clone(), failed_only.clone());
        async move {
            let page = browser.get(&path).await;
            page.body.contains("Replay this delivery").then_some(page)
        }
    })
    .await;
    let delivery_id = failed
        .body
        .split("/console/deliveries/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let succeeded_only = format!("{detail_path}?status=succeeded");
    assert!(!browser
        .get(&succeeded_only)
        .await
        .body
        .contains("Replay this delivery"));

    receiver.configure("/flaky", &secret, 200).await;
    let replayed = browser
        .post(
            &format!("/console/deliveries/{delivery_id}/replay"),
            &[("back", &detail_path)],
        )
        .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.body);
    assert_eq!(replayed.location(), detail_path);
    eventually("the replayed attempt", Duration::from_secs(60), || {
        let (mut browser, path) = (browser.clone(), succeeded_only.clone());
        async move {
            let page = browser.get(&path).await;
            page.body.contains("Replay this delivery").then_some(())
        }
    })
    .await;

    let since = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let recovering = browser
        .post(&format!("{detail_path}/recover"), &[("since", &since)])
        .await;
    assert_eq!(
        recovering.status,
        StatusCode::SEE_OTHER,
        "{}",
        recovering.body
    );
    let job_path = recovering.location().to_owned();
    assert!(job_path.starts_with(&format!("{detail_path}/recover/")));
    eventually(
        "the recovery job to finish",
        Duration::from_secs(60),
        || {
            let (mut browser, path) = (browser.clone(), job_path.clone());
            async move {
                let page = browser.get(&path).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                page.body.contains("succeeded").then_some(())
            }
        },
    )
    .await;

    browser.get(&detail_path).await;
    let rotated = browser
        .post(&format!("{detail_path}/rotate-secret"), &[])
        .await;
    assert!(rotated.body.contains("shown only this once"));
    assert!(rotated.body.contains("whsec_"));
    assert!(!rotated.body.contains(&secret));

    let (status, _) = api
        .post(
            "/v1/event-types",
            &key,
            &json!({
                "name": "order.created",
                "description": "<b>an order</b>",
                "example": {"note": "<script>alert(1)</script>"}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let events = browser.get("/console/events").await;
    assert_eq!(events.status, StatusCode::OK);
    assert!(events.body.contains(&delivery_id), "{}", events.body);
    assert!(events.body.contains("&lt;b&gt;an order&lt;/b&gt;"));
    assert!(events
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!events.body.contains("<script>alert"));
    hookline.stop().await.unwrap();
}
