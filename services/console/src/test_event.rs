//! Sending a test event (`POST /v1/webhooks/{id}/test`): the form on the webhook's page, and
//! the endpoint's answer beside it. The form posts to a page of its own that shows the form
//! again with the answer beside it; with htmx, only the answer is taken from that page and
//! swapped into the webhook's page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use reqwest::StatusCode as ApiStatus;
use serde_json::{json, Value};

use crate::api::{segment, ApiFailure};
use crate::pages::{rendered, Action, MANAGE};
use crate::session::Session;
use crate::views::{body_text, csrf_field, datalist, failure, page, status_badge, submit, text};
use crate::webhook_form::event_type_names;
use crate::Console;

/// The type a test event has unless another is picked.
const DEFAULT_TYPE: &str = "console.test";

/// What the test form holds, so the page it posts to shows it as sent.
pub struct TestForm {
    event_type: String,
    data: String,
}

impl Default for TestForm {
    fn default() -> Self {
        Self {
            event_type: DEFAULT_TYPE.into(),
            data: String::new(),
        }
    }
}

impl TestForm {
    /// The API request: the type, and `data` when given (refused here when it is not JSON).
    fn body(&self) -> Result<Value, ApiFailure> {
        let mut body = json!({"type": self.event_type});
        if !self.data.is_empty() {
            body["data"] = serde_json::from_str(&self.data).map_err(|error| ApiFailure {
                status: ApiStatus::UNPROCESSABLE_ENTITY,
                code: "validation_failed".into(),
                message: format!("data: not JSON: {error}"),
            })?;
        }
        Ok(body)
    }
}

/// The test form, its event type typed or picked from the catalogue, with the endpoint's
/// answer (`outcome`) beside it.
pub fn test_panel(
    webhook_page: &str,
    form: &TestForm,
    catalogue: &[String],
    outcome: Option<&Result<Value, ApiFailure>>,
    session: &Session,
) -> Markup {
    let action = format!("{webhook_page}/test");
    html! {
        div.side-by-side {
            form.card method="post" action=(action) hx-post=(action) hx-target="#test-answer" hx-select="#test-answer" hx-swap="outerHTML" {
                (csrf_field(&session.csrf))
                label for="test_type" { "Event type" }
                input #test_type type="text" name="type" value=(form.event_type) list="test_event_types" required;
                (datalist("test_event_types", catalogue))
                label for="test_data" { "Data (JSON, optional)" }
                textarea #test_data name="data" rows="3" { (form.data) }
                (submit("Send test event", session.lacks(MANAGE).as_deref()))
            }
            // A live region that stays while its content is swapped, so the answer is read out.
            div.card role="status" aria-live="polite" aria-label="The endpoint's answer" {
                div #test-answer {
                    @match outcome {
                        None => p.hint { "The endpoint's answer shows here." },
                        Some(Err(error)) => (failure(error)),
                        Some(Ok(answer)) => (test_answer(answer)),
                    }
                }
            }
        }
    }
}

/// What the endpoint did: outcome, status, duration, error and body. The test API records
/// nothing and returns no headers; a published event's attempts show them.
fn test_answer(answer: &Value) -> Markup {
    html! {
        h3 { "The endpoint's answer" }
        dl {
            dt { "Outcome" } dd { (status_badge(text(answer, "outcome"))) }
            dt { "Response status" } dd {
                @match answer["response_status"].as_u64() {
                    Some(status) => (status),
                    None => "no response",
                }
            }
            dt { "Duration" } dd { (answer["duration_ms"]) " ms" }
            @if let Some(error) = answer["error"].as_str() { dt { "Error" } dd { (error) } }
            dt { "Delivery (webhook-id)" } dd { code { (text(answer, "delivery_id")) } }
        }
        h4 { "Response body" }
        @match answer["response_body"].as_str() {
            Some(body) => (body_text(body)),
            None => p.hint { "None." },
        }
        p.hint { "Test events are not recorded: headers show on a published event's attempts." }
    }
}

pub async fn test_webhook(
    State(console): State<Arc<Console>>,
    Path(webhook_id): Path<String>,
    action: Action,
) -> Response {
    let (submitted, key) = (&action.form, action.key.as_str());
    let form = TestForm {
        event_type: submitted.field("type").to_owned(),
        data: submitted.field("data").to_owned(),
    };
    let path = format!("/v1/webhooks/{}/test", segment(&webhook_id));
    let outcome = match form.body() {
        Ok(body) => console.api.post(key, &path, &body).await,
        Err(refused) => Err(refused),
    };
    let catalogue = event_type_names(&console, key).await;
    let webhook_page = format!("/console/webhooks/{}", segment(&webhook_id));
    let status = match &outcome {
        Ok(_) => StatusCode::OK,
        Err(error) => {
            StatusCode::from_u16(error.status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
        }
    };
    let content = html! {
        (test_panel(&webhook_page, &form, &catalogue, Some(&outcome), &submitted.session))
        p { a href=(webhook_page) { "Back to the webhook" } }
    };
    rendered(
        status,
        page("Test event", Some(&submitted.session), content),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_must_be_json_and_may_be_left_out() {
        let bare = TestForm::default().body().unwrap();
        assert_eq!(bare, json!({"type": "console.test"}));
        let broken = TestForm {
            event_type: "order.created".into(),
            data: "{nope".into(),
        };
        let refused = broken.body().unwrap_err();
        assert_eq!(refused.code, "validation_failed");
        assert!(refused.message.starts_with("data: not JSON"));
    }

    #[test]
    fn the_answer_shows_beside_the_form_as_text() {
        let session = Session::new(Some("hk_x".into()), chrono::Duration::hours(1));
        let answer = json!({
            "outcome": "failed", "response_status": 500, "duration_ms": 12,
            "delivery_id": "msg_1", "response_body": "<b>down</b>"
        });
        let catalogue = ["order.created".to_owned()];
        let panel = test_panel(
            "/console/webhooks/wh_1",
            &TestForm::default(),
            &catalogue,
            Some(&Ok(answer)),
            &session,
        )
        .into_string();
        assert!(panel.contains(r#"hx-post="/console/webhooks/wh_1/test""#));
        assert!(panel.contains(r#"<option value="order.created">"#));
        assert!(panel.contains("<dd>500</dd>") && panel.contains("&lt;b&gt;down&lt;/b&gt;"));
        let unreachable = ApiFailure {
            status: ApiStatus::UNPROCESSABLE_ENTITY,
            code: "url_unreachable".into(),
            message: "connection refused".into(),
        };
        let panel = test_panel(
            "/console/webhooks/wh_1",
            &TestForm::default(),
            &[],
            Some(&Err(unreachable)),
            &session,
        )
        .into_string();
        let form_at = panel.find("</form>").unwrap();
        assert!(panel[form_at..].contains("url_unreachable"));
    }
}
