//! Against a real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, which `.ci/run`
//! installs): alerts posted to Alertmanager's API reach the bot through its webhook receiver with
//! the bearer token, page the on-call engineer once per alert, and resolve when Alertmanager says.
//! Without the binary the test says so and passes, unless AOF_REQUIRE_ALERTMANAGER=1 (CI sets it).

use crate::common::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BINARY: &str = "/usr/bin/prometheus-alertmanager";

struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn alerts(ends_at: Option<&str>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let alert = |instance: &str| {
        let mut a = json!({
            "labels": { "alertname": "HighErrorRate", "service": "payments-api", "severity": "critical", "instance": instance },
            "annotations": { "summary": format!("5xx ratio above 5% on {instance}"),
                             "runbook_url": "https://runbooks.example.com/payments/high-error-rate" },
            "startsAt": now,
        });
        if let Some(end) = ends_at {
            a["endsAt"] = json!(end);
        }
        a
    };
    json!([alert("10.2.3.14:9102"), alert("10.2.3.15:9102")])
}

#[actix_web::test]
async fn alerts_from_a_real_alertmanager_page_once_each_and_resolve() {
    if !std::path::Path::new(BINARY).exists() {
        assert!(
            std::env::var("AOF_REQUIRE_ALERTMANAGER").is_err(),
            "{BINARY} is required but missing"
        );
        eprintln!("skipped: {BINARY} is not installed (apt-get install prometheus-alertmanager)");
        return;
    }
    let (graph, dir) = (FakeGraph::start(), temp());
    let options = Options {
        oncall_extra:
            "      static_oncall:\n        - { name: \"Alice\", phone: \"+15551234567\" }".into(),
        ..Options::default()
    };
    let app = TestApp::spawn_in(dir.path(), &graph, &options)
        .await
        .expect("the bot starts");

    let am_port = free_port();
    let config = format!(
        r#"route:
  receiver: whatsapp-oncall
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: whatsapp-oncall
    webhook_configs:
      - url: '{}/webhooks/whatsapp/alert/oncall'
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: '{WEBHOOK_TOKEN}'
"#,
        app.address
    );
    let config_file = dir.path().join("alertmanager.yml");
    std::fs::write(&config_file, config).unwrap();
    let child = Command::new(BINARY)
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Alertmanager starts");
    let _alertmanager = Alertmanager(child);
    let api = format!("http://127.0.0.1:{am_port}");
    let ready = eventually(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", am_port))
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(ready.is_some(), "Alertmanager never listened on {am_port}");

    let post = |body: Value| {
        let (client, url) = (app.client.clone(), format!("{api}/api/v2/alerts"));
        async move {
            let mut tries = 0;
            loop {
                match client.post(&url).send_json(&body).await {
                    Ok(res) if res.status().is_success() => return,
                    other if tries > 50 => panic!("Alertmanager refused the alerts: {other:?}"),
                    _ => actix_web::rt::time::sleep(Duration::from_millis(200)).await,
                }
                tries += 1;
            }
        }
    };
    post(alerts(None)).await;
    let pages = eventually(Duration::from_secs(30), || {
        let pages: Vec<Recorded> = graph
            .sends_to(ALICE)
            .into_iter()
            .filter(|r| r.body["type"] == "template")
            .collect();
        (pages.len() >= 2).then_some(pages)
    })
    .await
    .expect("Alertmanager's notification pages Alice for each alert");
    for page in &pages {
        let params = &page.body["template"]["components"][0]["parameters"];
        assert_eq!(params[0]["text"], "CRITICAL");
        assert_eq!(params[1]["text"], "payments-api");
    }

    let ended = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    post(alerts(Some(&ended))).await;
    let resolved = eventually(Duration::from_secs(30), || {
        let n = graph
            .sends_to(ALICE)
            .iter()
            .filter(|r| r.text().contains("Resolved by Alertmanager"))
            .count();
        (n >= 2).then_some(n)
    })
    .await;
    assert_eq!(
        resolved,
        Some(2),
        "both alerts resolved: {:?}",
        graph
            .sends_to(ALICE)
            .iter()
            .map(|r| r.text().to_owned())
            .collect::<Vec<_>>()
    );
    let templates = graph
        .sends_to(ALICE)
        .iter()
        .filter(|r| r.body["type"] == "template")
        .count();
    assert_eq!(templates, 2, "re-sent groups do not page twice");
}
