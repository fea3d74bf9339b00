//! `/v1/event-types`: each tenant's optional catalogue of the event types it publishes, with a
//! description, an optional JSON Schema of `data` and an optional example. Entries are
//! archived, never deleted, and live in the compacted `event-types` topic.
//!
//! The catalogue is enforced in two places:
//! - publishing: an event whose type has a schema must carry `data` that matches it
//!   (`schema_violation`); types outside the catalogue stay publishable;
//! - subscribing: once a tenant has any entry, a webhook may newly subscribe only to exact types
//!   in its catalogue that are not archived (`invalid_events`); `*` and `prefix.*` always pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_control::ControlState;
use hookline_domain::event_filter::validate_event_type;
use hookline_domain::{ErrorCode, EventFilter};
use hookline_runtime::api::{ApiError, ApiJson, ApiQuery, ErrorBody, Tenant};
use hookline_runtime::deadline::Deadline;
use hookline_schemas::{EventTypeRecord, Scope, SCHEMA_VERSION};
use jsonschema::Validator;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::page::{self, Page};
use crate::patch::nullable;
use crate::AppState;

/// Longest description, in characters (as the document's `maxLength` counts them).
const MAX_DESCRIPTION_LEN: usize = 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    /// The event type, as events carry it in `type`.
    #[schema(pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    name: String,
    #[schema(max_length = 1024)]
    description: String,
    /// A JSON Schema that published events' `data` must match: an object that is a valid
    /// JSON Schema, without references to other documents (`invalid_schema`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    /// An example `data`, for documentation: any JSON, which must match `schema` if there is
    /// one (`schema_violation`).
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    example: Option<Value>,
}

/// A partial update: fields present replace the entry's, `null` removes `schema` or `example`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEventType {
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: Option<String>,
    /// As in `CreateEventType`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    schema: Option<Option<Value>>,
    /// As in `CreateEventType`; any JSON.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Value>)]
    example: Option<Option<Value>>,
    #[serde(default)]
    archived: Option<bool>,
}

/// An event type as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    name: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    example: Option<Value>,
    archived: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    archived_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl EventTypeView {
    fn new(record: &EventTypeRecord) -> Self {
        Self {
            name: record.name.clone(),
            description: record.description.clone(),
            schema: record.schema.clone(),
            example: record.example.clone(),
            archived: record.archived_at.is_some(),
            archived_at: record.archived_at,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// Where a validation error points, for messages: `` at `/items/0` `` or at the root.
fn location(error: &jsonschema::ValidationError<'_>) -> String {
    match error.instance_path().as_str() {
        "" => "at the root".to_owned(),
        pointer => format!("at `{pointer}`"),
    }
}

/// Compiles a schema an owner sent: a JSON object that is a valid JSON Schema, with no
/// reference this process cannot resolve by itself.
fn compile(schema: &Value) -> Result<Validator, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidSchema, message);
    if !schema.is_object() {
        return Err(invalid("schema: must be a JSON Schema object".into()));
    }
    jsonschema::validator_for(schema)
        .map_err(|err| invalid(format!("schema: {err} ({})", location(&err))))
}

/// Checks everything an owner can set on an entry, naming the field that is wrong.
fn validate(record: &EventTypeRecord) -> Result<(), ApiError> {
    if record.description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("description: at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    let Some(schema) = &record.schema else {
        return Ok(());
    };
    let validator = compile(schema)?;
    if let Some(example) = &record.example {
        validator.validate(example).map_err(|err| {
            ApiError::new(
                ErrorCode::SchemaViolation,
                format!("example: {} ({})", err.masked(), location(&err)),
            )
        })?;
    }
    Ok(())
}

/// Writes the record and waits until this process's view has it.
async fn store(
    state: &AppState,
    deadline: Deadline,
    record: &EventTypeRecord,
) -> Result<(), ApiError> {
    let key = EventTypeRecord::key(&record.tenant_id, &record.name);
    state
        .write(deadline, &state.topics.event_types(), &key, record)
        .await
}

/// The tenant's entry, as the view has it after catching up with acknowledged writes.
async fn current(
    state: &AppState,
    deadline: Deadline,
    tenant_id: &str,
    name: &str,
) -> Result<EventTypeRecord, ApiError> {
    state.catch_up(deadline).await?;
    state
        .control
        .read()
        .event_type(tenant_id, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("event type"))
}

/// Add an event type to the tenant's catalogue.
#[utoipa::path(
    post,
    path = "/v1/event-types",
    tag = "event-types",
    security(("api_key" = ["webhooks:manage"])),
    request_body = CreateEventType,
    responses(
        (status = 201, description = "The new entry.", body = EventTypeView),
        (status = 409, description = "The name is taken, archived entries included (`event_type_exists`).", body = ErrorBody),
        (status = 422, description = "`invalid_schema`, `schema_violation` (the example) or `validation_failed`", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    ApiJson(request): ApiJson<CreateEventType>,
) -> Result<(StatusCode, Json<EventTypeView>), ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    validate_event_type(&request.name)
        .map_err(|err| ApiError::new(ErrorCode::ValidationFailed, format!("name: {err}")))?;
    let now = Utc::now();
    let record = EventTypeRecord {
        schema_version: SCHEMA_VERSION,
        tenant_id: principal.tenant_id.clone(),
        name: request.name,
        description: request.description,
        schema: request.schema,
        example: request.example,
        revision: 0,
        archived_at: None,
        created_at: now,
        updated_at: now,
    };
    validate(&record)?;
    state.catch_up(deadline).await?;
    if let Some(existing) = state
        .control
        .read()
        .event_type(&record.tenant_id, &record.name)
    {
        let archived = if existing.archived_at.is_some() {
            " (archived: unarchive it with PATCH)"
        } else {
            ""
        };
        return Err(ApiError::new(
            ErrorCode::EventTypeExists,
            format!("event type `{}` already exists{archived}", record.name),
        ));
    }
    store(&state, deadline, &record).await?;
    Ok((StatusCode::CREATED, Json(EventTypeView::new(&record))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The name of the last entry of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    include_archived: bool,
}

/// The catalogue in name order; any of the tenant's keys may read it.
#[utoipa::path(
    get,
    path = "/v1/event-types",
    tag = "event-types",
    security(("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the catalogue.", body = Page<EventTypeView>),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    deadline: Deadline,
    Tenant(principal): Tenant,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<EventTypeView>>, ApiError> {
    let limit = page::limit(query.limit)?;
    state.catch_up(deadline).await?;
    let control = state.control.read();
    let views = control
        .event_types_of(&principal.tenant_id)
        .filter(|record| query.include_archived || record.archived_at.is_none())
        .map(EventTypeView::new);
    Ok(Json(page::paginate(
        views,
        |view| &view.name,
        query.cursor.as_deref(),
        limit,
    )))
}

/// One entry of the catalogue, archived or not.
#[utoipa::path(
    get,
    path = "/v1/event-types/{name}",
    tag = "event-types",
    security(("api_key" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "The entry.", body = EventTypeView),
        (status = 404, description = "No such event type in this tenant's catalogue (`not_found`).", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    deadline: Deadline,
    Tenant(principal): Tenant,
    Path(name): Path<String>,
) -> Result<Json<EventTypeView>, ApiError> {
    let record = current(&state, deadline, &principal.tenant_id, &name).await?;
    Ok(Json(EventTypeView::new(&record)))
}

/// Change an entry's description, schema or example, or archive or unarchive it.
#[utoipa::path(
    patch,
    path = "/v1/event-types/{name}",
    tag = "event-types",
    security(("api_key" = ["webhooks:manage"])),
    params(("name" = String, Path)),
    request_body = PatchEventType,
    responses(
        (status = 200, description = "The entry as changed.", body = EventTypeView),
        (status = 404, description = "No such event type in this tenant's catalogue (`not_found`).", body = ErrorBody),
        (status = 422, description = "`invalid_schema`, `schema_violation` (the example) or `validation_failed`", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<PatchEventType>,
) -> Result<Json<EventTypeView>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let mut record = current(&state, deadline, &principal.tenant_id, &name).await?;
    let PatchEventType {
        description,
        schema,
        example,
        archived,
    } = patch;
    let now = Utc::now();
    record.description = description.unwrap_or(record.description);
    record.schema = schema.unwrap_or(record.schema);
    record.example = example.unwrap_or(record.example);
    record.archived_at = match archived {
        Some(true) => record.archived_at.or(Some(now)),
        Some(false) => None,
        None => record.archived_at,
    };
    validate(&record)?;
    record.revision += 1;
    record.updated_at = now;
    store(&state, deadline, &record).await?;
    Ok(Json(EventTypeView::new(&record)))
}

/// Checks a webhook's event filters against the tenant's catalogue: once the catalogue has any
/// entry, each exact type not in `already_subscribed` must be in it and not archived.
pub fn check_subscriptions(
    control: &ControlState,
    tenant_id: &str,
    filters: &[String],
    already_subscribed: &[String],
) -> Result<(), ApiError> {
    if control.event_types_of(tenant_id).next().is_none() {
        return Ok(());
    }
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidEvents, message);
    for filter in filters.iter().filter(|f| !already_subscribed.contains(f)) {
        let Ok(EventFilter::Exact(name)) = EventFilter::parse(filter) else {
            continue;
        };
        match control.event_type(tenant_id, &name) {
            None => {
                return Err(invalid(format!(
                    "events: `{name}` is not in the tenant's event-type catalogue"
                )))
            }
            Some(record) if record.archived_at.is_some() => {
                return Err(invalid(format!(
                    "events: `{name}` is archived and cannot be newly subscribed to"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One entry's schema as compiled at one revision.
struct CompiledSchema {
    revision: u64,
    validator: Arc<Validator>,
}

/// Compiled schemas of catalogue entries (by topic key), each compiled once per revision.
#[derive(Clone, Default)]
pub struct SchemaCache {
    compiled: Arc<Mutex<HashMap<String, CompiledSchema>>>,
}

impl SchemaCache {
    /// The validator of `record`'s schema, compiled on first use of this revision.
    fn validator(&self, record: &EventTypeRecord, schema: &Value) -> Option<Arc<Validator>> {
        let key = EventTypeRecord::key(&record.tenant_id, &record.name);
        let mut compiled = self.compiled.lock().expect("schema cache lock poisoned");
        if let Some(cached) = compiled.get(&key) {
            if cached.revision == record.revision {
                return Some(Arc::clone(&cached.validator));
            }
        }
        // Schemas are checked before they are stored, so this fails only for a record written
        // by another build; its events are not refused for it.
        match jsonschema::validator_for(schema) {
            Ok(validator) => {
                let validator = Arc::new(validator);
                let cached = CompiledSchema {
                    revision: record.revision,
                    validator: Arc::clone(&validator),
                };
                compiled.insert(key, cached);
                Some(validator)
            }
            Err(err) => {
                tracing::error!(
                    tenant_id = %record.tenant_id,
                    event_type = %record.name,
                    error = %err,
                    "stored event-type schema does not compile"
                );
                None
            }
        }
    }

    /// Checks `data` of an event of `event_type` against its catalogue schema, if it has one.
    /// Only parses `data` to check it: what is forwarded is still the text as published.
    pub fn check(
        &self,
        control: &ControlState,
        tenant_id: &str,
        event_type: &str,
        data: &RawValue,
    ) -> Result<(), String> {
        let Some(record) = control.event_type(tenant_id, event_type) else {
            return Ok(());
        };
        let Some(schema) = &record.schema else {
            return Ok(());
        };
        let Some(validator) = self.validator(record, schema) else {
            return Ok(());
        };
        let instance: Value =
            serde_json::from_str(data.get()).map_err(|err| format!("data: {err}"))?;
        validator.validate(&instance).map_err(|err| {
            format!(
                "data: {} ({}), as the schema of `{event_type}` requires",
                err.masked(),
                location(&err)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(schema: Option<Value>, example: Option<Value>) -> EventTypeRecord {
        let now = Utc::now();
        EventTypeRecord {
            schema_version: SCHEMA_VERSION,
            tenant_id: "ten_1".into(),
            name: "invoice.paid".into(),
            description: String::new(),
            schema,
            example,
            revision: 0,
            archived_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn amount_schema() -> Value {
        json!({
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 0}},
        })
    }

    #[test]
    fn schemas_that_are_not_json_schema_objects_are_refused_naming_the_field() {
        for schema in [
            json!("a string"),
            json!([1]),
            json!({"type": "nonsense"}),
            json!({"properties": {"a": {"minimum": "five"}}}),
            json!({"$ref": "https://example.com/remote.json"}),
            json!({"type": "string", "pattern": "(unclosed"}),
        ] {
            let error = validate(&record(Some(schema.clone()), None)).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidSchema, "{schema}");
            assert!(error.message.starts_with("schema: "), "{}", error.message);
        }
        assert!(validate(&record(Some(amount_schema()), None)).is_ok());
        assert!(validate(&record(None, Some(json!("anything")))).is_ok());
    }

    #[test]
    fn an_example_must_match_the_schema() {
        let error =
            validate(&record(Some(amount_schema()), Some(json!({"amount": -1})))).unwrap_err();
        assert_eq!(error.code, ErrorCode::SchemaViolation);
        assert!(error.message.contains("`/amount`"), "{}", error.message);
        assert!(validate(&record(Some(amount_schema()), Some(json!({"amount": 1})))).is_ok());
    }

    #[test]
    fn data_is_checked_against_the_schema_of_the_current_revision() {
        let mut state = ControlState::default();
        let mut entry = record(Some(amount_schema()), None);
        let put = |state: &mut ControlState, entry: &EventTypeRecord| {
            let value = serde_json::to_vec(entry).unwrap();
            let key = EventTypeRecord::key(&entry.tenant_id, &entry.name);
            state.apply(
                hookline_control::ControlTopic::EventTypes,
                &key,
                Some(&value),
            );
        };
        put(&mut state, &entry);
        let cache = SchemaCache::default();
        let raw = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        let check = |state: &ControlState, event_type: &str, data: &str| {
            cache.check(state, "ten_1", event_type, &raw(data))
        };
        assert_eq!(check(&state, "invoice.paid", r#"{"amount": 5}"#), Ok(()));
        let error = check(&state, "invoice.paid", r#"{"amount": "5"}"#).unwrap_err();
        assert!(error.contains("`/amount`"), "{error}");
        let error = check(&state, "invoice.paid", "[]").unwrap_err();
        assert!(error.contains("at the root"), "{error}");
        assert_eq!(check(&state, "not.catalogued", "[]"), Ok(()));
        assert_eq!(
            cache.check(&state, "ten_2", "invoice.paid", &raw("[]")),
            Ok(()),
            "another tenant's catalogue does not apply"
        );

        entry.schema = Some(json!({"type": "array"}));
        entry.revision = 1;
        put(&mut state, &entry);
        assert_eq!(check(&state, "invoice.paid", "[]"), Ok(()), "recompiled");
        entry.schema = None;
        entry.revision = 2;
        put(&mut state, &entry);
        assert_eq!(check(&state, "invoice.paid", "7"), Ok(()));
    }
}
