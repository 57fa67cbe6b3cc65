//! Deployment approvals: who approves what, how long a request lasts, and how a decision is taken.
//!
//! Approvers come from `platforms.whatsapp.approvals`: a service's own list, else its environment's
//! list, else the `*` environment's; each name is looked up in `platforms.whatsapp.people` for a
//! number. A decision is one conditional write ([`crate::store::Decision`]): the first approver to
//! answer wins, a later one is told who decided and when, and an expired request takes no
//! decision. The `approval-manager` agent reads the steps' inputs and shapes outputs around these.

use super::{when, Refused};
use crate::config::WhatsAppConfig;
use crate::store::{ApprovalRecord, Approver, Decision, Repositories, Verdict};
use aof_actors::WaId;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The configured approvers of `service` in `environment`, with their numbers; empty when the
/// config names none (or none with a number).
pub fn approvers_for(wa: &WhatsAppConfig, environment: &str, service: &str) -> Vec<Approver> {
    let environments = &wa.approvals.environments;
    let by_name = |name: &str| {
        environments.get(name).or_else(|| {
            environments
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    };
    let lists = [by_name(environment), by_name("*")];
    let names = lists
        .into_iter()
        .flatten()
        .flat_map(|env| {
            [
                env.services.get(service).or_else(|| {
                    env.services
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(service))
                        .map(|(_, v)| v)
                }),
                Some(&env.approvers),
            ]
        })
        .flatten()
        .find(|list| !list.is_empty());
    names
        .into_iter()
        .flatten()
        .filter_map(|name| directory_approver(wa, name))
        .collect()
}

/// What to set when [`approvers_for`] finds nobody.
pub fn no_approvers(file: &str, environment: &str, service: &str) -> String {
    format!(
        "{file}: no approvers for {service} in {environment}; set \
         platforms.whatsapp.approvals.environments.{environment}.approvers (or \
         .services.{service}, or the `*` environment) to names from platforms.whatsapp.people"
    )
}

/// A person of the directory, as an approver; `None` without a usable number (refused at load).
fn directory_approver(wa: &WhatsAppConfig, key: &str) -> Option<Approver> {
    let person = wa.person(key)?;
    let phone = wa.canonical(person.wa()?);
    Some(Approver {
        name: person.name.clone(),
        phone: phone.e164(),
    })
}

/// An approver a flow names by `name`, `number` or both: a number wins (named by the step, else by
/// the directory), else the directory's person of that name, else a name that is a number.
pub fn named_approver(
    wa: &WhatsAppConfig,
    name: Option<&str>,
    number: Option<&str>,
) -> Option<Approver> {
    let by_number = |wa_id: WaId| Approver {
        name: name
            .map(str::to_owned)
            .or_else(|| wa.name_of(&wa_id))
            .unwrap_or_else(|| wa_id.e164()),
        phone: wa_id.e164(),
    };
    number
        .and_then(WaId::parse)
        .map(by_number)
        .or_else(|| directory_approver(wa, name?))
        .or_else(|| {
            let wa_id = WaId::parse(name?)?;
            Some(Approver {
                name: wa.name_of(&wa_id).unwrap_or_else(|| wa_id.e164()),
                phone: wa_id.e164(),
            })
        })
}

/// When a request the flow gives no `expires_at` closes: `approvals.expiry_hours` from now.
pub fn default_expiry(wa: &WhatsAppConfig) -> DateTime<Utc> {
    after(wa.approvals.expiry)
}

fn after(expiry: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(expiry)
        .ok()
        .and_then(|d| Utc::now().checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Approves or rejects request `id` as `who`: the first decision wins.
pub async fn decide(
    store: &dyn Repositories,
    wa: &WhatsAppConfig,
    id: &str,
    verdict: Verdict,
    who: &WaId,
) -> Result<ApprovalRecord, Refused> {
    match store.decide(id, verdict, who).await? {
        Decision::Decided(request) => Ok(request),
        Decision::AlreadyDecided(request) => Err(Refused::Answer(format!(
            "ℹ️ {} was already {} by {} at {}; nothing more to do.",
            request.id,
            request.state.as_str(),
            decider(wa, &request),
            when(request.decided_at_ms),
        ))),
        Decision::Expired(request) => Err(Refused::Answer(format!(
            "⌛ {} expired at {}; ask {} for a new request.",
            request.id,
            when(Some(request.expires_ms)),
            request.requester,
        ))),
        Decision::NotApprover(request) => Err(not_an_approver(wa, who, &request)),
        Decision::Unknown => Err(unknown(id)),
    }
}

/// Who decided, by the name the request lists them under.
pub fn decider(wa: &WhatsAppConfig, request: &ApprovalRecord) -> String {
    let by = request.decided_by.as_deref();
    by.and_then(|phone| request.approvers.iter().find(|a| a.phone == phone))
        .map(|a| a.name.clone())
        .unwrap_or_else(|| wa.label(by))
}

/// `who` may not decide `request`: the sentence that says so and names its approvers.
pub fn not_an_approver(wa: &WhatsAppConfig, who: &WaId, request: &ApprovalRecord) -> Refused {
    let who = match wa.name_of(who) {
        Some(name) => format!("{name} ({})", who.e164()),
        None => who.e164(),
    };
    let names: Vec<&str> = request.approvers.iter().map(|a| a.name.as_str()).collect();
    Refused::Answer(format!(
        "❌ {who} is not an approver of {} (its approvers: {}).",
        request.id,
        names.join(", ")
    ))
}

/// The request with this id.
pub async fn existing(store: &dyn Repositories, id: &str) -> Result<ApprovalRecord, Refused> {
    store.get_approval(id).await?.ok_or_else(|| unknown(id))
}

fn unknown(id: &str) -> Refused {
    Refused::Answer(format!(
        "I know no approval request {id}; request ids look like APR-0001."
    ))
}
