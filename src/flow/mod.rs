//! AgentFlows: loading a directory of them ([`load`]), the config values they read
//! ([`config_reads`]), their Jinja expressions ([`expr`]), the static
//! route table built from the config and the flows' triggers ([`routes`]), input checks ([`input`]),
//! and the engine that runs them and their steps ([`engine`]), reloaded on change ([`watch`]).

pub mod config_reads;
pub mod engine;
pub mod expr;
pub mod input;
pub mod load;
pub mod model;
pub mod routes;
mod visit;
pub mod watch;

pub use engine::FlowEngine;
pub use load::{FlowLoadError, FlowProblem, FlowSet, LoadedFlow};
pub use routes::Routes;
