//! [`Secret`]: a token read from the config that cannot end up in a log by accident.
//!
//! Access tokens, the app secret and the verify token enter here from YAML (usually through `${VAR}`)
//! and leave only through [`Secret::expose`], at the one place that signs or sends them. There is no
//! `Display` and no `Serialize`, and `Debug` prints `Secret([redacted])`, so `{:?}` on a whole
//! [`Config`](super::Config) is safe to log.

use serde::Deserialize;
use std::fmt;

/// A credential from the config; readable only through [`Secret::expose`] so every use is greppable.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value, for tests and for values that do not come from YAML.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, to sign, compare or send; never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty, which for a credential means "not configured".
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}
