//! The `oncall-manager` agent: who to page now (`get_current`) and who to escalate to
//! (`get_next_oncall`).
//!
//! Sources, in order:
//! 1. PagerDuty, when `oncall.pagerduty_token` and a schedule id (the step's `schedule_id`, else
//!    `oncall.schedule_id`) are set: the schedule's on-calls, lowest `escalation_level` first, each
//!    PagerDuty user mapped to a number through the people directory (email, then name), then the
//!    static rota (name).
//! 2. The static rota (`oncall.static_oncall`) at the current instant ([`crate::ops::oncall`]), when
//!    PagerDuty is not configured, fails, or names nobody with a known number.
//! 3. `oncall.fallback_number`, when nobody is on call.
//!
//! Output: `{name, phone, level, source, on_call}`, `phone` in E.164 with `+`, `source` one of
//! `pagerduty`, `static`, `fallback`, `on_call` everyone on call now (`{name, phone, level}`).
//! In a dry run (`aofctl simulate`) the PagerDuty lookup is recorded instead of made, the static
//! rota answers, and the output says `"simulated": true`.

use super::{text_of, Agent, AgentError, AgentResult, RunContext};
use crate::config::WhatsAppConfig;
use crate::integrations::pagerduty::{OnCallShift, PagerDuty};
use crate::ops::oncall::{self, OnCall};
use crate::store::Cover;
use aof_actors::WaId;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Finds who is on call: `get_current`, `get_next_oncall`; sets a cover from the chat: `cover`
/// ([`super::cover`]); silences a service: `silence`, `unsilence` ([`super::silence`]).
pub static AGENT: Agent = Agent {
    name: "oncall-manager",
    actions: crate::actions![
        "get_current" => get_current,
        "get_next_oncall" => get_next_oncall,
        "cover" => super::cover::cover,
        "silence" => super::silence::silence,
        "unsilence" => super::silence::unsilence,
    ],
};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    PagerDuty,
    Static,
    Fallback,
    Cover,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::PagerDuty => "pagerduty",
            Source::Static => "static",
            Source::Fallback => "fallback",
            Source::Cover => "cover",
        }
    }
}

/// `get_current`: who is on call now.
async fn get_current(input: &Value, run: &RunContext) -> AgentResult {
    on_call(Asked::Current, input, run).await
}

/// `get_next_oncall`: who comes after `current_user`.
async fn get_next_oncall(input: &Value, run: &RunContext) -> AgentResult {
    on_call(Asked::Next, input, run).await
}

/// Which of the two actions.
#[derive(Clone, Copy)]
enum Asked {
    Current,
    Next,
}

/// Either action: the rota (or PagerDuty's on-calls), then who is asked for.
async fn on_call(asked: Asked, input: &Value, run: &RunContext) -> AgentResult {
    let action = match asked {
        Asked::Current => "get_current",
        Asked::Next => "get_next_oncall",
    };
    let wa = &run.services.config.platforms.whatsapp;
    let schedule = schedule_of(input, wa);
    let roster = match &schedule {
        Some(schedule) => match &run.services.dry_run {
            Some(dry) => dry_lookup(dry, run, wa, schedule),
            None => pagerduty_roster(wa, schedule, &run.flow).await,
        },
        None => None,
    };
    let now = Utc::now();
    let covers = run
        .services
        .store
        .covers_at(now.timestamp_millis())
        .await
        .map_err(AgentError::store)?;
    let roster = with_covers(wa, &covers, roster, now)?;
    let mut answer = match asked {
        Asked::Current => current(wa, roster, now)?,
        Asked::Next => {
            let who = input.get("current_user").map(text_of);
            next(wa, who.as_deref(), roster, now)?
        }
    };
    if let Some(who) = &answer.who {
        if covers.iter().any(|c| c.phone == who.phone) {
            answer.source = Source::Cover;
        }
    }
    tracing::info!(flow = %run.flow, run = %run.run_id, action, source = answer.source.as_str(),
        wa = %answer.who.as_ref().map(|o| o.phone.masked()).unwrap_or_default(),
        level = answer.who.as_ref().map(|o| o.level), "on-call resolved");
    let mut output = answer.to_json();
    if schedule.is_some() && run.services.dry_run.is_some() {
        output["simulated"] = json!(true);
    }
    Ok(output)
}

/// The line of people with the covers in force first (newest first), then PagerDuty's on-calls or
/// the rota's people on shift, each once, levels counted again from 1; unchanged without covers.
fn with_covers(
    wa: &WhatsAppConfig,
    covers: &[Cover],
    roster: Option<Vec<OnCall>>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<OnCall>>, AgentError> {
    if covers.is_empty() {
        return Ok(roster);
    }
    let base = match roster {
        Some(roster) => roster,
        None => oncall::on_call_at(&wa.oncall.static_oncall, now).map_err(rota_failed)?,
    };
    let mut line: Vec<OnCall> = Vec::new();
    let people = covers
        .iter()
        .map(|c| (c.name.clone(), c.phone.clone()))
        .chain(base.into_iter().map(|o| (o.name, o.phone)));
    for (name, phone) in people {
        if !line.iter().any(|o| o.phone == phone) {
            let level = line.len() as u32 + 1;
            line.push(OnCall { name, phone, level });
        }
    }
    Ok(Some(line))
}

/// The schedule to ask PagerDuty about: the step's, else the config's; `None` when PagerDuty is
/// not configured (no token) or no schedule is named.
fn schedule_of(input: &Value, wa: &WhatsAppConfig) -> Option<String> {
    let oncall = &wa.oncall;
    oncall.pagerduty_token.as_ref().filter(|t| !t.is_empty())?;
    let given = input.get("schedule_id").map(text_of).unwrap_or_default();
    let given = given.trim();
    if !given.is_empty() && !given.eq_ignore_ascii_case("none") {
        return Some(given.to_owned());
    }
    oncall
        .schedule_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A dry run: the PagerDuty on-call lookup recorded, not made; the static rota answers, as it does
/// when PagerDuty does not.
fn dry_lookup(
    dry: &super::DryRun,
    run: &RunContext,
    wa: &WhatsAppConfig,
    schedule: &str,
) -> Option<Vec<OnCall>> {
    let client = PagerDuty::from_config(&wa.oncall)?;
    let detail = json!({ "headers": { "Authorization": "Token token=[redacted]" }, "schedule_id": schedule });
    dry.record(run, "pagerduty", client.planned_oncalls(schedule), detail);
    None
}

/// PagerDuty's on-calls for `schedule` as people with numbers, lowest level first; `None` (with a
/// warning) when PagerDuty fails or names nobody the bot can reach.
async fn pagerduty_roster(wa: &WhatsAppConfig, schedule: &str, flow: &str) -> Option<Vec<OnCall>> {
    let client = PagerDuty::from_config(&wa.oncall)?;
    let shifts = match client.oncalls(schedule).await {
        Ok(shifts) => shifts,
        Err(e) => {
            tracing::warn!(flow, schedule, error = %e, "PagerDuty on-call lookup failed; using the static rota");
            return None;
        }
    };
    for shift in &shifts {
        if lookup(wa, shift.user.email.as_deref(), &shift.user.summary).is_none() {
            tracing::warn!(flow, schedule, user = %shift.user.id, level = shift.escalation_level,
                "PagerDuty on-call user has no number in platforms.whatsapp.people or the static rota");
        }
    }
    let roster = map_shifts(wa, &shifts);
    if roster.is_empty() {
        tracing::warn!(
            flow,
            schedule,
            on_calls = shifts.len(),
            "PagerDuty named nobody with a WhatsApp number; using the static rota"
        );
        return None;
    }
    Some(roster)
}

/// A PagerDuty user's name and number: the people directory by email, then by name, then the
/// static rota by name.
fn lookup(wa: &WhatsAppConfig, email: Option<&str>, summary: &str) -> Option<(String, WaId)> {
    let directory = |key: &str| {
        let person = wa.person(key)?;
        Some((person.name.clone(), wa.canonical(person.wa()?)))
    };
    let rota = || {
        let entry =
            wa.oncall.static_oncall.iter().find(|e| {
                !summary.trim().is_empty() && e.name.eq_ignore_ascii_case(summary.trim())
            })?;
        Some((entry.name.clone(), wa.reach(&entry.phone)?))
    };
    email
        .filter(|e| !e.trim().is_empty())
        .and_then(directory)
        .or_else(|| {
            Some(summary)
                .filter(|s| !s.trim().is_empty())
                .and_then(directory)
        })
        .or_else(rota)
}

/// On-calls as people, by level; someone on at several levels keeps their lowest.
fn map_shifts(wa: &WhatsAppConfig, shifts: &[OnCallShift]) -> Vec<OnCall> {
    let mut sorted: Vec<&OnCallShift> = shifts.iter().collect();
    sorted.sort_by_key(|s| s.escalation_level);
    let mut roster: Vec<OnCall> = Vec::new();
    for shift in sorted {
        let Some((name, phone)) = lookup(wa, shift.user.email.as_deref(), &shift.user.summary)
        else {
            continue;
        };
        if roster.iter().all(|o| o.phone != phone) {
            roster.push(OnCall {
                name,
                phone,
                level: shift.escalation_level,
            });
        }
    }
    roster
}

/// An answer: who (`None` for the fallback number, which is nobody in particular), from where, and
/// everyone on call.
struct Answer {
    who: Option<OnCall>,
    fallback: Option<WaId>,
    source: Source,
    on_call: Vec<OnCall>,
}

impl Answer {
    fn to_json(&self) -> Value {
        let person =
            |o: &OnCall| json!({ "name": o.name, "phone": o.phone.e164(), "level": o.level });
        let on_call: Vec<Value> = self.on_call.iter().map(person).collect();
        match (&self.who, &self.fallback) {
            (Some(o), _) => json!({ "name": o.name, "phone": o.phone.e164(), "level": o.level,
                "source": self.source.as_str(), "on_call": on_call }),
            (None, Some(number)) => {
                json!({ "name": "fallback", "phone": number.e164(), "level": null,
                "source": self.source.as_str(), "on_call": on_call })
            }
            (None, None) => unreachable!("an answer has a person or the fallback number"),
        }
    }
}

fn rota_failed(e: oncall::RotaError) -> AgentError {
    AgentError::Failed(e.to_string())
}

/// The fallback number, or the error that says how to set one.
fn fallback(wa: &WhatsAppConfig, on_call: Vec<OnCall>, nobody: &str) -> Result<Answer, AgentError> {
    let number = wa.oncall.fallback_number.as_deref().and_then(WaId::parse);
    match number {
        Some(number) => {
            tracing::warn!(wa = %number.masked(), "{nobody}; paging the fallback number");
            Ok(Answer {
                who: None,
                fallback: Some(number),
                source: Source::Fallback,
                on_call,
            })
        }
        None => Err(AgentError::Failed(format!(
            "{nobody} and platforms.whatsapp.oncall.fallback_number is not set"
        ))),
    }
}

/// Who to page now.
fn current(
    wa: &WhatsAppConfig,
    roster: Option<Vec<OnCall>>,
    now: DateTime<Utc>,
) -> Result<Answer, AgentError> {
    if let Some(roster) = roster {
        return Ok(Answer {
            who: roster.first().cloned(),
            fallback: None,
            source: Source::PagerDuty,
            on_call: roster,
        });
    }
    let on = oncall::on_call_at(&wa.oncall.static_oncall, now).map_err(rota_failed)?;
    match on.first() {
        Some(first) => Ok(Answer {
            who: Some(first.clone()),
            fallback: None,
            source: Source::Static,
            on_call: on,
        }),
        None => fallback(wa, on, "nobody is on call"),
    }
}

/// Who to escalate to after `current_user` (a number, or a directory name or email).
fn next(
    wa: &WhatsAppConfig,
    current_user: Option<&str>,
    roster: Option<Vec<OnCall>>,
    now: DateTime<Utc>,
) -> Result<Answer, AgentError> {
    let who = current_user
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|key| {
            wa.reach(key)
                .or_else(|| Some(wa.canonical(wa.person(key)?.wa()?)))
        });
    if let Some(roster) = roster {
        // A stranger (or nobody named) escalates past the primary.
        let level = who
            .as_ref()
            .and_then(|w| roster.iter().find(|o| &o.phone == w))
            .or(roster.first())
            .map(|o| o.level)
            .unwrap_or(0);
        let above = roster
            .iter()
            .filter(|o| o.level > level && Some(&o.phone) != who.as_ref())
            .min_by_key(|o| o.level);
        if let Some(next) = above {
            return Ok(Answer {
                who: Some(next.clone()),
                fallback: None,
                source: Source::PagerDuty,
                on_call: roster.clone(),
            });
        }
        tracing::warn!(
            level,
            "PagerDuty has nobody above this escalation level; using the static rota"
        );
    }
    let rota = &wa.oncall.static_oncall;
    let on = oncall::on_call_at(rota, now).map_err(rota_failed)?;
    match oncall::next_after(rota, who.as_ref(), now).map_err(rota_failed)? {
        Some(next) => Ok(Answer {
            who: Some(next),
            fallback: None,
            source: Source::Static,
            on_call: on,
        }),
        None => fallback(wa, on, "nobody is on call to escalate to"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::pagerduty::PagerDutyUser;

    fn config(oncall: &str) -> WhatsAppConfig {
        let text = format!(
            r#"type: whatsapp
phone_number_id: "1"
access_token: "t"
verify_token: "v"
app_secret: "s"
people:
  - {{ name: "Priya", email: "priya@example.com", phone: "+15550000001" }}
  - {{ name: "Marco Silva", phone: "+15550000002" }}
oncall:
{oncall}
"#
        );
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn shift(summary: &str, email: Option<&str>, level: u32) -> OnCallShift {
        OnCallShift {
            user: PagerDutyUser {
                id: format!("P{level}"),
                summary: summary.to_owned(),
                email: email.map(str::to_owned),
            },
            escalation_level: level,
            start: None,
            end: None,
        }
    }

    fn noon() -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2024, 6, 17, 12, 0, 0).unwrap()
    }

    fn rota_config() -> WhatsAppConfig {
        config(
            r#"  fallback_number: "+15559999999"
  static_oncall:
    - { name: "Dana Okafor", phone: "+15550000003" }
    - { name: "Ed", phone: "+15550000004" }"#,
        )
    }

    #[test]
    fn pagerduty_users_map_by_email_then_name_then_rota() {
        let wa = rota_config();
        let roster = map_shifts(
            &wa,
            &[
                shift("Dana Okafor", None, 3),
                shift("Priya Raman", Some("PRIYA@example.com"), 1),
                shift("Marco Silva", None, 2),
                shift("Nobody Known", None, 4),
            ],
        );
        let got: Vec<(&str, String, u32)> = roster
            .iter()
            .map(|o| (o.name.as_str(), o.phone.e164(), o.level))
            .collect();
        assert_eq!(
            got,
            [
                ("Priya", "+15550000001".to_owned(), 1),
                ("Marco Silva", "+15550000002".to_owned(), 2),
                ("Dana Okafor", "+15550000003".to_owned(), 3),
            ]
        );
    }

    #[test]
    fn the_next_pagerduty_level_is_paged_after_the_current_user() {
        let wa = rota_config();
        let roster = map_shifts(
            &wa,
            &[shift("Marco Silva", None, 2), shift("Priya", None, 1)],
        );
        let answer = next(&wa, Some("+1 555 000 0001"), Some(roster.clone()), noon()).unwrap();
        assert_eq!(answer.source, Source::PagerDuty);
        assert_eq!(answer.who.unwrap().name, "Marco Silva");
        // A stranger escalates past the primary too.
        let answer = next(&wa, Some("+15551112222"), Some(roster.clone()), noon()).unwrap();
        assert_eq!(answer.who.unwrap().level, 2);
        // Above the top level: the static rota, where Marco is a stranger, so past its primary.
        let answer = next(&wa, Some("Marco Silva"), Some(roster), noon()).unwrap();
        assert_eq!(answer.source, Source::Static);
        assert_eq!(answer.who.unwrap().name, "Ed");
        // From the static rota's last entry, the walk wraps to its first.
        let answer = next(&wa, Some("+15550000004"), None, noon()).unwrap();
        assert_eq!(answer.who.unwrap().name, "Dana Okafor");
    }

    #[test]
    fn nobody_on_call_pages_the_fallback_number_or_says_how_to_set_it() {
        let wa = config(
            r#"  fallback_number: "+1 555 999 9999"
  static_oncall:
    - { name: "Night", phone: "+15550000003", hours: "22:00-06:00", timezone: "Europe/Berlin" }"#,
        );
        let answer = current(&wa, None, noon()).unwrap();
        assert_eq!(answer.source, Source::Fallback);
        let out = answer.to_json();
        assert_eq!(out["phone"], "+15559999999");
        assert_eq!(out["name"], "fallback");
        assert_eq!(out["level"], Value::Null);
        assert_eq!(out["on_call"], json!([]));
        let wa = config(r#"  team_group: null"#);
        let err = current(&wa, None, noon())
            .err()
            .expect("nobody and no fallback");
        assert_eq!(
            err.to_string(),
            "nobody is on call and platforms.whatsapp.oncall.fallback_number is not set"
        );
    }

    #[test]
    fn the_schedule_comes_from_the_step_then_the_config_and_needs_a_token() {
        let wa = config(r#"  schedule_id: "PCONF""#);
        assert_eq!(schedule_of(&json!({ "schedule_id": "PSTEP" }), &wa), None);
        let wa = config(
            r#"  schedule_id: "PCONF"
  pagerduty_token: "k""#,
        );
        assert_eq!(
            schedule_of(&json!({ "schedule_id": "PSTEP" }), &wa).as_deref(),
            Some("PSTEP")
        );
        assert_eq!(
            schedule_of(&json!({ "schedule_id": null }), &wa).as_deref(),
            Some("PCONF")
        );
        assert_eq!(schedule_of(&json!({}), &wa).as_deref(), Some("PCONF"));
    }
}
