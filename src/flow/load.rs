//! Loading a flow directory: every `*.yaml` is parsed strictly, its expressions rewritten for
//! hyphenated step ids and compiled, and checked against the agent registry and the message
//! templates. Every problem of every file is reported at once, each naming the file and the step.

use super::config_reads::{self, ConfigRead, UnsetConfig};
use super::expr::{rewrite_step_refs, standalone_tags, Expressions};
use super::model::{AgentFlow, Response, Step, TriggerKind, SUBFLOW_AGENT};
use super::visit::visit_strings;
use crate::agents::Registry;
use crate::config::TemplateDef;
use regex::{Regex, RegexBuilder};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One problem in one flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowProblem {
    /// The file.
    pub file: String,
    /// Where in it: `steps[2] notify-team`, `on_response[0]`, `triggers[0].pattern`.
    pub location: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for FlowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.location, self.message)
        }
    }
}

/// Every problem found while loading flows.
#[derive(Debug, Clone, thiserror::Error)]
pub struct FlowLoadError {
    /// The problems, in file order.
    pub problems: Vec<FlowProblem>,
}

impl fmt::Display for FlowLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A flow ready to run: validated, expressions rewritten, trigger patterns compiled.
#[derive(Debug)]
pub struct LoadedFlow {
    /// Where it came from.
    pub file: PathBuf,
    /// The file name without `.yaml` (routing may name a flow by it).
    pub stem: String,
    /// The document, with rewritten expressions.
    pub flow: AgentFlow,
    /// `triggers[].pattern` of message triggers, compiled case-insensitively.
    pub patterns: Vec<Regex>,
    /// The `config.…` values its expressions read (checked against the config at start-up and by
    /// `aofctl validate`).
    pub config_reads: Vec<ConfigRead>,
}

impl LoadedFlow {
    /// The flow's name (`metadata.name`).
    pub fn name(&self) -> &str {
        &self.flow.metadata.name
    }

    /// How many messages of context the flow wants.
    pub fn lookback(&self) -> usize {
        self.flow
            .context
            .as_ref()
            .and_then(|c| c.lookback)
            .unwrap_or(0)
    }

    /// Paths of `type: webhook` triggers.
    pub fn webhook_paths(&self) -> impl Iterator<Item = &str> {
        self.flow
            .triggers
            .iter()
            .filter(|t| t.kind == TriggerKind::Webhook)
            .filter_map(|t| t.path.as_deref())
    }

    /// Whether Alertmanager's payload may start it.
    pub fn takes_alertmanager(&self) -> bool {
        self.flow
            .triggers
            .iter()
            .any(|t| t.kind == TriggerKind::Alertmanager)
    }
}

/// All loaded flows, found by file stem or by `metadata.name`.
#[derive(Debug, Default)]
pub struct FlowSet {
    flows: Vec<Arc<LoadedFlow>>,
    by_name: HashMap<String, usize>,
}

impl FlowSet {
    /// Every `config.…` value a flow reads that `config` leaves unset
    /// ([`config_reads::unset`]): errors for `validate`, warnings at start-up.
    pub fn unset_config(&self, config: &crate::config::Config) -> Vec<UnsetConfig> {
        let reads = self
            .iter()
            .map(|f| (f.file.as_path(), f.config_reads.as_slice()));
        config_reads::unset(reads, config)
    }
    /// A flow by file stem or `metadata.name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedFlow>> {
        self.by_name.get(name).map(|&i| &self.flows[i])
    }

    /// The flow that pages for alerts from other systems (the first with an `alertmanager`
    /// trigger): Alertmanager, Datadog and PagerDuty alerts start it.
    pub fn paging(&self) -> Option<Arc<LoadedFlow>> {
        self.flows.iter().find(|f| f.takes_alertmanager()).cloned()
    }

    /// Every flow, in file-name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedFlow>> {
        self.flows.iter()
    }

    /// How many flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The largest `context.lookback` of any flow.
    pub fn max_lookback(&self) -> usize {
        self.flows.iter().map(|f| f.lookback()).max().unwrap_or(0)
    }

    /// Loads and validates every `*.yaml` in `dir`.
    pub fn load_dir(
        dir: &Path,
        registry: &Registry,
        expressions: &Expressions,
        templates: &BTreeMap<String, TemplateDef>,
    ) -> Result<FlowSet, FlowLoadError> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| FlowLoadError {
            problems: vec![FlowProblem {
                file: shown.clone(),
                location: String::new(),
                message: format!("cannot read the flow directory: {e}; set flows.directory to a folder of AgentFlow YAML files"),
            }],
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let sources = files
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path);
                (path, text)
            })
            .collect::<Vec<_>>();
        let mut problems = Vec::new();
        let mut loaded = Vec::new();
        // Every file that parses, valid or not, so that references are checked in all of them.
        let mut parsed = Vec::new();
        for (path, text) in sources {
            let file = path.display().to_string();
            match text {
                Ok(text) => {
                    if let Ok(doc) = serde_yaml::from_str::<AgentFlow>(&text) {
                        let stem = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        parsed.push((file, stem, doc));
                    }
                    match load_one(&path, &text, registry, expressions, templates) {
                        Ok(flow) => loaded.push(flow),
                        Err(mut p) => problems.append(&mut p),
                    }
                }
                Err(e) => problems.push(FlowProblem {
                    file,
                    location: String::new(),
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        let set = index(loaded, &mut problems);
        check_references(&parsed, &mut problems);
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(FlowLoadError { problems })
        }
    }
}

fn index(flows: Vec<LoadedFlow>, problems: &mut Vec<FlowProblem>) -> FlowSet {
    let mut set = FlowSet::default();
    for flow in flows {
        let i = set.flows.len();
        for key in [flow.stem.clone(), flow.name().to_owned()] {
            if let Some(&other) = set.by_name.get(&key) {
                if other != i {
                    problems.push(FlowProblem {
                        file: flow.file.display().to_string(),
                        location: "metadata.name".into(),
                        message: format!(
                            "the name `{key}` is already used by {}; rename one",
                            set.flows[other].file.display()
                        ),
                    });
                }
                continue;
            }
            set.by_name.insert(key, i);
        }
        set.flows.push(Arc::new(flow));
    }
    set
}

/// Flows named by `on_response` and by `scheduler` steps must exist among the parsed files.
fn check_references(parsed: &[(String, String, AgentFlow)], problems: &mut Vec<FlowProblem>) {
    let names: HashSet<&str> = parsed
        .iter()
        .flat_map(|(_, stem, doc)| [stem.as_str(), doc.metadata.name.as_str()])
        .collect();
    let unknown = |file: &str, location: String, target: &str| FlowProblem {
        file: file.to_owned(),
        location,
        message: format!("unknown flow `{target}`; add it to the flow directory or fix the name"),
    };
    for (file, _, doc) in parsed {
        for (i, r) in doc.on_response.iter().enumerate() {
            if !names.contains(r.flow.as_str()) {
                problems.push(unknown(file, format!("on_response[{i}].flow"), &r.flow));
            }
        }
        for (i, step) in doc
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.agent == "scheduler")
        {
            if let Some(target) = step.input.get("flow").and_then(|v| v.as_str()) {
                if !target.contains("{{") && !names.contains(target) {
                    problems.push(unknown(
                        file,
                        format!("steps[{i}] `{}`: input.flow", step.name),
                        target,
                    ));
                }
            }
        }
    }
}

/// Parses and checks one file.
pub fn load_one(
    path: &Path,
    text: &str,
    registry: &Registry,
    expressions: &Expressions,
    templates: &BTreeMap<String, TemplateDef>,
) -> Result<LoadedFlow, Vec<FlowProblem>> {
    let file = path.display().to_string();
    let problem = |location: String, message: String| FlowProblem {
        file: file.clone(),
        location,
        message,
    };
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        vec![problem(at, format!("not valid YAML: {e}"))]
    })?;
    let mut flow: AgentFlow = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        vec![problem(path, e.into_inner().to_string())]
    })?;
    let mut problems = Vec::new();
    if flow.api_version != "aof.sh/v1alpha1" {
        problems.push(problem(
            "apiVersion".into(),
            format!(
                "`{}` is not supported; use aof.sh/v1alpha1",
                flow.api_version
            ),
        ));
    }
    if flow.kind != "AgentFlow" {
        problems.push(problem(
            "kind".into(),
            format!("`{}` is not an AgentFlow; use kind: AgentFlow", flow.kind),
        ));
    }
    let mut patterns = Vec::new();
    for (i, t) in flow.triggers.iter().enumerate() {
        if let Some(p) = &t.pattern {
            match RegexBuilder::new(p).case_insensitive(true).build() {
                Ok(re) => patterns.push(re),
                Err(e) => problems.push(problem(
                    format!("triggers[{i}].pattern"),
                    format!("invalid regex: {e}"),
                )),
            }
        }
        if t.kind == TriggerKind::Webhook && !t.path.as_deref().is_some_and(|p| p.starts_with('/'))
        {
            problems.push(problem(
                format!("triggers[{i}].path"),
                "a webhook trigger needs a path starting with `/`".into(),
            ));
        }
    }
    for (i, r) in flow.on_response.iter().enumerate() {
        if let Err(e) = Regex::new(&r.pattern) {
            problems.push(problem(
                format!("on_response[{i}].pattern"),
                format!("invalid regex: {e}"),
            ));
        }
    }
    let known: HashSet<String> = flow.steps.iter().map(|s| s.name.clone()).collect();
    let mut seen = HashSet::new();
    for (i, step) in flow.steps.iter().enumerate() {
        if !seen.insert(step.name.clone()) {
            problems.push(problem(
                format!("steps[{i}]"),
                format!("the step name `{}` is used twice", step.name),
            ));
        }
        check_step(i, step, registry, templates, &mut |loc, msg| {
            problems.push(problem(loc, msg))
        });
    }
    let mut config_reads: Vec<ConfigRead> = Vec::new();
    let mut fix = |location: String, text: &mut String| {
        for key in config_reads::paths_in(text) {
            let read = ConfigRead {
                location: location.clone(),
                key,
            };
            if !config_reads.contains(&read) {
                config_reads.push(read);
            }
        }
        match rewrite_step_refs(text, &known) {
            Ok(rewritten) => *text = standalone_tags(&rewritten),
            Err(unknown) => {
                for id in unknown {
                    problems.push(problem(
                        location.clone(),
                        format!(
                            "unknown step id `{id}` in `steps.{id}` (steps: {})",
                            sorted(&known)
                        ),
                    ));
                }
                return;
            }
        }
        if let Err(e) = expressions.check(text) {
            problems.push(problem(location, format!("bad expression: {e}")));
        }
    };
    visit_strings(&mut flow, &mut fix);
    if problems.is_empty() {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(LoadedFlow {
            file: path.to_owned(),
            stem,
            flow,
            patterns,
            config_reads,
        })
    } else {
        Err(problems)
    }
}

fn sorted(set: &HashSet<String>) -> String {
    let mut v: Vec<&str> = set.iter().map(String::as_str).collect();
    v.sort();
    v.join(", ")
}

fn check_step(
    i: usize,
    step: &Step,
    registry: &Registry,
    templates: &BTreeMap<String, TemplateDef>,
    report: &mut dyn FnMut(String, String),
) {
    let at = format!("steps[{i}] `{}`", step.name);
    if step.agent == SUBFLOW_AGENT {
        if step.action != "run" {
            report(
                at,
                format!(
                    "agent `{SUBFLOW_AGENT}` has no action `{}` (actions: run)",
                    step.action
                ),
            );
        }
        return;
    }
    match registry.get(&step.agent) {
        None => report(
            at.clone(),
            format!(
                "unknown agent `{}` (known: {}, {SUBFLOW_AGENT}); {}",
                step.agent,
                registry.names().join(", "),
                crate::config::suggestion(
                    &step.agent,
                    &registry
                        .names()
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    "use one of the known agents"
                )
            ),
        ),
        Some(agent) if !step.action.contains("{{") && !agent.has(&step.action) => report(
            at.clone(),
            format!(
                "agent `{}` has no action `{}` (actions: {})",
                step.agent,
                step.action,
                agent.action_names().join(", ")
            ),
        ),
        Some(_) => {}
    }
    if step.agent == "whatsapp" {
        if let (Some(name), params) = (
            step.input.get("template").and_then(|t| t.as_str()),
            step.input.get("parameters"),
        ) {
            let count = params.and_then(|p| p.as_array()).map_or(0, Vec::len);
            check_template(&format!("{at}: input"), name, count, templates, report);
        }
    }
    let responses = [
        step.on_empty
            .as_ref()
            .map(|e| (&e.response, "on_empty.response")),
        step.on_error
            .as_ref()
            .and_then(|e| e.response.as_ref())
            .map(|r| (r, "on_error.response")),
    ];
    for (response, key) in responses.into_iter().flatten() {
        check_response(&format!("{at}: {key}"), response, templates, report);
    }
}

fn check_response(
    at: &str,
    r: &Response,
    templates: &BTreeMap<String, TemplateDef>,
    report: &mut dyn FnMut(String, String),
) {
    match (&r.text, &r.template) {
        (None, None) => report(at.to_owned(), "needs `text` or `template`".into()),
        (Some(_), Some(_)) => report(
            at.to_owned(),
            "has both `text` and `template`; keep one".into(),
        ),
        (None, Some(name)) => check_template(at, name, r.parameters.len(), templates, report),
        (Some(_), None) => {}
    }
}

fn check_template(
    at: &str,
    name: &str,
    count: usize,
    templates: &BTreeMap<String, TemplateDef>,
    report: &mut dyn FnMut(String, String),
) {
    if name.contains("{{") {
        return;
    }
    match templates.get(name) {
        None => {
            let known: Vec<&str> = templates.keys().map(String::as_str).collect();
            report(at.to_owned(), format!("unknown template `{name}` (templates: {}); add it under platforms.whatsapp.templates", known.join(", ")))
        }
        Some(t) if t.placeholders() != count => report(
            at.to_owned(),
            format!(
                "template `{name}` has {} placeholders but {count} parameters are given",
                t.placeholders()
            ),
        ),
        Some(_) => {}
    }
}
