//! Replicas of `aofctl trigger serve` on one PostgreSQL database (a fresh one per test), behind a
//! stand-in load balancer that sends each request to a random live replica and tries another when
//! one does not answer. The fake Graph API answers every send and, as Meta does, reports it in a
//! signed status notification to a random replica.
//!
//! - Three replicas; the leader is killed with SIGKILL in the middle of an alert storm, of people
//!   asking for HELP and of a war room's talk. A follower leads within seconds; in the end every
//!   alert was named to the engineer once, every HELP answered once, every line written in the
//!   room reached each other member once, and no second held more sends than the limit.
//! - Three replicas; the leader that stored an escalation timer dies before it is due: the timer
//!   fires once, on the new leader.
//! - A leader that is paused while the network drops its database sessions comes back stale:
//!   another replica leads with a newer epoch, and the old one cannot keep anything and stops.
//!
//! Each says "skipped: no PostgreSQL at …" without a server, unless `AOF_REQUIRE_POSTGRES=1`.

mod failover;
mod fencing;
mod timers;

use super::process::Bot;
use crate::common::*;
use aof::store::postgres::testing::fresh_database;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Sends per second the replicas may make.
const RATE: usize = 10;

/// The replicas, by address; the killed ones are taken out.
type Live = Rc<RefCell<Vec<String>>>;

/// Writes the replicas' config: the fake Graph API, the shared database, `RATE` sends a second,
/// and a short wait for statuses of sends in flight at a kill.
fn config(dir: &std::path::Path, graph: &FakeGraph, url: &str) -> std::path::PathBuf {
    let options = Options {
        storage_url: Some(url.to_owned()),
        per_second: RATE as u32,
        whatsapp_extra: "    unconfirmed_send_grace_secs: 3\n".to_owned(),
        oncall_extra: "      static_oncall:\n        - { name: \"Alice\", phone: \"+15551234567\" }\n        - { name: \"Bob\", phone: \"+15557654321\" }".to_owned(),
        ..Options::default()
    };
    // Anyone may ask for HELP (many people, so that replies wait for the rate, not per person),
    // and the window allows for the heavier jitter of three bots and a database on two cores.
    let text = config_yaml(&graph.address, dir, &options)
        .replace(
            "    allowed_numbers:\n      - \"+1 555-123-4567\"\n      - \"+1 (555) 765-4321\"\n      - \"+15550001234\"\n",
            "    allowed_numbers: []\n",
        )
        .replace(
            "      per_person_interval_ms:",
            "      window_margin_ms: 150\n      per_person_interval_ms:",
        );
    assert!(text.contains("allowed_numbers: []") && text.contains("window_margin_ms"));
    let file = dir.join("replica.yaml");
    std::fs::write(&file, text).expect("writes");
    file
}

/// Answers every send with a wamid of its own and reports each, with its outbox id, in a signed
/// `sent` status to a random live replica (another one if that fails), as Meta does.
fn report_statuses(graph: &FakeGraph, live: Live) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, String)>();
    let mut n = 0;
    graph.script(move |body| {
        n += 1;
        let wamid = format!("wamid.ha.{n}");
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let callback = body["biz_opaque_callback_data"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let _ = tx.send((wamid.clone(), to, callback));
        Some((
            200,
            json!({ "messaging_product": "whatsapp", "messages": [{ "id": wamid }] }),
        ))
    });
    actix_web::rt::spawn(async move {
        while let Some((wamid, to, callback)) = rx.recv().await {
            let status = json!({ "id": wamid, "status": "sent", "recipient_id": to,
                "timestamp": now_stamp(), "biz_opaque_callback_data": callback });
            let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1",
                "changes": [{ "field": "messages", "value": { "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550001111",
                                  "phone_number_id": "106540352242922" },
                    "statuses": [status] } }] }] });
            let body = body.to_string();
            let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body.as_bytes());
            let sent = balanced(&live, "/webhooks/whatsapp", body, |r| {
                r.insert_header(("x-hub-signature-256", signature.clone()))
            })
            .await;
            assert!(sent.is_some(), "no replica took the status of {wamid}");
        }
    });
}

/// Posts `body` to `path` on a random live replica, trying the others (for 30 s) while none
/// answers 2xx: what a load balancer in front of them does. The answer's status and body.
async fn balanced(
    live: &Live,
    path: &str,
    body: String,
    headers: impl Fn(awc::ClientRequest) -> awc::ClientRequest,
) -> Option<(u16, Value)> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let replicas = live.borrow().clone();
        let address = &replicas[rand::random_range(0..replicas.len())];
        let request = client
            .post(format!("{address}{path}"))
            .insert_header(("content-type", "application/json"));
        if let Ok(mut response) = headers(request).send_body(body.clone()).await {
            let status = response.status().as_u16();
            if response.status().is_success() {
                let answer = response.json::<Value>().await.unwrap_or(Value::Null);
                return Some((status, answer));
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Posts `body` as a plain alert through the load balancer; whether a replica kept it.
async fn post_alert(live: &Live, body: &Value) -> bool {
    let kept = balanced(
        live,
        "/webhooks/whatsapp/alert/oncall",
        body.to_string(),
        |r| r.insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}"))),
    )
    .await;
    kept.is_some()
}

/// Waits until Alice was paged about `what`; whether she was.
async fn paged_about(graph: &FakeGraph, what: &str) -> bool {
    let paged = eventually(Duration::from_secs(15), || {
        let pages: Vec<String> = graph.sends_to(ALICE).iter().map(text_of).collect();
        pages.iter().any(|t| t.contains(what)).then_some(())
    })
    .await;
    paged.is_some()
}

/// `who` writes `text` (message id `id`) through the load balancer.
async fn say(live: &Live, who: &str, text: &str, id: &str) {
    let body = text_notification(who, "Someone", text, id).to_string();
    let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body.as_bytes());
    let kept = balanced(live, "/webhooks/whatsapp", body, |r| {
        r.insert_header(("x-hub-signature-256", signature.clone()))
    })
    .await;
    assert!(kept.is_some(), "no replica kept {id}");
}

/// Which replica leads, by `/healthz`.
async fn leader(replicas: &[String]) -> Option<usize> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(2))
        .finish();
    for (i, address) in replicas.iter().enumerate() {
        let Ok(mut response) = client.get(format!("{address}/healthz")).send().await else {
            continue;
        };
        let health = response.json::<Value>().await.unwrap_or(Value::Null);
        if health["role"] == "leader" {
            return Some(i);
        }
    }
    None
}

/// Every replica is ready (a follower takes webhooks too), and each says who leads: `/readyz`
/// and `/healthz` by role, `/metrics` by `aof_leader`, all with the leader's epoch.
async fn says_who_leads(replicas: &[String], leader: usize) {
    let client = awc::Client::new();
    // A follower learns who leads when it next asks for the lease (every 500 ms).
    let seen = eventually_async(Duration::from_secs(10), || async {
        for address in replicas {
            let mut health = client.get(format!("{address}/healthz")).send().await.ok()?;
            let health: Value = health.json().await.ok()?;
            health["leader"]["epoch"].as_i64()?;
        }
        Some(())
    })
    .await;
    assert!(seen.is_some(), "every replica names the leader");
    for (i, address) in replicas.iter().enumerate() {
        let role = if i == leader { "leader" } else { "follower" };
        let mut ready = client
            .get(format!("{address}/readyz"))
            .send()
            .await
            .expect("answers");
        let readiness: Value = ready.json().await.expect("JSON");
        assert_eq!(ready.status(), 200, "{address}: {readiness}");
        assert_eq!(readiness["role"], role, "{readiness}");
        let health: Value = client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(health["role"], role, "{health}");
        assert_eq!(health["leader"]["epoch"], 1, "{health}");
        let mut metrics = client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .expect("answers");
        let text = String::from_utf8(metrics.body().await.expect("a body").to_vec()).expect("text");
        let gauge = |name: &str| -> Option<f64> {
            let line = text.lines().find(|l| l.starts_with(&format!("{name} ")))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        let expected = if i == leader { 1.0 } else { 0.0 };
        assert_eq!(gauge("aof_leader"), Some(expected), "{address}:\n{text}");
        assert_eq!(gauge("aof_leader_epoch"), Some(1.0), "{address}:\n{text}");
    }
}

/// Waits until one of `replicas` leads; which, and how long it took.
async fn wait_for_leader(replicas: &[String], within: Duration) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        if let Some(i) = leader(replicas).await {
            return (i, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no replica led within {within:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A send's text: the text body, or the template's name and parameters.
fn text_of(send: &Recorded) -> String {
    if let Some(text) = send.body["text"]["body"].as_str() {
        return text.to_owned();
    }
    let template = &send.body["template"];
    let parameters: Vec<&str> = template["components"][0]["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default();
    format!(
        "{}({})",
        template["name"].as_str().unwrap_or_default(),
        parameters.join("|")
    )
}
