//! Errors of loading the config and of rendering a message template.
//!
//! Every message names where (file, key path), what is wrong, and what to do, so that
//! `aofctl trigger serve` can print it as is and stop.

use std::fmt;
use std::io;

/// Why the config could not be loaded; the binary prints it and refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be opened or read.
    #[error("cannot read {file}: {reason}; check the path given to --config")]
    Read {
        /// The path as given.
        file: String,
        /// What the operating system said (in the message, not a separate cause, so it prints once).
        reason: io::Error,
    },

    /// The text is not YAML; nothing else can be checked until it is.
    #[error("{file}:{line}:{column}: YAML syntax error: {message}; fix the YAML there (indentation, quotes, brackets, repeated keys)")]
    Yaml {
        /// The path as given.
        file: String,
        /// 1-based line of the error (0 when the parser gave none).
        line: usize,
        /// 1-based column of the error (0 when the parser gave none).
        column: usize,
        /// The parser's message.
        message: String,
    },

    /// The YAML parsed but its content is wrong; every problem found is listed, not just the first.
    #[error("{}", ProblemLines { file, problems })]
    Invalid {
        /// The path as given.
        file: String,
        /// One entry per problem, in the order found.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`], so tests and callers can look at them one by one.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// One thing wrong with the config, at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a key path: `platforms.whatsapp.access_token`, `routing.keywords[0].pattern`.
    pub key: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Problem {
    /// Builds a problem at `key`; a short constructor because validation makes many of them.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Prints one `{file}: {key}: {message}` line per problem, as compilers do, so editors can jump there.
struct ProblemLines<'a> {
    file: &'a str,
    problems: &'a [Problem],
}

impl fmt::Display for ProblemLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {}: {}", self.file, problem.key, problem.message)?;
        }
        Ok(())
    }
}

/// Why a message template could not be rendered; the caller adds the template's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Meta refuses a template message whose parameter count differs from its placeholders (error
    /// 132000), so a local render refuses it too.
    #[error("the template has {expected} placeholder(s) but {given} parameter(s) were given; pass exactly {expected}")]
    ParameterCount {
        /// Placeholders in the body (`{{1}}` .. `{{N}}`).
        expected: usize,
        /// Parameters passed.
        given: usize,
    },

    /// The body is not a valid template (for example a stray `{{#`); fix the body in the config.
    #[error(
        "the template body cannot be rendered: {0}; fix the body in platforms.whatsapp.templates"
    )]
    Body(String),
}
