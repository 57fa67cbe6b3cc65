//! Incidents: opened by a person or a flow, changed with a timeline of who did and said what, and
//! resolved for good (a resolved incident stays resolved; a note on it is still recorded). The
//! `incident-manager` agent reads the steps' inputs and shapes outputs around these.

use super::{when, Refused};
use crate::store::{IncidentChange, IncidentRecord, IncidentUpdate, Repositories};

/// How many incidents one listing may return.
pub const LIST_LIMIT: std::ops::RangeInclusive<i64> = 1..=100;
/// How many incidents a listing returns when the flow does not say.
pub const LIST_DEFAULT: i64 = 10;

/// The newest incidents of one `status` (all when `None`), at most `limit` (kept within
/// [`LIST_LIMIT`]).
pub async fn list(
    store: &dyn Repositories,
    status: Option<&str>,
    limit: Option<i64>,
) -> Result<Vec<IncidentRecord>, Refused> {
    let limit = limit
        .unwrap_or(LIST_DEFAULT)
        .clamp(*LIST_LIMIT.start(), *LIST_LIMIT.end());
    Ok(store.list_incidents(status, limit).await?)
}

/// Opens an incident; its severity is `warning` unless given, in lower case.
pub async fn open(
    store: &dyn Repositories,
    title: &str,
    severity: Option<&str>,
    service: &str,
    by: Option<&str>,
) -> Result<IncidentRecord, Refused> {
    let severity = severity.unwrap_or("warning").to_lowercase();
    Ok(store.open_incident(title, &severity, service, by).await?)
}

/// Applies an update by `by`; a resolved incident keeps its status.
pub async fn change(
    store: &dyn Repositories,
    id: &str,
    update: &IncidentUpdate<'_>,
    by: Option<&str>,
) -> Result<IncidentRecord, Refused> {
    match store.update_incident(id, update, by).await? {
        IncidentChange::Updated(incident) => Ok(incident),
        IncidentChange::Closed(incident) => Err(Refused::Answer(format!(
            "ℹ️ {} was resolved at {}; it stays resolved (report a new incident if it is back).",
            incident.id,
            when(incident.resolved_ms),
        ))),
        IncidentChange::Unknown => Err(unknown(id)),
    }
}

/// The incident with this id.
pub async fn existing(store: &dyn Repositories, id: &str) -> Result<IncidentRecord, Refused> {
    store.get_incident(id).await?.ok_or_else(|| unknown(id))
}

fn unknown(id: &str) -> Refused {
    Refused::Answer(format!(
        "I know no incident {id}; incident ids look like INC-0001."
    ))
}
