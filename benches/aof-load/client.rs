//! The load itself: requests posted by a fixed number of concurrent connections, each timed from
//! the first byte written to the last byte of the answer read, and the summary of those times.

use crate::setup::{Signed, WEBHOOK_TOKEN};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// An HTTP client with one connection per concurrent request.
pub fn client(concurrency: usize) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(concurrency.max(1)))
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Throughput and latency of one load.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Requests timed.
    pub requests: usize,
    /// Requests answered 2xx per second of wall time.
    pub per_second: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest request, ms.
    pub max_ms: f64,
    /// Requests not answered 2xx (or not answered), 503 aside.
    pub errors: usize,
    /// 503 answers ("busy, try again"): retried after 20 ms, as Meta retries a webhook delivery.
    pub busy: usize,
}

/// How one request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Ok,
    /// 503: try again.
    Busy,
    /// Anything else, or no answer.
    Failed,
}

/// The `q`-quantile (0..=1) of sorted durations, in ms (nearest rank).
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

/// A duration in milliseconds, to 3 decimals.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Posts every body in `bodies` to `url` over `concurrency` connections, as fast as answers come.
pub async fn post_signed(url: &str, bodies: Vec<Signed>, concurrency: usize) -> Summary {
    let url = url.to_owned();
    drive(bodies, concurrency, move |client, next: &Signed| {
        let request = client
            .post(&url)
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-hub-signature-256", next.signature.clone()))
            .send_body(next.body.clone());
        Box::pin(async move { answered(request.await).await })
    })
    .await
}

/// Posts every JSON body to the flow webhook at `path` (with the bearer token), `concurrency` at a
/// time.
pub async fn post_flows(
    base: &str,
    path: &str,
    bodies: Vec<serde_json::Value>,
    concurrency: usize,
) -> Summary {
    let url = format!("{base}/webhooks{path}");
    drive(bodies, concurrency, move |client, body| {
        let request = client
            .post(&url)
            .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
            .send_json(body);
        Box::pin(async move { answered(request.await).await })
    })
    .await
}

/// How an answer went; reads the whole body, as a real client would.
async fn answered<S>(answer: Result<awc::ClientResponse<S>, awc::error::SendRequestError>) -> Answer
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    match answer {
        Ok(mut response) => {
            let _ = response.body().await;
            match response.status().as_u16() {
                200..=299 => Answer::Ok,
                503 => Answer::Busy,
                _ => Answer::Failed,
            }
        }
        Err(_) => Answer::Failed,
    }
}

/// Runs `one` over every item, `concurrency` at a time on one client, timing each (retries of a
/// busy answer included).
async fn drive<T: 'static>(
    items: Vec<T>,
    concurrency: usize,
    one: impl Fn(&awc::Client, &T) -> LocalBoxFuture<'static, Answer> + 'static,
) -> Summary {
    let client = client(concurrency);
    let total = items.len();
    let queue = Rc::new(RefCell::new(items.into_iter()));
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(total)));
    let errors = Rc::new(Cell::new(0usize));
    let busy = Rc::new(Cell::new(0usize));
    let one = Rc::new(one);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, queue, latencies, errors, busy, one) = (
            client.clone(),
            queue.clone(),
            latencies.clone(),
            errors.clone(),
            busy.clone(),
            one.clone(),
        );
        workers.push(actix_web::rt::spawn(async move {
            loop {
                let Some(next) = queue.borrow_mut().next() else {
                    break;
                };
                let sent = Instant::now();
                let mut answer = one(&client, &next).await;
                while answer == Answer::Busy {
                    busy.set(busy.get() + 1);
                    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                    answer = one(&client, &next).await;
                }
                latencies.borrow_mut().push(sent.elapsed());
                if answer == Answer::Failed {
                    errors.set(errors.get() + 1);
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.take();
    latencies.sort();
    let errors = errors.get();
    let busy = busy.get();
    Summary {
        requests: latencies.len(),
        per_second: ((latencies.len() - errors) as f64 / elapsed.as_secs_f64()).round(),
        p50_ms: quantile_ms(&latencies, 0.50),
        p99_ms: quantile_ms(&latencies, 0.99),
        max_ms: latencies.last().copied().map_or(0.0, ms),
        errors,
        busy,
    }
}

/// Posts one signed notification; true when it was answered 200.
pub async fn say(client: &awc::Client, base: &str, from: &str, wamid: &str, text: &str) -> bool {
    let signed = crate::setup::text_notification(from, wamid, text);
    client
        .post(format!("{base}/webhooks/whatsapp"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-hub-signature-256", signed.signature))
        .send_body(signed.body)
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Posts a JSON body to a flow webhook with the bearer token; true when it was accepted (2xx).
pub async fn post_flow(
    client: &awc::Client,
    base: &str,
    path: &str,
    body: &serde_json::Value,
) -> bool {
    client
        .post(format!("{base}/webhooks{path}"))
        .insert_header(("authorization", format!("Bearer {WEBHOOK_TOKEN}")))
        .send_json(body)
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// `GET /webhooks/readyz` as JSON (sessions, queued, in_flight).
pub async fn readyz(client: &awc::Client, base: &str) -> Option<serde_json::Value> {
    let mut response = client
        .get(format!("{base}/webhooks/readyz"))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// The value of a Prometheus counter, summed over its labels, from `/webhooks/metrics`.
pub async fn counter(client: &awc::Client, base: &str, name: &str) -> Option<f64> {
    let mut response = client
        .get(format!("{base}/webhooks/metrics"))
        .send()
        .await
        .ok()?;
    let text = response.body().limit(16 << 20).await.ok()?;
    let text = std::str::from_utf8(&text).ok()?;
    let values = text.lines().filter_map(|line| {
        let rest = line.strip_prefix(name)?;
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            return None;
        }
        rest.rsplit(' ').next()?.parse::<f64>().ok()
    });
    Some(values.sum())
}

/// Waits until `check` holds, polling every 50 ms; false if `within` passed first.
pub async fn until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
