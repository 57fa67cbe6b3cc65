//! The TriggerConfig through the real `aofctl` binary: the tutorial's config and the shipped ones
//! load, every config mistake stops start-up with one message naming the file, the key path and the
//! fix, the sandbox config serves, and no credential reaches the log.
//!
//! - `loading`: configs loaded in process (the tutorial's, the shipped ones, defaults, the control).
//! - `refusals`: each mistake stops the binary with one error naming the file, the key and the fix.
//! - `binary`: the binary serving a valid config, and keeping credentials out of its log.

mod binary;
mod loading;
mod refusals;
mod support;
