//! The queue on a fake clock: every limit is checked by running the queue the way the actor does
//! (ask [`Queue::next`], send, or move the clock to the instant it names), without waiting.

use super::*;
use crate::ids::{JobId, WaId};
use crate::model::OutboundMessage;
use crate::rate_limiter::clock::FakeClock;
use crate::rate_limiter::pair::PairPace;
use crate::testing::most_in_any_window;

fn settings(per_second: u32) -> RateSettings {
    RateSettings {
        per_second: NonZeroU32::new(per_second).unwrap(),
        window_margin: Duration::from_millis(50),
        templates_per_day: 1000,
        max_in_flight: 1000,
        broadcast_batch: None,
        broadcast_batch_delay: Duration::ZERO,
        unconfirmed_grace: Duration::from_secs(30),
        pair: None,
    }
}

fn job(n: usize, lane: Lane) -> QueuedJob {
    job_to(n, lane, "15551234567")
}

fn job_to(n: usize, lane: Lane, to: &str) -> QueuedJob {
    let to = WaId::parse(to).unwrap();
    QueuedJob {
        id: JobId(format!("job-{n}")),
        message: OutboundMessage::text(to, format!("message {n}"), lane),
        attempts: 0,
        enqueued_at_ms: 0,
        folds: Vec::new(),
    }
}

/// Runs the queue until it is idle, finishing every send at once; each send's job and start time.
fn drain(queue: &mut Queue<FakeClock>, clock: &FakeClock) -> Vec<(QueuedJob, Instant)> {
    let mut sent = Vec::new();
    loop {
        match queue.next() {
            Next::Send(job) => {
                queue.finished(&job);
                sent.push((job, clock.now()));
            }
            Next::WaitUntil(at) => {
                assert!(at > clock.now(), "a wait must lie in the future");
                clock.set(at);
            }
            Next::Idle => return sent,
        }
    }
}

fn ids(sent: &[(QueuedJob, Instant)]) -> Vec<&str> {
    sent.iter().map(|(job, _)| job.id.0.as_str()).collect()
}

#[test]
fn no_one_second_window_holds_more_than_the_rate_and_the_rate_is_kept() {
    let clock = FakeClock::new();
    let t0 = clock.now();
    let mut queue = Queue::new(&settings(50), clock.clone());
    for n in 0..500 {
        queue.push(job(n, Lane::Alert));
    }
    let sent = drain(&mut queue, &clock);
    assert_eq!(sent.len(), 500);
    let times: Vec<Instant> = sent.iter().map(|(_, at)| *at).collect();
    assert!(most_in_any_window(&times, Duration::from_secs(1)) <= 50);
    let took = clock.now() - t0;
    // 500 at 50/s: about ten seconds; the window's 50 ms margin may cost a little of the rate.
    assert!(
        took >= Duration::from_millis(9_900) && took <= Duration::from_millis(10_600),
        "500 sends at 50/s took {took:?}"
    );
    assert!(sent.iter().all(|(job, _)| job.attempts == 1));
}

#[test]
fn replies_leave_before_alerts_before_rooms_before_broadcasts() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job(1, Lane::Broadcast));
    queue.push(job(2, Lane::Room));
    queue.push(job(3, Lane::Alert));
    queue.push(job(4, Lane::Reply));
    queue.push(job(5, Lane::Alert));
    let sent = drain(&mut queue, &clock);
    assert_eq!(ids(&sent), ["job-4", "job-3", "job-5", "job-2", "job-1"]);
}

#[test]
fn a_retry_waits_its_delay_then_goes_before_the_rest_of_its_lane() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job(1, Lane::Alert));
    let Next::Send(first) = queue.next() else {
        panic!("the first job leaves at once")
    };
    let failed_at = clock.now();
    assert_eq!(queue.retry(first, Duration::from_secs(2), false), None);
    for n in 2..200 {
        queue.push(job(n, Lane::Alert));
    }
    let sent = drain(&mut queue, &clock);
    let (retried, at) = sent.iter().find(|(job, _)| job.id.0 == "job-1").unwrap();
    assert_eq!(retried.attempts, 2);
    assert!(*at >= failed_at + Duration::from_secs(2));
    assert!(
        *at < failed_at + Duration::from_millis(2_100),
        "due at 2 s, sent at {:?}",
        *at - failed_at
    );
    assert_eq!(queue.queued(), 0);
}

#[test]
fn throttling_cuts_the_rate_and_the_windows_follow() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job(0, Lane::Alert));
    let Next::Send(first) = queue.next() else {
        panic!("the first job leaves at once")
    };
    assert_eq!(queue.retry(first, Duration::ZERO, true), Some(40));
    assert_eq!(queue.rate(), 40);
    for n in 1..=40 {
        queue.push(job(n, Lane::Alert));
    }
    let cut_at = clock.now();
    let sent = drain(&mut queue, &clock);
    let within_a_second = sent
        .iter()
        .filter(|(_, at)| *at < cut_at + Duration::from_secs(1))
        .count();
    assert!(
        within_a_second <= 40,
        "{within_a_second} sent in the first second at 40/s"
    );
}

#[test]
fn refused_credentials_pause_every_lane() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job(1, Lane::Alert));
    let Next::Send(first) = queue.next() else {
        panic!("the first job leaves at once")
    };
    let halted_at = clock.now();
    queue.halt(first, Duration::from_secs(60));
    queue.push(job(2, Lane::Alert));
    queue.push(job(3, Lane::Reply));
    match queue.next() {
        Next::WaitUntil(at) => assert_eq!(at, halted_at + Duration::from_secs(60)),
        other => panic!("expected a pause, got {other:?}"),
    }
    let sent = drain(&mut queue, &clock);
    assert_eq!(
        ids(&sent),
        ["job-3", "job-1", "job-2"],
        "the halted job keeps its place in its lane"
    );
    assert!(sent
        .iter()
        .all(|(_, at)| *at >= halted_at + Duration::from_secs(60)));
}

#[test]
fn no_more_than_the_in_flight_cap_leave_until_one_finishes() {
    let clock = FakeClock::new();
    let mut limits = settings(50);
    limits.max_in_flight = 2;
    let mut queue = Queue::new(&limits, clock.clone());
    for (n, to) in ["15550000001", "15550000002", "15550000003"]
        .iter()
        .enumerate()
    {
        queue.push(job_to(n, Lane::Alert, to));
    }
    let Next::Send(first) = queue.next() else {
        panic!("the first job leaves at once")
    };
    assert!(matches!(queue.next(), Next::Send(_)));
    assert!(matches!(queue.next(), Next::Idle), "two in flight");
    assert_eq!(queue.in_flight(), 2);
    queue.finished(&first);
    clock.advance(Duration::from_secs(1));
    assert!(matches!(queue.next(), Next::Send(_)));
}

#[test]
fn broadcasts_leave_in_batches_with_a_pause_between() {
    let clock = FakeClock::new();
    let t0 = clock.now();
    let mut limits = settings(50);
    limits.broadcast_batch = Some(3);
    limits.broadcast_batch_delay = Duration::from_secs(10);
    let mut queue = Queue::new(&limits, clock.clone());
    for n in 0..7 {
        queue.push(job(n, Lane::Broadcast));
    }
    queue.push(job(100, Lane::Reply));
    let sent = drain(&mut queue, &clock);
    let offsets: Vec<u64> = sent.iter().map(|(_, at)| (*at - t0).as_secs()).collect();
    assert_eq!(
        ids(&sent)[0],
        "job-100",
        "a reply does not wait for a batch"
    );
    assert_eq!(offsets, [0, 0, 0, 0, 10, 10, 10, 20]);
}

#[test]
fn a_calm_second_wins_the_rate_back() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job(0, Lane::Alert));
    let Next::Send(first) = queue.next() else {
        panic!("the first job leaves at once")
    };
    queue.retry(first, Duration::ZERO, true);
    for n in 1..300 {
        queue.push(job(n, Lane::Alert));
    }
    drain(&mut queue, &clock);
    assert_eq!(queue.rate(), 50, "eight calm seconds win back the cut");
}

const ALICE: &str = "15551234567";
const BOB: &str = "15557654321";

#[test]
fn a_retry_holds_back_later_jobs_to_the_same_person_in_its_lane_only() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job_to(1, Lane::Room, ALICE));
    queue.push(job_to(2, Lane::Room, ALICE));
    queue.push(job_to(3, Lane::Room, BOB));
    queue.push(job_to(4, Lane::Room, ALICE));
    queue.push(job_to(5, Lane::Alert, ALICE));
    let Next::Send(first) = queue.next() else {
        panic!("the alert leaves first")
    };
    assert_eq!(first.id.0, "job-5");
    queue.finished(&first);
    let Next::Send(first) = queue.next() else {
        panic!("then the first room message")
    };
    assert_eq!(first.id.0, "job-1");
    let failed_at = clock.now();
    queue.retry(first, Duration::from_secs(2), false);

    let sent = drain(&mut queue, &clock);
    let order: Vec<(&str, u64)> = sent
        .iter()
        .map(|(job, at)| (job.id.0.as_str(), (*at - failed_at).as_secs()))
        .collect();
    // Bob's message does not wait; Alice's later ones wait for her retried one, in order.
    assert_eq!(
        order,
        [("job-3", 0), ("job-1", 2), ("job-2", 2), ("job-4", 2)]
    );
}

#[test]
fn one_job_per_person_and_lane_is_out_at_a_time_so_an_answer_cannot_overtake() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job_to(1, Lane::Room, ALICE));
    queue.push(job_to(2, Lane::Room, ALICE));
    queue.push(job_to(3, Lane::Room, BOB));
    let mut out = Vec::new();
    while let Next::Send(job) = queue.next() {
        out.push(job);
    }
    let ids: Vec<&str> = out.iter().map(|j| j.id.0.as_str()).collect();
    assert_eq!(
        ids,
        ["job-1", "job-3"],
        "Alice's second waits for her first"
    );
    queue.finished(&out[0]);
    clock.advance(Duration::from_secs(1));
    let Next::Send(second) = queue.next() else {
        panic!("Alice's second leaves once her first is done")
    };
    assert_eq!(second.id.0, "job-2");
}

#[test]
fn people_take_turns_so_a_storm_to_one_does_not_starve_another() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    for n in 0..5 {
        queue.push(job_to(n, Lane::Alert, ALICE));
    }
    queue.push(job_to(10, Lane::Alert, BOB));
    let sent = drain(&mut queue, &clock);
    let bob_at = sent.iter().position(|(j, _)| j.id.0 == "job-10").unwrap();
    assert!(
        bob_at <= 1,
        "Bob's page went {bob_at}th behind Alice's storm"
    );
}

/// `settings(50)` pacing each person: `burst` at once, then one every `every`.
fn paced(burst: u32, every: Duration) -> RateSettings {
    RateSettings {
        pair: Some(PairPace {
            burst: NonZeroU32::new(burst).unwrap(),
            every,
        }),
        ..settings(50)
    }
}

#[test]
fn each_person_gets_their_burst_then_one_an_interval_and_nobody_else_waits_for_them() {
    let clock = FakeClock::new();
    let t0 = clock.now();
    let mut queue = Queue::new(&paced(2, Duration::from_secs(6)), clock.clone());
    for n in 0..4 {
        queue.push(job_to(n, Lane::Alert, "15551234567"));
    }
    queue.push(job_to(10, Lane::Alert, "15557654321"));
    queue.push(job_to(11, Lane::Reply, "15557654321"));
    let sent = drain(&mut queue, &clock);
    let at = |id: &str| {
        let (_, when) = sent.iter().find(|(j, _)| j.id.0 == id).expect("sent");
        *when - t0
    };
    // Alice: two at once, then one every six seconds.
    assert!(
        at("job-1") < Duration::from_millis(100),
        "{:?}",
        at("job-1")
    );
    assert_eq!(at("job-2"), Duration::from_secs(6));
    assert_eq!(at("job-3"), Duration::from_secs(12));
    // Bob is not behind Alice: both his messages go at once, whatever Alice's line holds.
    assert!(
        at("job-10") < Duration::from_millis(100),
        "{:?}",
        at("job-10")
    );
    assert!(
        at("job-11") < Duration::from_millis(100),
        "{:?}",
        at("job-11")
    );
}

#[test]
fn a_131056_holds_that_person_in_every_lane_and_nobody_else() {
    let clock = FakeClock::new();
    let t0 = clock.now();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.push(job_to(1, Lane::Alert, "15551234567"));
    let Next::Send(first) = queue.next() else {
        panic!("the first goes at once")
    };
    // WhatsApp: too many messages to Alice; her alert waits 30 s, and so does her reply.
    queue.hold_person(&first.message.to, Duration::from_secs(30));
    queue.retry(first, Duration::from_secs(30), false);
    queue.push(job_to(2, Lane::Reply, "15551234567"));
    queue.push(job_to(3, Lane::Alert, "15557654321"));
    let sent = drain(&mut queue, &clock);
    let at = |id: &str| {
        let (_, when) = sent.iter().find(|(j, _)| j.id.0 == id).expect("sent");
        *when - t0
    };
    assert!(at("job-3") < Duration::from_millis(100), "Bob goes at once");
    assert!(at("job-2") >= Duration::from_secs(30), "{:?}", at("job-2"));
    assert!(at("job-1") >= Duration::from_secs(30), "{:?}", at("job-1"));
}

/// Folds every waiting job into one that lists their ids.
struct FoldAll;

impl crate::ports::Fold for FoldAll {
    fn fold(&self, waiting: &[&QueuedJob]) -> Option<crate::ports::Folded> {
        let ids: Vec<&str> = waiting.iter().map(|j| j.id.0.as_str()).collect();
        let first = &waiting[0].message;
        let message = OutboundMessage::text(first.to.clone(), ids.join(","), first.lane);
        Some(crate::ports::Folded {
            message,
            count: waiting.len(),
        })
    }
}

#[test]
fn what_waits_behind_a_persons_pace_is_folded_into_one_message_in_order() {
    let clock = FakeClock::new();
    let t0 = clock.now();
    let mut queue = Queue::new(&paced(1, Duration::from_secs(6)), clock.clone());
    queue.fold_with(std::sync::Arc::new(FoldAll));
    queue.push(job_to(0, Lane::Alert, "15551234567"));
    let Next::Send(first) = queue.next() else {
        panic!("the first page goes at once")
    };
    assert_eq!(first.id.0, "job-0");
    assert!(first.folds.is_empty());
    queue.finished(&first);
    // The storm goes on while Alice waits for her pace.
    for n in 1..50 {
        queue.push(job_to(n, Lane::Alert, "15551234567"));
    }
    let sent = drain(&mut queue, &clock);
    assert_eq!(sent.len(), 1, "everything waiting went as one digest");
    let (digest, at) = &sent[0];
    assert_eq!(*at - t0, Duration::from_secs(6));
    let folded: Vec<String> = digest.folds.iter().map(|id| id.0.clone()).collect();
    let expected: Vec<String> = (1..50).map(|n| format!("job-{n}")).collect();
    assert_eq!(folded, expected, "each folded job, in order");
    assert_eq!(queue.queued(), 0);
}

#[test]
fn a_retried_job_is_never_folded_and_a_digest_is_not_folded_again() {
    let clock = FakeClock::new();
    let mut queue = Queue::new(&settings(50), clock.clone());
    queue.fold_with(std::sync::Arc::new(FoldAll));
    queue.push(job_to(1, Lane::Alert, "15551234567"));
    let Next::Send(first) = queue.next() else {
        panic!("goes at once")
    };
    queue.push(job_to(2, Lane::Alert, "15551234567"));
    queue.push(job_to(3, Lane::Alert, "15551234567"));
    queue.retry(first, Duration::from_secs(1), false);
    let sent = drain(&mut queue, &clock);
    let ids = ids(&sent);
    assert_eq!(ids[0], "job-1", "the retried job goes again as itself");
    assert_eq!(sent.len(), 2, "{ids:?}");
    let folded: Vec<&str> = sent[1].0.folds.iter().map(|id| id.0.as_str()).collect();
    assert_eq!(folded, ["job-2", "job-3"]);
}

#[test]
fn sends_seeded_from_before_a_handover_count_against_the_window_and_the_pair_pace() {
    let clock = FakeClock::new();
    clock.advance(Duration::from_secs(10));
    let t0 = clock.now();
    let mut s = settings(10);
    s.pair = Some(PairPace {
        burst: NonZeroU32::new(1).unwrap(),
        every: Duration::from_secs(6),
    });
    let mut queue = Queue::new(&s, clock.clone());
    // The replica that led before sent 10 in the last 400 ms, one of them to Alice 1 s ago.
    let alice = WaId::parse("15551234567").unwrap();
    let mut before: Vec<(WaId, Instant)> = (0..9)
        .map(|n| {
            let to = WaId::parse(&format!("1555000{n:04}")).unwrap();
            (to, t0 - Duration::from_millis(400))
        })
        .collect();
    before.insert(0, (alice.clone(), t0 - Duration::from_secs(1)));
    queue.seed(&before);
    for n in 0..10 {
        queue.push(job_to(n, Lane::Alert, &format!("1555111{n:04}")));
    }
    queue.push(job_to(99, Lane::Alert, "15551234567"));
    let sent = drain(&mut queue, &clock);
    let mut times: Vec<Instant> = before.iter().map(|(_, at)| *at).collect();
    times.extend(sent.iter().map(|(_, at)| *at));
    times.sort();
    assert!(
        most_in_any_window(&times, Duration::from_secs(1)) <= 10,
        "no window across the handover over the limit"
    );
    let to_alice = sent.iter().find(|(job, _)| job.id.0 == "job-99").unwrap().1;
    assert!(
        to_alice >= t0 + Duration::from_secs(5),
        "Alice's pace counts the send made before: {:?} after the handover",
        to_alice - t0
    );
}
