//! Typed deserialization of the expanded YAML tree, with serde's errors turned into [`Problem`]s that
//! carry the key path and a fix ("did you mean `rate_limits`?").
//!
//! serde stops at the first error, so this yields at most one problem; the checks in
//! [`validate`](super::validate) then collect all the others.

use super::error::Problem;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// Deserializes `tree` into `T`; `from_env` lists the key paths whose values came from `${VAR}`.
pub(super) fn decode<T: DeserializeOwned>(
    tree: Value,
    from_env: &BTreeSet<String>,
) -> Result<T, Problem> {
    serde_path_to_error::deserialize(tree).map_err(|err| {
        let path = match err.path().to_string() {
            root if root == "." => String::new(),
            path => path,
        };
        problem(&path, &strip_location(&err.inner().to_string()), from_env)
    })
}

/// Drops every ` at line L column C` serde_yaml writes into its messages: the caller reports the
/// location once, and a tree built from text has no useful marks.
pub(super) fn strip_location(message: &str) -> String {
    static MARK: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r" at line \d+ column \d+").expect("the location pattern is a valid regex")
    });
    MARK.replace_all(message, "").into_owned()
}

/// Rewrites one serde message at `path` into a problem that says what to do.
fn problem(path: &str, message: &str, from_env: &BTreeSet<String>) -> Problem {
    if let Some(name) = quoted_after(message, "unknown field `") {
        let key = child(path, &name);
        let expected = message.split_once(", ").map_or("", |(_, e)| e);
        let text = format!(
            "unknown key `{name}` ({expected}); {}",
            suggestion(&name, expected, "remove it or use one of the expected keys")
        );
        return Problem::new(key, text);
    }
    if let Some(name) = quoted_after(message, "unknown variant `") {
        let expected = message.split_once(", ").map_or("", |(_, e)| e);
        let text = format!(
            "unknown value `{name}` ({expected}); {}",
            suggestion(&name, expected, "use one of the expected values")
        );
        return Problem::new(at(path), text);
    }
    if let Some(name) = quoted_after(message, "missing field `") {
        let parent = if path.is_empty() {
            "the top level"
        } else {
            path
        };
        return Problem::new(
            child(path, &name),
            format!("is required; add `{name}:` under {parent}"),
        );
    }
    if let Some(name) = quoted_after(message, "duplicate field `") {
        return Problem::new(child(path, &name), "is given twice; keep one");
    }
    let hint = if from_env.contains(path) {
        "a value taken from ${VAR} is always a string; write this value literally"
    } else {
        "write a value of the expected type"
    };
    Problem::new(at(path), format!("{message}; {hint}"))
}

/// The key path to report for an error at `path` (the document itself when empty).
fn at(path: &str) -> String {
    if path.is_empty() {
        "(top level)".to_owned()
    } else {
        path.to_owned()
    }
}

/// The key path of `name` under `path`, unless `path` already ends with it.
fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else if path == name || path.ends_with(&format!(".{name}")) {
        path.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The text between `prefix` and the next backtick, when `message` starts with `prefix`.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

/// "did you mean `x`?" for the closest backticked name in `expected`, else `otherwise`.
fn suggestion(name: &str, expected: &str, otherwise: &str) -> String {
    let candidates = expected.split('`').skip(1).step_by(2);
    let best = candidates
        .map(|c| (levenshtein(name, c), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= 2.max(name.chars().count() / 3));
    match best {
        Some((_, c)) => format!("did you mean `{c}`?"),
        None => otherwise.to_owned(),
    }
}

/// Edits (insert, delete, substitute) to turn `a` into `b`; the classic two-row dynamic program.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("rate_limit", "rate_limits"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }

    #[test]
    fn a_far_name_gets_no_suggestion() {
        let s = suggestion("zzzzzz", "expected one of `host`, `port`", "remove it");
        assert_eq!(s, "remove it");
    }
}
