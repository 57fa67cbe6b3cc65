//! Each config mistake stops `aofctl trigger serve` with one error naming the config file, the key
//! path and the fix.

use super::support::*;
use crate::common::*;
use std::net::TcpListener;

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
    assert_edit_refused(
        "    rate_limits:",
        "    rate_limit:",
        "platforms.whatsapp.rate_limit",
        &["unknown key `rate_limit`", "did you mean `rate_limits`?"],
    );
}

#[test]
fn a_value_of_the_wrong_type_stops_start_up_naming_the_key() {
    assert_edit_refused(
        "messages_per_second: 50",
        "messages_per_second: \"lots\"",
        "platforms.whatsapp.rate_limits.messages_per_second",
        &["invalid type: string \"lots\""],
    );
}

#[test]
fn an_invalid_keyword_regex_stops_start_up_naming_its_index() {
    assert_edit_refused(
        "\"(?i)(incident|outage|down)\"",
        "\"(?i)(incident|outage\"",
        "routing.keywords[1].pattern",
        &["is not a valid regex", "fix the pattern"],
    );
}

#[test]
fn more_than_80_messages_per_second_stops_start_up() {
    assert_edit_refused(
        "messages_per_second: 50",
        "messages_per_second: 81",
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
fn a_database_that_refuses_writes_stops_start_up_naming_the_file() {
    let dir = temp();
    let db = dir.path().join("aof.db");
    // A database that exists (schema and all) but is opened read-only: it answers reads, so only
    // a write shows that the bot could not keep anything it accepted.
    let made = actix_web::rt::System::new().block_on(aof::store::SqliteStore::open(&format!(
        "sqlite://{}",
        db.display()
    )));
    let made = made.expect("the store is created");
    actix_web::rt::System::new().block_on(aof::store::Backend::close(&made));
    let yaml = edit(
        &base_config(dir.path(), 0),
        &format!("url: \"sqlite://{}\"", db.display()),
        &format!("url: \"sqlite://{}?mode=ro\"", db.display()),
    );
    let (file, exit) = refused_start(dir.path(), &yaml, &base_env());
    assert_one_error(
        &file,
        &exit,
        "storage.url",
        &[
            &db.display().to_string(),
            "does not take writes",
            "point storage.url at a writable path",
        ],
    );
}
