//! Whole stories of the tutorial through the HTTP surface, on the shipped flows, against fakes of
//! the Graph API, PagerDuty, Slack and the deployment endpoint (one recording fake serves them all
//! on different paths). Timers are fired through the admin endpoint instead of waiting 300 s.
//!
//! - `paging`: an alert pages the on-call engineer, who acknowledges, escalates or resolves it; the
//!   escalation timer across a restart.
//! - `approvals`: a production deployment approved, and two approvers racing.
//! - `war_room`: a room relays in order to every other member, also with 200 members.
//! - `integrations`: Alertmanager, PagerDuty and Datadog bodies, and bad alert bodies.
//! - `datadog`: Datadog's real values (status sentences, `[Triggered]` titles, priorities) and
//!   the Datadog endpoint, which pages what it cannot read.
//! - `cover`: COVER from the chat takes the pager, survives a restart, and needs permission for others.
//! - `delivery`: a page that failed or was not delivered in time goes to the next person.
//! - `replies`: ACK, RESOLVE, APPROVE and REJECT acting on the page or request they quote or name.
//! - `silence`: SILENCE holds a service's pages (critical ones break through) and lists them.
//! - `kept`: a store that cannot write gets 503, not 2xx; concurrent deliveries page once.
//! - `postgres`: the paging story on PostgreSQL, across a restart.

mod approvals;
mod cover;
mod datadog;
mod delivery;
mod integrations;
mod kept;
mod paging;
mod postgres;
mod replies;
mod silence;
mod storm;
mod support;
mod war_room;
