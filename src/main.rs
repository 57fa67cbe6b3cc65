//! `aofctl`: parses the command line, sets up logging, loads the config and runs the bot.

use aof::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A self-hosted WhatsApp on-call and ops bot driven by AgentFlow YAML.
#[derive(Parser)]
#[command(
    name = "aofctl",
    version,
    about,
    after_help = "Examples:\n  aofctl trigger serve --config config/sandbox.yaml\n  aofctl flows list --config config/sandbox.yaml\n  aofctl validate --config config/sandbox.yaml\n  aofctl --log-format json trigger serve --config config/whatsapp-bot.yaml"
)]
struct Cli {
    /// Log format: `pretty` for a terminal, `json` for log shippers.
    #[arg(long, value_enum, default_value = "pretty", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trigger servers.
    #[command(after_help = "Example:\n  aofctl trigger serve --config config/sandbox.yaml")]
    Trigger {
        #[command(subcommand)]
        command: TriggerCommand,
    },
    /// Checks a config and all its flows, and reports every problem with its line.
    #[command(
        after_help = "Examples:\n  aofctl validate --config config/sandbox.yaml\n  aofctl validate --config config/whatsapp-bot.yaml   # needs its ${VARS} set"
    )]
    Validate {
        /// The TriggerConfig file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The AgentFlows of a config.
    #[command(after_help = "Example:\n  aofctl flows list --config config/sandbox.yaml")]
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
}

#[derive(Subcommand)]
enum FlowsCommand {
    /// Lists each flow, its triggers and what routes to it.
    #[command(after_help = "Example:\n  aofctl flows list --config config/sandbox.yaml")]
    List {
        /// The TriggerConfig file (its flows.directory and routing).
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum TriggerCommand {
    /// Runs the bot: webhooks in, flows, rate-limited sends.
    #[command(
        after_help = "Examples:\n  aofctl trigger serve --config config/sandbox.yaml\n  RUST_LOG=debug aofctl trigger serve --config config/whatsapp-bot.yaml"
    )]
    Serve {
        /// The TriggerConfig file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Trigger {
            command: TriggerCommand::Serve { config },
        } => aof::app::serve(&config),
        Command::Flows {
            command: FlowsCommand::List { config },
        } => flows_list(&config),
        Command::Validate { config } => return validate(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn flows_list(path: &std::path::Path) -> anyhow::Result<()> {
    let config = aof::config::load(path)?;
    print!("{}", aof::cli::flows::list(&config)?);
    Ok(())
}

/// Prints every problem, or that all is well; fails when there is any problem.
fn validate(path: &std::path::Path) -> ExitCode {
    let report = aof::cli::validate::check(path, &|name| std::env::var(name).ok());
    print!("{}", aof::cli::validate::render(&report));
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
