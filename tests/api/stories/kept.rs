//! Accepted means kept: a request whose work the store cannot write is answered 503 with
//! `Retry-After` (never a 2xx), `/readyz` says so while it lasts, and the same request sent again
//! once the store writes is handled; two deliveries of one new Alertmanager group at the same
//! time page once.

use super::support::*;
use crate::common::sending::fixture_json;
use crate::common::*;
use serde_json::Value;

/// A second connection holding SQLite's write lock, as a long write of another process would:
/// the bot's writes wait out their busy timeout (5 s) and fail.
async fn hold_the_write_lock(dir: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.join("aof.db").display());
    let mut lock = sqlx::SqliteConnection::connect(&url).await.expect("opens");
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
