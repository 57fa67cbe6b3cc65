//! Chatting with the running server: start it on a flows directory, say something as a person and
//! wait for the answer, and wait for the store to catch up.
//!
//! Not glob-re-exported from `common`: other test modules define their own helpers under these
//! names, and two glob imports of one name are ambiguous. Import with `use common::chat::*;`.

use super::{
    eventually, eventually_async, repo, store, temp, FakeGraph, GraphSend, Options, Recorded,
    TestApp,
};

use aof::store::Deliveries;
use std::path::Path;
use std::time::Duration;

/// How long a test waits for anything the server does.
pub const WAIT: Duration = Duration::from_secs(20);

/// A flows directory with the repository's flows (so that every routing target exists) and `extra`
/// (file name, YAML).
pub fn flows_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = temp();
    for entry in std::fs::read_dir(repo().join("flows/whatsapp")).expect("the repo's flows") {
        let path = entry.expect("a flow file").path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).expect("copy a flow");
    }
    for (name, yaml) in extra {
        std::fs::write(dir.path().join(name), yaml).expect("write a test flow");
    }
    dir
}

/// Starts the server storing under `dir`, with the flows of `flows` (the repository's when `None`).
pub async fn start(graph: &FakeGraph, dir: &Path, flows: Option<&Path>) -> TestApp {
    let options = Options {
        flows_dir: flows.map(Path::to_owned),
        ..Options::default()
    };
    TestApp::spawn_in(dir, graph, &options)
        .await
        .expect("the server starts")
}

/// Waits until `who` has been sent at least `n` messages, and returns them all.
pub async fn sent_to(graph: &FakeGraph, who: &str, n: usize) -> Vec<Recorded> {
    eventually(WAIT, || Some(graph.sends_to(who)).filter(|s| s.len() >= n))
        .await
        .unwrap_or_else(|| {
            panic!(
                "{who} was sent {} messages, expected {n}: {:#?}",
                graph.sends_to(who).len(),
                graph
                    .sends_to(who)
                    .iter()
                    .map(|r| r.text())
                    .collect::<Vec<_>>()
            )
        })
}

/// `who` says `text`; returns the next message `who` is sent.
pub async fn ask_reply(app: &TestApp, graph: &FakeGraph, who: &str, text: &str) -> Recorded {
    let before = graph.sends_to(who).len();
    assert_eq!(
        app.say(who, text).await,
        200,
        "the webhook accepts {text:?}"
    );
    sent_to(graph, who, before + 1).await[before].clone()
}

/// `who` says `text`; returns the text of the next message `who` is sent.
pub async fn ask(app: &TestApp, graph: &FakeGraph, who: &str, text: &str) -> String {
    ask_reply(app, graph, who, text).await.text().to_owned()
}

/// The texts `who` was sent so far.
pub fn texts_to(graph: &FakeGraph, who: &str) -> Vec<String> {
    graph
        .sends_to(who)
        .iter()
        .map(|s| s.text().to_owned())
        .collect()
}

/// Waits until every message the fake accepted (`wamid.fake.1` ..) is recorded as sent, so that a
/// crash-like stop cannot fall between Meta's answer and the store's record (the queue would send
/// it again after the restart, which is the outbox's at-least-once delivery, not what is tested).
pub async fn all_sends_recorded(app: &TestApp, graph: &FakeGraph) {
    let store = store(&app.dir).await;
    let accepted = graph.sends().iter().filter(|s| s.status == 200).count();
    for n in 1..=accepted {
        let wamid = format!("wamid.fake.{n}");
        let recorded = eventually_async(WAIT, || async {
            store.message_status(&wamid).await.unwrap()
        })
        .await;
        assert!(recorded.is_some(), "{wamid} was never recorded as sent");
    }
}
