//! The shipped `config/sandbox.yaml`, as the README's first command runs it, on a free port with its
//! store in a temp directory; and a reader of the sandbox page's server-sent events.

use super::{repo, TestApp};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts the bot on `config/sandbox.yaml` (unmodified but for where it listens and stores): the
/// port is chosen free first and replaces 8080 everywhere, so the config's own Slack stand-in and
/// health checks point at this server.
pub async fn start_sandbox(dir: &Path) -> TestApp {
    start_sandbox_with(dir, |config| config).await
}

/// [`start_sandbox`] with `edit` applied to the config's text first.
/// The port is chosen before the bot binds it (the config's own URLs name it), so a test running
/// beside this one may take it first: then another port is tried.
pub async fn start_sandbox_with(dir: &Path, edit: impl Fn(String) -> String) -> TestApp {
    let mut attempt = 1;
    loop {
        let file = write_sandbox_config(dir, free_port());
        let text = std::fs::read_to_string(&file).expect("reads the config back");
        std::fs::write(&file, edit(text)).expect("writes the config");
        let config = aof::config::load(&file).expect("the sandbox config loads");
        match TestApp::start(dir, config).await {
            Ok(app) => return app,
            Err(e) if attempt < 5 && e.to_string().contains("cannot listen") => attempt += 1,
            Err(e) => panic!("the sandbox does not start: {e}"),
        }
    }
}

/// Starts the sandbox again on the config and store [`start_sandbox`] left in `dir` (same port), as
/// a restart would.
pub async fn restart_sandbox(dir: &Path) -> TestApp {
    let config = aof::config::load(&dir.join("sandbox.yaml")).expect("the sandbox config loads");
    TestApp::start(dir, config)
        .await
        .expect("the sandbox starts again")
}

/// POSTs `body` to `path` with `?wait=10`; the answer, checked to be done.
pub async fn waited(app: &TestApp, path: &str, body: Value, token: Option<&str>) -> Value {
    let (status, answer) = app
        .post_json(&format!("/webhooks{path}?wait=10"), &body, token)
        .await;
    assert!(status == 200 || status == 202, "{status}: {answer}");
    assert_eq!(answer["done"], true, "{answer}");
    answer
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Writes `config/sandbox.yaml` to `dir/sandbox.yaml`, listening on `port` and storing in `dir`;
/// its path.
pub fn write_sandbox_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("config/sandbox.yaml"))
        .expect("config/sandbox.yaml")
        .replace("8080", &port.to_string())
        .replace("host: \"0.0.0.0\"", "host: \"127.0.0.1\"")
        .replace(
            "sqlite://data/sandbox.db",
            &format!("sqlite://{}", dir.join("sandbox.db").display()),
        )
        .replace(
            "directory: \"./flows/whatsapp\"",
            &format!("directory: \"{}\"", repo().join("flows/whatsapp").display()),
        )
        .replace("watch: true", "watch: false");
    let file = dir.join("sandbox.yaml");
    std::fs::write(&file, text).expect("writes the config");
    file
}

type Body = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>>,
>;

/// A connection to `GET /sandbox/events`, read event by event.
pub struct Events {
    response: Body,
    buffer: String,
    /// Every event read so far, in order.
    pub seen: Vec<Value>,
}

impl Events {
    /// Opens the stream.
    pub async fn open(app: &TestApp) -> Events {
        Self::open_after(app, None).await
    }

    /// Opens the stream as a browser reconnecting after event `seen` (`Last-Event-ID`).
    pub async fn open_after(app: &TestApp, seen: Option<u64>) -> Events {
        let mut request = awc::Client::builder()
            .disable_timeout()
            .finish()
            .get(app.url("/sandbox/events"));
        if let Some(seen) = seen {
            request = request.insert_header(("last-event-id", seen.to_string()));
        }
        let response = request.send().await.expect("the event stream opens");
        assert_eq!(response.status().as_u16(), 200);
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(kind, "text/event-stream");
        Events {
            response: Box::pin(response),
            buffer: String::new(),
            seen: Vec::new(),
        }
    }

    /// Reads until an event satisfies `wanted` (returned), or fails after `timeout` listing what came.
    /// Every event read so far counts, so a predicate should say which one it wants.
    pub async fn until(&mut self, timeout: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        use futures_util::StreamExt as _;
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            while let Some(event) = self.next_buffered() {
                self.seen.push(event);
            }
            if let Some(found) = self.seen[checked..].iter().find(|e| wanted(e)) {
                return found.clone();
            }
            checked = self.seen.len();
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.next()).await {
                Ok(Some(Ok(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(other) => panic!("the event stream ended: {:?}", other.map(|r| r.err())),
                Err(_) => panic!(
                    "no such event within {timeout:?}; seen:\n{}",
                    self.seen
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    /// One complete frame from the buffer: its `data:` line must repeat the `event:` name as `type`.
    fn next_buffered(&mut self) -> Option<Value> {
        loop {
            let end = self.buffer.find("\n\n")?;
            let frame: String = self.buffer.drain(..end + 2).collect();
            let mut name = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str::<Value>(d).expect("data is JSON"));
                }
            }
            if let Some(data) = data {
                assert_eq!(name.as_deref(), data["type"].as_str(), "{frame}");
                return Some(data);
            }
        }
    }
}
