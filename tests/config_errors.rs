//! The TriggerConfig through the real `aofctl` binary: the tutorial's config and the shipped ones
//! load, every config mistake stops start-up with one message naming the file, the key path and the
//! fix, the sandbox config serves, and no credential reaches the log.

mod common;

use common::*;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// The first ```yaml block after the line starting with `heading` in the tutorial, read at test
/// time so the test follows the spec rather than a copy of it.
fn tutorial_yaml_after(heading: &str) -> String {
    let file = repo().join("../shared/tutorial-whatsapp-ops-bot.md");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("the tutorial {}: {e}", file.display()));
    let mut lines = text.lines().skip_while(|l| !l.starts_with(heading));
    assert!(
        lines.next().is_some(),
        "no heading `{heading}` in the tutorial"
    );
    let mut lines = lines.skip_while(|l| l.trim_end() != "```yaml");
    assert!(lines.next().is_some(), "no ```yaml block after `{heading}`");
    let block: Vec<&str> = lines.take_while(|l| l.trim_end() != "```").collect();
    block.join("\n") + "\n"
}

/// The tutorial's section 2.2 values plus the webhook token the shipped config adds.
fn tutorial_env() -> HashMap<&'static str, &'static str> {
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
fn load_with(
    file: &str,
    text: &str,
    env: &HashMap<&'static str, &'static str>,
) -> Result<aof::config::Config, aof::config::ConfigError> {
    aof::config::load_str(file, text, &|name| env.get(name).map(|v| v.to_string()))
}

/// Replaces `from` with `to`, failing the test when `from` is not there (a silent no-op would make
/// a negative test pass for the wrong reason).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in:\n{text}");
    text.replacen(from, to, 1)
}

/// A valid Cloud API config: credentials from `${VAR}`, flows from the repository, the store in
/// `dir`, listening on `port` of 127.0.0.1.
fn base_config(dir: &Path, port: u16) -> String {
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
fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("WHATSAPP_ACCESS_TOKEN", "test-access-token"),
        ("WHATSAPP_VERIFY_TOKEN", "test-verify-token"),
        ("WHATSAPP_APP_SECRET", "test-app-secret"),
    ]
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a local address").port()
}

/// `aofctl trigger serve` in a child process, its output collected by two threads.
struct Aofctl {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a run ended.
struct Exit {
    status: ExitStatus,
    stdout: String,
    stderr: String,
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
    fn serve(config: &Path, env: &[(&str, &str)], cwd: &Path) -> Aofctl {
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
    fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for the process to exit on its own; kills it and fails the test after `limit`.
    fn wait(mut self, limit: Duration) -> Exit {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "aofctl was still running after {limit:?}; stderr so far:\n{}",
                    self.stderr_so_far()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        };
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
    fn terminate(self) -> Exit {
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
fn http(
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
fn wait_until_ready(bot: &mut Aofctl, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((200, _)) = http(port, "GET", "/webhooks/readyz", &[], b"") {
            return;
        }
        if let Ok(Some(status)) = bot.child.try_wait() {
            panic!(
                "aofctl exited with {status} before it was ready:\n{}",
                bot.stderr_so_far()
            );
        }
        assert!(
            Instant::now() < deadline,
            "/webhooks/readyz did not answer 200 within 20 s:\n{}",
            bot.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `yaml` as `config.yaml` in `dir` and runs the binary on it until it exits.
fn refused_start(dir: &Path, yaml: &str, env: &[(&str, &str)]) -> (PathBuf, Exit) {
    let file = dir.join("config.yaml");
    std::fs::write(&file, yaml).expect("write the config");
    let exit = Aofctl::serve(&file, env, dir).wait(EXIT_LIMIT);
    (file, exit)
}

/// The run failed, and stderr holds exactly one error that names the config file, `key` and
/// every fragment of `what`, said once.
fn assert_one_error(file: &Path, exit: &Exit, key: &str, what: &[&str]) {
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

#[test]
fn the_tutorials_config_loads_as_written_with_the_variables_of_section_2_2() {
    let text = tutorial_yaml_after("### 2.1 Create Configuration");
    let env = tutorial_env();
    let config = load_with("config/whatsapp-bot.yaml", &text, &env)
        .unwrap_or_else(|e| panic!("the tutorial's config is refused:\n{e}"));
    let wa = &config.platforms.whatsapp;
    assert_eq!(wa.phone_number_id, "1234567890");
    assert_eq!(wa.access_token.expose(), "EAAxxxxxxx...");
    assert_eq!(wa.verify_token.expose(), "my-verify-token-123");
    assert_eq!(wa.app_secret.expose(), "abcdef123456");
    let pagerduty = wa
        .oncall
        .pagerduty_token
        .as_ref()
        .expect("a PagerDuty token");
    assert_eq!(pagerduty.expose(), "y_NbAkKc66ryYTWUXYEu");
    assert_eq!(wa.oncall.schedule_id.as_deref(), Some("PXXXXXX"));
    assert_eq!(wa.oncall.static_oncall.len(), 2);
    assert_eq!(wa.allowed_numbers.len(), 3);
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.base_path, "/webhooks");
    assert_eq!(
        config.routing.default_flow.as_deref(),
        Some("whatsapp-help-flow")
    );
    assert_eq!(config.routing.commands.len(), 8);
    assert_eq!(config.routing.commands["STATUS"], "status-check-flow");
    assert_eq!(config.routing.keywords.len(), 3);
    assert_eq!(config.flows.directory, Path::new("./flows/whatsapp"));
    assert!(config.flows.watch);
}

#[test]
fn the_shipped_configs_load() {
    let env = tutorial_env();
    let bot = std::fs::read_to_string(repo().join("config/whatsapp-bot.yaml")).unwrap();
    let config = load_with("config/whatsapp-bot.yaml", &bot, &env)
        .unwrap_or_else(|e| panic!("config/whatsapp-bot.yaml is refused:\n{e}"));
    assert_eq!(
        config.platforms.whatsapp.access_token.expose(),
        "EAAxxxxxxx..."
    );
    let token = config
        .server
        .webhook_token
        .as_ref()
        .expect("a webhook token");
    assert_eq!(token.expose(), "webhook-token-for-tests");

    // The sandbox needs no variable at all.
    let sandbox = std::fs::read_to_string(repo().join("config/sandbox.yaml")).unwrap();
    let config = aof::config::load_str("config/sandbox.yaml", &sandbox, &|_| None)
        .unwrap_or_else(|e| panic!("config/sandbox.yaml is refused:\n{e}"));
    assert_eq!(
        config.platforms.whatsapp.transport,
        aof::config::TransportKind::Sandbox
    );
    let token = config
        .server
        .webhook_token
        .as_ref()
        .expect("the default webhook token");
    assert_eq!(token.expose(), "sandbox-token");
}

#[test]
fn a_default_in_a_variable_reference_applies_when_the_variable_is_unset_or_empty() {
    let dir = temp();
    let text = edit(
        &edit(
            &base_config(dir.path(), 0),
            "phone_number_id: \"106540352242922\"",
            "phone_number_id: \"${WHATSAPP_PHONE_NUMBER_ID:-111222333}\"",
        ),
        "access_token: \"${WHATSAPP_ACCESS_TOKEN}\"",
        "access_token: \"tok-${WHATSAPP_ACCESS_TOKEN:-default-token}\"",
    );
    let load = |env: &[(&'static str, &'static str)]| {
        let env: HashMap<_, _> = base_env().into_iter().chain(env.iter().copied()).collect();
        load_with("config.yaml", &text, &env).unwrap_or_else(|e| panic!("refused:\n{e}"))
    };

    let unset = load(&[]);
    assert_eq!(unset.platforms.whatsapp.phone_number_id, "111222333");
    // base_env sets WHATSAPP_ACCESS_TOKEN, so the default is not used there.
    assert_eq!(
        unset.platforms.whatsapp.access_token.expose(),
        "tok-test-access-token"
    );

    let empty = load(&[
        ("WHATSAPP_PHONE_NUMBER_ID", ""),
        ("WHATSAPP_ACCESS_TOKEN", ""),
    ]);
    assert_eq!(empty.platforms.whatsapp.phone_number_id, "111222333");
    assert_eq!(
        empty.platforms.whatsapp.access_token.expose(),
        "tok-default-token"
    );

    let set = load(&[("WHATSAPP_PHONE_NUMBER_ID", "999")]);
    assert_eq!(set.platforms.whatsapp.phone_number_id, "999");
}

#[test]
fn the_base_config_of_these_tests_loads() {
    // The control for every refusal below: each one changes a single thing in this config.
    let dir = temp();
    let env: HashMap<_, _> = base_env().into_iter().collect();
    let text = base_config(dir.path(), free_port());
    if let Err(e) = load_with("config.yaml", &text, &env) {
        panic!("the base config is refused:\n{e}");
    }
}

#[test]
fn a_missing_variable_stops_start_up_naming_the_key_and_the_variable() {
    let dir = temp();
    let env: Vec<_> = base_env()
        .into_iter()
        .filter(|(name, _)| *name != "WHATSAPP_ACCESS_TOKEN")
        .collect();
    let (file, exit) = refused_start(dir.path(), &base_config(dir.path(), 0), &env);
    assert_one_error(
        &file,
        &exit,
        "platforms.whatsapp.access_token",
        &["WHATSAPP_ACCESS_TOKEN is not set", "export it"],
    );
}

#[test]
fn an_unknown_key_stops_start_up_and_suggests_the_near_key() {
    let dir = temp();
    let yaml = edit(
        &base_config(dir.path(), 0),
        "    rate_limits:",
        "    rate_limit:",
    );
    let (file, exit) = refused_start(dir.path(), &yaml, &base_env());
    assert_one_error(
        &file,
        &exit,
        "platforms.whatsapp.rate_limit",
        &["unknown key `rate_limit`", "did you mean `rate_limits`?"],
    );
}

#[test]
fn a_value_of_the_wrong_type_stops_start_up_naming_the_key() {
    let dir = temp();
    let yaml = edit(
        &base_config(dir.path(), 0),
        "messages_per_second: 50",
        "messages_per_second: \"lots\"",
    );
    let (file, exit) = refused_start(dir.path(), &yaml, &base_env());
    assert_one_error(
        &file,
        &exit,
        "platforms.whatsapp.rate_limits.messages_per_second",
        &["invalid type: string \"lots\""],
    );
}

#[test]
fn an_invalid_keyword_regex_stops_start_up_naming_its_index() {
    let dir = temp();
    let yaml = edit(
        &base_config(dir.path(), 0),
        "\"(?i)(incident|outage|down)\"",
        "\"(?i)(incident|outage\"",
    );
    let (file, exit) = refused_start(dir.path(), &yaml, &base_env());
    assert_one_error(
        &file,
        &exit,
        "routing.keywords[1].pattern",
        &["is not a valid regex", "fix the pattern"],
    );
}

#[test]
fn more_than_80_messages_per_second_stops_start_up() {
    let dir = temp();
    let yaml = edit(
        &base_config(dir.path(), 0),
        "messages_per_second: 50",
        "messages_per_second: 81",
    );
    let (file, exit) = refused_start(dir.path(), &yaml, &base_env());
    assert_one_error(
        &file,
        &exit,
        "platforms.whatsapp.rate_limits.messages_per_second",
        &["is 81", "use 1 to 80"],
    );
}

#[test]
fn an_empty_app_secret_with_the_cloud_api_stops_start_up() {
    let dir = temp();
    let mut env = base_env();
    for (name, value) in &mut env {
        if *name == "WHATSAPP_APP_SECRET" {
            *value = "";
        }
    }
    let (file, exit) = refused_start(dir.path(), &base_config(dir.path(), 0), &env);
    assert_one_error(
        &file,
        &exit,
        "platforms.whatsapp.app_secret",
        &[
            "is empty",
            "set WHATSAPP_APP_SECRET or use transport: sandbox",
        ],
    );
}

#[test]
fn a_missing_flow_directory_stops_start_up_naming_the_config_and_the_key() {
    let dir = temp();
    let missing = dir.path().join("no-such-flows");
    let flows = repo().join("flows/whatsapp");
    let yaml = edit(
        &base_config(dir.path(), 0),
        &format!("directory: \"{}\"", flows.display()),
        &format!("directory: \"{}\"", missing.display()),
    );
    let (file, exit) = refused_start(dir.path(), &yaml, &base_env());
    assert_one_error(
        &file,
        &exit,
        "flows.directory",
        &[
            &format!("`{}`", missing.display()),
            "point flows.directory at",
        ],
    );
}

#[test]
fn an_invalid_flow_stops_start_up_with_its_problem_said_once() {
    let dir = temp();
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    let flow = flows.join("page-flow.yaml");
    std::fs::write(
        &flow,
        "apiVersion: aof.sh/v1alpha1\nkind: AgentFlow\nmetadata:\n  name: page\nsteps:\n  \
         - name: page-someone\n    agent: pager\n    action: page\n",
    )
    .unwrap();
    let yaml = edit(
        &base_config(dir.path(), 0),
        &format!("directory: \"{}\"", repo().join("flows/whatsapp").display()),
        &format!("directory: \"{}\"", flows.display()),
    );
    let (_, exit) = refused_start(dir.path(), &yaml, &base_env());
    let stderr = &exit.stderr;
    assert!(!exit.status.success(), "aofctl started:\n{stderr}");
    let problem = format!(
        "{}: steps[0] `page-someone`: unknown agent `pager`",
        flow.display()
    );
    assert_eq!(
        stderr.matches(&problem).count(),
        1,
        "`{problem}` should appear exactly once:\n{stderr}"
    );
}

#[test]
fn a_port_in_use_stops_start_up_naming_server_port() {
    let dir = temp();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().unwrap().port();
    let (file, exit) = refused_start(dir.path(), &base_config(dir.path(), port), &base_env());
    assert_one_error(
        &file,
        &exit,
        "server.port",
        &[&format!("127.0.0.1:{port}"), "choose another server.port"],
    );
    drop(taken);
}

#[test]
fn several_problems_in_one_config_are_all_reported_at_once() {
    let dir = temp();
    let yaml = edit(
        &edit(
            &base_config(dir.path(), 0),
            "messages_per_second: 50",
            "messages_per_second: 0",
        ),
        "\"(?i)(deploy|release|ship)\"",
        "\"(?i)(deploy\"",
    );
    let env: HashMap<_, _> = base_env()
        .into_iter()
        .map(|(k, v)| (k, if k == "WHATSAPP_APP_SECRET" { "" } else { v }))
        .collect();
    let err = load_with("config.yaml", &yaml, &env).unwrap_err();
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "platforms.whatsapp.app_secret",
            "platforms.whatsapp.rate_limits.messages_per_second",
            "routing.keywords[0].pattern",
        ],
        "{err}"
    );
}

#[test]
fn the_sandbox_config_starts_and_becomes_ready() {
    let dir = temp();
    let port = free_port();
    let shipped = std::fs::read_to_string(repo().join("config/sandbox.yaml")).unwrap();
    let flows = repo().join("flows/whatsapp");
    let yaml = edit(&shipped, "port: 8080", &format!("port: {port}"));
    let yaml = edit(
        &yaml,
        "directory: \"./flows/whatsapp\"",
        &format!("directory: \"{}\"", flows.display()),
    );
    let yaml = edit(
        &yaml,
        "url: \"sqlite://data/sandbox.db\"",
        &format!(
            "url: \"sqlite://{}\"",
            dir.path().join("sandbox.db").display()
        ),
    );
    let file = dir.path().join("sandbox.yaml");
    std::fs::write(&file, yaml).unwrap();

    let mut bot = Aofctl::serve(&file, &[], dir.path());
    wait_until_ready(&mut bot, port);
    let exit = bot.terminate();
    assert!(
        exit.status.success(),
        "SIGTERM should stop it cleanly: {:?}\n{}",
        exit.status,
        exit.stderr
    );
}

#[test]
fn credentials_never_appear_in_the_log() {
    const ACCESS_TOKEN: &str = "EAA-access-token-4f9c2e71d8";
    const APP_SECRET: &str = "app-secret-b7e13a90c5";
    const VERIFY_TOKEN: &str = "verify-token-6d2f8841aa";
    let graph = FakeGraph::start();
    let dir = temp();
    let port = free_port();
    let yaml = edit(
        &base_config(dir.path(), port),
        "api_base_url: \"https://graph.invalid/v21.0\"",
        &format!("api_base_url: \"{}/v21.0\"", graph.address),
    );
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, yaml).unwrap();
    let env = [
        ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN),
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        // Every level: a credential must not appear even in a trace.
        ("RUST_LOG", "trace"),
    ];
    let mut bot = Aofctl::serve(&file, &env, dir.path());
    wait_until_ready(&mut bot, port);

    let verify = format!(
        "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=4242"
    );
    assert_eq!(
        http(port, "GET", &verify, &[], b""),
        Some((200, "4242".into()))
    );
    let body = text_notification(ALICE, "Alice", "HELP", &unique_id()).to_string();
    let signature = aof::wire::whatsapp::sign(APP_SECRET.as_bytes(), body.as_bytes());
    let signed = [
        ("content-type", "application/json"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let answer = http(port, "POST", "/webhooks/whatsapp", &signed, body.as_bytes());
    assert_eq!(answer.map(|(s, _)| s), Some(200));
    let forged = aof::wire::whatsapp::sign(b"not-the-secret", &fixture("whatsapp/text.json"));
    let unsigned = [
        ("content-type", "application/json"),
        ("x-hub-signature-256", forged.as_str()),
    ];
    let refused = http(
        port,
        "POST",
        "/webhooks/whatsapp",
        &unsigned,
        &fixture("whatsapp/text.json"),
    );
    assert_eq!(refused.map(|(s, _)| s), Some(401));

    // The reply reaches the fake Graph API with the token, so the token was in use while logging.
    let deadline = Instant::now() + Duration::from_secs(15);
    while graph.sends_to(ALICE).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no reply reached the Graph API:\n{}",
            bot.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let bearer = format!("Bearer {ACCESS_TOKEN}");
    assert_eq!(
        graph.sends_to(ALICE)[0].authorization.as_deref(),
        Some(bearer.as_str())
    );

    let exit = bot.terminate();
    let log = format!("{}\n{}", exit.stdout, exit.stderr);
    assert!(
        log.contains("Graph API answered a send"),
        "the trace log is not what was expected:\n{log}"
    );
    for secret in [
        ACCESS_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        signature.as_str(),
        forged.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "`{secret}` appears in the log:\n{log}"
        );
    }
}
