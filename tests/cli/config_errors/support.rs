//! What the tests of this crate share: the tutorial's and the base config with their variables, and
//! `aofctl trigger serve` run as a child process, with the checks of a refused start.

use crate::common::*;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a refused start may take before the test kills the process and fails.
const EXIT_LIMIT: Duration = Duration::from_secs(20);

/// Variables the configs read; removed from the child's environment unless a test sets them, so
/// the developer's own shell cannot change a result.
const CONFIG_VARS: [&str; 7] = [
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_APP_SECRET",
    "PAGERDUTY_TOKEN",
    "AOF_WEBHOOK_TOKEN",
    "RUST_LOG",
];

/// The tutorial's TriggerConfig as printed in its section 2.1 (`tests/fixtures/tutorial/`).
pub fn tutorial_config() -> String {
    let file = repo().join("tests/fixtures/tutorial/whatsapp-bot.yaml");
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The tutorial's section 2.2 values plus the webhook token the shipped config adds.
pub fn tutorial_env() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("WHATSAPP_PHONE_NUMBER_ID", "1234567890"),
        ("WHATSAPP_ACCESS_TOKEN", "EAAxxxxxxx..."),
        ("WHATSAPP_VERIFY_TOKEN", "my-verify-token-123"),
        ("WHATSAPP_APP_SECRET", "abcdef123456"),
        ("PAGERDUTY_TOKEN", "y_NbAkKc66ryYTWUXYEu"),
        ("AOF_WEBHOOK_TOKEN", "webhook-token-for-tests"),
    ])
}

/// Loads `text` as `file` with `${VAR}` taken from `env` only.
pub fn load_with(
    file: &str,
    text: &str,
    env: &HashMap<&'static str, &'static str>,
) -> Result<aof::config::Config, aof::config::ConfigError> {
    aof::config::load_str(file, text, &|name| env.get(name).map(|v| v.to_string()))
}

/// Replaces `from` with `to`, failing the test when `from` is not there (a silent no-op would make
/// a negative test pass for the wrong reason).
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in:\n{text}");
    text.replacen(from, to, 1)
}

/// A valid Cloud API config: credentials from `${VAR}`, flows from the repository, the store in
/// `dir`, listening on `port` of 127.0.0.1.
pub fn base_config(dir: &Path, port: u16) -> String {
    let flows = repo().join("flows/whatsapp");
    format!(
        r#"version: v1
kind: TriggerConfig
server:
  host: "127.0.0.1"
  port: {port}
  base_path: "/webhooks"
  workers: 1
platforms:
  whatsapp:
    type: whatsapp
    phone_number_id: "106540352242922"
    access_token: "${{WHATSAPP_ACCESS_TOKEN}}"
    verify_token: "${{WHATSAPP_VERIFY_TOKEN}}"
    app_secret: "${{WHATSAPP_APP_SECRET}}"
    api_base_url: "https://graph.invalid/v21.0"
    allowed_numbers:
      - "+15551234567"
    rate_limits:
      messages_per_second: 50
      templates_per_day: 1000
routing:
  default_flow: "whatsapp-help-flow"
  commands:
    "HELP": "whatsapp-help-flow"
  keywords:
    - pattern: "(?i)(deploy|release|ship)"
      flow: "whatsapp-help-flow"
    - pattern: "(?i)(incident|outage|down)"
      flow: "status-check-flow"
flows:
  directory: "{flows}"
  watch: false
storage:
  url: "sqlite://{db}"
"#,
        flows = flows.display(),
        db = dir.join("aof.db").display(),
    )
}

/// The variables [`base_config`] needs, with harmless values.
pub fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("WHATSAPP_ACCESS_TOKEN", "test-access-token"),
        ("WHATSAPP_VERIFY_TOKEN", "test-verify-token"),
        ("WHATSAPP_APP_SECRET", "test-app-secret"),
    ]
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a local address").port()
}

/// `aofctl trigger serve` in a child process, its output collected by two threads.
pub struct Aofctl {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a run ended.
pub struct Exit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn collect(mut pipe: impl std::io::Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (buffer, reader)
}

impl Aofctl {
    /// Starts the binary on `config` with only `env` among [`CONFIG_VARS`] set, in `cwd`.
    pub fn serve(config: &Path, env: &[(&str, &str)], cwd: &Path) -> Aofctl {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aofctl"));
        command
            .args(["trigger", "serve", "--config"])
            .arg(config)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in CONFIG_VARS {
            command.env_remove(var);
        }
        command.env("RUST_LOG", "info");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("aofctl starts");
        let (stdout, out_reader) = collect(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("piped stderr"));
        Aofctl {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for the process to exit on its own; kills it and fails the test after `limit`.
    fn wait(mut self, limit: Duration) -> Exit {
        let status =
            wait_until(limit, || self.child.try_wait().expect("try_wait")).unwrap_or_else(|| {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "aofctl was still running after {limit:?}; stderr so far:\n{}",
                    self.stderr_so_far()
                );
            });
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let text =
            |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
        Exit {
            status,
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
        }
    }

    /// Asks the process to stop with SIGTERM, as an operator would, and waits for it.
    pub fn terminate(self) -> Exit {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        self.wait(EXIT_LIMIT)
    }
}

impl Drop for Aofctl {
    fn drop(&mut self) {
        // A test that panicked midway must not leave a server behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request over a plain socket: the status and the body, or `None` when nothing
/// listens yet.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// Polls `GET /webhooks/readyz` until it answers 200; fails with the process's log otherwise.
pub fn wait_until_ready(bot: &mut Aofctl, port: u16) {
    let ready = wait_until(Duration::from_secs(20), || {
        if let Ok(Some(status)) = bot.child.try_wait() {
            panic!(
                "aofctl exited with {status} before it was ready:\n{}",
                bot.stderr_so_far()
            );
        }
        matches!(
            http(port, "GET", "/webhooks/readyz", &[], b""),
            Some((200, _))
        )
        .then_some(())
    });
    assert!(
        ready.is_some(),
        "/webhooks/readyz did not answer 200 within 20 s:\n{}",
        bot.stderr_so_far()
    );
}

/// Writes `yaml` as `config.yaml` in `dir` and runs the binary on it until it exits.
pub fn refused_start(dir: &Path, yaml: &str, env: &[(&str, &str)]) -> (PathBuf, Exit) {
    let file = dir.join("config.yaml");
    std::fs::write(&file, yaml).expect("write the config");
    let exit = Aofctl::serve(&file, env, dir).wait(EXIT_LIMIT);
    (file, exit)
}

/// The run failed, and stderr holds exactly one error that names the config file, `key` and
/// every fragment of `what`, said once.
pub fn assert_one_error(file: &Path, exit: &Exit, key: &str, what: &[&str]) {
    let stderr = &exit.stderr;
    assert!(
        !exit.status.success(),
        "aofctl exited successfully:\n{stderr}"
    );
    assert!(
        exit.status.code().is_some(),
        "aofctl was killed by a signal: {:?}\n{stderr}",
        exit.status
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "expected one `error:` line:\n{stderr}");
    let error = errors[0];
    let file = file.display().to_string();
    assert!(
        error.contains(&file),
        "the error does not name the config file {file}:\n{stderr}"
    );
    assert!(
        error.contains(key),
        "the error does not name the key `{key}`:\n{stderr}"
    );
    for fragment in what {
        assert_eq!(
            stderr.matches(fragment).count(),
            1,
            "`{fragment}` should appear exactly once:\n{stderr}"
        );
    }
}

/// Runs the binary on the base config with `from` replaced by `to` and checks, as
/// [`assert_one_error`] does, that it refuses to start with one error naming `key` and `what`.
pub fn assert_edit_refused(from: &str, to: &str, key: &str, what: &[&str]) {
    let dir = temp();
    let yaml = edit(&base_config(dir.path(), 0), from, to);
    let (file, exit) = refused_start(dir.path(), &yaml, &base_env());
    assert_one_error(&file, &exit, key, what);
}
