//! The `aofctl` subcommands besides `trigger serve`: what they print is built here, as text, so
//! that tests can check it without a terminal.

pub mod flows;
pub mod simulate;
pub mod validate;
