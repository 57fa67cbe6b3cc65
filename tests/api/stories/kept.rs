//! Accepted means kept: a request whose work the store cannot write is answered 503 with
//! `Retry-After` (never a 2xx), `/readyz` says so while it lasts, and the same request sent again
//! once the store writes is handled; two deliveries of one new Alertmanager group at the same
//! time page once.

use super::support::*;
use crate::common::sending::fixture_json;
use crate::common::*;
use serde_json::Value;

/// A connection of the test's own to the bot's store in `dir`, to read it or to write the state a
/// crash would have left.
async fn db(dir: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.join("aof.db").display());
    sqlx::SqliteConnection::connect(&url).await.expect("opens")
}

/// A second connection holding SQLite's write lock, as a long write of another process would:
/// the bot's writes wait out their busy timeout (5 s) and fail.
async fn hold_the_write_lock(dir: &std::path::Path) -> sqlx::SqliteConnection {
    let mut lock = db(dir).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .expect("takes the write lock");
    lock
}

/// POSTs raw bytes; the status and the `Retry-After` header.
async fn post(
    app: &TestApp,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> (u16, Option<String>) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .insert_header(("content-type", "application/json"));
    for (name, value) in headers {
        request = request.insert_header((*name, value.clone()));
    }
    let answer = request.send_body(body).await.expect("the server answers");
    let retry = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (answer.status().as_u16(), retry)
}

#[actix_web::test]
async fn what_the_store_cannot_keep_gets_503_with_retry_after_and_is_handled_when_sent_again() {
    let (graph, dir, app) = start().await;
    let help = text_notification(ALICE, "Alice", "HELP", "wamid.kept.help").to_string();
    let signed = |body: &str| {
        vec![(
            "x-hub-signature-256",
            aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body.as_bytes()),
        )]
    };
    let page = fixture_json("alertmanager/firing-two-alerts.json").to_string();
    let token = vec![("authorization", format!("Bearer {WEBHOOK_TOKEN}"))];

    let signature = signed(&help);
    let lock = hold_the_write_lock(dir.path()).await;
    let (message, alerts, ready) = tokio::join!(
        post(
            &app,
            "/webhooks/whatsapp",
            help.clone().into_bytes(),
            &signature
        ),
        post(
            &app,
            "/webhooks/whatsapp/alert/oncall",
            page.clone().into_bytes(),
            &token
        ),
        app.client.get(format!("{}/readyz", app.address)).send(),
    );
    assert_eq!(message, (503, Some("5".into())), "Meta is asked to retry");
    assert_eq!(
        alerts,
        (503, Some("5".into())),
        "Alertmanager is asked to retry"
    );
    let ready = ready.expect("answers").status().as_u16();
    assert_eq!(ready, 503, "not ready while the store cannot write");
    assert!(graph.sends_to(ALICE).is_empty(), "nothing was acted on");
    drop(lock);

    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await;
    assert_eq!(
        ready.expect("answers").status().as_u16(),
        200,
        "ready again, no restart"
    );
    let (message, _) = post(
        &app,
        "/webhooks/whatsapp",
        help.clone().into_bytes(),
        &signed(&help),
    )
    .await;
    assert_eq!(message, 200);
    let (alerts, _) = post(
        &app,
        "/webhooks/whatsapp/alert/oncall",
        page.into_bytes(),
        &token,
    )
    .await;
    assert_eq!(alerts, 202);
    received(&graph, ALICE, "HELP").await;
    nth_send(&graph, ALICE, 3).await;
}

#[actix_web::test]
async fn two_deliveries_of_one_new_alertmanager_group_at_once_page_once() {
    let (graph, _dir, app) = start().await;
    let firing = fixture_json("alertmanager/firing-two-alerts.json");
    let (first, second) = tokio::join!(alert(&app, firing.clone()), alert(&app, firing));
    let runs = |a: &Value| a["runs"].as_array().map_or(0, Vec::len);
    assert_eq!(runs(&first) + runs(&second), 2, "{first}\n{second}");
    nth_send(&graph, ALICE, 2).await;
    let later = alert(&app, fixture_json("alertmanager/firing-two-alerts.json")).await;
    assert_eq!(runs(&later), 0, "{later}");
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    let pages = graph
        .sends_to(ALICE)
        .iter()
        .filter(|r| r.body["type"] == "template")
        .count();
    assert_eq!(pages, 2, "one page per alert: {:?}", texts(&graph, ALICE));
}

#[actix_web::test]
async fn an_alertmanager_alert_whose_run_a_crash_cut_short_after_recording_it_still_pages() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let app = spawn(&graph, dir.path()).await;
    let mut firing = fixture_json("alertmanager/firing-two-alerts.json");
    firing["alerts"].as_array_mut().unwrap().truncate(1);
    alert(&app, firing).await;
    let pages = || {
        graph
            .sends_to(ALICE)
            .iter()
            .filter(|r| r.body["type"] == "template")
            .count()
    };
    eventually(WAIT, || (pages() == 1).then_some(())).await;
    settled(dir.path()).await;
    app.stop();

    // Killed after the run recorded the alert, before the page left: the row open, the run not
    // ended, nothing in the outbox.
    {
        let mut db = db(dir.path()).await;
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM inbox WHERE kind = 'alertmanager'")
            .fetch_one(&mut db)
            .await
            .expect("the alert was kept");
        for sql in [
            "UPDATE inbox SET done_ms = NULL, outcome = NULL WHERE seq = ?1",
            "UPDATE runs SET outcome = NULL, finished_ms = NULL WHERE run_id = 'run_inbox_' || ?1",
            "DELETE FROM outbound_messages WHERE ?1 IS NOT NULL",
            "DELETE FROM outbox WHERE ?1 IS NOT NULL",
        ] {
            sqlx::query(sql)
                .bind(seq)
                .execute(&mut db)
                .await
                .expect("rewinds");
        }
    }
    let app = spawn(&graph, dir.path()).await;
    let paged_again = eventually(WAIT, || (pages() == 2).then_some(())).await;
    assert!(
        paged_again.is_some(),
        "the resumed run pages, not a repeat of its own alert: {:?}",
        texts(&graph, ALICE)
    );
    settled(dir.path()).await;
    drop(app);
}

/// A two-step flow whose second message names what the first step returned.
const TWO_STEPS: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: two-steps
triggers:
  - platform: whatsapp
    type: message
    pattern: "^TWO$"
steps:
  - name: first
    agent: whatsapp
    action: reply
    input:
      text: "step one"
  - name: second
    agent: whatsapp
    action: reply
    input:
      text: "step two after {{ steps.first.output.marker | default('a live first step') }}"
"#;

/// The shipped flows and [`TWO_STEPS`].
fn two_steps_flows() -> tempfile::TempDir {
    crate::common::chat::flows_dir(&[("two-steps.yaml", TWO_STEPS)])
}

/// Starts the bot on `options`; Alice says TWO and gets both steps' messages.
async fn two_steps_answered(
    graph: &FakeGraph,
    dir: &std::path::Path,
    options: &Options,
) -> TestApp {
    let app = TestApp::spawn_in(dir, graph, options)
        .await
        .expect("starts");
    app.say(ALICE, "TWO").await;
    nth_send(graph, ALICE, 2).await;
    settled(dir).await;
    app
}

/// Waits until the latest two-step run ended, its inbox row is closed and both its sends are
/// recorded: a stopped test server's store writer may still commit what was queued before the
/// stop (a killed process would not), and must not undo the crash a test writes afterwards.
async fn settled(dir: &std::path::Path) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.join("aof.db").display());
    let done = eventually_async(WAIT, || async {
        let mut db = sqlx::SqliteConnection::connect(&url).await.ok()?;
        let open: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE done_ms IS NULL)
                  + (SELECT COUNT(*) FROM runs WHERE finished_ms IS NULL)
                  + (SELECT COUNT(*) FROM outbox WHERE state <> 'sent')",
        )
        .fetch_one(&mut db)
        .await
        .ok()?;
        (open == 0).then_some(())
    })
    .await;
    assert!(done.is_some(), "the run settles");
}

/// Puts the store back to where a crash would have left it: the message's inbox row open and
/// its run not ended, with `journal` as the steps it had completed.
async fn rewind_to_a_crash(dir: &std::path::Path, journal: &[(&str, Value)]) {
    let mut db = db(dir).await;
    let seq: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM inbox WHERE kind = 'message'")
        .fetch_one(&mut db)
        .await
        .expect("the message was kept");
    let run = format!("run_inbox_{seq}");
    sqlx::query("UPDATE inbox SET done_ms = NULL, outcome = NULL WHERE seq = ?1")
        .bind(seq)
        .execute(&mut db)
        .await
        .expect("reopens the row");
    sqlx::query("UPDATE runs SET outcome = NULL, finished_ms = NULL WHERE run_id = ?1")
        .bind(&run)
        .execute(&mut db)
        .await
        .expect("the run had started");
    for (step, entry) in journal {
        sqlx::query("INSERT INTO run_journal (run_id, step, entry, at_ms) VALUES (?1, ?2, ?3, 0)")
            .bind(&run)
            .bind(step)
            .bind(entry.to_string())
            .execute(&mut db)
            .await
            .expect("journals");
    }
}

#[actix_web::test]
async fn a_run_resumed_after_a_crash_skips_the_steps_it_completed_and_sends_nothing_twice() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), two_steps_flows());
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        ..Options::default()
    };
    let app = two_steps_answered(&graph, dir.path(), &options).await;
    let texts = || texts(&graph, ALICE);
    assert_eq!(texts(), ["step one", "step two after a live first step"]);
    app.stop();

    // Crashed after step one was journaled, before step two queued its message: the resumed run
    // starts at step two, which sees what step one returned before the crash.
    let marker =
        serde_json::json!({ "step": { "output": { "marker": "the journal" } }, "asked": [] });
    rewind_to_a_crash(dir.path(), &[("0", marker)]).await;
    {
        let mut db = db(dir.path()).await;
        let forgotten = sqlx::query("DELETE FROM outbox WHERE id LIKE 'run_inbox_%/1/%'")
            .execute(&mut db)
            .await
            .expect("forgets step two's message");
        assert_eq!(forgotten.rows_affected(), 1);
    }
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("restarts");
    nth_send(&graph, ALICE, 3).await;
    assert_eq!(texts()[2], "step two after the journal");
    settled(dir.path()).await;
    app.stop();

    // Crashed before any step was journaled, after both messages were queued: both steps run
    // again, and their messages, queued under the same keys, are not sent twice, though step two
    // now says something else (its text named the journal before the crash).
    rewind_to_a_crash(dir.path(), &[]).await;
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("restarts");
    let store = store(dir.path()).await;
    let ended = eventually_async(WAIT, || async {
        let runs = aof::store::Runs::runs_of(&store, "two-steps", 1)
            .await
            .ok()?;
        runs.into_iter().next().filter(|r| r.outcome.is_some())
    })
    .await;
    assert!(ended.is_some(), "the resumed run ends");
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(texts().len(), 3, "nothing sent twice: {:?}", texts());
    drop(app);
}

#[actix_web::test]
async fn a_message_whose_run_ended_just_before_a_crash_is_not_run_again() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), two_steps_flows());
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        ..Options::default()
    };
    let app = two_steps_answered(&graph, dir.path(), &options).await;
    app.stop();

    // Killed after the run's end was written, before the message's inbox row was closed; its
    // sends are gone from the outbox, so that running it again would send them again.
    let mut db = db(dir.path()).await;
    for sql in [
        "UPDATE inbox SET done_ms = NULL, outcome = NULL
         WHERE seq = (SELECT MAX(seq) FROM inbox WHERE kind = 'message')",
        "DELETE FROM outbound_messages",
        "DELETE FROM outbox",
    ] {
        sqlx::query(sql).execute(&mut db).await.expect("rewinds");
    }
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("restarts");
    settled(dir.path()).await;
    let outcome: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM inbox WHERE kind = 'message' ORDER BY seq DESC")
            .fetch_one(&mut db)
            .await
            .expect("reads");
    assert_eq!(
        outcome.as_deref(),
        Some("completed"),
        "closed as it had ended"
    );
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(texts(&graph, ALICE).len(), 2, "{:?}", texts(&graph, ALICE));
    drop(app);
}

/// A flow that answers and schedules a reminder in its last step.
const REMINDER: &str = r#"
apiVersion: aof.sh/v1alpha1
kind: AgentFlow
metadata:
  name: reminder
triggers:
  - platform: whatsapp
    type: message
    pattern: "^REMIND$"
steps:
  - name: noted
    agent: whatsapp
    action: reply
    input:
      text: "noted"
  - name: later
    agent: scheduler
    action: schedule
    input:
      flow: two-steps
      delay: 3600
"#;

#[actix_web::test]
async fn a_step_run_again_after_a_crash_schedules_its_timer_once() {
    let (graph, dir) = (FakeGraph::start(), temp());
    let flows = crate::common::chat::flows_dir(&[
        ("two-steps.yaml", TWO_STEPS),
        ("reminder.yaml", REMINDER),
    ]);
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        ..Options::default()
    };
    let timers = |dir: std::path::PathBuf| async move {
        let mut db = db(&dir).await;
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM timers")
            .fetch_all(&mut db)
            .await
            .expect("reads");
        ids
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("starts");
    app.say(ALICE, "REMIND").await;
    nth_send(&graph, ALICE, 1).await;
    settled(dir.path()).await;
    let before = timers(dir.path().to_owned()).await;
    assert_eq!(before.len(), 1, "{before:?}");
    app.stop();

    // Crashed after the timer was stored, before the run's end: both steps run again.
    rewind_to_a_crash(dir.path(), &[]).await;
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("restarts");
    settled(dir.path()).await;
    assert_eq!(
        timers(dir.path().to_owned()).await,
        before,
        "the same timer, not a second one"
    );
    assert_eq!(texts(&graph, ALICE), ["noted"], "nothing sent twice");
    drop(app);
}

/// Meta's status for a message our send named `job` (its `biz_opaque_callback_data`).
fn status_naming(job: &str, wamid: &str) -> Value {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": "106540352242922" },
            "statuses": [{ "id": wamid, "status": "sent", "timestamp": now_stamp(),
                "recipient_id": ALICE, "biz_opaque_callback_data": job }] } }] }]
    })
}

#[actix_web::test]
async fn a_send_left_unconfirmed_by_a_crash_is_sent_again_only_if_no_status_names_it() {
    let (graph, dir, flows) = (FakeGraph::start(), temp(), two_steps_flows());
    let options = Options {
        flows_dir: Some(flows.path().to_owned()),
        whatsapp_extra: "    unconfirmed_send_grace_secs: 1\n".into(),
        ..Options::default()
    };
    let app = two_steps_answered(&graph, dir.path(), &options).await;
    let sent = graph.sends_to(ALICE);
    let named = sent[0].body["biz_opaque_callback_data"].as_str();
    assert!(
        named.is_some_and(|id| !id.is_empty()),
        "every send names its outbox row: {}",
        sent[0].body
    );
    app.stop();

    // Both requests had left when the bot died, before it stored Meta's answers.
    let mut db = db(dir.path()).await;
    let jobs: Vec<String> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY created_ms, rowid")
        .fetch_all(&mut db)
        .await
        .expect("reads");
    assert_eq!(jobs.len(), 2);
    sqlx::query("UPDATE outbox SET state = 'sending', wamid = NULL")
        .execute(&mut db)
        .await
        .expect("rewinds");
    drop(db);

    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("restarts");
    // Meta's status for the first arrives within the grace period.
    let status = status_naming(&jobs[0], "wamid.confirmed").to_string();
    assert_eq!(app.post_signed(status.as_bytes()).await, 200);
    nth_send(&graph, ALICE, 3).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1500)).await;
    let texts = texts(&graph, ALICE);
    assert_eq!(
        texts,
        [
            "step one",
            "step two after a live first step",
            "step two after a live first step"
        ],
        "only the message no status named is sent again"
    );
    let store = store(dir.path()).await;
    let first = aof::store::Deliveries::job(&store, &jobs[0])
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(first.0, aof::store::JobState::Sent, "{first:?}");
    let confirmed = aof::store::Deliveries::outbound_message(&store, "wamid.confirmed")
        .await
        .unwrap()
        .expect("the status's wamid is recorded as that message's");
    assert_eq!(confirmed.job_id.0, jobs[0]);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics).to_string();
    assert!(metrics.contains("aof_sends_resent_total 1"), "{metrics}");
}
