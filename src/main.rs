//! `aofctl`: parses the command line, sets up logging, loads the config and runs the bot.

use aof::cli::simulate::{SimulateOptions, Trigger};
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
    after_help = "Examples:\n  aofctl trigger serve --config config/sandbox.yaml\n  aofctl flows list --config config/sandbox.yaml\n  aofctl validate --config config/sandbox.yaml\n  aofctl simulate --config config/sandbox.yaml --from +15551234567 STATUS\n  aofctl --log-format json trigger serve --config config/whatsapp-bot.yaml"
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
    /// Shows what the bot would do with a message or a webhook call, without sending anything:
    /// the route and why, each step's rendered input and output, what would be sent to whom.
    #[command(
        after_help = "Examples:\n  aofctl simulate --config config/sandbox.yaml --from +15551234567 HELP\n  aofctl simulate --config config/sandbox.yaml --from +15551234567 \"deploy api v2 to staging\"\n  aofctl simulate --config config/sandbox.yaml --webhook /alert/oncall \\\n    --data '{\"severity\": \"critical\", \"service\": \"api\", \"message\": \"High latency\"}'\n  aofctl simulate --config config/sandbox.yaml --webhook /deploy/request-approval --data @request.json --commit\n\nNothing is sent: WhatsApp messages go to an outbox, deployments, Slack, email, PagerDuty and\nhealth checks are recorded instead of made. The store is a scratch copy unless --commit is given.",
        group(clap::ArgGroup::new("trigger").required(true).args(["from", "webhook"]))
    )]
    Simulate {
        /// The TriggerConfig file.
        #[arg(long, short)]
        config: PathBuf,
        /// The sender's number: simulate a WhatsApp message from them (with TEXT).
        #[arg(long, requires = "text", value_name = "NUMBER")]
        from: Option<String>,
        /// What they type.
        #[arg(requires = "from", conflicts_with_all = ["webhook", "data"])]
        text: Option<String>,
        /// Their WhatsApp profile name.
        #[arg(long, requires = "from")]
        name: Option<String>,
        /// A flow webhook path to POST to (with --data), as `aofctl flows list` shows it.
        #[arg(long, requires = "data", value_name = "PATH")]
        webhook: Option<String>,
        /// The webhook's JSON body, or @FILE to read it from a file.
        #[arg(long, requires = "webhook", value_name = "JSON")]
        data: Option<String>,
        /// Use the real store and keep what the runs change in it (still nothing is sent).
        #[arg(long)]
        commit: bool,
        /// Seconds to wait for the runs to end.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
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
    if matches!(cli.command, Command::Simulate { .. }) && std::env::var_os("RUST_LOG").is_none() {
        // The report is the output; the bot's info lines would drown it. RUST_LOG=info shows them.
        std::env::set_var("RUST_LOG", "warn");
    }
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Trigger {
            command: TriggerCommand::Serve { config },
        } => aof::app::serve(&config),
        Command::Flows {
            command: FlowsCommand::List { config },
        } => flows_list(&config),
        Command::Validate { config } => return validate(&config),
        Command::Simulate {
            config,
            from,
            text,
            name,
            webhook,
            data,
            commit,
            timeout,
        } => {
            let trigger = match (from, text, webhook, data) {
                (Some(from), Some(text), _, _) => Trigger::Message { from, text, name },
                (_, _, Some(path), Some(data)) => Trigger::Webhook { path, data },
                _ => unreachable!("clap requires --from with TEXT or --webhook with --data"),
            };
            let options = SimulateOptions {
                trigger,
                commit,
                timeout: std::time::Duration::from_secs(timeout),
            };
            simulate(&config, options)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(path: &std::path::Path, options: SimulateOptions) -> anyhow::Result<()> {
    let config = aof::config::load(path)?;
    print!("{}", aof::cli::simulate::run(config, options)?);
    Ok(())
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
