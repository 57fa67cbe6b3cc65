//! The sandbox chat page in a real browser: Debian's chromium, driven through chromedriver
//! (WebDriver), against the bot started on the shipped `config/sandbox.yaml`. The story is the one a
//! newcomer tries first: ask for HELP, fire the critical alert and acknowledge it with its button,
//! request a deployment and approve it.
//!
//! Without chromedriver the tests say so and pass, unless `AOF_REQUIRE_BROWSER=1` (set by `.ci/run`,
//! which installs `chromium` and `chromium-driver`). `AOF_UPDATE_SCREENSHOT=1` writes the mid-story
//! screenshot to `docs/sandbox.png` and the storm's to `docs/storm.png` (the README shows them);
//! otherwise they go to the temp directory.

use crate::common::sandbox::{restart_sandbox, start_sandbox};
use crate::common::{eventually, eventually_async, repo, temp, TestApp};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const CAROL: &str = "+15550001234";

/// A chromedriver process (leading its own process group) and a browser session through it.
/// [`with_browser`] ends the session; the drop kills whatever is left.
struct Browser {
    client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver's group holds the browsers it started; a browser that left the group is found
        // by its profile directory, which no other process names.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        for pid in processes_naming(&self.profile.path().display().to_string()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The processes whose command line contains `marker`.
fn processes_naming(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

/// What a test run by [`with_browser`] gets: the WebDriver client, and what identifies the
/// processes of its browser (the profile directory in their command line) and its driver (the pid).
struct Session {
    client: Client,
    profile: String,
    driver: u32,
}

/// Runs `test` in a fresh browser of `width` x `height`, then ends the WebDriver session (which
/// closes the browser) and stops the driver, also when `test` panics (the panic goes on after).
/// `None` when the test is skipped; else the profile directory, which no process names any more.
async fn with_browser<F, Fut>(width: u32, height: u32, test: F) -> Option<String>
where
    F: FnOnce(Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_util::FutureExt as _;
    let browser = browser(width, height).await?;
    let profile = browser.profile.path().display().to_string();
    let session = Session {
        client: browser.client.clone(),
        profile: profile.clone(),
        driver: browser.driver.id(),
    };
    let outcome = std::panic::AssertUnwindSafe(test(session))
        .catch_unwind()
        .await;
    let _ = tokio::time::timeout(WAIT, browser.client.clone().close()).await;
    drop(browser);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    Some(profile)
}

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Starts chromedriver and a headless chromium of `width` x `height`, or `None` (test skipped)
/// when they are not installed and not required.
async fn browser(width: u32, height: u32) -> Option<Browser> {
    let Some(driver_path) = find_program("AOF_CHROMEDRIVER", &["chromedriver"]) else {
        assert!(
            std::env::var("AOF_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "AOF_REQUIRE_BROWSER=1 but chromedriver is not on PATH (apt install chromium chromium-driver)"
        );
        eprintln!("skipped: chromedriver is not installed (apt install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(&driver_path)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", driver_path.display()));
    let profile = temp();
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        format!("--window-size={width},{height}"),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    args.push("--lang=en-US".into());
    let mut options = json!({ "args": args });
    if let Some(chromium) = find_program("AOF_CHROMIUM", &["chromium", "chromium-browser"]) {
        options["binary"] = json!(chromium);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let deadline = Instant::now() + WAIT;
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => break client,
            Err(e) if Instant::now() > deadline => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", driver.id())])
                    .status();
                panic!("no WebDriver session: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    Some(Browser {
        client,
        driver,
        profile,
    })
}

/// Waits for an element.
async fn element(b: &Client, css: &str) -> Element {
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` within {WAIT:?}: {e}"))
}

/// Waits until one of the elements `css` has a text containing `needle`; returns it.
async fn with_text(b: &Client, css: &str, needle: &str) -> Element {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen.clear();
        for e in b.find_all(Locator::Css(css)).await.unwrap_or_default() {
            let text = e.text().await.unwrap_or_default();
            if text.contains(needle) {
                return e;
            }
            seen.push(text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no `{css}` containing {needle:?} within {WAIT:?}; texts: {seen:#?}");
}

/// The page, loaded from the server's root (which redirects) and ready (setup read, stream open).
async fn open_page(b: &Client, app: &TestApp) {
    b.goto(&format!("{}/", app.address)).await.expect("loads");
    let url = b.current_url().await.expect("a URL");
    assert_eq!(
        url.path(),
        "/webhooks/sandbox/",
        "the root redirects to the page"
    );
    element(b, "body[data-ready='1']").await;
}

/// The sandbox started in a temp directory and its page open, where Alice asks for HELP and gets
/// the answer.
async fn alice_asks_for_help(b: &Client) -> (tempfile::TempDir, TestApp) {
    let dir = temp();
    let app = start_sandbox(dir.path()).await;
    open_page(b, &app).await;
    pick(b, "li.person[data-phone='+15551234567']").await;
    type_and_send(b, "HELP").await;
    with_text(b, "#messages .msg.from-me .body", "HELP").await;
    with_text(b, "#messages .msg.from-bot .body", "ACK - Acknowledge").await;
    (dir, app)
}

async fn pick(b: &Client, css: &str) {
    element(b, css).await.click().await.expect("clicks");
}

async fn type_and_send(b: &Client, text: &str) {
    let input = element(b, "#composer #text").await;
    input.send_keys(text).await.expect("types");
    pick(b, "#composer #send").await;
}

/// Who the bot sent template `name` to (the on-call engineer depends on the time of day).
async fn recipient_of(app: &TestApp, name: &str) -> String {
    eventually_async(WAIT, || async {
        let (_, body) = app.get("/sandbox/outbox").await;
        let items: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        let item = items.iter().rev().find(|i| i["template"] == name)?;
        Some(item["to"].as_str().expect("a number").to_owned())
    })
    .await
    .unwrap_or_else(|| panic!("no {name} sent within {WAIT:?}"))
}

/// Gives the page time to show anything the reconnected event stream would repeat: the test is that
/// nothing does, and no event says "nothing more is coming", so this is a fixed wait, not a poll.
async fn let_a_duplicate_show() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Writes the page as `name` (`sandbox.png`) to `docs/` with `AOF_UPDATE_SCREENSHOT=1`, else to
/// `dir`.
async fn screenshot(b: &Client, dir: &Path, name: &str) {
    let png = b.screenshot().await.expect("a screenshot");
    let path = if std::env::var("AOF_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        repo().join("docs").join(name)
    } else {
        dir.join(name)
    };
    std::fs::write(&path, png).expect("writes the screenshot");
}

#[actix_web::test]
async fn help_then_an_alert_acknowledged_with_its_button_then_a_deployment_approved() {
    with_browser(1280, 860, |session| async move {
        let b = &session.client;
        let (dir, app) = alice_asks_for_help(b).await;

        // The critical alert pages whoever is on call with the ops_alert template and its buttons.
        pick(b, "button.scenario[data-id='critical-alert']").await;
        with_text(b, "#scenario-result", "202").await;
        let oncall = recipient_of(&app, "ops_alert").await;
        pick(b, &format!("li.person[data-phone='{oncall}']")).await;
        let alert = with_text(b, "#messages .msg.from-bot", "api-server").await;
        let name = alert
            .find(Locator::Css(".template-name"))
            .await
            .expect("the template's name is shown");
        assert_eq!(name.text().await.unwrap(), "ops_alert");
        let wamid = alert.attr("data-wamid").await.unwrap().expect("a wamid");
        // The conversation is open: the phone reports the page read, and the tick follows.
        element(
            b,
            &format!(".msg[data-wamid='{wamid}'] .ticks[data-status='read']"),
        )
        .await;
        alert
            .find(Locator::Css("button.reply-button[data-id='ACK']"))
            .await
            .expect("an ACK button")
            .click()
            .await
            .expect("taps ACK");
        with_text(b, "#messages .msg.from-bot .body", "Alert acknowledged").await;
        element(
            b,
            "#runs .run[data-outcome='completed'] .step[data-step='acknowledge-alert']",
        )
        .await;
        screenshot(b, dir.path(), "sandbox.png").await;

        // The 300 s auto-escalation is pending; fast-forward it: it runs now and finds the alert acked.
        pick(
            b,
            "#timers .timer[data-flow='auto-escalate-flow'] button.fire",
        )
        .await;
        element(
            b,
            "#runs .run[data-flow='auto-escalate-flow']:not([data-outcome='running'])",
        )
        .await;
        let left = eventually_async(WAIT, || async {
            b.find_all(Locator::Css(
                "#timers .timer[data-flow='auto-escalate-flow']",
            ))
            .await
            .unwrap_or_default()
            .is_empty()
            .then_some(())
        })
        .await;
        assert!(left.is_some(), "the fired timer leaves the list");

        // The team group is told who acknowledged.
        pick(b, "li.person[data-group='sre-team']").await;
        with_text(b, "#messages .msg.from-bot .body", "acknowledged by").await;

        // A deployment to production waits for an approver; Carol approves with the button.
        pick(b, "button.scenario[data-id='deploy-approval']").await;
        pick(b, &format!("li.person[data-phone='{CAROL}']")).await;
        let request = with_text(b, "#messages .msg.from-bot", "Deployment Request").await;
        request
            .find(Locator::Css("button.reply-button[data-id='APPROVE']"))
            .await
            .expect("an APPROVE button")
            .click()
            .await
            .expect("taps APPROVE");
        let deploy = element(
            b,
            "#runs .step[data-step='trigger-deployment'][data-outcome='ok']",
        )
        .await;
        deploy.click().await.expect("opens the step");
        with_text(
            b,
            "#runs .step[data-step='trigger-deployment']",
            "deploying api v2.1.0 to production",
        )
        .await;

        // Alice requested it: she is told.
        pick(b, "li.person[data-phone='+15551234567']").await;
        with_text(b, "#messages .msg.from-bot .body", "Deployment approved").await;
    })
    .await;
}

#[actix_web::test]
async fn on_a_phone_sized_window_the_list_and_the_conversation_take_turns() {
    with_browser(390, 844, |session| async move {
        let b = &session.client;
        let dir = temp();
        let app = start_sandbox(dir.path()).await;
        open_page(b, &app).await;
        let alice = element(b, "li.person[data-phone='+15551234567']").await;
        assert!(alice.is_displayed().await.unwrap());
        alice.click().await.unwrap();
        let input = element(b, "#composer #text").await;
        assert!(
            input.is_displayed().await.unwrap(),
            "the conversation shows"
        );
        assert!(!alice.is_displayed().await.unwrap(), "one column at a time");
        type_and_send(b, "HELP").await;
        with_text(b, "#messages .msg.from-bot .body", "ACK - Acknowledge").await;
        pick(b, "#back").await;
        let shown = eventually_async(WAIT, || async {
            alice.is_displayed().await.unwrap().then_some(())
        })
        .await;
        assert!(shown.is_some(), "back shows the people again");
    })
    .await;
}

#[actix_web::test]
async fn a_restart_of_the_bot_keeps_what_an_open_page_shows() {
    with_browser(1280, 860, |session| async move {
        let b = &session.client;
        let (dir, app) = alice_asks_for_help(b).await;
        let before = b
            .find_all(Locator::Css("#messages .msg"))
            .await
            .unwrap()
            .len();

        app.stop();
        element(b, "#conn[data-state='down']").await;
        let app = restart_sandbox(dir.path()).await;
        element(b, "#conn[data-state='live']").await;
        // The open tab reconnected: the conversation is as it was, nothing twice.
        let_a_duplicate_show().await;
        let after = b
            .find_all(Locator::Css("#messages .msg"))
            .await
            .unwrap()
            .len();
        assert_eq!(
            after, before,
            "the reconnect neither wiped nor repeated the chat"
        );
        type_and_send(b, "STATUS").await;
        with_text(b, "#messages .msg.from-me .body", "STATUS").await;

        // A page loaded after the restart shows the conversation from the store.
        open_page(b, &app).await;
        pick(b, "li.person[data-phone='+15551234567']").await;
        with_text(b, "#messages .msg.from-bot .body", "ACK - Acknowledge").await;
        with_text(b, "#messages .msg.from-me .body", "HELP").await;
    })
    .await;
}

#[actix_web::test]
async fn no_browser_or_driver_outlives_a_test_even_one_that_panics() {
    // A test that passes: its session is ended and nothing it started is left.
    let Some(profile) = with_browser(800, 600, |session| async move {
        session.client.goto("about:blank").await.expect("a page");
    })
    .await
    else {
        return;
    };
    assert_eq!(
        processes_naming(&profile),
        Vec::<u32>::new(),
        "left after a passing test"
    );

    // A test that panics half-way: what it ran while it failed is found by its marks.
    let marks = std::sync::Arc::new(std::sync::Mutex::new(None));
    let in_test = marks.clone();
    let panicked = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
        with_browser(800, 600, |session| async move {
            session.client.goto("about:blank").await.expect("a page");
            let browsers = processes_naming(&session.profile).len();
            *in_test.lock().unwrap() = Some((session.profile.clone(), session.driver, browsers));
            panic!("a failing assertion");
        }),
    ))
    .await;
    assert!(panicked.is_err(), "the panic goes on to the test");
    let (profile, driver, browsers) = marks.lock().unwrap().clone().expect("the test ran");
    assert!(browsers > 0, "the browser was running during the test");
    let driver_alive = || Path::new(&format!("/proc/{driver}")).exists();
    let gone = eventually(WAIT, || {
        (processes_naming(&profile).is_empty() && !driver_alive()).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "left after a panicking test: browsers {:?}, driver alive: {}",
        processes_naming(&profile),
        driver_alive()
    );
}

/// An alert storm as the on-call engineer sees it, paced as WhatsApp paces one person (6 s, 3 at
/// once): the first pages, then a digest naming the rest, and ACK ALL taking them all.
#[actix_web::test]
async fn a_storm_reaches_the_on_call_engineer_as_pages_then_a_digest() {
    with_browser(1280, 860, |session| async move {
        let b = &session.client;
        let dir = temp();
        let app = crate::common::sandbox::start_sandbox_with(dir.path(), |config| {
            config
                .replace(
                    "per_person_interval_ms: 500",
                    "per_person_interval_ms: 6000",
                )
                .replace("per_person_burst: 5", "per_person_burst: 3")
        })
        .await;
        open_page(b, &app).await;
        let services = ["api-server", "api-server", "checkout", "db", "api-server"];
        for i in 0..30 {
            let body = json!({
                "severity": if i % 3 == 0 { "critical" } else { "warning" },
                "service": services[i % services.len()],
                "message": format!("p99 latency above 2 s on node {i}"),
            });
            let (status, answer) = app
                .post_json("/webhooks/alert/oncall", &body, Some("sandbox-token"))
                .await;
            assert_eq!(status, 202, "{answer}");
        }
        let oncall = recipient_of(&app, "ops_alert").await;
        pick(b, &format!("li.person[data-phone='{oncall}']")).await;
        let digest = with_text(b, "#messages .msg.from-bot .body", "alerts firing").await;
        let text = digest.text().await.expect("its text");
        assert!(text.contains("ACK ALL"), "{text}");
        // Everything waiting went with the digest; the picture shows the digest from its top.
        with_text(b, "#queue", "Queue: 0 waiting").await;
        let shown = serde_json::to_value(&digest).expect("an element reference");
        b.execute("arguments[0].scrollIntoView({block: 'start'})", vec![shown])
            .await
            .expect("scrolls");
        screenshot(b, dir.path(), "storm.png").await;

        type_and_send(b, "ACK ALL").await;
        with_text(b, "#messages .msg.from-bot .body", "30 alerts acknowledged").await;
    })
    .await;
}
