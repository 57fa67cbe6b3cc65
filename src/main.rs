//! `aofctl`: parses the command line, sets up logging, loads the config and runs the bot.

use aof::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A self-hosted WhatsApp on-call and ops bot driven by AgentFlow YAML.
#[derive(Parser)]
#[command(name = "aofctl", version, about)]
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
    Trigger {
        #[command(subcommand)]
        command: TriggerCommand,
    },
}

#[derive(Subcommand)]
enum TriggerCommand {
    /// Runs the bot: webhooks in, flows, rate-limited sends.
    ///
    /// Example: aofctl trigger serve --config config/sandbox.yaml
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
