//! Flow expressions: Jinja2 through minijinja, as the tutorial writes them.
//!
//! Step ids contain hyphens (`steps.find-active-alert.output`), which Jinja reads as subtraction, so
//! [`rewrite_step_refs`] turns `steps.a-b` into `steps["a-b"]` once, when a flow loads, for the flow's
//! own step ids; any other id is a load error. A string that is one `{{ expression }}` evaluates to a
//! typed value (a list stays a list); any other string renders to text.
//!
//! Templates compile once: [`Expressions`] keeps each template it renders, compiled, under its own
//! text, so a flow step's text is lexed and parsed on its first run only. Flow texts are few and
//! fixed per flow set; `MAX_COMPILED` bounds what hot reloads can leave behind.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use minijinja::value::{Kwargs, Rest};
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior, Value};
use regex::Regex;
use std::collections::HashSet;
use std::sync::{LazyLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many compiled templates [`Expressions`] keeps. When one more is needed the cache starts
/// over, so texts of flows that hot reloads replaced cannot pile up; the shipped flows use a few
/// dozen.
const MAX_COMPILED: usize = 1024;

/// Why an expression failed to render.
#[derive(Debug, Clone, thiserror::Error)]
#[error("expression `{source_text}`: {message}")]
pub struct ExprError {
    /// The expression or template as written (after the step-id rewrite).
    pub source_text: String,
    /// minijinja's explanation.
    pub message: String,
}

/// The shared minijinja environment with the tutorial's functions and filters, and the templates
/// it has compiled (shared by every run, on every thread, across hot reloads).
pub struct Expressions {
    compiled: RwLock<Compiled>,
}

/// The environment, which also holds the compiled templates, each named by its own text.
struct Compiled {
    env: Environment<'static>,
    /// Templates added to `env` since it was last cleared.
    templates: usize,
}

impl Default for Expressions {
    fn default() -> Self {
        Self::new()
    }
}

impl Expressions {
    /// An environment with `now()`, `format_time`, `add_hours` and a `map` that takes an attribute name.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.add_function("now", now);
        env.add_filter("format_time", format_time);
        env.add_filter("add_hours", add_hours);
        env.add_filter("map", map_attribute);
        // Templates are named by their text, which must not switch on escaping as a `.html` or
        // `.json` file name would; a one-off render (`<string>`) never escapes either.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        Expressions {
            compiled: RwLock::new(Compiled { env, templates: 0 }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Compiled> {
        self.compiled.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Compiled> {
        self.compiled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Renders a template, compiling it the first time its text is seen.
    fn render_template(&self, text: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        {
            let compiled = self.read();
            if let Ok(template) = compiled.env.get_template(text) {
                return template.render(ctx);
            }
        }
        let mut compiled = self.write();
        if compiled.env.get_template(text).is_err() {
            if compiled.templates >= MAX_COMPILED {
                compiled.env.clear_templates();
                compiled.templates = 0;
            }
            compiled
                .env
                .add_template_owned(text.to_owned(), text.to_owned())?;
            compiled.templates += 1;
        }
        let rendered = compiled.env.get_template(text)?.render(ctx);
        rendered
    }

    /// How many compiled templates are kept now.
    #[cfg(test)]
    fn compiled_templates(&self) -> usize {
        self.read().templates
    }

    /// Checks that a string parses (as an expression when it is one `{{ }}`, else as a template).
    pub fn check(&self, text: &str) -> Result<(), String> {
        match single_expression(text) {
            Some(expr) => self
                .read()
                .env
                .compile_expression(expr)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => self
                .read()
                .env
                .template_from_str(text)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Evaluates a string: typed when it is one `{{ expression }}`, rendered text otherwise.
    pub fn eval_str(&self, text: &str, ctx: &Value) -> Result<serde_json::Value, ExprError> {
        let err = |e: minijinja::Error| ExprError {
            source_text: text.to_owned(),
            message: detailed(&e, text),
        };
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(serde_json::Value::String(text.to_owned()));
        }
        match single_expression(text) {
            Some(expr) => {
                let value = self
                    .read()
                    .env
                    .compile_expression(expr)
                    .and_then(|e| e.eval(ctx))
                    .map_err(err)?;
                Ok(to_json(&value))
            }
            None => self
                .render_template(text, ctx)
                .map(|s| serde_json::Value::String(tidy(&s)))
                .map_err(err),
        }
    }

    /// Renders a string to text, whatever it holds.
    pub fn render(&self, text: &str, ctx: &Value) -> Result<String, ExprError> {
        Ok(match self.eval_str(text, ctx)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    /// Renders every string inside a JSON value (objects and lists recursively).
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &Value,
    ) -> Result<serde_json::Value, ExprError> {
        Ok(match value {
            serde_json::Value::String(s) => self.eval_str(s, ctx)?,
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v, ctx)?)))
                    .collect::<Result<_, ExprError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Evaluates a condition: true unless it renders to something falsy (`false`, empty, `0`, none).
    pub fn truthy(&self, text: &str, ctx: &Value) -> Result<bool, ExprError> {
        Ok(crate::agents::is_truthy(&self.eval_str(text, ctx)?))
    }
}

/// A minijinja value as JSON (undefined becomes null).
pub fn to_json(value: &Value) -> serde_json::Value {
    if value.is_undefined() {
        return serde_json::Value::Null;
    }
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The inner expression when `text` is exactly one `{{ … }}`.
fn single_expression(text: &str) -> Option<&str> {
    let t = text.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !t.contains("{%")).then_some(inner.trim())
}

/// minijinja's error with its detail (line and what was expected). An error without detail names
/// its template: a compiled template named by its own `text` is shown as `<string>`, the name a
/// one-off render gives, so that the message does not depend on the cache.
fn detailed(e: &minijinja::Error, text: &str) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None if e.name() == Some(text) => {
            format!("{} (in <string>:{})", e.kind(), e.line().unwrap_or(0))
        }
        None => e.to_string(),
    }
}

/// Trims rendered text and folds runs of blank lines that `{% %}` blocks leave behind.
fn tidy(text: &str) -> String {
    static BLANKS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\n[ \t]*(\n[ \t]*){2,}").expect("a valid regex"));
    BLANKS.replace_all(text.trim(), "\n\n").into_owned()
}

/// Drops the line break of lines that hold nothing but one `{% %}` tag, so that loops and
/// conditions on lines of their own leave no blank lines, while a tag at the end of a text line
/// (`{% if svc.latency %} ⏱ …{% endif %}`) keeps that line's break. Applied once, at load.
pub fn standalone_tags(text: &str) -> String {
    static LINE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?m)^[ \t]*(\{%[^%]*%\})[ \t]*\n").expect("a valid regex"));
    LINE.replace_all(text, "$1").into_owned()
}

/// Rewrites `steps.<id>` inside `{{ }}` and `{% %}` to `steps["<id>"]` for hyphenated ids, and
/// reports ids that are not steps of the flow.
pub fn rewrite_step_refs(text: &str, known: &HashSet<String>) -> Result<String, Vec<String>> {
    static BLOCK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").expect("a valid regex"));
    static STEP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\bsteps\.([A-Za-z_][A-Za-z0-9_-]*)").expect("a valid regex"));
    let mut unknown = Vec::new();
    let rewritten = BLOCK.replace_all(text, |block: &regex::Captures| {
        STEP.replace_all(&block[0], |step: &regex::Captures| {
            let id = &step[1];
            if !known.contains(id) {
                unknown.push(id.to_owned());
            }
            format!("steps[\"{id}\"]")
        })
        .into_owned()
    });
    if unknown.is_empty() {
        Ok(rewritten.into_owned())
    } else {
        Err(unknown)
    }
}

/// `now()`: the current time, RFC 3339 in UTC, so that `expires_at > now()` compares as text.
fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `format_time`: an RFC 3339 time as people read it (`2026-11-26 17:02 UTC`), or with a strftime format.
fn format_time(value: Value, format: Option<String>) -> String {
    let text = value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    match parse_time(&text) {
        Some(t) => t
            .format(format.as_deref().unwrap_or("%Y-%m-%d %H:%M UTC"))
            .to_string(),
        None => text,
    }
}

/// `add_hours(n)`: an RFC 3339 time `n` hours later.
fn add_hours(value: Value, hours: f64) -> Result<String, minijinja::Error> {
    let text = value.as_str().unwrap_or_default();
    let t = parse_time(text).ok_or_else(|| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("add_hours: `{text}` is not an RFC 3339 time"),
        )
    })?;
    let later = t + Duration::milliseconds((hours * 3_600_000.0) as i64);
    Ok(later.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `map('name')` takes the attribute `name` of each item (as `map(attribute='name')` does); a
/// filter name such as `map('upper')` still applies that filter.
fn map_attribute(
    state: &State,
    items: Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, minijinja::Error> {
    const FILTERS: [&str; 8] = [
        "upper", "lower", "title", "trim", "string", "int", "float", "length",
    ];
    let attribute: Option<String> = kwargs.get("attribute")?;
    kwargs.assert_all_used()?;
    let by_attribute = attribute.is_some();
    let name = attribute.or_else(|| args.first().and_then(|v| v.as_str().map(str::to_owned)));
    let Some(name) = name else {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::MissingArgument,
            "map needs an attribute name",
        ));
    };
    let mut out = Vec::new();
    for item in items.try_iter()? {
        if !by_attribute && FILTERS.contains(&name.as_str()) {
            out.push(state.apply_filter(&name, &[item])?);
        } else {
            out.push(item.get_attr(&name)?);
        }
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: serde_json::Value) -> Value {
        Value::from_serialize(&v)
    }

    #[test]
    fn hyphenated_step_ids_are_rewritten_and_unknown_ids_reported() {
        let known: HashSet<String> = ["find-active-alert".to_owned()].into();
        let out =
            rewrite_step_refs("Alert: {{ steps.find-active-alert.output.title }}", &known).unwrap();
        assert_eq!(
            out,
            "Alert: {{ steps[\"find-active-alert\"].output.title }}"
        );
        assert_eq!(
            rewrite_step_refs("{{ steps.nope.output }}", &known).unwrap_err(),
            vec!["nope"]
        );
        assert_eq!(
            rewrite_step_refs("steps.outside is text", &known).unwrap(),
            "steps.outside is text"
        );
    }

    #[test]
    fn a_single_expression_keeps_its_type() {
        let e = Expressions::new();
        let c = ctx(
            json!({"steps": {"a-b": {"output": {"users": [{"name": "Alice"}, {"name": "Bob"}]}}}}),
        );
        let users = e.eval_str("{{ steps[\"a-b\"].output.users }}", &c).unwrap();
        assert_eq!(users, json!([{"name": "Alice"}, {"name": "Bob"}]));
        let names = e
            .render(
                "{{ steps[\"a-b\"].output.users | map('name') | join(', ') }}",
                &c,
            )
            .unwrap();
        assert_eq!(names, "Alice, Bob");
    }

    #[test]
    fn tutorial_filters_and_match_groups_work() {
        let e = Expressions::new();
        let c = ctx(json!({"input": {"severity": "critical"}, "match": ["STATUS api", "api"]}));
        assert_eq!(
            e.render("{{ input.severity | upper }}", &c).unwrap(),
            "CRITICAL"
        );
        assert!(e.truthy("{{ input.severity == 'critical' }}", &c).unwrap());
        assert_eq!(e.render("{{ match.1 }}", &c).unwrap(), "api");
        let later = e
            .render("{{ '2026-01-01T00:00:00Z' | add_hours(4) }}", &c)
            .unwrap();
        assert_eq!(later, "2026-01-01T04:00:00Z");
        assert_eq!(
            e.render("{{ '2026-01-01T04:05:00Z' | format_time }}", &c)
                .unwrap(),
            "2026-01-01 04:05 UTC"
        );
        assert!(e
            .truthy("{{ (now() | add_hours(1)) > now() }}", &c)
            .unwrap());
    }

    #[test]
    fn tag_lines_leave_no_blank_lines_but_inline_tags_keep_their_line_break() {
        let e = Expressions::new();
        let c = ctx(json!({"svcs": [{"name": "api", "ms": 3}, {"name": "web", "ms": 0}]}));
        let text = standalone_tags("Status\n{% for s in svcs %}\n* {{ s.name }}\n{% if s.ms %}  {{ s.ms }}ms{% endif %}\n{% endfor %}\nend");
        assert_eq!(
            e.render(&text, &c).unwrap(),
            "Status\n* api\n  3ms\n* web\n\nend"
        );
    }

    #[test]
    fn a_template_compiles_once_and_renders_each_context() {
        let e = Expressions::new();
        let text = "Hi {{ name }}, {% if n > 1 %}{{ n }} alerts{% else %}one alert{% endif %}";
        let first = e
            .render(text, &ctx(json!({"name": "Ana", "n": 3})))
            .unwrap();
        let second = e.render(text, &ctx(json!({"name": "Bo", "n": 1}))).unwrap();
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("Hi Ana, 3 alerts", "Hi Bo, one alert")
        );
        assert_eq!(e.compiled_templates(), 1);
        // Single expressions and plain text are not templates.
        e.render("{{ name }}", &ctx(json!({"name": "Ana"})))
            .unwrap();
        e.render("plain", &ctx(json!({}))).unwrap();
        assert_eq!(e.compiled_templates(), 1);
    }

    #[test]
    fn compiled_templates_fail_with_the_messages_of_a_one_off_render() {
        let e = Expressions::new();
        let c = ctx(json!({"items": [1, 2], "word": "x"}));
        let one_off = |text: &str| {
            let err = e.read().env.render_str(text, &c).unwrap_err();
            match err.detail() {
                Some(detail) => format!("{}: {detail}", err.kind()),
                None => err.to_string(),
            }
        };
        let mut without_detail = 0;
        for text in [
            "a {{ word | no_such_filter }}",
            "a {{ items + 1 }}",
            "a {{ 1 // 0 }}",
            "a {{ word | add_hours(1) }}",
            "a {% for x in %}",
            "a {{ word.nope() }}",
            "a {{ word is no_such_test }}",
            "a {{ -word }}",
            "a\n{{ dict(items) }}",
        ] {
            let expected = one_off(text);
            without_detail += usize::from(expected.contains("(in <string>:"));
            for _ in 0..2 {
                let err = e.render(text, &c).unwrap_err();
                assert_eq!((err.source_text.as_str(), &err.message), (text, &expected));
            }
        }
        assert!(without_detail > 0, "no error named its template");
    }

    #[test]
    fn a_text_that_ends_like_a_file_name_is_not_escaped() {
        let e = Expressions::new();
        let c = ctx(json!({"x": "<b>\"a\"</b>"}));
        for text in ["{{ x }} on index.html", "{{ x }} in data.json"] {
            assert!(
                e.render(text, &c).unwrap().starts_with("<b>\"a\"</b> "),
                "{text}"
            );
        }
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let e = Expressions::new();
        let c = ctx(json!({"v": 7}));
        for i in 0..MAX_COMPILED + 3 {
            assert_eq!(
                e.render(&format!("{i}: {{{{ v }}}}"), &c).unwrap(),
                format!("{i}: 7")
            );
        }
        assert_eq!(e.compiled_templates(), 3);
        assert_eq!(e.render("0: {{ v }}", &c).unwrap(), "0: 7");
    }

    #[test]
    fn threads_share_the_compiled_templates() {
        let e = Expressions::new();
        std::thread::scope(|s| {
            for t in 0..4 {
                let e = &e;
                s.spawn(move || {
                    for i in 0..50 {
                        let c = ctx(json!({"t": t, "i": i}));
                        let text = format!("{} {{{{ t }}}}-{{{{ i }}}}", i % 5);
                        assert_eq!(e.render(&text, &c).unwrap(), format!("{} {t}-{i}", i % 5));
                    }
                });
            }
        });
        assert_eq!(e.compiled_templates(), 5);
    }

    #[test]
    fn missing_values_render_empty_instead_of_failing() {
        let e = Expressions::new();
        let c = ctx(json!({"steps": {}}));
        assert_eq!(e.render("[{{ steps.x.output.title }}]", &c).unwrap(), "[]");
    }
}
