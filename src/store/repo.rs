//! The store as repository traits: what agents, HTTP handlers and the CLI hold (as
//! `Arc<dyn Repositories>`), so that a second backend (PostgreSQL) implements the same surface.
//! The actors' own state (inbox, outbox queue, timers, conversations, template quota) is the
//! [`Store`] port of `aof-actors`; [`Repositories`] is that plus every trait below. SQLite
//! implements them all today ([`SqliteStore`]).

use super::inbox::Inbox;
use super::records::{Delivery, OutboxEntry};
use super::{
    AlertRecord, AlertState, ApprovalRecord, AuditRecord, CreatedAlert, Decision, IncidentChange,
    IncidentRecord, IncidentUpdate, NewAlert, NewApproval, OutboundRecord, RoomMember, RoomRecord,
    RunRecord, SqliteStore, StatusRecord, TimelineEntry, TransitionOutcome, Verdict,
};
use aof_actors::ports::{Store, StoreError};
use aof_actors::WaId;
use futures_util::future::BoxFuture;

/// A repository call: the answer, or why the store could not give it.
pub type Fut<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

mod oncall;
pub use oncall::{Covers, Silences};

/// Alerts: one per fingerprint or PagerDuty incident while open, moved firing -> acknowledged -> resolved,
/// with who was paged and when.
pub trait Alerts: Send + Sync {
    /// Records an alert under the next free id, or, when an open alert has the same fingerprint
    /// (first) or PagerDuty incident, updates that one (severity, message, runbook, who was paged,
    /// `fire_count`) and reports `duplicate`.
    ///
    /// The lookup and the write share one `BEGIN IMMEDIATE` transaction, so two deliveries of the
    /// same Alertmanager group arriving together still make one alert.
    fn create_alert<'a>(&'a self, new: &'a NewAlert<'a>) -> Fut<'a, CreatedAlert>;

    /// One alert, or `None` when the id is unknown.
    fn get_alert<'a>(&'a self, id: &'a str) -> Fut<'a, Option<AlertRecord>>;

    /// Alerts in one of `states` that involve `who` (paged about it, or acknowledged it), newest
    /// first; at most 50.
    fn find_open_for<'a>(
        &'a self,
        who: &'a WaId,
        states: &'a [AlertState],
    ) -> Fut<'a, Vec<AlertRecord>>;

    /// Adds `who` to the people paged about an alert (an escalation); the updated alert, or `None`
    /// when the id is unknown. Paging someone twice lists them once.
    fn add_paged<'a>(&'a self, id: &'a str, who: &'a WaId) -> Fut<'a, Option<AlertRecord>>;
    /// Adds a line to an alert's timeline (a page not delivered); `None` when there is no such alert.
    fn add_alert_note<'a>(&'a self, id: &'a str, text: &'a str) -> Fut<'a, Option<AlertRecord>>;

    /// Moves an alert forward to `to` (acknowledged or resolved), recording `actor` and the time,
    /// in one conditional `UPDATE`: of two people acknowledging at once, the first is recorded.
    fn transition<'a>(
        &'a self,
        id: &'a str,
        to: AlertState,
        actor: Option<&'a str>,
    ) -> Fut<'a, TransitionOutcome>;

    /// The open (not resolved) alert with this Alertmanager fingerprint, newest first.
    fn find_by_fingerprint<'a>(&'a self, fingerprint: &'a str) -> Fut<'a, Option<AlertRecord>>;

    /// The open (not resolved) alert of this PagerDuty incident.
    fn find_by_pagerduty<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Option<AlertRecord>>;
}

/// Approval requests: the first decision wins, an expired request takes none.
pub trait Approvals: Send + Sync {
    /// Records a pending request under the next free id.
    fn create_approval<'a>(&'a self, new: &'a NewApproval<'a>) -> Fut<'a, ApprovalRecord>;

    /// One request, or `None` when the id is unknown.
    fn get_approval<'a>(&'a self, id: &'a str) -> Fut<'a, Option<ApprovalRecord>>;

    /// Records `by`'s verdict if the request is still pending, not expired, and `by` is one of its
    /// approvers, all checked by the one `UPDATE` that writes it, so the first decision wins.
    fn decide<'a>(&'a self, id: &'a str, verdict: Verdict, by: &'a WaId) -> Fut<'a, Decision>;

    /// Open requests (pending, not expired) that `who` may decide, newest first.
    fn pending_for<'a>(&'a self, who: &'a WaId) -> Fut<'a, Vec<ApprovalRecord>>;
}

/// Incidents and their timelines.
pub trait Incidents: Send + Sync {
    /// Opens an incident under the next free id (see [`Incidents::open_incident`]), by nobody in
    /// particular.
    fn create_incident<'a>(
        &'a self,
        title: &'a str,
        severity: &'a str,
        service: &'a str,
    ) -> Fut<'a, IncidentRecord>;

    /// Opens an incident under the next free id, its timeline starting with who opened it. One
    /// `INSERT … SELECT MAX(seq) + 1` statement is its own transaction, so two agents creating at
    /// once get different ids.
    fn open_incident<'a>(
        &'a self,
        title: &'a str,
        severity: &'a str,
        service: &'a str,
        actor: Option<&'a str>,
    ) -> Fut<'a, IncidentRecord>;

    /// Incidents, newest first; `status` filters (`open`, `resolved`, or a stage such as
    /// `investigating`), `None` lists all.
    fn list_incidents<'a>(
        &'a self,
        status: Option<&'a str>,
        limit: i64,
    ) -> Fut<'a, Vec<IncidentRecord>>;

    /// One incident, or `None` when the id is unknown.
    fn get_incident<'a>(&'a self, id: &'a str) -> Fut<'a, Option<IncidentRecord>>;

    /// An incident's timeline, oldest first, or `None` when the id is unknown.
    fn incident_timeline<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Vec<TimelineEntry>>>;

    /// Resolves an open incident and returns it; resolving twice keeps the first resolution time.
    /// `None` when the id is unknown.
    fn resolve_incident<'a>(&'a self, id: &'a str) -> Fut<'a, Option<IncidentRecord>>;

    /// Appends one line to an incident's timeline (a war-room message, a deploy); one `UPDATE`, so
    /// lines written at once are all kept. `false` when the id is unknown.
    fn add_timeline_entry<'a>(
        &'a self,
        id: &'a str,
        actor: Option<&'a str>,
        text: &'a str,
    ) -> Fut<'a, bool>;

    /// Changes an incident's stage, severity or title and records one timeline line saying what
    /// changed (and the note), by `actor`. Reading and writing share one `BEGIN IMMEDIATE`
    /// transaction, so a concurrent update is never lost.
    fn update_incident<'a>(
        &'a self,
        id: &'a str,
        update: &'a IncidentUpdate<'a>,
        actor: Option<&'a str>,
    ) -> Fut<'a, IncidentChange>;
}

/// War rooms: who is in the room of which incident.
pub trait WarRooms: Send + Sync {
    /// Opens the room of an incident (again a no-op when it is open); links the paging alert.
    fn open_room<'a>(&'a self, incident_id: &'a str, alert_id: Option<&'a str>) -> Fut<'a, ()>;

    /// The room of an incident.
    fn room<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Option<RoomRecord>>;

    /// Puts a person in an open room, out of any other; `false` when they were already in it.
    fn join_room<'a>(
        &'a self,
        incident_id: &'a str,
        who: &'a WaId,
        name: Option<&'a str>,
    ) -> Fut<'a, bool>;

    /// Takes a person out of their room; the room they left.
    fn leave_room<'a>(&'a self, who: &'a WaId) -> Fut<'a, Option<String>>;

    /// The members of a room, in the order they joined.
    fn room_members<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Vec<RoomMember>>;

    /// Counts one relayed message.
    fn note_room_update<'a>(&'a self, incident_id: &'a str) -> Fut<'a, ()>;

    /// Closes a room: its record and its former members; `None` when it was not open.
    fn close_room<'a>(
        &'a self,
        incident_id: &'a str,
    ) -> Fut<'a, Option<(RoomRecord, Vec<RoomMember>)>>;

    /// The open room a person is in, if any.
    fn room_of<'a>(&'a self, who: &'a WaId) -> Fut<'a, Option<String>>;

    /// Who is in which war room (person, incident id), for routing after a restart.
    fn room_memberships<'a>(&'a self) -> Fut<'a, Vec<(WaId, String)>>;
}

/// Flow runs: what started each and how it ended.
pub trait Runs: Send + Sync {
    /// Records that a run started, so that a run that never ends is still visible; when the run
    /// had started before (resumed after a restart), whether it ended and which flow it started
    /// (see [`Runs::journal`]).
    fn record_run_start<'a>(
        &'a self,
        run_id: &'a str,
        flow: &'a str,
        trigger: serde_json::Value,
    ) -> Fut<'a, super::RunStart>;

    /// Commits a completed step of a run (`step`: its place, `2` or `2.1` in a subflow) before
    /// the next one starts.
    fn journal_step<'a>(
        &'a self,
        run_id: &'a str,
        step: &'a str,
        entry: serde_json::Value,
    ) -> Fut<'a, ()>;

    /// The completed steps of a run that has not ended, by place: a resumed run skips them.
    fn journal<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<(String, serde_json::Value)>>;

    /// Records how a run ended and what its steps returned.
    fn record_run_end<'a>(
        &'a self,
        run_id: &'a str,
        outcome: &'a str,
        steps: serde_json::Value,
    ) -> Fut<'a, ()>;

    /// One run, or `None` when the id is unknown.
    fn run<'a>(&'a self, run_id: &'a str) -> Fut<'a, Option<RunRecord>>;

    /// The latest runs of `flow`, newest first: how its runs ended, for the CLI and the tests.
    fn runs_of<'a>(&'a self, flow: &'a str, limit: i64) -> Fut<'a, Vec<RunRecord>>;
}

/// What was sent and what became of it: delivery statuses, the outbox, the audit log.
pub trait Deliveries: Send + Sync {
    /// The delivery state of a sent message, or `None` when nothing is known about the wamid.
    fn message_status<'a>(&'a self, wamid: &'a str) -> Fut<'a, Option<StatusRecord>>;

    /// What a sent message was about, or `None` when the wamid is not one of ours.
    fn outbound_message<'a>(&'a self, wamid: &'a str) -> Fut<'a, Option<OutboundRecord>>;

    /// The last `limit` audit records, newest first.
    fn audit_log<'a>(&'a self, limit: i64) -> Fut<'a, Vec<AuditRecord>>;

    /// How many of the messages flows queued are queued, sent and failed: a growing queue means
    /// sends are stuck. A message said in a digest counts as its digest went; digests themselves
    /// are not counted.
    fn outbox_counts<'a>(&'a self) -> Fut<'a, (u64, u64, u64)>;

    /// One outbox entry with its state and, when it failed, Meta's code and the reason.
    fn job<'a>(&'a self, id: &'a str) -> Fut<'a, Option<OutboxEntry>>;

    /// What became of the message queued as job `id`: outbox state and last delivery status.
    fn delivery<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Delivery>>;
}

/// The sandbox page's history (sandbox transport only).
pub trait PageHistory: Send + Sync {
    /// Appends events (`seq`, JSON) in one transaction, then keeps only the newest `keep`.
    fn append_page_events<'a>(&'a self, events: &'a [(u64, String)], keep: u64) -> Fut<'a, ()>;

    /// The newest `limit` events, oldest first, with their numbers.
    fn recent_page_events<'a>(&'a self, limit: u64) -> Fut<'a, Vec<(u64, String)>>;

    /// The highest number of a sandbox wamid (`wamid.sandbox.N`) the store has seen sent, so that
    /// a restarted sandbox numbers on instead of reusing ids that replies and statuses point to.
    fn last_sandbox_wamid<'a>(&'a self) -> Fut<'a, u64>;
}

/// The backend itself: whether it answers, and closing it.
pub trait Backend: Send + Sync {
    /// Whether the database takes a write now, for the readiness probe: a full disk or a read-only
    /// file still answers reads.
    fn writable<'a>(&'a self) -> BoxFuture<'a, bool>;

    /// Moves the WAL into the database file and closes every connection, so that a stopped bot
    /// leaves one self-contained file. Waits at most 5 s for connections still in use.
    fn close<'a>(&'a self) -> BoxFuture<'a, ()>;
}

/// Everything a backend provides: the actors' state and every repository.
pub trait Repositories:
    Store
    + Covers
    + Silences
    + Inbox
    + Alerts
    + Approvals
    + Incidents
    + WarRooms
    + Runs
    + Deliveries
    + PageHistory
    + Backend
{
}

impl<T> Repositories for T where
    T: Store
        + Covers
        + Silences
        + Inbox
        + Alerts
        + Approvals
        + Incidents
        + WarRooms
        + Runs
        + Deliveries
        + PageHistory
        + Backend
{
}

impl Alerts for SqliteStore {
    fn create_alert<'a>(&'a self, new: &'a NewAlert<'a>) -> Fut<'a, CreatedAlert> {
        Box::pin(SqliteStore::create_alert(self, new))
    }

    fn get_alert<'a>(&'a self, id: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(SqliteStore::get_alert(self, id))
    }

    fn find_open_for<'a>(
        &'a self,
        who: &'a WaId,
        states: &'a [AlertState],
    ) -> Fut<'a, Vec<AlertRecord>> {
        Box::pin(SqliteStore::find_open_for(self, who, states))
    }

    fn add_paged<'a>(&'a self, id: &'a str, who: &'a WaId) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(SqliteStore::add_paged(self, id, who))
    }

    fn add_alert_note<'a>(&'a self, id: &'a str, text: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(SqliteStore::add_alert_note(self, id, text))
    }

    fn transition<'a>(
        &'a self,
        id: &'a str,
        to: AlertState,
        actor: Option<&'a str>,
    ) -> Fut<'a, TransitionOutcome> {
        Box::pin(SqliteStore::transition(self, id, to, actor))
    }

    fn find_by_fingerprint<'a>(&'a self, fingerprint: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(SqliteStore::find_by_fingerprint(self, fingerprint))
    }

    fn find_by_pagerduty<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Option<AlertRecord>> {
        Box::pin(SqliteStore::find_by_pagerduty(self, incident_id))
    }
}

impl Approvals for SqliteStore {
    fn create_approval<'a>(&'a self, new: &'a NewApproval<'a>) -> Fut<'a, ApprovalRecord> {
        Box::pin(SqliteStore::create_approval(self, new))
    }

    fn get_approval<'a>(&'a self, id: &'a str) -> Fut<'a, Option<ApprovalRecord>> {
        Box::pin(SqliteStore::get_approval(self, id))
    }

    fn decide<'a>(&'a self, id: &'a str, verdict: Verdict, by: &'a WaId) -> Fut<'a, Decision> {
        Box::pin(SqliteStore::decide(self, id, verdict, by))
    }

    fn pending_for<'a>(&'a self, who: &'a WaId) -> Fut<'a, Vec<ApprovalRecord>> {
        Box::pin(SqliteStore::pending_for(self, who))
    }
}

impl Incidents for SqliteStore {
    fn create_incident<'a>(
        &'a self,
        title: &'a str,
        severity: &'a str,
        service: &'a str,
    ) -> Fut<'a, IncidentRecord> {
        Box::pin(SqliteStore::create_incident(self, title, severity, service))
    }

    fn open_incident<'a>(
        &'a self,
        title: &'a str,
        severity: &'a str,
        service: &'a str,
        actor: Option<&'a str>,
    ) -> Fut<'a, IncidentRecord> {
        Box::pin(SqliteStore::open_incident(
            self, title, severity, service, actor,
        ))
    }

    fn list_incidents<'a>(
        &'a self,
        status: Option<&'a str>,
        limit: i64,
    ) -> Fut<'a, Vec<IncidentRecord>> {
        Box::pin(SqliteStore::list_incidents(self, status, limit))
    }

    fn get_incident<'a>(&'a self, id: &'a str) -> Fut<'a, Option<IncidentRecord>> {
        Box::pin(SqliteStore::get_incident(self, id))
    }

    fn incident_timeline<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Vec<TimelineEntry>>> {
        Box::pin(SqliteStore::incident_timeline(self, id))
    }

    fn resolve_incident<'a>(&'a self, id: &'a str) -> Fut<'a, Option<IncidentRecord>> {
        Box::pin(SqliteStore::resolve_incident(self, id))
    }

    fn add_timeline_entry<'a>(
        &'a self,
        id: &'a str,
        actor: Option<&'a str>,
        text: &'a str,
    ) -> Fut<'a, bool> {
        Box::pin(SqliteStore::add_timeline_entry(self, id, actor, text))
    }

    fn update_incident<'a>(
        &'a self,
        id: &'a str,
        update: &'a IncidentUpdate<'a>,
        actor: Option<&'a str>,
    ) -> Fut<'a, IncidentChange> {
        Box::pin(SqliteStore::update_incident(self, id, update, actor))
    }
}

impl WarRooms for SqliteStore {
    fn open_room<'a>(&'a self, incident_id: &'a str, alert_id: Option<&'a str>) -> Fut<'a, ()> {
        Box::pin(SqliteStore::open_room(self, incident_id, alert_id))
    }

    fn room<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Option<RoomRecord>> {
        Box::pin(SqliteStore::room(self, incident_id))
    }

    fn join_room<'a>(
        &'a self,
        incident_id: &'a str,
        who: &'a WaId,
        name: Option<&'a str>,
    ) -> Fut<'a, bool> {
        Box::pin(SqliteStore::join_room(self, incident_id, who, name))
    }

    fn leave_room<'a>(&'a self, who: &'a WaId) -> Fut<'a, Option<String>> {
        Box::pin(SqliteStore::leave_room(self, who))
    }

    fn room_members<'a>(&'a self, incident_id: &'a str) -> Fut<'a, Vec<RoomMember>> {
        Box::pin(SqliteStore::room_members(self, incident_id))
    }

    fn note_room_update<'a>(&'a self, incident_id: &'a str) -> Fut<'a, ()> {
        Box::pin(SqliteStore::note_room_update(self, incident_id))
    }

    fn close_room<'a>(
        &'a self,
        incident_id: &'a str,
    ) -> Fut<'a, Option<(RoomRecord, Vec<RoomMember>)>> {
        Box::pin(SqliteStore::close_room(self, incident_id))
    }

    fn room_of<'a>(&'a self, who: &'a WaId) -> Fut<'a, Option<String>> {
        Box::pin(SqliteStore::room_of(self, who))
    }

    fn room_memberships<'a>(&'a self) -> Fut<'a, Vec<(WaId, String)>> {
        Box::pin(SqliteStore::room_memberships(self))
    }
}

impl Runs for SqliteStore {
    fn record_run_start<'a>(
        &'a self,
        run_id: &'a str,
        flow: &'a str,
        trigger: serde_json::Value,
    ) -> Fut<'a, super::RunStart> {
        Box::pin(SqliteStore::record_run_start(self, run_id, flow, trigger))
    }

    fn journal_step<'a>(
        &'a self,
        run_id: &'a str,
        step: &'a str,
        entry: serde_json::Value,
    ) -> Fut<'a, ()> {
        Box::pin(SqliteStore::journal_step(self, run_id, step, entry))
    }

    fn journal<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<(String, serde_json::Value)>> {
        Box::pin(SqliteStore::journal(self, run_id))
    }

    fn record_run_end<'a>(
        &'a self,
        run_id: &'a str,
        outcome: &'a str,
        steps: serde_json::Value,
    ) -> Fut<'a, ()> {
        Box::pin(SqliteStore::record_run_end(self, run_id, outcome, steps))
    }

    fn run<'a>(&'a self, run_id: &'a str) -> Fut<'a, Option<RunRecord>> {
        Box::pin(SqliteStore::run(self, run_id))
    }

    fn runs_of<'a>(&'a self, flow: &'a str, limit: i64) -> Fut<'a, Vec<RunRecord>> {
        Box::pin(SqliteStore::runs_of(self, flow, limit))
    }
}

impl Deliveries for SqliteStore {
    fn message_status<'a>(&'a self, wamid: &'a str) -> Fut<'a, Option<StatusRecord>> {
        Box::pin(SqliteStore::message_status(self, wamid))
    }

    fn outbound_message<'a>(&'a self, wamid: &'a str) -> Fut<'a, Option<OutboundRecord>> {
        Box::pin(SqliteStore::outbound_message(self, wamid))
    }

    fn audit_log<'a>(&'a self, limit: i64) -> Fut<'a, Vec<AuditRecord>> {
        Box::pin(SqliteStore::audit_log(self, limit))
    }

    fn outbox_counts<'a>(&'a self) -> Fut<'a, (u64, u64, u64)> {
        Box::pin(SqliteStore::outbox_counts(self))
    }

    fn delivery<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Delivery>> {
        Box::pin(SqliteStore::delivery(self, id))
    }

    fn job<'a>(&'a self, id: &'a str) -> Fut<'a, Option<OutboxEntry>> {
        Box::pin(SqliteStore::job(self, id))
    }
}

impl PageHistory for SqliteStore {
    fn append_page_events<'a>(&'a self, events: &'a [(u64, String)], keep: u64) -> Fut<'a, ()> {
        Box::pin(SqliteStore::append_page_events(self, events, keep))
    }

    fn recent_page_events<'a>(&'a self, limit: u64) -> Fut<'a, Vec<(u64, String)>> {
        Box::pin(SqliteStore::recent_page_events(self, limit))
    }

    fn last_sandbox_wamid<'a>(&'a self) -> Fut<'a, u64> {
        Box::pin(SqliteStore::last_sandbox_wamid(self))
    }
}

impl Backend for SqliteStore {
    fn writable<'a>(&'a self) -> BoxFuture<'a, bool> {
        Box::pin(SqliteStore::writable(self))
    }

    fn close<'a>(&'a self) -> BoxFuture<'a, ()> {
        Box::pin(SqliteStore::close(self))
    }
}
