//! Tests of the SQLite store against a real database file in a temporary directory.

use super::conformance::conformance;
use super::{AuditRecord, Inbox, InboxEntry, JobState, Repositories, SqliteStore, StoreOpenError};
use aof_actors::ids::{JobId, WaId, Wamid};
use aof_actors::model::{
    Conversation, DeliveryState, InboundMessage, Lane, OutboundMessage, QueuedJob, StatusUpdate,
    Timer,
};
use aof_actors::ports::{AuditInbound, Store};
use serde_json::json;
use tempfile::TempDir;

/// A fresh database file under a directory that does not exist yet (shared with the tests beside
/// `records.rs` and `incidents.rs`).
pub(super) async fn fresh_store() -> (TempDir, String, SqliteStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("data/aof.db").display());
    let store = SqliteStore::open(&url).await.expect("the store opens");
    (dir, url, store)
}

const WEEK: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Keeps a HELP message for each id; per id, whether it was new.
async fn keep_messages(store: &dyn Store, ids: &[&str]) -> Vec<bool> {
    let messages = ids
        .iter()
        .map(|id| InboundMessage::text(id, person(), "HELP"))
        .collect();
    let rows = store
        .accept(messages, vec![], AuditInbound::No)
        .await
        .expect("kept");
    rows.iter().map(Option::is_some).collect()
}

async fn record_status(store: &dyn Store, status: StatusUpdate) {
    store
        .accept(vec![], vec![status], AuditInbound::No)
        .await
        .expect("recorded");
}

fn person() -> WaId {
    WaId::parse("15551234567").expect("a valid number")
}

fn job(id: &str, enqueued_at_ms: i64) -> QueuedJob {
    QueuedJob {
        id: JobId(id.to_owned()),
        message: OutboundMessage::text(person(), "disk full on db-1", Lane::Alert)
            .about(Some(json!({"alert_id": "A-1"})))
            .flow("oncall-alert-flow"),
        attempts: 0,
        enqueued_at_ms,
        folds: Vec::new(),
    }
}

fn status(wamid: &str, state: DeliveryState, error: Option<(i64, &str)>) -> StatusUpdate {
    StatusUpdate {
        id: Wamid(wamid.to_owned()),
        state,
        timestamp: 1_700_000_000,
        recipient: Some(person()),
        error: error.map(|(code, title)| (code, title.to_owned())),
        callback: None,
    }
}

async fn state_of(store: &dyn Repositories, wamid: &str) -> DeliveryState {
    store
        .message_status(wamid)
        .await
        .expect("the status reads")
        .expect("a status is recorded")
        .state
}

#[tokio::test(flavor = "current_thread")]
async fn new_messages_get_their_audit_line_in_the_same_commit_and_redeliveries_none() {
    let (_dir, _url, store) = fresh_store().await;
    let message = |id: &str| InboundMessage::text(id, person(), "HELP");
    let audit = AuditInbound::Yes { with_text: false };
    let rows = store
        .accept(vec![message("wamid.A"), message("wamid.A")], vec![], audit)
        .await
        .expect("kept");
    assert!(rows[0].is_some() && rows[1].is_none());
    store
        .accept(vec![message("wamid.A")], vec![], audit)
        .await
        .expect("kept");
    let log = store.audit_log(10).await.expect("reads");
    let inbound: Vec<&AuditRecord> = log.iter().filter(|r| r.kind == "inbound").collect();
    assert_eq!(inbound.len(), 1, "one line for one new message: {log:?}");
    assert_eq!(inbound[0].detail["id"], "wamid.A");
    assert!(
        inbound[0].detail.get("text").is_none(),
        "no text unless allowed"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn kept_messages_stay_open_until_done_and_are_not_kept_twice_across_a_reopen() {
    let (_dir, url, store) = fresh_store().await;
    let first = keep_messages(&store, &["wamid.A", "wamid.B", "wamid.A"]).await;
    assert_eq!(first, [true, true, false]);
    let open = store.open_inbox(WEEK).await.expect("reads");
    assert_eq!(open.len(), 2);
    store
        .inbox_done(open[0].seq, "completed".into())
        .await
        .expect("closed");
    store.close().await;

    let reopened = SqliteStore::open(&url).await.expect("the store reopens");
    let second = keep_messages(&reopened, &["wamid.B", "wamid.C", "wamid.A"]).await;
    assert_eq!(
        second,
        [false, true, false],
        "a redelivery is dropped, also after a restart"
    );
    let open: Vec<String> = reopened
        .open_inbox(WEEK)
        .await
        .expect("reads")
        .into_iter()
        .map(|row| {
            serde_json::from_str::<InboundMessage>(&row.body)
                .unwrap()
                .id
                .0
        })
        .collect();
    assert_eq!(open, ["wamid.B", "wamid.C"], "open rows, in arrival order");
}

conformance! {
    async fn an_open_key_is_handled_once_at_a_time_and_again_once_done(store) {
        let entry = || InboxEntry {
            kind: "alertmanager",
            once: None,
            open_key: Some("alertmanager:fp1:firing".into()),
            body: "{}".into(),
            audit: None,
        };
        let both = store.keep_events(vec![entry(), entry()]).await.expect("kept");
        assert!(both[0].is_some() && both[1].is_none(), "{both:?}");
        let again = store.keep_events(vec![entry()]).await.expect("kept");
        assert_eq!(again, [None], "still open: a concurrent delivery is a duplicate");
        store.inbox_done(both[0].unwrap(), "completed".into()).await.expect("closed");
        let later = store.keep_events(vec![entry()]).await.expect("kept");
        assert!(later[0].is_some(), "once done, a later delivery is handled again");
    }
}

conformance! {
    async fn statuses_never_move_backwards_and_failed_is_final(store) {
        for state in [
            DeliveryState::Read,
            DeliveryState::Delivered,
            DeliveryState::Sent,
        ] {
            record_status(store.as_ref(), status("wamid.R", state, None)).await;
        }
        assert_eq!(state_of(store.as_ref(), "wamid.R").await, DeliveryState::Read);

        let failed = status(
            "wamid.F",
            DeliveryState::Failed,
            Some((131047, "Re-engagement message")),
        );
        record_status(store.as_ref(), failed).await;
        record_status(store.as_ref(), status("wamid.F", DeliveryState::Read, None)).await;
        let record = store
            .message_status("wamid.F")
            .await
            .expect("reads")
            .expect("recorded");
        assert_eq!(record.state, DeliveryState::Failed);
        assert_eq!(record.error_code, Some(131047));
        assert_eq!(record.error_title.as_deref(), Some("Re-engagement message"));
        assert_eq!(record.timestamp, 1_700_000_000);
    }
}

conformance! {
    async fn a_status_that_arrives_before_the_send_is_recorded_is_kept(store) {
        let early = status("wamid.E", DeliveryState::Delivered, None);
        record_status(store.as_ref(), early).await;
        let sent = job("job_early", 1);
        store.enqueue(sent.clone()).await.expect("queued");
        store
            .job_sent(sent, Wamid("wamid.E".into()))
            .await
            .expect("sent");
        assert_eq!(state_of(store.as_ref(), "wamid.E").await, DeliveryState::Delivered);

        let later = job("job_later", 2);
        store
            .job_sent(later, Wamid("wamid.L".into()))
            .await
            .expect("sent");
        assert_eq!(state_of(store.as_ref(), "wamid.L").await, DeliveryState::Accepted);
    }
}

conformance! {
    async fn a_conversation_saved_with_a_lower_version_is_ignored(store) {
        let empty = store.load_conversation(person()).await.expect("loads");
        assert_eq!(empty, Conversation::default());

        let newer = Conversation {
            last_inbound_ms: Some(20),
            version: 5,
            ..Conversation::default()
        };
        let older = Conversation {
            last_inbound_ms: Some(10),
            version: 4,
            ..Conversation::default()
        };
        store
            .save_conversation(person(), newer.clone())
            .await
            .expect("saved");
        store
            .save_conversation(person(), older)
            .await
            .expect("ignored without error");
        assert_eq!(
            store.load_conversation(person()).await.expect("loads"),
            newer
        );
    }
}

conformance! {
    async fn jobs_folded_into_a_digest_leave_the_queue_with_it_and_share_its_delivery(store) {
        for (id, at) in [("job_a", 100), ("job_b", 200), ("job_c", 300)] {
            store.enqueue(job(id, at)).await.expect("queued");
        }
        let mut digest = job("fold_1", 100);
        digest.folds = vec![JobId("job_a".into()), JobId("job_b".into())];
        store.job_folding(digest.clone()).await.expect("folded");
        let pending = store.pending_jobs().await.expect("lists");
        let order: Vec<_> = pending.iter().map(|j| j.id.0.as_str()).collect();
        assert_eq!(order, ["job_c"], "folded jobs are never sent themselves");
        let unconfirmed = store.unconfirmed_jobs().await.expect("lists");
        assert_eq!(unconfirmed.len(), 1, "the digest is on its way");
        assert_eq!(unconfirmed[0].folds, digest.folds, "and knows what it says");
        let (state, ..) = store.job("job_a").await.expect("reads").expect("kept");
        assert_eq!(state, JobState::Folded);
        // Folding again (a retried digest) changes nothing.
        store.job_folding(digest.clone()).await.expect("folded again");

        store.job_sent(digest, Wamid("wamid.D".into())).await.expect("sent");
        record_status(&*store, status("wamid.D", DeliveryState::Failed, Some((131026, "undeliverable")))).await;
        for folded in ["job_a", "job_b"] {
            let delivery = store.delivery(folded).await.expect("reads").expect("kept");
            assert_eq!(
                (delivery.outbox, delivery.status),
                (JobState::Sent, Some(DeliveryState::Failed)),
                "{folded} went as its digest went"
            );
        }
        assert_eq!(
            store.outbox_counts().await.expect("counts"),
            (1, 2, 0),
            "the two folded count as sent with their digest, which is not counted itself"
        );
    }
}

conformance! {
    async fn a_sent_job_leaves_the_pending_queue_and_is_remembered_by_its_wamid(store) {
        store.enqueue(job("job_z", 200)).await.expect("queued");
        store.enqueue(job("job_y", 100)).await.expect("queued");
        store.enqueue(job("job_x", 200)).await.expect("queued");
        let mut retried = job("job_z", 200);
        retried.attempts = 2;
        store.update_job(retried).await.expect("updated");

        let pending = store.pending_jobs().await.expect("lists");
        let order: Vec<_> = pending.iter().map(|j| j.id.0.as_str()).collect();
        assert_eq!(order, ["job_y", "job_z", "job_x"]);
        assert_eq!(pending[1].attempts, 2);

        store
            .job_sent(job("job_y", 100), Wamid("wamid.S".into()))
            .await
            .expect("sent");
        store
            .job_failed(job("job_x", 200), Some(131026), "undeliverable".into())
            .await
            .expect("failed");
        let pending = store.pending_jobs().await.expect("lists");
        assert_eq!(
            pending.iter().map(|j| j.id.0.as_str()).collect::<Vec<_>>(),
            ["job_z"]
        );
        assert_eq!(store.outbox_counts().await.expect("counts"), (1, 1, 1));

        let outbound = store
            .outbound_message("wamid.S")
            .await
            .expect("reads")
            .expect("recorded");
        assert_eq!(outbound.to, person());
        assert_eq!(outbound.kind, "text");
        assert_eq!(outbound.about, Some(json!({"alert_id": "A-1"})));
        assert_eq!(outbound.flow.as_deref(), Some("oncall-alert-flow"));
        assert_eq!(outbound.job_id, JobId("job_y".into()));

        let (state, _, code, reason) = store.job("job_x").await.expect("reads").expect("kept");
        assert_eq!(state, JobState::Failed);
        assert_eq!(
            (code, reason.as_deref()),
            (Some(131026), Some("undeliverable"))
        );
        assert!(store.job("job_404").await.expect("reads").is_none());

        // A job on its way reads as `sending`, and what became of each job as its delivery.
        store.job_sending(JobId("job_z".into())).await.expect("recorded");
        let (state, ..) = store.job("job_z").await.expect("reads").expect("kept");
        assert_eq!(state, JobState::Sending);
        let delivery = store.delivery("job_z").await.expect("reads").expect("kept");
        assert_eq!((delivery.outbox, delivery.status), (JobState::Sending, None));
        let failed = store.delivery("job_x").await.expect("reads").expect("kept");
        assert_eq!(failed.outbox, JobState::Failed);
        assert_eq!(failed.outbox_error.as_deref(), Some("undeliverable"));
        let sent = store.delivery("job_y").await.expect("reads").expect("kept");
        assert_eq!(sent.outbox, JobState::Sent);
        assert!(store.delivery("job_404").await.expect("reads").is_none());
    }
}

conformance! {
    async fn template_quota_stops_at_the_limit_and_resets_on_a_new_day(store) {
        let mut taken = Vec::new();
        for _ in 0..4 {
            taken.push(
                store
                    .take_template_quota("2025-01-01".into(), 3)
                    .await
                    .expect("counts"),
            );
        }
        assert_eq!(taken, [true, true, true, false]);
        assert!(store
            .take_template_quota("2025-01-02".into(), 3)
            .await
            .expect("counts"));
        assert!(!store
            .take_template_quota("2025-01-03".into(), 0)
            .await
            .expect("counts"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn timers_come_back_in_firing_order_until_finished() {
    let (_dir, url, store) = fresh_store().await;
    let timer = |id: &str, fire_at_ms| Timer {
        id: id.to_owned(),
        flow: "escalation-flow".to_owned(),
        input: json!({"alert_id": id}),
        fire_at_ms,
    };
    store
        .save_timer(timer("t_late", 2_000))
        .await
        .expect("saved");
    store
        .save_timer(timer("t_soon", 1_000))
        .await
        .expect("saved");
    store.close().await;

    let store = SqliteStore::open(&url).await.expect("reopens");
    let pending = store.pending_timers().await.expect("lists");
    assert_eq!(
        pending.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t_soon", "t_late"]
    );
    assert_eq!(pending[0].input, json!({"alert_id": "t_soon"}));
    assert_eq!(pending[0].fire_at_ms, 1_000);

    store.finish_timer("t_soon".into()).await.expect("finished");
    let pending = store.pending_timers().await.expect("lists");
    assert_eq!(
        pending.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t_late"]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_in_memory_store_opens_and_answers_pings() {
    let store = SqliteStore::open("sqlite::memory:").await.expect("opens");
    assert!(store.writable().await);
    assert_eq!(keep_messages(&store, &["wamid.M"]).await, [true]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_url_that_is_not_sqlite_is_refused_with_the_forms_we_accept() {
    let err = SqliteStore::open("postgres://localhost/aof")
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreOpenError::InvalidUrl { .. }));
    let text = err.to_string();
    assert!(
        text.contains("postgres://localhost/aof") && text.contains("sqlite://"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_directory_that_cannot_be_created_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").expect("written");
    let url = format!("sqlite://{}", blocker.join("data/aof.db").display());
    let err = SqliteStore::open(&url).await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, StoreOpenError::CreateDir { .. }), "{text}");
    assert!(
        text.contains("cannot create directory") && text.contains("storage.url"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_file_store_runs_in_wal_mode_with_a_busy_timeout_and_foreign_keys() {
    let (_dir, _url, store) = fresh_store().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .expect("reads");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&store.pool)
        .await
        .expect("reads");
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&store.pool)
        .await
        .expect("reads");
    let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&store.pool)
        .await
        .expect("reads");
    assert_eq!((mode.as_str(), sync, busy, fks), ("wal", 1, 5_000, 1));
}

conformance! {
    async fn concurrent_senders_never_take_more_template_quota_than_the_limit(store) {
        let takes = (0..20).map(|_| store.take_template_quota("2025-01-01".into(), 5));
        let taken = futures_util::future::join_all(takes).await;
        let taken: Vec<bool> = taken.into_iter().map(|t| t.expect("counts")).collect();
        assert_eq!(taken.iter().filter(|t| **t).count(), 5);
    }
}
