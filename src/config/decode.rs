//! Typed deserialization of the expanded YAML tree, with serde's errors turned into [`Problem`]s that
//! carry the key path and a fix ("did you mean `rate_limits`?").
//!
//! serde stops at the first error; [`decode_all`] takes the key at fault out and decodes again, so
//! that all of them are reported at once. The checks in [`validate`](super::validate) then collect
//! the others.

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

/// Like [`decode`], but goes on after a problem: the key at fault is taken out of the tree and the
/// rest is decoded again, so that every unknown key and wrong value is reported at once. Stops at a
/// problem whose key is not in the tree (a missing key), or after 50. The value is what decoded once
/// the faulty keys were out, if anything did, so that later checks can still look at the rest.
pub(super) fn decode_all<T: DeserializeOwned>(
    mut tree: Value,
    from_env: &BTreeSet<String>,
) -> (Option<T>, Vec<Problem>) {
    let mut problems = Vec::new();
    loop {
        match decode::<T>(tree.clone(), from_env) {
            Ok(value) => return (Some(value), problems),
            Err(problem) => {
                if problems
                    .last()
                    .is_some_and(|p: &Problem| p.key == problem.key)
                {
                    // What was taken out left a gap the decoder trips over: nothing new there.
                    return (None, problems);
                }
                let removed = remove(&mut tree, &problem.key);
                problems.push(problem);
                if !removed || problems.len() >= 50 {
                    return (None, problems);
                }
            }
        }
    }
}

/// Takes the node at `key` (`a.b[2].c`) out of `tree`; false when there is none.
fn remove(tree: &mut Value, key: &str) -> bool {
    let mut steps: Vec<Result<&str, usize>> = Vec::new();
    for part in key.split('.') {
        let (name, indices) = part.split_once('[').map_or((part, ""), |(n, i)| (n, i));
        if !name.is_empty() {
            steps.push(Ok(name));
        }
        for index in indices.split('[') {
            match index.trim_end_matches(']').parse() {
                Ok(i) => steps.push(Err(i)),
                Err(_) if index.is_empty() => {}
                Err(_) => return false,
            }
        }
    }
    let Some((last, path)) = steps.split_last() else {
        return false;
    };
    let mut node = tree;
    for step in path {
        let next = match step {
            Ok(name) => node.get_mut(*name),
            Err(i) => node.get_mut(*i),
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    match (last, node) {
        (Ok(name), Value::Mapping(map)) => map.remove(*name).is_some(),
        (Err(i), Value::Sequence(items)) if *i < items.len() && !items[*i].is_null() => {
            // Replaced, not removed, so that the other items keep the index problems name.
            items[*i] = Value::Null;
            true
        }
        _ => false,
    }
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
pub(crate) fn suggestion(name: &str, expected: &str, otherwise: &str) -> String {
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
