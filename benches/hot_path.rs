//! Criterion benches of what every inbound message and every alert goes through, on realistic
//! inputs (issue 5, part 1). Results and how to read them: `BENCHMARKS.md`.
//!
//! ```text
//! POST /webhook ── signature/* ── parse/* ── route/mix ── flow steps ── render/status_check
//!                                                              └─ template send ── render/ops_alert
//! ```
//!
//! Inputs are built once, before measuring, from `tests/fixtures` (the notification bodies), the
//! tutorial's `config/whatsapp-bot.yaml` (routing, templates) and the shipped `flows/whatsapp`.
//! The group and bench names are stable: BENCHMARKS.md and later comparisons refer to them.
//!
//! Run: `cargo bench --bench hot_path` (add `-- --warm-up-time 1 --measurement-time 3` for a
//! quicker, noisier run).

use aof::agents::Registry;
use aof::config::Config;
use aof::flow::expr::Expressions;
use aof::flow::{FlowSet, Routes};
use aof::store::IncidentRecord;
use aof::wire::whatsapp::{parse_notification, sign, verify_signature};
use aof_actors::ports::RouteTable;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

/// The payloads the tests use too.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The tutorial's TriggerConfig, as shipped.
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/whatsapp-bot.yaml");

/// The shipped flows.
const FLOWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flows/whatsapp");

/// An app secret of the shape Meta issues (32 hex digits); the value does not change the cost.
const APP_SECRET: &[u8] = b"6f1d2c9e8b7a4f3e2d1c0b9a8f7e6d5c";

/// Texts people send, one per routing path: a command, a flow trigger with a capture and stray
/// spaces, a keyword with the target flow's own captures, a second keyword, and the default flow.
const ROUTE_MIX: [&str; 5] = [
    "ACK",
    "  status api ",
    "deploy api v2.1 to staging",
    "the db is down",
    "hello there",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `whatsapp/text.json` carrying `n` messages, each from its own sender (with its contact entry)
/// and with its own wamid, as Meta batches them during a busy minute.
fn notification(n: usize) -> Value {
    let text = read(&format!("{FIXTURES}/whatsapp/text.json"));
    let mut doc: Value = serde_json::from_str(&text).expect("text.json is JSON");
    let value = &mut doc["entry"][0]["changes"][0]["value"];
    let message = value["messages"][0].clone();
    let contact = value["contacts"][0].clone();
    let (messages, contacts): (Vec<Value>, Vec<Value>) = (0..n)
        .map(|i| {
            let wa_id = format!("1555{:07}", 1_234_567 + i);
            let mut m = message.clone();
            m["from"] = json!(wa_id);
            m["id"] = json!(format!("wamid.HBgL{wa_id}FQIAEhgUM0VCMEI2NUE3OEMx{i:06}A="));
            m["timestamp"] = json!((1_718_900_000 + i).to_string());
            let mut c = contact.clone();
            c["wa_id"] = json!(wa_id);
            c["profile"]["name"] = json!(format!("Engineer {i}"));
            (m, c)
        })
        .unzip();
    value["messages"] = Value::Array(messages);
    value["contacts"] = Value::Array(contacts);
    doc
}

/// A compact notification body of exactly `size` bytes: as many messages as fit, the first one's
/// text lengthened to make up the rest.
fn body_of_size(size: usize) -> Vec<u8> {
    let len = |doc: &Value| serde_json::to_vec(doc).expect("JSON serializes").len();
    let mut n = 1;
    while len(&notification(n + 1)) <= size {
        n += 1;
    }
    let mut doc = notification(n);
    let short = size
        .checked_sub(len(&doc))
        .unwrap_or_else(|| panic!("one message is already over {size} bytes"));
    let words = " disk usage on db-01 is above 90 percent, please check";
    let pad: String = words.chars().cycle().take(short).collect();
    let body = &mut doc["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"];
    *body = json!(format!("{}{pad}", body.as_str().expect("a text body")));
    let bytes = serde_json::to_vec(&doc).expect("JSON serializes");
    assert_eq!(bytes.len(), size);
    bytes
}

/// The tutorial's config, every `${VAR}` set to the same digits (numbers and tokens alike).
fn config() -> Config {
    aof::config::load_str(CONFIG, &read(CONFIG), &|_| Some("1234567890".to_owned()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn flows(config: &Config) -> FlowSet {
    FlowSet::load_dir(
        Path::new(FLOWS),
        &Registry::builtin(),
        &Expressions::new(),
        &config.platforms.whatsapp.templates,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn signature(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature");
    for (name, size) in [("1KB", 1024), ("64KB", 64 * 1024)] {
        let body = body_of_size(size);
        let header = sign(APP_SECRET, &body);
        assert!(verify_signature(APP_SECRET, &body, Some(&header)));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(name, |b| {
            b.iter(|| verify_signature(APP_SECRET, black_box(&body), black_box(Some(&header))))
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for n in [1, 50] {
        let body = serde_json::to_vec(&notification(n)).expect("JSON serializes");
        let parsed = parse_notification(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.messages.len(), n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(n.to_string(), |b| {
            b.iter(|| parse_notification(black_box(&body)))
        });
    }
    group.finish();
}

fn route(c: &mut Criterion) {
    let config = config();
    let routes = Routes::new(&config.routing, Arc::new(flows(&config)));
    let alice = aof_actors::WaId::parse("+15551234567").expect("a number");
    let expected = [
        "acknowledge-alert-flow",
        "status-check-flow",
        "deployment-request-flow",
        "incident-report-flow",
        "whatsapp-help-flow",
    ];
    for (text, flow) in ROUTE_MIX.iter().zip(expected) {
        let route = routes
            .route(&alice, text)
            .unwrap_or_else(|| panic!("`{text}`"));
        assert_eq!(route.flow, flow, "`{text}`");
    }
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(ROUTE_MIX.len() as u64));
    group.bench_function("mix", |b| {
        b.iter(|| {
            for text in ROUTE_MIX {
                black_box(routes.route(&alice, black_box(text)));
            }
        })
    });
    group.finish();
}

/// An incident as the `incident-manager` agent's `list` returns it: the record plus `incident_id`.
fn incident(id: &str, title: &str, severity: &str, service: &str, created_ms: i64) -> Value {
    let record = IncidentRecord {
        id: id.to_owned(),
        title: title.to_owned(),
        severity: severity.to_owned(),
        service: service.to_owned(),
        status: "open".to_owned(),
        created_ms,
        updated_ms: created_ms + 120_000,
        resolved_ms: None,
        stage: "investigating".to_owned(),
    };
    let mut out = serde_json::to_value(&record).expect("an incident serializes");
    out["incident_id"] = json!(id);
    out
}

/// What the engine hands the `format-response` step of status-check after `STATUS` from a
/// person on the rota: five health checks (one failing, one timing out) and two open incidents.
fn status_check_context(config: &Config) -> minijinja::Value {
    let services = json!([
        { "name": "api", "healthy": true, "status": "ok", "code": 200, "latency": 42 },
        { "name": "web", "healthy": true, "status": "ok", "code": 200, "latency": 87 },
        { "name": "workers", "healthy": true, "status": "ok", "code": 204, "latency": 15 },
        { "name": "database", "healthy": false, "status": "HTTP 503", "code": 503, "latency": 1204 },
        { "name": "cache", "healthy": false, "status": "timeout", "latency": 5000 },
    ]);
    let incidents = json!([
        incident(
            "INC-0042",
            "Database primary unreachable",
            "critical",
            "database",
            1_718_899_000_000
        ),
        incident(
            "INC-0041",
            "Cache latency above 2s",
            "warning",
            "cache",
            1_718_890_000_000
        ),
    ]);
    let trigger = json!({
        "type": "message",
        "platform": "whatsapp",
        "user": { "phone": "+15551234567", "wa_id": "15551234567", "name": "Alice",
                  "profile_name": "Priya Raman", "email": null, "slack_id": null },
        "message": { "text": "STATUS", "id": "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzRUIwQjY1QTc4QzE0OUE5NUQ3MwA=",
                     "type": "text", "timestamp": 1_718_900_000, "context_id": null },
    });
    let root = json!({
        "trigger": trigger,
        "input": { "service": "all" },
        "steps": {
            "check-services": { "output": services },
            "get-active-incidents": { "output": incidents },
        },
        "match": ["STATUS", ""],
        "config": config.expression_view(),
        "context": [],
    });
    minijinja::Value::from_serialize(&root)
}

fn render(c: &mut Criterion) {
    let config = config();
    let flows = flows(&config);
    let expressions = Expressions::new();
    let status_check = flows
        .get("status-check-flow")
        .expect("the shipped status-check flow");
    let text = status_check.flow.steps[2].input["text"]
        .as_str()
        .expect("format-response has a text");
    let ctx = status_check_context(&config);
    let reply = expressions
        .render(text, &ctx)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(reply.contains("INC-0041"), "{reply}");

    let ops_alert = &config.platforms.whatsapp.templates["ops_alert"];
    let params = [
        "CRITICAL",
        "payments-api",
        "Error rate 12.4% over the last 5 minutes (threshold 5%)",
        "2024-06-20 14:33 UTC",
    ]
    .map(str::to_owned);
    ops_alert.render(&params).unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("status_check", |b| {
        b.iter(|| expressions.render(black_box(text), black_box(&ctx)))
    });
    group.bench_function("ops_alert", |b| {
        b.iter(|| ops_alert.render(black_box(&params)))
    });
    group.finish();
}

criterion_group!(hot_path, signature, parse, route, render);
criterion_main!(hot_path);
