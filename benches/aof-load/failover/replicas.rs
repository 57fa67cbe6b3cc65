//! The replicas of the failover scenario: bot processes on one config and one PostgreSQL database,
//! each on a port of its own, the list of live ones that the stand-in load balancer and the fake's
//! statuses pick from, and who leads, by `/healthz`.

use crate::child::{free_port, Server};
use crate::setup::{self, BotConfig, Extras};
use anyhow::Context as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The base addresses (`http://127.0.0.1:PORT`) of the replicas that are up: a killed one is taken
/// out at once, a new one added once it is ready.
pub type Live = Arc<Mutex<Vec<String>>>;

/// What every replica's config says, but its port.
pub struct Template<'a> {
    /// The fake Graph API's base address.
    pub graph: &'a str,
    /// The flows directory.
    pub flows: &'a Path,
    /// `rate_limits.messages_per_second`.
    pub per_second: u32,
    /// What the scenario adds (the shared database, the grace, the window margin).
    pub extras: &'a Extras<'a>,
}

/// The replicas of one run.
pub struct Replicas<'a> {
    dir: PathBuf,
    template: Template<'a>,
    /// Replicas started so far (names the next one's log, `bot-N.log`).
    started: usize,
    /// The processes that run, killed ones taken out.
    pub running: Vec<Server>,
    /// Their addresses, as the balancer sees them.
    pub live: Live,
}

impl<'a> Replicas<'a> {
    /// No replica yet; configs and logs go to `dir`.
    pub fn new(dir: &Path, template: Template<'a>) -> Replicas<'a> {
        Replicas {
            dir: dir.to_owned(),
            template,
            started: 0,
            running: Vec::new(),
            live: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Starts one more replica on a free port (its config in `replica-N/config.yaml`, its log in
    /// `bot-N.log`) and adds it to the live ones once `/readyz` answers 200.
    pub async fn start_one(&mut self) -> anyhow::Result<()> {
        let n = self.started;
        self.started += 1;
        let port = free_port()?;
        let own = self.dir.join(format!("replica-{n}"));
        std::fs::create_dir_all(&own)?;
        let config = setup::write_config(
            &own,
            &BotConfig {
                port,
                graph: self.template.graph,
                per_second: self.template.per_second,
                default_flow: "whatsapp-help-flow",
                flows: self.template.flows,
                extras: self.template.extras,
            },
        )?;
        let mut bot = Server::bot(&config, port, &self.dir.join(format!("bot-{n}.log")))?;
        bot.ready("/readyz", Duration::from_secs(30))
            .await
            .with_context(|| format!("replica {n}"))?;
        self.live
            .lock()
            .expect("not poisoned")
            .push(bot.address.clone());
        self.running.push(bot);
        Ok(())
    }

    /// Takes replica `index` out of the live ones and out of the running list (the caller kills
    /// it).
    pub fn take(&mut self, index: usize) -> Server {
        let bot = self.running.remove(index);
        self.live
            .lock()
            .expect("not poisoned")
            .retain(|a| *a != bot.address);
        bot
    }

    /// Which running replica says it leads, and its epoch.
    pub async fn leader(&self, http: &awc::Client) -> Option<(usize, i64)> {
        for (i, bot) in self.running.iter().enumerate() {
            let Ok(mut answer) = http.get(format!("{}/healthz", bot.address)).send().await else {
                continue;
            };
            let Ok(health) = answer.json::<Value>().await else {
                continue;
            };
            if health["role"] == "leader" {
                return Some((i, health["leader"]["epoch"].as_i64().unwrap_or(0)));
            }
        }
        None
    }

    /// Polls every running replica's `/healthz` every 25 ms until one leads; which, its epoch,
    /// and when it was first seen leading.
    pub async fn wait_for_leader(&self, within: Duration) -> anyhow::Result<(usize, i64, Instant)> {
        let http = awc::Client::builder()
            .timeout(Duration::from_millis(500))
            .finish();
        let deadline = Instant::now() + within;
        loop {
            if let Some((i, epoch)) = self.leader(&http).await {
                return Ok((i, epoch, Instant::now()));
            }
            if Instant::now() > deadline {
                anyhow::bail!("no replica led within {within:?}");
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops every replica as an operator would.
    pub fn stop(self) -> anyhow::Result<()> {
        for bot in self.running {
            bot.stop()?;
        }
        Ok(())
    }
}

/// How the stand-in load balancer's requests went.
#[derive(Default)]
pub struct Balanced {
    /// Requests made (retries included).
    pub attempts: usize,
    /// Requests not answered or answered non-2xx, tried again on a random replica.
    pub retried: usize,
    /// Alerts answered by a follower (`"queued"`: kept for the leader).
    pub queued: usize,
    /// Events answered as duplicates (an `Idempotency-Key` or a message id seen before).
    pub duplicates: usize,
    /// Events no replica answered 2xx within a minute.
    pub given_up: usize,
}

/// One request to send: a path and a body with the headers it needs.
pub struct Post {
    /// The path under a replica's address.
    pub path: String,
    /// The body (JSON).
    pub body: Vec<u8>,
    /// Headers besides `content-type`.
    pub headers: Vec<(&'static str, String)>,
}

/// Posts `post` to a random live replica, trying again (another random one) 100 ms after each
/// failure, for a minute: what a load balancer in front of them does. The answer's JSON.
pub async fn balanced(
    http: &awc::Client,
    live: &Live,
    post: &Post,
    tally: &std::cell::RefCell<Balanced>,
) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let address = {
            let live = live.lock().expect("not poisoned");
            (!live.is_empty()).then(|| live[rand::random_range(0..live.len())].clone())
        };
        if let Some(address) = address {
            tally.borrow_mut().attempts += 1;
            let mut request = http
                .post(format!("{address}{}", post.path))
                .insert_header(("content-type", "application/json"));
            for (name, value) in &post.headers {
                request = request.insert_header((*name, value.as_str()));
            }
            if let Ok(mut answer) = request.send_body(post.body.clone()).await {
                let body = answer.body().await;
                if answer.status().is_success() {
                    let json: Value = body
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok())
                        .unwrap_or(Value::Null);
                    let mut t = tally.borrow_mut();
                    if json.get("queued").is_some_and(|q| !q.is_null()) {
                        t.queued += 1;
                    }
                    if json["duplicate"] == true {
                        t.duplicates += 1;
                    }
                    return Some(json);
                }
            }
            tally.borrow_mut().retried += 1;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    tally.borrow_mut().given_up += 1;
    None
}
