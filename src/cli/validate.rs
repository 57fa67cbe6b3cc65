//! `aofctl validate --config FILE`: loads the config and every flow and reports every problem at
//! once, like a compiler: the file, line and column, the key path, what is wrong and how to fix it,
//! with the line it is on. The checks are the server's own (`config::check_str`,
//! `FlowSet::load_dir`); validate adds the positions, and treats a routing entry that names a
//! missing flow as an error (the server only warns, and answers such a message with "not set up").

use crate::agents::Registry;
use crate::config::locate::{Locations, Position};
use crate::config::{self, Config, ConfigError};
use crate::flow::expr::Expressions;
use crate::flow::FlowSet;
use annotate_snippets::{Level, Renderer, Snippet};
use std::path::Path;

/// One problem, placed in its file.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The file it is in.
    pub file: String,
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// The key path (`routing.keywords[0].pattern`, `steps[2]`).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The result of a check: the findings, and the files' texts to show them in.
#[derive(Debug, Default)]
pub struct Report {
    /// Every problem, config first, then flows in file order.
    pub findings: Vec<Finding>,
    /// How many flows loaded (when the config did).
    pub flows: usize,
    sources: Vec<Source>,
}

/// A file read for the check: its text, and where its keys are (read once per file).
#[derive(Debug)]
struct Source {
    file: String,
    text: String,
    at: Locations,
}

impl Report {
    fn source(&self, file: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.file == file)
    }

    fn text_of(&self, file: &str) -> Option<&str> {
        self.source(file).map(|s| s.text.as_str())
    }

    /// Keeps `file`'s text (read once) for positions and snippets.
    fn read(&mut self, file: &str, text: String) {
        if self.source(file).is_none() {
            let at = Locations::of(&text);
            self.sources.push(Source {
                file: file.to_owned(),
                text,
                at,
            });
        }
    }

    fn add(&mut self, file: &str, key: &str, message: String, position: Option<Position>) {
        let position =
            position.or_else(|| self.source(file).and_then(|source| source.at.find(key)));
        self.findings.push(Finding {
            file: file.to_owned(),
            position,
            key: key.to_owned(),
            message,
        });
    }
}

/// Checks the config at `path` and its flows; `env` resolves `${VAR}`.
pub fn check(path: &Path, env: config::EnvLookup<'_>) -> Report {
    let file = path.display().to_string();
    let mut report = Report::default();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            let message = format!("cannot read it: {e}; check the path given to --config");
            report.add(&file, "(file)", message, None);
            return report;
        }
    };
    report.read(&file, text.clone());
    match config::check_str(&file, &text, env) {
        Ok((config, problems)) => {
            for problem in &problems {
                report.add(&file, &problem.key, problem.message.clone(), None);
            }
            if let Some(config) = config {
                check_flows(&config, &mut report);
            }
        }
        Err(ConfigError::Yaml {
            line,
            column,
            message,
            ..
        }) => {
            let position = (line > 0).then_some(Position { line, column });
            let message = format!("YAML syntax error: {message}; fix the YAML there");
            report.add(&file, "(syntax)", message, position);
        }
        Err(e) => report.add(&file, "(file)", e.to_string(), None),
    }
    report
}

fn check_flows(config: &Config, report: &mut Report) {
    let whatsapp = &config.platforms.whatsapp;
    let loaded = FlowSet::load_dir(
        &config.flows.directory,
        &Registry::builtin(),
        &Expressions::new(),
        &whatsapp.templates,
    );
    let file = config.file.display().to_string();
    let flows = match loaded {
        Ok(flows) => flows,
        Err(e) => {
            for problem in &e.problems {
                if report.source(&problem.file).is_none() {
                    let text = std::fs::read_to_string(&problem.file).unwrap_or_default();
                    report.read(&problem.file, text);
                }
                // `steps[2] `notify-team``: the key path is the first word.
                let key = problem.location.split_whitespace().next().unwrap_or("");
                report.add(&problem.file, key, problem.message.clone(), None);
            }
            return;
        }
    };
    report.flows = flows.len();
    for unset in flows.unset_config(config) {
        if report.source(&unset.file).is_none() {
            let text = std::fs::read_to_string(&unset.file).unwrap_or_default();
            report.read(&unset.file, text);
        }
        // `steps[3] `notify-team`: input.group_id` is at the key path `steps[3].input.group_id`.
        let step = unset.location.split_whitespace().next().unwrap_or("");
        let key = match unset.location.split_once(": ") {
            Some((_, field)) => format!("{step}.{field}"),
            None => step.to_owned(),
        };
        let message = format!(
            "{}: reads `config.{}`, which the config does not set; {}",
            unset.location, unset.key, unset.fix
        );
        report.add(&unset.file, &key, message, None);
    }
    let mut names: Vec<&str> = flows
        .iter()
        .flat_map(|f| [f.name(), f.stem.as_str()])
        .collect();
    names.sort();
    names.dedup();
    let expected = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    for (key, flow) in config.routing.targets() {
        if flows.get(flow).is_none() {
            let hint = config::suggestion(
                flow,
                &expected,
                "add the flow, or name one of the flows listed by `aofctl flows list`",
            );
            let message = format!(
                "names flow `{flow}`, which is not in {}; {hint}",
                config.flows.directory.display()
            );
            report.add(&file, &key, message, None);
        }
    }
}

/// The findings as a compiler would print them, each with its line, and a last line that counts them.
pub fn render(report: &Report) -> String {
    let renderer = Renderer::plain();
    let mut out = String::new();
    for finding in &report.findings {
        let title = format!("{}: {}", finding.key, finding.message);
        let origin = format!("in {}", finding.file);
        let text = report.text_of(&finding.file).unwrap_or("");
        let line_text = finding
            .position
            .and_then(|p| text.lines().nth(p.line.saturating_sub(1)).map(|l| (p, l)));
        let rendered = match line_text {
            Some((p, line)) => {
                let span = key_span(line, p.column);
                let snippet = Snippet::source(line)
                    .line_start(p.line)
                    .origin(&finding.file)
                    .annotation(Level::Error.span(span).label(""));
                renderer
                    .render(Level::Error.title(&title).snippet(snippet))
                    .to_string()
            }
            None => renderer
                .render(
                    Level::Error
                        .title(&title)
                        .footer(Level::Note.title(&origin)),
                )
                .to_string(),
        };
        out.push_str(&rendered);
        out.push_str("\n\n");
    }
    let files = report.sources.len().max(1);
    match report.findings.len() {
        0 => out.push_str(&format!(
            "ok: the config and its {} flows are valid\n",
            report.flows
        )),
        n => out.push_str(&format!(
            "{n} problem{} found in {files} file{}\n",
            if n == 1 { "" } else { "s" },
            if files == 1 { "" } else { "s" }
        )),
    }
    out
}

/// The bytes of `line` to underline: from `column` to the end of the key (up to `:`), or the rest;
/// never empty and never past the line (a position at its end underlines its last character).
fn key_span(line: &str, column: usize) -> std::ops::Range<usize> {
    let start = line
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    let rest = &line[start..];
    let len = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(str::len))
        .unwrap_or(rest.trim_end().len());
    match len {
        0 if start > 0 => {
            let last = line[..start].char_indices().last().map_or(0, |(i, _)| i);
            last..start
        }
        0 => 0..line.len().min(1),
        len => start..start + len,
    }
}

#[cfg(test)]
mod tests {
    use super::key_span;

    #[test]
    fn the_span_covers_the_key_and_stays_inside_the_line() {
        assert_eq!(key_span("  prot: 8080", 3), 2..6);
        assert_eq!(key_span("    \"PING\": \"x\"", 5), 4..10);
        assert_eq!(key_span("  - pattern", 5), 4..11);
        assert_eq!(key_span("abc", 9), 2..3);
        assert_eq!(key_span("", 1), 0..0);
    }
}
