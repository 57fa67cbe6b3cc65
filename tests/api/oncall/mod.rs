//! On-call through the real server: webhook-triggered test flows call `oncall-manager` and
//! `pagerduty` and send what they answered with `send_text`, against the fake Graph API and a fake
//! PagerDuty REST API that records method, path, query, headers and body.
//!
//! Rotas are built around the current time, so the tests do not depend on the clock: whoever's shift
//! spans now ± 1 h is on, whoever's starts in 2 h is off.
//!
//! - `support`: the constants, the on-call config section, the test flows and the running `World`.
//! - `fake_pagerduty`: the fake PagerDuty REST API and its scripts.
//! - `rota`: the static rota (shifts, zones, the fallback number, escalation without PagerDuty).
//! - `pagerduty`: on-calls, escalation and acknowledgement through PagerDuty.

mod fake_pagerduty;
mod pagerduty;
mod rota;
mod support;
