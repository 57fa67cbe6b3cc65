//! The real `aofctl` binary, run as a person runs it ([`common::aofctl`] or a child process):
//! its subcommands, `validate`, `simulate`, config errors at start-up, and `trigger serve` as a
//! process with signals.
//!
//! - `commands`: `flows list`, `--help`, `--version`, a wrong config.
//! - `config_errors`: the TriggerConfig's mistakes, each stopping start-up with one clear message.
//! - `process`: `aofctl trigger serve` logging, ending on SIGINT and SIGTERM, and a kill -9.
//! - `replicas`: three replicas on PostgreSQL: the leader killed mid-storm, a stale leader fenced.
//! - `chaos`: kill -9 at random instants under a mixed load, several cycles: nothing lost.
//! - `simulate`: `aofctl simulate`, which must reach no outside service.
//! - `validate`: `aofctl validate` reporting every mistake with file, line and fix.

mod common;

mod cli {
    mod chaos;
    mod commands;
    mod config_errors;
    mod process;
    mod replicas;
    mod simulate;
    mod validate;
}
