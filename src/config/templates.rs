//! WhatsApp message templates: the built-in bodies, merging the config's over them, counting
//! placeholders, and rendering a body locally.
//!
//! Meta renders template messages itself; we render them too, for the sandbox, for fallback
//! channels and previews, and to check at load time that a flow passes as many parameters as a
//! template has placeholders. Meta writes placeholders `{{1}}`, `{{2}}`, which handlebars would read
//! as number literals, so a body is rewritten to `{{p1}}`, `{{p2}}` before handlebars sees it.

use super::defaults;
use super::error::TemplateError;
use regex::Regex;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// A template as registered with Meta: the language code the send API needs and the body text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDef {
    /// Meta looks a template up by name and language; a wrong code is error 132001.
    #[serde(default = "defaults::template_language")]
    pub language: String,
    /// The body with Meta's `{{1}}` .. `{{N}}` placeholders.
    pub body: String,
    /// Quick-reply buttons registered with the template (`ACK`, `ESC`): a tap arrives as a `button`
    /// message whose text is routed like a typed command. Meta allows up to 10, 25 characters each.
    #[serde(default)]
    pub quick_replies: Vec<String>,
    /// The body compiled once, on first use: every paged person's message preview renders it.
    #[serde(skip)]
    compiled: std::sync::OnceLock<std::sync::Arc<handlebars::Handlebars<'static>>>,
}

/// Meta's placeholder, `{{1}}`; spaces inside the braces are tolerated.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{\s*(\d+)\s*\}\}").expect("the placeholder pattern is a valid regex")
});

/// Anything in double braces, to find what is not a placeholder.
static ANY_MUSTACHE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{.*?\}\}").expect("the braces pattern is a valid regex"));

/// `config/templates.yaml`, compiled in so the binary needs no file beside it to send alerts.
static BUILTINS: LazyLock<BTreeMap<String, TemplateDef>> = LazyLock::new(|| {
    serde_yaml::from_str(include_str!("../../config/templates.yaml"))
        .expect("config/templates.yaml is embedded at build time and a unit test proves it parses")
});

/// The built-in templates, parsed once.
pub(super) fn builtins() -> &'static BTreeMap<String, TemplateDef> {
    &BUILTINS
}

/// Deserializes `platforms.whatsapp.templates` as the built-ins with the config's entries on top,
/// so a config that adds one template keeps the four that flows rely on.
pub(super) fn merge_over_builtins<'de, D>(
    deserializer: D,
) -> Result<BTreeMap<String, TemplateDef>, D::Error>
where
    D: Deserializer<'de>,
{
    let given = BTreeMap::<String, TemplateDef>::deserialize(deserializer)?;
    let mut merged = builtins().clone();
    merged.extend(given);
    Ok(merged)
}

impl TemplateDef {
    /// The highest N among the body's `{{N}}`: how many parameters a send must carry.
    pub fn placeholders(&self) -> usize {
        numbers(&self.body).last().copied().unwrap_or(0)
    }

    /// Renders the body with `params[0]` for `{{1}}` and so on, without HTML escaping (WhatsApp
    /// shows text, not HTML). The parameter count must match, as Meta would insist.
    pub fn render(&self, params: &[String]) -> Result<String, TemplateError> {
        let expected = self.placeholders();
        if params.len() != expected {
            return Err(TemplateError::ParameterCount {
                expected,
                given: params.len(),
            });
        }
        let data: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("p{}", i + 1), serde_json::Value::String(p.clone())))
            .collect();
        let registry = self.compiled.get_or_init(|| {
            let mut registry = handlebars::Handlebars::new();
            registry.register_escape_fn(handlebars::no_escape);
            registry.set_strict_mode(true);
            // A body that does not compile is refused at load (`problems`); here it renders as an error.
            let _ = registry.register_template_string(BODY, handlebars_source(&self.body));
            std::sync::Arc::new(registry)
        });
        registry
            .render(BODY, &data)
            .map_err(|e| TemplateError::Body(e.to_string()))
    }
}

/// The name of the one template in a [`TemplateDef`]'s registry.
const BODY: &str = "body";

/// Every placeholder number in a body, sorted and without repeats.
fn numbers(body: &str) -> Vec<usize> {
    let set: BTreeSet<usize> = PLACEHOLDER
        .captures_iter(body)
        .filter_map(|c| c[1].parse().ok())
        .collect();
    set.into_iter().collect()
}

/// The body with `{{N}}` rewritten to `{{pN}}`, which handlebars reads as a variable.
fn handlebars_source(body: &str) -> String {
    PLACEHOLDER.replace_all(body, "{{p$1}}").into_owned()
}

/// What is wrong with a template, for load-time validation: Meta numbers placeholders `{{1}}` to
/// `{{N}}` with none skipped, and the body must be a template handlebars can render.
pub(super) fn problems(def: &TemplateDef) -> Vec<String> {
    let mut found = Vec::new();
    if def.body.trim().is_empty() {
        found.push("the body is empty; write the text registered with Meta".to_owned());
    }
    if def.language.trim().is_empty() {
        found.push(
            "the language is empty; write the code registered with Meta, e.g. en_US".to_owned(),
        );
    }
    if def.quick_replies.len() > 10 {
        found.push(format!(
            "{} quick replies; Meta allows at most 10 per template",
            def.quick_replies.len()
        ));
    }
    for reply in &def.quick_replies {
        let length = reply.trim().chars().count();
        if length == 0 || length > 25 {
            found.push(format!(
                "quick reply `{reply}` must be 1 to 25 characters, as Meta requires"
            ));
        }
    }
    let used = numbers(&def.body);
    if used.first() == Some(&0) {
        found.push(
            "{{0}} is not a placeholder: Meta numbers them from {{1}}; renumber them".to_owned(),
        );
    }
    let max = used.last().copied().unwrap_or(0);
    let missing: Vec<String> = (1..=max)
        .filter(|n| used.binary_search(n).is_err())
        .map(|n| format!("{{{{{n}}}}}"))
        .collect();
    if !missing.is_empty() {
        found.push(format!(
            "placeholder(s) {} missing: Meta requires {{{{1}}}}..{{{{{max}}}}} with none skipped; renumber them",
            missing.join(", ")
        ));
    }
    for other in ANY_MUSTACHE.find_iter(&def.body).map(|m| m.as_str()) {
        if !PLACEHOLDER.is_match(other) {
            found.push(format!(
                "`{other}` is not a placeholder: Meta has only numbered ones ({{{{1}}}}, {{{{2}}}}, ...); number it or remove it"
            ));
        }
    }
    if found.is_empty() {
        let dummy: Vec<String> = (1..=max).map(|n| format!("x{n}")).collect();
        if let Err(e) = def.render(&dummy) {
            found.push(e.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(params: &[&str]) -> Vec<String> {
        params.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_ops_alert_template_renders_four_parameters_without_html_escaping() {
        let params = strings(&[
            "CRITICAL",
            "api-server",
            "latency <500ms> & errors",
            "10:00 UTC",
        ]);
        let text = builtins()["ops_alert"].render(&params).unwrap();
        assert_eq!(
            text,
            "🚨 *CRITICAL Alert*\n\nService: api-server\nMessage: latency <500ms> & errors\n\
             Time: 10:00 UTC\n\nReply with:\n• ACK - Acknowledge\n• ESC - Escalate\n• INFO - More details"
        );
    }

    #[test]
    fn rendering_with_the_wrong_parameter_count_is_refused() {
        let t = &builtins()["ops_notification"];
        let err = t.render(&strings(&["only one"])).unwrap_err();
        assert_eq!(
            err,
            TemplateError::ParameterCount {
                expected: 2,
                given: 1
            }
        );
        assert_eq!(
            t.render(&strings(&["Info", "Done"])).unwrap(),
            "ℹ️ *Info*\n\nDone"
        );
    }

    #[test]
    fn placeholders_count_the_highest_number() {
        let def = |body: &str| TemplateDef {
            language: "en_US".into(),
            body: body.into(),
            quick_replies: Vec::new(),
            compiled: Default::default(),
        };
        assert_eq!(def("no placeholders").placeholders(), 0);
        assert_eq!(def("{{2}} {{1}} {{2}}").placeholders(), 2);
        let counts: Vec<(&str, usize)> = builtins()
            .iter()
            .map(|(name, t)| (name.as_str(), t.placeholders()))
            .collect();
        let expected = [
            ("deployment_approval", 4),
            ("incident_update", 4),
            ("ops_alert", 4),
            ("ops_notification", 2),
        ];
        assert_eq!(counts, expected);
    }

    #[test]
    fn quick_replies_are_checked_as_meta_would() {
        let with = |replies: &[&str]| TemplateDef {
            language: "en_US".into(),
            body: "{{1}}".into(),
            quick_replies: strings(replies),
            compiled: Default::default(),
        };
        assert!(problems(&with(&["ACK", "ESC"])).is_empty());
        let long = problems(&with(&["Acknowledge this alert right now"]));
        assert!(long[0].contains("1 to 25 characters"), "{long:?}");
        let many = problems(&with(&["x"; 11]));
        assert!(many[0].contains("at most 10"), "{many:?}");
        assert_eq!(
            builtins()["ops_alert"].quick_replies,
            ["ACK", "ESC", "INFO"]
        );
    }

    #[test]
    fn the_built_in_templates_have_no_problems() {
        for (name, def) in builtins() {
            assert_eq!(problems(def), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_expanded_again() {
        let out = builtins()["ops_notification"]
            .render(&strings(&["{{2}}", "x"]))
            .unwrap();
        assert_eq!(out, "ℹ️ *{{2}}*\n\nx");
    }
}
