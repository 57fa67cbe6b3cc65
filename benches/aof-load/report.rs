//! Every figure of a run, as one JSON object with stable keys (BENCHMARKS.md documents them) and
//! as a table for the terminal.

use crate::chaos::Chaos;
use crate::failover;
use crate::fanout::Fanout;
use crate::ingest::Level;
use crate::sessions::{ColdStart, Sessions};
use crate::storm::Storm;
use crate::throttle::Throttling;
use serde::Serialize;
use std::fmt::Write as _;

/// The machine the figures come from.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// Cores available to the process.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// The CPU model, from /proc/cpuinfo.
    pub cpu: String,
    /// The 1-minute load average when the run started.
    pub load_average: f64,
}

impl Machine {
    fn read() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            cpu,
            load_average,
        }
    }
}

/// One run's figures; a scenario that did not run is `null`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `aof-load`'s version (the crate's).
    pub version: &'static str,
    /// Whether `--quick` sizes were used.
    pub quick: bool,
    /// Where it ran.
    pub machine: Machine,
    /// Seconds the whole run took.
    pub elapsed_s: f64,
    /// Process start to `/readyz` 200.
    pub cold_start: Option<ColdStart>,
    /// Notifications in, at each concurrency level, against the bare handler.
    pub ingest: Option<Vec<Level>>,
    /// The same with the store on PostgreSQL (when a server answered).
    pub ingest_postgres: Option<Vec<Level>>,
    /// The alert storm and the war-room broadcast.
    pub fanout: Option<Fanout>,
    /// The storm at WhatsApp's pair rate: what one engineer and a busy room receive.
    pub storm: Option<Storm>,
    /// 130429 on a fifth of the sends.
    pub throttling: Option<Throttling>,
    /// Memory per conversation and restore time.
    pub sessions: Option<Sessions>,
    /// Kill -9 at random instants under a mixed load: lost and duplicated deliveries.
    pub chaos: Option<Chaos>,
    /// Kill -9 of the leader of three replicas on PostgreSQL: takeover, lost, duplicated, rate.
    pub failover: Option<failover::Outcome>,
}

impl Report {
    /// An empty report for this machine.
    pub fn new(quick: bool) -> Report {
        Report {
            version: env!("CARGO_PKG_VERSION"),
            quick,
            machine: Machine::read(),
            elapsed_s: 0.0,
            cold_start: None,
            ingest: None,
            ingest_postgres: None,
            fanout: None,
            storm: None,
            throttling: None,
            sessions: None,
            chaos: None,
            failover: None,
        }
    }

    /// The figures as aligned lines, with each target beside the figure it applies to.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let m = &self.machine;
        let _ = writeln!(
            t,
            "\naof-load {}{} on {} cores, {} GiB ({}), load {:.2}, {:.0} s",
            self.version,
            if self.quick { " --quick" } else { "" },
            m.cores,
            m.memory_gib,
            m.cpu,
            m.load_average,
            self.elapsed_s
        );
        if let Some(c) = &self.cold_start {
            let _ = writeln!(
                t,
                "cold start      median {:.0} ms, max {:.0} ms over {} starts (target <= 1000 ms)",
                c.median_ms, c.max_ms, c.runs
            );
        }
        let sqlite = self.ingest.iter().flatten().map(|l| ("", l));
        let postgres = self.ingest_postgres.iter().flatten().map(|l| (" pg", l));
        for (store, l) in sqlite.chain(postgres) {
            let _ = writeln!(
                t,
                "ingest{store:<3} c={:<3} ours {:>7.0}/s p50 {:.2} p99 {:.2} max {:.1} ms ({} errors, {} busy) | bare {:>7.0}/s p50 {:.2} p99 {:.2} ms | ratio {:.2} (target >= 0.5); handled {:.0}/s",
                l.concurrency, l.ours.per_second, l.ours.p50_ms, l.ours.p99_ms, l.ours.max_ms, l.ours.errors, l.ours.busy,
                l.bare.per_second, l.bare.p50_ms, l.bare.p99_ms, l.ratio, l.handled_per_second
            );
        }
        if let Some(f) = &self.fanout {
            let _ = writeln!(
                t,
                "fan-out         {} alerts + relay to {} members: {:.2}/s of {} (ratio {:.3}, target >= 0.98), max {} in 1 s (limit {}), lost {}, duplicates {}, drained in {:.1} s",
                f.alerts, f.room_members.saturating_sub(1), f.achieved_per_second, f.configured_per_second, f.rate_ratio,
                f.max_in_one_second, f.configured_per_second, f.lost, f.duplicates, f.drain_s
            );
            let _ = writeln!(
                t,
                "alert to send   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} alerts (target p99 <= 50 ms); storm POSTs p50 {:.1} p99 {:.1} ms",
                f.alert_to_first_send_p50_ms, f.alert_to_first_send_p99_ms, f.alert_to_first_send_max_ms, f.probes,
                f.storm_post_p50_ms, f.storm_post_p99_ms
            );
        }
        if let Some(s) = &self.storm {
            let _ = writeln!(
                t,
                "storm           {} alerts to one engineer at the pair rate: first page {:.1} ms (target p99 <= 50 ms), all named in {:.1} s, lost {} (target 0), duplicated {}, {} messages in the first minute, {} answered 131056 (target 0)",
                s.alerts, s.first_page_ms, s.all_named_s, s.lost, s.duplicated, s.engineer_messages_first_minute,
                s.answered_131056
            );
            let _ = writeln!(
                t,
                "storm room      {} relays to {} members: every line in {:.1} s, lost {}, duplicated {}, at most {} messages a member",
                s.room_updates, s.room_members.saturating_sub(1), s.room_drain_s, s.room_lines_lost,
                s.room_lines_duplicated, s.room_messages_per_member_max
            );
        }
        if let Some(th) = &self.throttling {
            let _ = writeln!(
                t,
                "throttling      {} messages, {} requests, lost {}, duplicates {}: {:.1} s vs ideal {:.1} s ({:.2}x), max {} in 1 s",
                th.messages, th.requests, th.lost, th.duplicates, th.total_s, th.ideal_s, th.vs_ideal, th.max_in_one_second
            );
        }
        if let Some(s) = &self.sessions {
            let _ = writeln!(
                t,
                "sessions        {} senders ({} live): {} B per idle conversation (target <= 2048), RSS {} -> {} KiB; first pass {:.1} s; restart to ready {:.0} ms, restore {:.1} s; {} busy answers",
                s.senders, s.live_sessions, s.bytes_per_conversation, s.rss_before_kib, s.rss_after_kib,
                s.first_pass_s, s.restart_to_ready_ms, s.restore_s, s.busy_answers
            );
        }
        if let Some(c) = &self.chaos {
            for v in [&c.with_statuses, &c.without_statuses] {
                let _ = writeln!(
                    t,
                    "chaos {:<9} seed {}, {} kills ({} as a send reached the fake): {} of {} events acknowledged ({} redelivered), {} deliveries expected: lost {} (target 0), duplicated {} (target {}), {} left sending at the kills, {} resent, {} statuses taken, {} failed sends, settled {:.1} s after the last restart",
                    if v.statuses { "statuses" } else { "silent" },
                    c.seed, c.cycles, v.kills_at_sends, v.acknowledged, v.events, v.redelivered, v.expected, v.lost, v.duplicated,
                    if v.statuses { "0".to_owned() } else { format!("<= {}", v.in_flight_at_kills) },
                    v.in_flight_at_kills, v.resent, v.statuses_delivered, v.failed_sends, v.settle_s
                );
            }
        }
        match &self.failover {
            Some(failover::Outcome::Skipped { skipped }) => {
                let _ = writeln!(t, "failover        skipped: {skipped}");
            }
            Some(failover::Outcome::Ran(f)) => {
                let takeovers: Vec<String> = f
                    .cycles
                    .iter()
                    .map(|c| format!("{:.0}", c.takeover_ms))
                    .collect();
                let gaps: Vec<String> = f
                    .cycles
                    .iter()
                    .map(|c| format!("{:.0}", c.send_gap_ms))
                    .collect();
                let _ = writeln!(
                    t,
                    "failover        {} replicas on PostgreSQL, {} alerts + {} HELPs at {}/s, {} kill(s) of the leader: takeover {} ms (target <= 5000), sends paused {} ms; all named and answered {:.1} s after the last kill, drained in {:.1} s (ideal {:.1} s)",
                    f.replicas, f.alerts, f.helps, f.posts_per_second, f.kills, takeovers.join(", "), gaps.join(", "),
                    f.done_after_kill_s, f.drained_s, f.ideal_s
                );
                let _ = writeln!(
                    t,
                    "failover        lost {} (target 0), duplicated {} (target 0); max {} sends in any 1 s, {} around the handovers (limit {}); {} left sending at the kills, {} resent, {} statuses taken ({} retried); {} POSTs retried on another replica, {} alerts queued by followers, {} other sends",
                    f.lost, f.duplicated, f.max_per_second, f.max_per_second_handover, f.limit, f.in_flight_at_kills,
                    f.resent, f.statuses_delivered, f.status_retries, f.retried, f.queued_by_followers, f.other_sends
                );
            }
            None => {}
        }
        t
    }
}
