//! The `config.…` values a flow reads, and which of them the config leaves unset. The tutorial's
//! flows read `config.oncall.team_group`, which the tutorial's config never sets: the step then
//! fails at 3 a.m. instead of at `aofctl validate`. Both `validate` (as errors) and start-up (as
//! warnings) report them, each with the flow file, the step and the key to add.

use crate::config::Config;
use regex::Regex;
use serde_json::Value;
use std::path::Path;
use std::sync::LazyLock;

/// One `config.…` path an expression of a flow reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRead {
    /// Where in the flow: `steps[3] `notify-team`: input.group_id`.
    pub location: String,
    /// The path under `config`, dotted: `oncall.team_group`.
    pub key: String,
}

/// A value a flow reads that the config does not set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsetConfig {
    /// The flow file.
    pub file: String,
    /// Where in the flow (step and field).
    pub location: String,
    /// The path under `config` the flow reads.
    pub key: String,
    /// What to add to the config.
    pub fix: String,
}

impl std::fmt::Display for UnsetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: reads `config.{}`, which the config does not set; {}",
            self.file, self.location, self.key, self.fix
        )
    }
}

/// `config.a.b` (or `config['a'].b` is not used by flows; dotted paths are what the tutorial writes).
static CONFIG_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bconfig((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").expect("a valid regex")
});

/// The `config.…` paths an expression reads, dotted, without the `config.` prefix.
pub fn paths_in(expression: &str) -> impl Iterator<Item = String> + '_ {
    CONFIG_PATH
        .captures_iter(expression)
        .map(|c| c[1].trim_start_matches('.').to_owned())
}

/// Every `config.…` value the flows read (each flow's file with its reads) that `config` leaves
/// unset, in flow and step order, each key once per step.
pub fn unset<'a>(
    flows: impl IntoIterator<Item = (&'a Path, &'a [ConfigRead])>,
    config: &Config,
) -> Vec<UnsetConfig> {
    let view = config.expression_view();
    let mut found = Vec::new();
    for (file, reads) in flows {
        for read in reads {
            if is_set(&view, &read.key) || needless(config, &read.key) {
                continue;
            }
            found.push(UnsetConfig {
                file: file.display().to_string(),
                location: read.location.clone(),
                key: read.key.clone(),
                fix: fix_for(&view, &read.key),
            });
        }
    }
    found
}

/// Whether the view has a non-empty value at `key` (a list reads as set, empty or not: `length`
/// and loops over it work).
fn is_set(view: &Value, key: &str) -> bool {
    let mut at = view;
    for part in key.split('.') {
        match at.get(part) {
            Some(next) => at = next,
            // A method or attribute of a list or string (`config.people.length`) is not a key.
            None => return at.is_array() || at.is_string(),
        }
    }
    match at {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

/// Values whose absence the agents handle by design: without a PagerDuty schedule the on-call
/// manager answers from the static rota.
fn needless(config: &Config, key: &str) -> bool {
    key == "oncall.schedule_id" && !config.platforms.whatsapp.oncall.static_oncall.is_empty()
}

fn fix_for(view: &Value, key: &str) -> String {
    let top = key.split('.').next().unwrap_or_default();
    if view.get(top).is_none() {
        let keys: Vec<String> = view
            .as_object()
            .map(|o| o.keys().map(|k| format!("config.{k}")).collect())
            .unwrap_or_default();
        return format!("flows can read {}; fix the expression", keys.join(", "));
    }
    match key {
        "oncall.team_group" => {
            "add `platforms.whatsapp.oncall.team_group: sre-team` and the group's \
             members under `platforms.whatsapp.groups.sre-team`"
                .into()
        }
        "oncall.schedule_id" => "add `platforms.whatsapp.oncall.schedule_id` (the PagerDuty \
             schedule) or a `platforms.whatsapp.oncall.static_oncall` rota"
            .into(),
        other => format!("add `platforms.whatsapp.{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_read_from_expressions() {
        let found: Vec<String> =
            paths_in("{{ config.oncall.team_group }} and {{ config.people | length }}").collect();
        assert_eq!(found, ["oncall.team_group", "people"]);
        assert_eq!(paths_in("{{ myconfig.x }}").count(), 0);
    }

    #[test]
    fn null_and_empty_strings_are_unset_lists_are_set() {
        let view = json!({ "oncall": { "team_group": null, "schedule_id": "" }, "people": [] });
        assert!(!is_set(&view, "oncall.team_group"));
        assert!(!is_set(&view, "oncall.schedule_id"));
        assert!(!is_set(&view, "oncall.nothing"));
        assert!(is_set(&view, "people"));
        assert!(is_set(&view, "people.length"));
        let set = json!({ "oncall": { "team_group": "sre" } });
        assert!(is_set(&set, "oncall.team_group"));
    }
}
