//! `${VAR}` and `${VAR:-default}` expansion on the parsed YAML tree.
//!
//! Expansion runs on values (never keys) after the text is parsed and before typed deserialization,
//! so a missing variable is reported with the key path it was needed for, and a value containing
//! YAML syntax cannot change the document's shape. `${VAR:-default}` uses the default when `VAR` is
//! unset or empty, as the shell does; `$${` writes a literal `${`. Every missing variable is
//! reported, not just the first.

use super::error::Problem;
use serde_yaml::Value;
use std::collections::BTreeSet;

/// Looks a variable up: `std::env::var(..).ok()` in production, a closure over a map in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands every string value in `tree` in place. On success returns the key paths whose values
/// came (at least partly) from the environment, so a later type error there can say why.
pub(super) fn expand(
    tree: &mut Value,
    env: EnvLookup<'_>,
) -> Result<BTreeSet<String>, Vec<Problem>> {
    let mut walk = Walk {
        env,
        problems: Vec::new(),
        expanded: BTreeSet::new(),
    };
    walk.value(tree, &mut String::new());
    if walk.problems.is_empty() {
        Ok(walk.expanded)
    } else {
        Err(walk.problems)
    }
}

/// The state of one expansion pass: what to look variables up in, and what was found so far.
struct Walk<'a> {
    env: EnvLookup<'a>,
    problems: Vec<Problem>,
    expanded: BTreeSet<String>,
}

impl Walk<'_> {
    /// Visits `value`, whose key path is `path`; `path` is restored before returning.
    fn value(&mut self, value: &mut Value, path: &mut String) {
        match value {
            Value::String(text) => match expand_str(text, self.env) {
                Ok(Some(expanded)) => {
                    *text = expanded;
                    self.expanded.insert(path.clone());
                }
                Ok(None) => {}
                Err(messages) => {
                    let key = if path.is_empty() {
                        "(top level)"
                    } else {
                        path.as_str()
                    };
                    self.problems
                        .extend(messages.into_iter().map(|m| Problem::new(key, m)));
                }
            },
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.value(item, path);
                    path.truncate(len);
                }
            }
            Value::Mapping(map) => {
                for (key, item) in map.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&key_text(key));
                    self.value(item, path);
                    path.truncate(len);
                }
            }
            Value::Tagged(tagged) => self.value(&mut tagged.value, path),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// A mapping key as it appears in a key path.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "~".to_owned(),
        _ => "?".to_owned(),
    }
}

/// Expands the `${...}` in one string: `Ok(None)` when there are none, else the new text, or one
/// message per reference that could not be expanded.
fn expand_str(text: &str, env: EnvLookup<'_>) -> Result<Option<String>, Vec<String>> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let Some(len) = rest[start + 2..].find('}') else {
            errors.push(format!(
                "`{}` has no closing `}}`; write ${{VAR}} or ${{VAR:-default}}, or $${{ for a literal ${{",
                &rest[start..]
            ));
            rest = "";
            break;
        };
        let inner = &rest[start + 2..start + 2 + len];
        rest = &rest[start + 3 + len..];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_var_name(name) {
            errors.push(format!(
                "`${{{inner}}}`: `{name}` is not a variable name (letters, digits and _, not starting with a digit); fix the name"
            ));
            continue;
        }
        match (env(name), default) {
            (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => errors.push(format!(
                "{name} is not set; export it, or give a default with ${{{name}:-value}}, or start with config/sandbox.yaml"
            )),
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Some(out))
    } else {
        Err(errors)
    }
}

/// A shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.com".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn several_references_and_the_text_around_them_are_expanded() {
        let got = expand_str("https://${HOST}:${PORT:-443}/x", &env).unwrap();
        assert_eq!(got.as_deref(), Some("https://example.com:443/x"));
    }

    #[test]
    fn a_default_applies_to_an_empty_variable_and_a_bare_empty_variable_stays_empty() {
        assert_eq!(
            expand_str("${EMPTY:-d}", &env).unwrap().as_deref(),
            Some("d")
        );
        assert_eq!(expand_str("${EMPTY}", &env).unwrap().as_deref(), Some(""));
        assert_eq!(expand_str("${NOPE:-}", &env).unwrap().as_deref(), Some(""));
    }

    #[test]
    fn a_doubled_dollar_writes_a_literal_reference() {
        assert_eq!(
            expand_str("$${HOST}", &env).unwrap().as_deref(),
            Some("${HOST}")
        );
    }

    #[test]
    fn every_missing_variable_in_a_string_is_reported() {
        let errors = expand_str("${A}-${B}", &env).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].starts_with("A is not set"), "{errors:?}");
        assert!(errors[1].starts_with("B is not set"), "{errors:?}");
    }

    #[test]
    fn an_unclosed_reference_and_a_bad_name_are_errors() {
        assert!(expand_str("${HOST", &env).unwrap_err()[0].contains("no closing"));
        assert!(expand_str("${1X}", &env).unwrap_err()[0].contains("not a variable name"));
    }

    #[test]
    fn keys_are_not_expanded_and_paths_name_sequence_items() {
        let mut tree: Value = serde_yaml::from_str("\"${HOST}\": [a, \"${MISSING}\"]").unwrap();
        let problems = expand(&mut tree, &env).unwrap_err();
        assert_eq!(problems[0].key, "${HOST}[1]");
    }
}
