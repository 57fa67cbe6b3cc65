//! `flows.watch: true`: reloads the flow directory when a file changes. A broken edit keeps the last
//! good flows running and logs every problem; a good one replaces them for the next runs.

use super::expr::Expressions;
use super::load::FlowSet;
use super::Routes;
use crate::agents::Registry;
use crate::config::TemplateDef;
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Edits often come as several events (write, rename, chmod): wait this long for them to settle.
const SETTLE: Duration = Duration::from_millis(250);

/// Everything a reload needs.
pub struct Reloader {
    /// The directory.
    pub dir: PathBuf,
    /// Agents, for validation.
    pub registry: Arc<Registry>,
    /// The expression environment.
    pub expressions: Arc<Expressions>,
    /// Message templates, for parameter counts.
    pub templates: BTreeMap<String, TemplateDef>,
    /// The replica's role: the engine to update, once it leads.
    pub role: Arc<crate::role::Role>,
    /// The routes to update.
    pub routes: Arc<Routes>,
}

impl Reloader {
    /// Loads the directory again; swaps the flows in when they are all valid.
    pub fn reload(&self) -> bool {
        match FlowSet::load_dir(
            &self.dir,
            &self.registry,
            &self.expressions,
            &self.templates,
        ) {
            Ok(set) => {
                let set = Arc::new(set);
                tracing::info!(flows = set.len(), dir = %self.dir.display(), "flows reloaded");
                metrics::counter!("aof_flow_reloads_total", "result" => "ok").increment(1);
                if let Some(leading) = self.role.leading() {
                    leading.engine.set_flows(set.clone());
                }
                self.routes.set_flows(set);
                true
            }
            Err(e) => {
                metrics::counter!("aof_flow_reloads_total", "result" => "rejected").increment(1);
                tracing::error!("flow change rejected; the previous flows stay in use:\n{e}");
                false
            }
        }
    }

    /// Watches the directory on a background thread; dropping the returned watcher stops it.
    pub fn watch(self) -> notify::Result<notify::RecommendedWatcher> {
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    let relevant = event
                        .paths
                        .iter()
                        .any(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"));
                    if relevant && !event.kind.is_access() {
                        let _ = tx.send(());
                    }
                }
            })?;
        watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
        std::thread::Builder::new()
            .name("aof-flow-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    std::thread::sleep(SETTLE);
                    while rx.try_recv().is_ok() {}
                    self.reload();
                }
            })
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(watcher)
    }
}
