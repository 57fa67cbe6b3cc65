//! `aof-load`: the load generator. It starts the bot (this binary re-executed, on the same library
//! code as `aofctl`) on loopback against a fake Graph API in this process, and reports ingest,
//! fan-out, throttling, session memory and cold-start figures, kill -9 of the bot (chaos) and of the
//! leader of three replicas on PostgreSQL (failover); see BENCHMARKS.md for what each means.
//!
//! ```sh
//! cargo run --release --bin aof-load -- --json target/load.json
//! cargo run --release --bin aof-load -- --quick
//! cargo run --release --bin aof-load -- --quick --only chaos --seed 42
//! cargo run --release --bin aof-load -- --quick --only failover
//! ```

mod chaos;
mod child;
mod client;
/// Reading digests back, shared with the test suite.
#[path = "../../tests/common/digests.rs"]
mod digests;
mod failover;
mod fake;
mod fanout;
mod ingest;
mod report;
mod sessions;
mod setup;
mod storm;
mod throttle;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Load generator for the aof WhatsApp bot: ingest, fan-out, throttling, sessions, cold start,
/// chaos, failover.
#[derive(Parser)]
#[command(name = "aof-load", version, about)]
struct Cli {
    /// A reduced version of every scenario (under two minutes in all).
    #[arg(long)]
    quick: bool,
    /// Also write every figure to FILE as one JSON object (keys in BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only these scenarios (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// The chaos scenario's seed (kill instants and load), to replay a run; default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    #[command(subcommand)]
    child: Option<Child>,
}

/// A scenario of the run.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Ingest,
    Fanout,
    Storm,
    Throttling,
    Sessions,
    ColdStart,
    Chaos,
    Failover,
}

/// The server side of a run: the generator starts itself again as one of these.
#[derive(Subcommand)]
enum Child {
    /// Runs the bot on a config, as `aofctl trigger serve` does.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Runs the bare actix-web handler (200 to everything).
    #[command(hide = true)]
    Bare {
        #[arg(long)]
        port: u16,
    },
}

/// How big each scenario is.
struct Sizes {
    ingest_requests: usize,
    ingest_warmup: usize,
    alerts: usize,
    room_members: usize,
    probes: usize,
    throttled: usize,
    room_updates: usize,
    senders: usize,
    cold_starts: usize,
    chaos_cycles: usize,
    failover: failover::Sizes,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                ingest_requests: 2_000,
                ingest_warmup: 200,
                alerts: 200,
                room_members: 50,
                probes: 20,
                throttled: 100,
                room_updates: 5,
                senders: 10_000,
                cold_starts: 3,
                chaos_cycles: 3,
                failover: failover::Sizes {
                    alerts: 60,
                    helps: 60,
                    per_second: 10,
                    posts_per_second: 30.0,
                    kills: 1,
                },
            }
        } else {
            Sizes {
                ingest_requests: 5_000,
                ingest_warmup: 1_000,
                alerts: 1_000,
                room_members: 200,
                probes: 100,
                throttled: 500,
                room_updates: 10,
                senders: 100_000,
                cold_starts: 5,
                chaos_cycles: 10,
                failover: failover::Sizes {
                    alerts: 300,
                    helps: 200,
                    per_second: 20,
                    posts_per_second: 60.0,
                    kills: 3,
                },
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.child {
        Some(Child::Serve { config }) => {
            aof::telemetry::init(aof::telemetry::LogFormat::Pretty);
            aof::app::serve(&config)
        }
        Some(Child::Bare { port }) => child::run_bare(port),
        None => {
            actix_web::rt::System::new().block_on(generate(cli.quick, cli.only, cli.json, cli.seed))
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

async fn generate(
    quick: bool,
    only: Vec<Scenario>,
    json: Option<PathBuf>,
    seed: Option<u64>,
) -> anyhow::Result<()> {
    let sizes = Sizes::new(quick);
    let wanted = |s: Scenario| only.is_empty() || only.contains(&s);
    let mut report = report::Report::new(quick);
    let started = std::time::Instant::now();
    if wanted(Scenario::ColdStart) {
        eprintln!("cold start: {} starts…", sizes.cold_starts);
        report.cold_start = Some(sessions::cold_start(sizes.cold_starts).await?);
    }
    if wanted(Scenario::Ingest) {
        eprintln!(
            "ingest: 3 rounds of {} notifications at concurrency 8 and 64…",
            sizes.ingest_requests
        );
        report.ingest = Some(
            ingest::run(
                &[8, 64],
                sizes.ingest_requests,
                sizes.ingest_warmup,
                3,
                None,
            )
            .await?,
        );
        // The same at 64 in flight with the store on PostgreSQL, when a server answers.
        if let Some(db) = aof::store::postgres::testing::fresh_database().await {
            eprintln!("ingest on PostgreSQL: 3 rounds at concurrency 64…");
            let levels = ingest::run(
                &[64],
                sizes.ingest_requests,
                sizes.ingest_warmup,
                3,
                Some(&db.url),
            )
            .await?;
            report.ingest_postgres = Some(levels);
        }
    }
    if wanted(Scenario::Fanout) {
        eprintln!(
            "fan-out: {} probes, a {}-member war room, {} alerts…",
            sizes.probes, sizes.room_members, sizes.alerts
        );
        report.fanout = Some(fanout::run(sizes.alerts, sizes.room_members, sizes.probes).await?);
    }
    if wanted(Scenario::Storm) {
        eprintln!(
            "storm: {} alerts to one engineer and {} relays in a {}-member room, at WhatsApp's pair rate…",
            sizes.alerts, sizes.room_updates, sizes.room_members
        );
        report.storm =
            Some(storm::run(sizes.alerts, sizes.room_members, sizes.room_updates).await?);
    }
    if wanted(Scenario::Throttling) {
        eprintln!(
            "throttling: {} alerts, 20 % answered 130429…",
            sizes.throttled
        );
        report.throttling = Some(throttle::run(sizes.throttled).await?);
    }
    if wanted(Scenario::Sessions) {
        eprintln!("sessions: {} senders, then a restart…", sizes.senders);
        report.sessions = Some(sessions::run(sizes.senders).await?);
    }
    if wanted(Scenario::Chaos) {
        eprintln!(
            "chaos: {} kills at random instants under a mixed load, with and without statuses…",
            sizes.chaos_cycles
        );
        report.chaos = Some(chaos::run(sizes.chaos_cycles, seed).await?);
    }
    if wanted(Scenario::Failover) {
        let f = &sizes.failover;
        eprintln!(
            "failover: 3 replicas on PostgreSQL, {} alerts and {} HELPs at {}/s, {} kill(s) of the leader at {} sends/s…",
            f.alerts, f.helps, f.posts_per_second, f.kills, f.per_second
        );
        report.failover = Some(failover::run(f).await?);
    }
    report.elapsed_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    print!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        eprintln!("figures written to {}", path.display());
    }
    let mut failures = report
        .chaos
        .as_ref()
        .map(chaos::Chaos::failures)
        .unwrap_or_default();
    failures.extend(report.failover.iter().flat_map(failover::Outcome::failures));
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("\n"));
    }
    Ok(())
}
