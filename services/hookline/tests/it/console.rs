//! The web console, driven over HTTP the way a browser without JavaScript drives it: sign-in,
//! the session cookie and CSRF token, the security headers, forms that create and change
//! webhooks, payloads rendered inert, and tenants kept apart. The same console in a real browser is `console_browser.rs`.

use std::time::Duration;

use hookline_testkit::{eventually, Api, Receiver, ADMIN_TOKEN};
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

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
    // The request body as sent for the envelope shape: id, type, timestamp, then data.
    assert!(
        detail.body.contains("payload shape, envelope"),
        "{}",
        detail.body
    );
    let envelope_at = detail.body.find("{\n  &quot;id&quot;: &quot;evt_").unwrap();
    let envelope = &detail.body[envelope_at..];
    let field_at = |field: &str| {
        envelope
            .find(&format!("\n  &quot;{field}&quot;: "))
            .unwrap()
    };
    assert!(field_at("type") < field_at("timestamp") && field_at("timestamp") < field_at("data"));
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
    // The page shows the form again, as sent, with the answer in the region htmx swaps in.
    assert!(
        tested.body.contains(r#"name="type" value="order.test""#),
        "{}",
        tested.body
    );
    assert!(tested.body.contains(r##"hx-select="#test-answer""##));
    let answer_at = tested.body.find(r#"id="test-answer""#).unwrap();
    assert!(tested.body[answer_at..].contains("<dd>500</dd>"));

    // An endpoint no connection reaches: the API's refusal beside the form.
    let (status, closed) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "http://127.0.0.1:9/closed", "events": ["probe.*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{closed}");
    let closed_path = format!("/console/webhooks/{}", closed["id"].as_str().unwrap());
    let unreachable = browser
        .post(&format!("{closed_path}/test"), &[("type", "order.test")])
        .await;
    assert_eq!(
        unreachable.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unreachable.body
    );
    let answer_at = unreachable.body.find(r#"id="test-answer""#).unwrap();
    assert!(
        unreachable.body[answer_at..].contains("url_unreachable"),
        "{}",
        unreachable.body
    );
    assert!(unreachable.body[..answer_at].contains("Send test event"));

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
    let recovered = eventually(
        "the recovery job to finish",
        Duration::from_secs(60),
        || {
            let (mut browser, path) = (browser.clone(), job_path.clone());
            async move {
                let page = browser.get(&path).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                page.body
                    .contains(r#"<span class="badge good">succeeded</span>"#)
                    .then_some(page)
            }
        },
    )
    .await;
    assert!(
        !recovered.body.contains("Refresh progress"),
        "{}",
        recovered.body
    );
    assert!(
        !recovered.body.contains("hx-trigger"),
        "a finished job is not followed"
    );
    assert!(
        recovered.body.contains("What it replayed"),
        "{}",
        recovered.body
    );

    // Rotating asks first.
    let detail = browser.get(&detail_path).await;
    assert!(detail.body.contains(&format!(
        r#"<a class="button" href="{detail_path}/rotate-secret">"#
    )));
    let confirm = browser.get(&format!("{detail_path}/rotate-secret")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.body.contains("shown once, on the next page"),
        "{}",
        confirm.body
    );
    assert!(confirm
        .body
        .contains(&format!(r#"action="{detail_path}/rotate-secret""#)));
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
                "schema": {"type": "object", "required": ["note"]},
                "example": {"note": "<script>alert(1)</script>"}
            }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the schema is checked by the API"
    );
    // The events page lists events, each with its deliveries by webhook URL and status.
    let events = browser.get("/console/events").await;
    assert_eq!(events.status, StatusCode::OK);
    let event_at = events
        .body
        .find("<code>order.created</code> · <time")
        .unwrap();
    let entry = &events.body[event_at..];
    let entry = &entry[..entry.find("</article>").unwrap()];
    assert!(entry.contains(&delivery_id), "{entry}");
    assert!(
        entry.contains(&format!(">{}</a>", receiver.url("/flaky"))),
        "{entry}"
    );
    assert!(
        entry.contains(r#"<span class="badge good">succeeded</span>"#),
        "{entry}"
    );
    assert!(entry.contains("<summary>Payload</summary>"), "{entry}");
    assert!(entry.contains("&quot;n&quot;: 1"), "{entry}");
    // The catalogue: each type's schema and example.
    assert!(events.body.contains("Schema of data"));
    assert!(
        events.body.contains("&quot;required&quot;: ["),
        "{}",
        events.body
    );
    assert!(events.body.contains("&lt;b&gt;an order&lt;/b&gt;"));
    assert!(events
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!events.body.contains("<script>alert"));

    // More events than a page holds: the rest are a cursor away.
    let batch: Vec<Value> = (0..21)
        .map(|n| json!({"type": "paging.probe", "data": {"n": n}}))
        .collect();
    let (status, body) = api
        .post("/v1/events/batch", &key, &json!({"events": batch}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let events_on = |page: &str| page.matches("<article class=\"event\">").count();
    let (first, second) = eventually("both pages", Duration::from_secs(60), || {
        let mut browser = browser.clone();
        async move {
            let first = browser.get("/console/events?type=paging.probe").await;
            let later = first
                .body
                .split(r#"<a href="/console/events?"#)
                .nth(1)?
                .split('"')
                .next()?
                .replace("&amp;", "&");
            let second = browser.get(&format!("/console/events?{later}")).await;
            (events_on(&second.body) == 1).then_some((first, second))
        }
    })
    .await;
    assert_eq!(events_on(&first.body), 20);
    assert!(first.body.contains("Later events"));
    assert!(!second.body.contains("Later events"), "{}", second.body);
    hookline.stop().await.unwrap();
}

/// The keys of `tenant`, as the admin API lists them.
async fn keys_of(api: &Api, tenant: &str) -> Vec<Value> {
    let (status, keys) = api
        .get(&format!("/v1/tenants/{tenant}/keys"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    keys["data"].as_array().unwrap().clone()
}

fn console_keys(keys: &[Value]) -> Vec<&Value> {
    keys.iter()
        .filter(|key| {
            key["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("console session "))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_pick_a_tenant_with_a_key_revoked_on_switch_and_sign_out() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let (first, _) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (second, _) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    // A console key whose session ended without signing out.
    let (status, _) = api
        .post(
            &format!("/v1/tenants/{second}/keys"),
            ADMIN_TOKEN,
            &json!({"name": "console session gone until 2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut browser = Browser::new(&hookline.base_url);

    let signed_in = browser.sign_in(ADMIN_TOKEN).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/console/tenants");
    assert!(!signed_in.set_cookie().contains(ADMIN_TOKEN));
    let no_tenant_yet = browser.get("/console/webhooks").await;
    assert_eq!(no_tenant_yet.location(), "/console/tenants");

    let picker = browser.get("/console/tenants").await;
    assert_eq!(picker.status, StatusCode::OK);
    assert!(picker.body.contains(&first) && picker.body.contains(&second));
    assert!(picker.body.contains("Open tenant"));
    let opened = browser
        .post(
            "/console/tenants",
            &[("tenant", &first), ("operator", "Ada <b>")],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    assert_eq!(opened.location(), "/console/webhooks");
    let first_keys = keys_of(&api, &first).await;
    let session_keys = console_keys(&first_keys);
    assert_eq!(session_keys.len(), 1, "{first_keys:?}");
    let first_key = session_keys[0].clone();
    assert!(first_key["name"]
        .as_str()
        .unwrap()
        .starts_with("console session Ada <b> until "));
    assert!(first_key["revoked_at"].is_null());
    assert_eq!(first_key["scopes"].as_array().unwrap().len(), 4);

    // The operator acts for the tenant through the public API, and the page says which.
    let webhooks = browser.get("/console/webhooks").await;
    assert_eq!(webhooks.status, StatusCode::OK, "{}", webhooks.body);
    assert!(webhooks
        .body
        .contains("Tenant: <strong>test tenant</strong>"));
    assert!(webhooks.body.contains("(as operator)"));
    assert!(webhooks.body.contains(r#"href="/console/tenants""#));
    assert!(webhooks.body.contains(r#"href="/console/webhooks/new""#));

    // Switching revokes the first tenant's key and sweeps the second's expired console keys.
    browser.get("/console/tenants").await;
    let switched = browser
        .post(
            "/console/tenants",
            &[("tenant", &second), ("operator", "Ada")],
        )
        .await;
    assert_eq!(switched.location(), "/console/webhooks");
    let first_keys = keys_of(&api, &first).await;
    assert!(console_keys(&first_keys)[0]["revoked_at"].is_string());
    let second_keys = keys_of(&api, &second).await;
    let second_console_keys = console_keys(&second_keys);
    assert_eq!(second_console_keys.len(), 2, "{second_keys:?}");
    for key in &second_console_keys {
        let expired = key["name"].as_str().unwrap().contains("until 2000-");
        assert_eq!(key["revoked_at"].is_string(), expired, "{key}");
    }

    // A new session after the switch, with its own CSRF token.
    let viewing = browser.get("/console/webhooks").await;
    assert!(viewing.body.contains(&second), "{}", viewing.body);
    let signed_out = browser.post("/console/sign-out", &[]).await;
    assert_eq!(signed_out.location(), "/console/sign-in");
    let second_keys = keys_of(&api, &second).await;
    assert!(console_keys(&second_keys)
        .iter()
        .all(|key| key["revoked_at"].is_string()));
    let after = browser.get("/console/tenants").await;
    assert_eq!(after.location(), "/console/sign-in");
    hookline.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actions_a_key_may_not_do_are_disabled_with_a_reason_and_refused_anyway() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_, created) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/scoped"), "events": ["*"]}),
        )
        .await;
    let webhook_id = created["id"].as_str().unwrap().to_owned();
    receiver
        .configure("/scoped", created["secret"].as_str().unwrap(), 200)
        .await;
    let (status, _) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "order.created", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let scoped_key = |scopes: &'static [&'static str]| {
        let (api, tenant) = (&api, &tenant);
        async move {
            let (status, created) = api
                .post(
                    &format!("/v1/tenants/{tenant}/keys"),
                    ADMIN_TOKEN,
                    &json!({"name": "limited", "scopes": scopes}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            created["key"].as_str().unwrap().to_owned()
        }
    };

    // Read-only: deliveries are listed, nothing can be changed.
    let mut reader = Browser::new(&hookline.base_url);
    reader
        .sign_in(&scoped_key(&["deliveries:read"]).await)
        .await;
    let webhooks = reader.get("/console/webhooks").await;
    assert_eq!(webhooks.status, StatusCode::OK);
    assert!(
        webhooks.body.contains("needs webhooks:manage"),
        "{}",
        webhooks.body
    );
    assert!(!webhooks.body.contains(r#"href="/console/webhooks/new""#));
    assert!(
        webhooks.body.contains("forbidden"),
        "the API's refusal is shown"
    );
    let events = eventually(
        "the delivery on the events page",
        Duration::from_secs(60),
        || {
            let mut reader = reader.clone();
            async move {
                let page = reader.get("/console/events").await;
                // The event is listed once accepted, its delivery once fanned out.
                page.body.contains("/console/deliveries/").then_some(page)
            }
        },
    )
    .await;
    assert!(
        events.body.contains("needs deliveries:replay"),
        "{}",
        events.body
    );
    assert!(
        events.body.contains("disabled>Replay</button>"),
        "{}",
        events.body
    );
    let delivery_id = events
        .body
        .split("/console/deliveries/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let refused = reader
        .post(&format!("/console/deliveries/{delivery_id}/replay"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("forbidden") && refused.body.contains("deliveries:replay"));

    // Managing without replaying: editing works, recovery is disabled and refused.
    let mut manager = Browser::new(&hookline.base_url);
    manager
        .sign_in(&scoped_key(&["webhooks:manage", "deliveries:read"]).await)
        .await;
    let detail_path = format!("/console/webhooks/{webhook_id}");
    let detail = manager.get(&detail_path).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert!(detail
        .body
        .contains(&format!(r#"href="{detail_path}/edit""#)));
    assert!(detail
        .body
        .contains("disabled>Replay failed deliveries since then</button> <small class=\"needs\">needs deliveries:replay</small>"),
        "{}", detail.body);
    let recover = manager
        .post(
            &format!("{detail_path}/recover"),
            &[("since", "2026-01-01T00:00")],
        )
        .await;
    assert_eq!(recover.status, StatusCode::FORBIDDEN, "{}", recover.body);
    hookline.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_edited_with_metadata_shown_once_and_attempts_filtered_by_time() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, _) = api
        .post(
            "/v1/event-types",
            &key,
            &json!({"name": "order.created", "description": "an order"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut browser = Browser::new(&hookline.base_url);
    browser.sign_in(&key).await;

    // Events come from the catalogue (or `*`); metadata is one `key=value` a line.
    let form = browser.get("/console/webhooks/new").await;
    assert!(
        form.body.contains(r#"name="events" value="order.created""#),
        "{}",
        form.body
    );
    assert!(form.body.contains(r#"name="events" value="*""#));
    let url = receiver.url("/edited");
    let created = browser
        .post(
            "/console/webhooks",
            &[
                ("url", &url),
                ("events", "order.created"),
                ("name", "orders"),
                ("metadata", "team=billing\nnote=<b>bold</b>"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(created.body.contains("shown only this once"));
    assert!(created.body.contains(r#"data-copy="secret""#));
    assert!(created.body.contains("Copy secret"));
    assert!(created
        .body
        .contains(r#"<script src="/console/assets/console.js" defer></script>"#));
    let secret = created
        .body
        .split(r#"readonly value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    receiver.configure("/edited", &secret, 200).await;
    let script = browser.get("/console/assets/console.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("clipboard"));
    let (_, webhooks) = api.get("/v1/webhooks", &key).await;
    let webhook = &webhooks["data"][0];
    assert_eq!(
        webhook["metadata"],
        json!({"team": "billing", "note": "<b>bold</b>"})
    );
    assert_eq!(webhook["events"], json!(["order.created"]));
    let webhook_id = webhook["id"].as_str().unwrap().to_owned();
    let detail_path = format!("/console/webhooks/{webhook_id}");
    let detail = browser.get(&detail_path).await;
    assert!(!detail.body.contains(&secret), "the secret is shown once");
    assert!(
        detail.body.contains("note=&lt;b&gt;bold&lt;/b&gt;"),
        "{}",
        detail.body
    );

    // A refused edit comes back with the error beside its field and the form as sent.
    let edit_path = format!("{detail_path}/edit");
    let edit = browser.get(&edit_path).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("team=billing"), "{}", edit.body);
    let refused = browser
        .post(
            &edit_path,
            &[
                ("url", &url),
                ("events", "order.created"),
                ("metadata", "team=ops"),
                ("headers", "Host: elsewhere.example"),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let error_at = refused.body.find("is set by Hookline").unwrap();
    let headers_at = refused.body.find(r#"id="headers""#).unwrap();
    let rate_limit_at = refused.body.find(r#"for="rate_limit""#).unwrap();
    assert!(
        headers_at < error_at && error_at < rate_limit_at,
        "{}",
        refused.body
    );
    assert!(refused.body.contains(">team=ops</textarea>"));

    let hostile = "<script>alert(2)</script>";
    let saved = browser
        .post(
            &edit_path,
            &[
                ("url", &url),
                ("events", "order.created"),
                ("description", "edited"),
                ("metadata", "team=ops"),
                (
                    "headers",
                    &format!("X-Note: {hostile}\nAuthorization: Bearer s3cret-value"),
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.location(), detail_path);
    let (_, webhook) = api.get(&format!("/v1/webhooks/{webhook_id}"), &key).await;
    assert_eq!(webhook["metadata"], json!({"team": "ops"}));
    let headers = json!({"X-Note": hostile, "Authorization": "Bearer s3cret-value"});
    assert_eq!(webhook["headers"], headers);
    assert_eq!(webhook["description"], "edited");

    // A credential's value is shown nowhere; an edit that leaves it redacted keeps it.
    let detail = browser.get(&detail_path).await;
    assert!(!detail.body.contains("s3cret-value"), "{}", detail.body);
    assert!(detail.body.contains("Authorization: [redacted]"));
    let edit = browser.get(&edit_path).await;
    assert!(!edit.body.contains("s3cret-value"), "{}", edit.body);
    let form_headers = edit
        .body
        .split(r#"name="headers""#)
        .nth(1)
        .and_then(|rest| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once("</textarea>"))
        .map(|(headers, _)| headers.replace("&lt;", "<").replace("&gt;", ">"))
        .unwrap();
    assert!(
        form_headers.contains("Authorization: [redacted]"),
        "{form_headers}"
    );
    let resaved = browser
        .post(
            &edit_path,
            &[
                ("url", &url),
                ("events", "order.created"),
                ("description", "edited"),
                ("metadata", "team=ops"),
                ("headers", &form_headers),
            ],
        )
        .await;
    assert_eq!(resaved.status, StatusCode::SEE_OTHER, "{}", resaved.body);
    let (_, webhook) = api.get(&format!("/v1/webhooks/{webhook_id}"), &key).await;
    assert_eq!(webhook["headers"], headers);

    let (status, _) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "order.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let listed = eventually(
        "the last attempt in the list",
        Duration::from_secs(60),
        || {
            let mut browser = browser.clone();
            async move {
                let page = browser.get("/console/webhooks").await;
                page.body.contains("HTTP 200").then_some(page)
            }
        },
    )
    .await;
    assert!(
        listed.body.contains(r#"class="sparkline""#),
        "{}",
        listed.body
    );
    assert!(
        listed.body.contains("of 1 attempt</small>"),
        "{}",
        listed.body
    );
    // Times read to the second, in UTC.
    assert!(
        listed.body.contains(" UTC</time> · HTTP 200"),
        "{}",
        listed.body
    );

    // Header values, configured or recorded, are text.
    let detail = browser.get(&detail_path).await;
    assert!(detail.body.contains("Request headers"));
    assert!(!detail.body.contains(hostile), "{}", detail.body);
    assert!(detail
        .body
        .contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(detail.body.contains("p95 latency"));
    assert!(
        detail
            .body
            .contains(r#"<h4>Response body</h4><p class="hint">Empty.</p>"#),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("Show the numbers as a table"));

    // The attempt log's time filter: an hour ago finds it, an hour ahead does not.
    let at = |hours: i64| {
        (chrono::Utc::now() + chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let recent = browser
        .get(&format!("{detail_path}?since={}", at(-1)))
        .await;
    assert!(
        recent.body.contains("Replay this delivery"),
        "{}",
        recent.body
    );
    let ahead = browser
        .get(&format!("{detail_path}?since={}&until={}", at(1), at(2)))
        .await;
    assert_eq!(ahead.status, StatusCode::OK);
    assert!(
        !ahead.body.contains("Replay this delivery"),
        "{}",
        ahead.body
    );
    assert!(ahead.body.contains("No attempts match these filters."));
    hookline.stop().await.unwrap();
}
