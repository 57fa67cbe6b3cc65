//! `aofctl flows list`: each flow of `flows.directory`, what starts it (its triggers) and what
//! routes to it (the config's commands, keywords and default flow), so that a newcomer can see
//! which message or webhook runs what without reading every file.

use crate::agents::Registry;
use crate::config::Config;
use crate::flow::expr::Expressions;
use crate::flow::model::TriggerKind;
use crate::flow::{FlowLoadError, FlowSet, LoadedFlow};
use std::fmt::Write as _;
use std::sync::Arc;

/// Loads the flows `config` names and describes them, one block per flow, sorted by name.
pub fn list(config: &Config) -> Result<String, FlowLoadError> {
    let whatsapp = &config.platforms.whatsapp;
    let flows = FlowSet::load_dir(
        &config.flows.directory,
        &Registry::builtin(),
        &Expressions::new(),
        &whatsapp.templates,
    )?;
    let mut all: Vec<&Arc<LoadedFlow>> = flows.iter().collect();
    all.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} flows in {}\n",
        all.len(),
        config.flows.directory.display()
    );
    for flow in all {
        describe(&mut out, flow, &flows, config);
    }
    let missing = config.routing.missing(|f| flows.get(f).is_some());
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "routing names flows that are not in the directory: {}",
            missing.join(", ")
        );
    }
    Ok(out)
}

fn describe(out: &mut String, flow: &Arc<LoadedFlow>, flows: &FlowSet, config: &Config) {
    let file = flow
        .file
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let _ = writeln!(out, "{}  ({file})", flow.name());
    if let Some(description) = &flow.flow.metadata.description {
        let _ = writeln!(out, "  {}", description.trim());
    }
    for trigger in &flow.flow.triggers {
        let what = match trigger.kind {
            TriggerKind::Message => match &trigger.pattern {
                Some(p) => format!("a WhatsApp message matching /{p}/"),
                None => "any WhatsApp message routed to it".to_owned(),
            },
            TriggerKind::Webhook => format!(
                "{} {}{} (bearer token)",
                trigger.method.as_deref().unwrap_or("POST"),
                config.server.base_path,
                trigger.path.as_deref().unwrap_or("?")
            ),
            TriggerKind::Alertmanager => {
                "Prometheus Alertmanager notifications, posted to its webhook path".to_owned()
            }
        };
        let _ = writeln!(out, "  trigger: {what}");
    }
    let targets = |name: &str| {
        flows
            .get(name)
            .is_some_and(|target| Arc::ptr_eq(target, flow))
    };
    let routing = &config.routing;
    for (command, target) in &routing.commands {
        if targets(target) {
            let _ = writeln!(out, "  routed from: the command {command}");
        }
    }
    for keyword in &routing.keywords {
        if targets(&keyword.flow) {
            let _ = writeln!(out, "  routed from: the keyword /{}/", keyword.pattern);
        }
    }
    if routing.default_flow.as_deref().is_some_and(targets) {
        let _ = writeln!(out, "  routed from: anything else (routing.default_flow)");
    }
    out.push('\n');
}
