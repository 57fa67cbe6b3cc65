//! `aofctl trigger serve` as a person runs it, a process with its log on stderr: a sent page is
//! logged at INFO, Ctrl-C (SIGINT) or SIGTERM ends with a last line saying the bot stopped and
//! a store whose WAL was moved into the database file, and what was answered 200 before a kill -9
//! is handled after the restart.

use crate::common::sandbox::write_sandbox_config;
use crate::common::*;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The bot as a child process on the sandbox config in `dir`, its log collected as it comes.
pub(super) struct Bot {
    child: Child,
    pub(super) address: String,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Bot {
    fn start(dir: &std::path::Path) -> Bot {
        Self::start_with(dir, |config| config)
    }

    /// [`Bot::start`] with `edit` applied to the config's text. The bot listens on a port the
    /// system picks (port 0), read from its log: a port chosen before the start could be taken by
    /// the bot of a test running beside this one.
    pub(super) fn start_with(dir: &std::path::Path, edit: impl FnOnce(String) -> String) -> Bot {
        let config = write_sandbox_config(dir, 0);
        let text = std::fs::read_to_string(&config).expect("the config");
        std::fs::write(&config, edit(text)).expect("writes the config");
        Self::serve(&config)
    }

    /// `aofctl trigger serve` on the config file `config`, which must listen on port 0.
    pub(super) fn serve(config: &std::path::Path) -> Bot {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aofctl"))
            .args(["trigger", "serve", "--config", config.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .env_remove("AOF_WEBHOOK_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aofctl starts");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let collected = log.clone();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                collected.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let port = wait_until(Duration::from_secs(30), || {
            let text = log.lock().unwrap().clone();
            let listening = text.lines().find(|l| l.contains("aof is listening"))?;
            let port = listening.split("port=").nth(1)?;
            Some(
                port.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .expect("a port number in the log"),
            )
        })
        .unwrap_or_else(|| {
            panic!(
                "the bot did not listen within 30 s:\n{}",
                log.lock().unwrap()
            )
        });
        let bot = Bot {
            child,
            address: format!("http://127.0.0.1:{port}"),
            log,
            reader: Some(reader),
        };
        // Serving a request means the server, and its signal handling, is running.
        let served = wait_until(Duration::from_secs(30), || healthy(port).then_some(()));
        assert!(
            served.is_some(),
            "the bot did not answer /healthz within 30 s"
        );
        bot
    }

    /// Its log so far.
    pub(super) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `Some` once the process has exited.
    pub(super) fn exited(&mut self) -> Option<()> {
        self.child.try_wait().expect("waits").map(drop)
    }

    /// Its process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (a crash: nothing runs after it), waits for it to go; its
    /// log.
    pub(super) fn kill9(mut self) -> String {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("gone");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader");
        }
        let log = self.log.lock().unwrap().clone();
        log
    }

    /// Sends `signal` and waits for the exit; the whole log.
    pub(super) fn stop(mut self, signal: &str) -> String {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = wait_until(Duration::from_secs(30), || {
            self.child.try_wait().expect("waits")
        })
        .unwrap_or_else(|| {
            let _ = self.child.kill();
            panic!("the bot did not stop within 30 s of SIG{signal}");
        });
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader");
        }
        let log = self.log.lock().unwrap().clone();
        assert!(exit.success(), "exit {exit:?}:\n{log}");
        log
    }
}

/// A bot still running when its test ends (an assertion failed, or a test leaves replicas up)
/// is killed with it, not left behind.
impl Drop for Bot {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `GET /healthz` on `port` answers 200.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let asked = stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut answer = String::new();
    let read = asked.is_ok() && stream.read_to_string(&mut answer).is_ok();
    read && answer
        .lines()
        .next()
        .is_some_and(|status| status.contains(" 200 "))
}

/// The database file's WAL beside it is gone or empty.
fn wal_is_empty(dir: &std::path::Path) -> bool {
    std::fs::metadata(dir.join("sandbox.db-wal")).map_or(true, |m| m.len() == 0)
}

#[actix_web::test]
async fn a_sent_page_is_info_and_ctrl_c_ends_with_a_stopped_line_and_a_merged_wal() {
    let dir = temp();
    let bot = Bot::start(dir.path());
    let client = awc::Client::default();
    let mut answer = client
        .post(format!(
            "{}/webhooks/whatsapp/alert/oncall?wait=10",
            bot.address
        ))
        .insert_header(("authorization", "Bearer sandbox-token"))
        .send_json(
            &serde_json::json!({ "severity": "critical", "service": "api", "message": "down" }),
        )
        .await
        .expect("the bot answers");
    assert_eq!(answer.status().as_u16(), 202);
    let body: serde_json::Value = answer.json().await.expect("JSON");
    assert_eq!(body["done"], true, "{body}");
    assert!(
        !wal_is_empty(dir.path()),
        "a running bot writes through its WAL"
    );

    let log = bot.stop("INT");
    let page = log
        .lines()
        .find(|l| l.contains("Alert sent to on-call"))
        .unwrap_or_else(|| panic!("no page in the log:\n{log}"));
    assert!(page.contains(" INFO "), "a sent page is good news: {page}");
    assert!(
        page.contains("severity=\"critical\"") || page.contains("severity=critical"),
        "{page}"
    );
    assert!(
        !log.lines().any(|l| l.contains(" ERROR ")),
        "nothing went wrong, nothing is an error:\n{log}"
    );
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("aofctl stopped"),
        "the last line says so: {last}\n{log}"
    );
    assert!(wal_is_empty(dir.path()), "the WAL is checkpointed");
}

#[test]
fn sigterm_also_ends_with_the_stopped_line() {
    let dir = temp();
    let bot = Bot::start(dir.path());
    let log = bot.stop("TERM");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.contains("aofctl stopped"), "{last}\n{log}");
    assert!(wal_is_empty(dir.path()), "the WAL is checkpointed");
}

#[test]
fn start_up_warns_about_a_config_value_a_flow_reads_but_the_config_lacks() {
    let dir = temp();
    let bot = Bot::start_with(dir.path(), |config| {
        config.replace("      team_group: \"sre-team\"\n", "")
    });
    let log = bot.stop("TERM");
    let warning = log
        .lines()
        .find(|l| l.contains("reads `config.oncall.team_group`"))
        .unwrap_or_else(|| panic!("no warning about the team group:\n{log}"));
    assert!(warning.contains(" WARN "), "{warning}");
    assert!(warning.contains("acknowledge-alert-flow.yaml"), "{warning}");
    assert!(warning.contains("`notify-team`"), "{warning}");
    assert!(
        warning.contains("platforms.whatsapp.oncall.team_group"),
        "{warning}"
    );
}

/// The sandbox config with no allow-list (and none drawn from the rota): anyone may ask for HELP;
/// and a short wait for statuses of sends in flight at a kill.
pub(super) fn open_to_everyone(config: String) -> String {
    config
        .replace(
            "    allowed_numbers:\n      - \"+15551234567\"  # Alice\n      - \"+15557654321\"  # Bob\n      - \"+15550001234\"  # SRE Team Lead\n",
            // A send in flight at the kill is sent again after a second without a status
            // (the sandbox sends none unless its page plays the phone).
            "    allowed_numbers: []\n    unconfirmed_send_grace_secs: 1\n",
        )
        .replace(
            "      allowed_numbers:\n        - \"+15551234567\"\n",
            "      allowed_numbers: []\n",
        )
        .replace("require_verified: true", "require_verified: false")
}

/// How many replies each number has been sent, as the store recorded them.
async fn replies(db: &std::path::Path) -> std::collections::HashMap<String, i64> {
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("the database opens");
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT to_wa, COUNT(*) FROM outbound_messages GROUP BY to_wa")
            .fetch_all(&pool)
            .await
            .expect("reads");
    pool.close().await;
    rows.into_iter().collect()
}

/// Accepted means kept. Fifty people send HELP at once; the bot is killed with SIGKILL as soon as
/// the last 200 is in, most of the fifty not answered yet. Restarted on the same store, it answers
/// every one of them. (Before the inbox, 27-40 of 50 were never answered.)
#[actix_web::test]
async fn every_message_answered_200_is_handled_after_a_kill_9() {
    let dir = temp();
    let bot = Bot::start_with(dir.path(), open_to_everyone);
    let client = awc::Client::default();
    let people: Vec<String> = (0..50).map(|i| format!("1555300{i:04}")).collect();
    let posts = people.iter().enumerate().map(|(i, who)| {
        let body =
            text_notification(who, "Tester", "HELP", &format!("wamid.crash.{i}")).to_string();
        let signature = aof::wire::whatsapp::sign(b"sandbox-secret", body.as_bytes());
        client
            .post(format!("{}/webhooks/whatsapp", bot.address))
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-hub-signature-256", signature))
            .send_body(body)
    });
    let answers = futures_util::future::join_all(posts).await;
    for answer in answers {
        assert_eq!(answer.expect("the bot answers").status().as_u16(), 200);
    }
    let crashed = bot.kill9();
    let db = dir.path().join("sandbox.db");
    let before = replies(&db).await.len();

    let bot = Bot::start_with(dir.path(), open_to_everyone);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut answered = replies(&db).await;
    while answered.len() < people.len() && std::time::Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        answered = replies(&db).await;
    }
    let log = bot.stop("TERM");
    let lost: Vec<&String> = people
        .iter()
        .filter(|p| !answered.contains_key(*p))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of 50 never answered ({before} had been before the kill):\n{crashed}\n{log}",
        lost.len()
    );
    assert!(
        before == people.len() || log.contains("resuming what was acknowledged"),
        "the restart says what it resumes ({before} answered before the kill):\n{log}"
    );
}

/// SIGTERM while a send is in flight to a slow Graph API: the bot waits for Meta's answer (up to
/// `send_timeout_ms` + 1 s), records the message as sent, and exits; a send cut off would stay
/// `sending` and go out again after the restart.
#[actix_web::test]
async fn sigterm_lets_a_send_in_flight_get_its_answer_before_the_exit() {
    let dir = temp();
    let graph = aof::fake_http::FakeHttp::builder()
        .start()
        .expect("the fake");
    graph.script(|request| {
        request.path.ends_with("/messages").then(|| {
            aof::fake_http::Response::json(
                200,
                serde_json::json!({ "messaging_product": "whatsapp",
                    "messages": [{ "id": "wamid.slow.1" }] }),
            )
            .after(Duration::from_secs(2))
        })
    });
    let address = graph.address.clone();
    let bot = Bot::start_with(dir.path(), move |config| {
        // On Meta's side the bot has a business number, and the notification is addressed to it.
        open_to_everyone(config)
            .replace(
                "    transport: sandbox\n",
                &format!("    transport: cloud_api\n    api_base_url: \"{address}/v21.0\"\n"),
            )
            .replace(
                "phone_number_id: \"sandbox\"",
                "phone_number_id: \"106540352242922\"",
            )
    });
    let body = text_notification("15553000001", "Tester", "HELP", "wamid.drain.1").to_string();
    let signature = aof::wire::whatsapp::sign(b"sandbox-secret", body.as_bytes());
    let answer = awc::Client::default()
        .post(format!("{}/webhooks/whatsapp", bot.address))
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-hub-signature-256", signature))
        .send_body(body)
        .await
        .expect("the bot answers");
    assert_eq!(answer.status().as_u16(), 200);
    let leaving = wait_until(Duration::from_secs(10), || {
        (!graph.requests().is_empty()).then_some(())
    });
    assert!(leaving.is_some(), "the reply reached the Graph API");

    let asked = std::time::Instant::now();
    let log = bot.stop("TERM");
    assert!(
        asked.elapsed() >= Duration::from_millis(1500),
        "the exit waited for the answer ({:?}):\n{log}",
        asked.elapsed()
    );
    let db = dir.path().join("sandbox.db");
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("opens");
    let states: Vec<(String, Option<String>)> = sqlx::query_as("SELECT state, wamid FROM outbox")
        .fetch_all(&pool)
        .await
        .expect("reads");
    pool.close().await;
    assert_eq!(
        states,
        [("sent".to_owned(), Some("wamid.slow.1".to_owned()))],
        "recorded with Meta's answer:\n{log}"
    );
}
