//! The `incident-manager` agent: incidents in the store (`list`, `get`, `create`, `resolve`).

use super::{str_field, text_of, Agent, AgentError, AgentResult, RunContext};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

/// Keeps incidents.
pub struct IncidentManager;

impl Agent for IncidentManager {
    fn name(&self) -> &'static str {
        "incident-manager"
    }

    fn actions(&self) -> &'static [&'static str] {
        &["list", "get", "create", "resolve"]
    }

    fn call<'a>(
        &'a self,
        action: &'a str,
        input: Value,
        run: &'a RunContext,
    ) -> LocalBoxFuture<'a, AgentResult> {
        Box::pin(async move {
            let store = &run.services.store;
            let failed = |e: aof_actors::ports::StoreError| AgentError::Failed(e.to_string());
            match action {
                "list" => {
                    let status = input
                        .get("status")
                        .map(text_of)
                        .filter(|s| !s.is_empty() && s != "all");
                    let limit = input
                        .get("limit")
                        .and_then(|v| text_of(v).parse::<i64>().ok())
                        .unwrap_or(10);
                    let list = store
                        .list_incidents(status.as_deref(), limit.clamp(1, 100))
                        .await
                        .map_err(failed)?;
                    Ok(json(&list))
                }
                "get" => {
                    let id = str_field(&input, "incident_id")?;
                    let found = store.get_incident(id).await.map_err(failed)?;
                    found
                        .map(|i| json(&i))
                        .ok_or_else(|| AgentError::Failed(format!("no incident {id}")))
                }
                "create" => {
                    let title = str_field(&input, "title")?;
                    let severity = input
                        .get("severity")
                        .map(text_of)
                        .unwrap_or_else(|| "warning".into());
                    let service = input.get("service").map(text_of).unwrap_or_default();
                    let created = store
                        .create_incident(title, &severity, &service)
                        .await
                        .map_err(failed)?;
                    Ok(json(&created))
                }
                "resolve" => {
                    let id = str_field(&input, "incident_id")?;
                    let resolved = store.resolve_incident(id).await.map_err(failed)?;
                    Ok(json(&resolved))
                }
                other => Err(AgentError::Failed(format!(
                    "incident-manager has no action `{other}`"
                ))),
            }
        })
    }
}

/// A store record as JSON.
fn json<T: serde::Serialize>(record: &T) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}
