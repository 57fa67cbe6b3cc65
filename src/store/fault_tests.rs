//! The store on a full disk, for real: a small tmpfs that a test fills. Mounting needs root (CI
//! and the project's machines have it); elsewhere these tests say "skipped: …" and pass, unless
//! `AOF_REQUIRE_TMPFS` is set.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped (also on a panic).
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// The mounted tmpfs, or `None` (said why) when this machine cannot mount one.
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().expect("a temporary directory");
        let dir = parent.path().join("data");
        std::fs::create_dir(&dir).expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs {
                dir,
                _parent: parent,
            }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("AOF_REQUIRE_TMPFS").is_none(),
                    "AOF_REQUIRE_TMPFS is set but a tmpfs cannot be mounted: {why}"
                );
                eprintln!("skipped: cannot mount a tmpfs (needs root): {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    /// Removes the filler [`store_on_a_small_disk`] wrote.
    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).expect("the filler goes");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn alert<'a>(fingerprint: &'a str, message: &'a str) -> NewAlert<'a> {
    NewAlert {
        severity: "critical",
        service: "api",
        message,
        runbook_url: None,
        source: AlertSource::Alertmanager,
        fingerprint: Some(fingerprint),
        pagerduty_incident_id: None,
        paged: None,
        created_by: None,
    }
}

/// A store on a 3 MB tmpfs that a 2 MB file fills most of ([`Tmpfs::free`] removes it), or
/// `None` where no tmpfs can be mounted.
async fn store_on_a_small_disk() -> Option<(Tmpfs, SqliteStore)> {
    let disk = Tmpfs::mount("3m")?;
    let url = format!("sqlite://{}/aof.db", disk.path().display());
    let store = SqliteStore::open(&url).await.expect("the store opens");
    std::fs::write(disk.path().join("filler"), vec![0u8; 2_000_000]).expect("room for the filler");
    Some((disk, store))
}

/// Writes with `write(0)`, `write(1)`, … until one fails; its error.
async fn until_full<T, F>(mut write: impl FnMut(usize) -> F) -> String
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    for i in 0..2000 {
        if let Err(e) = write(i).await {
            return e.to_string();
        }
    }
    panic!("the disk never filled up");
}

#[tokio::test]
async fn a_full_disk_fails_writes_and_they_succeed_again_once_space_is_freed() {
    let Some((disk, store)) = store_on_a_small_disk().await else {
        return;
    };

    let long = "x".repeat(4000);
    let store = &store;
    let full = until_full(|i| {
        let (fingerprint, long) = (format!("fp-{i}"), long.clone());
        async move { store.create_alert(&alert(&fingerprint, &long)).await }
    })
    .await;
    assert!(full.contains("full"), "{full}");

    disk.free();
    for i in 0..3 {
        let created = store.create_alert(&alert(&format!("after-{i}"), "m")).await;
        assert!(
            created.is_ok(),
            "write {i} after the disk was freed: {:?}",
            created.err()
        );
    }
    store.close().await;
}

#[tokio::test]
async fn the_writer_fails_on_a_full_disk_and_writes_again_once_space_is_freed() {
    use crate::store::inbox::{Inbox, InboxEntry};
    let Some((disk, store)) = store_on_a_small_disk().await else {
        return;
    };
    let entry = |i: usize, body: &str| InboxEntry {
        kind: "message",
        once: Some(format!("wamid.{i}")),
        open_key: None,
        body: body.to_owned(),
        audit: None,
    };

    let long = "x".repeat(4000);
    let full = until_full(|i| store.keep_events(vec![entry(i, &long)])).await;
    assert!(full.contains("full"), "{full}");

    disk.free();
    for i in 0..3 {
        let kept = store.keep_events(vec![entry(10_000 + i, "{}")]).await;
        assert!(
            matches!(kept.as_deref(), Ok([Some(_)])),
            "keep {i} after the disk was freed: {kept:?}"
        );
    }
    store.close().await;
}
