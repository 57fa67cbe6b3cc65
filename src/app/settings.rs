//! What the actors and the metrics endpoint take from the config: every tunable is a config key
//! with its default in `config::defaults`, read here in one place.

use crate::config::Config;
use aof_actors::rate_limiter::{PairPace, RateSettings};
use aof_actors::sender::SenderSettings;
use aof_actors::webhook::{reaction_key, WebhookSettings};
use aof_actors::RuntimeSettings;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::num::NonZeroU32;
use std::sync::OnceLock;

/// The process-wide Prometheus recorder (metrics macros write to one global recorder).
pub(super) fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

pub(super) fn runtime_settings(config: &Config, lookback: usize, resume: bool) -> RuntimeSettings {
    let whatsapp = &config.platforms.whatsapp;
    let limits = &whatsapp.rate_limits;
    let per_second = NonZeroU32::new(limits.messages_per_second).unwrap_or(NonZeroU32::MIN);
    let cores = || std::thread::available_parallelism().map_or(2, |n| n.get());
    RuntimeSettings {
        webhook: WebhookSettings {
            allowed: allowed_senders(config),
            audit: whatsapp.security.audit.enabled,
            include_content: whatsapp.security.audit.include_content,
            max_age: whatsapp.max_message_age,
            reactions: whatsapp
                .reactions
                .iter()
                .map(|(emoji, command)| (reaction_key(emoji), command.trim().to_owned()))
                .collect(),
        },
        rate: RateSettings {
            per_second,
            window_margin: limits.window_margin,
            templates_per_day: limits.templates_per_day,
            max_in_flight: limits
                .max_in_flight
                .unwrap_or((per_second.get() as usize * 2).max(16)),
            broadcast_batch: whatsapp
                .queue
                .enabled
                .then_some(whatsapp.queue.batch_size as usize),
            broadcast_batch_delay: whatsapp.queue.batch_delay,
            unconfirmed_grace: whatsapp.unconfirmed_send_grace,
            pair: (!limits.per_person_interval.is_zero()).then(|| PairPace {
                burst: NonZeroU32::new(limits.per_person_burst).unwrap_or(NonZeroU32::MIN),
                every: limits.per_person_interval,
            }),
        },
        sender: SenderSettings {
            max_attempts: whatsapp.max_send_attempts,
            base_backoff: whatsapp.send_backoff,
            max_backoff: whatsapp.send_backoff_max,
            halt_pause: whatsapp.auth_failure_pause,
        },
        lookback,
        idle_timeout: config.sessions.idle_timeout,
        session_threads: config.sessions.threads.unwrap_or_else(cores),
        mailbox_capacity: config.server.mailbox_capacity,
        resume,
    }
}

/// Who may write to the bot: `allowed_numbers` and `security.allowed_numbers`; when both are empty
/// and `security.require_verified` is set, only numbers the config knows (on-call rota, groups).
pub(crate) fn allowed_senders(config: &Config) -> std::collections::HashSet<aof_actors::WaId> {
    let whatsapp = &config.platforms.whatsapp;
    let mut allowed: std::collections::HashSet<_> = whatsapp.allowed().into_iter().collect();
    if allowed.is_empty() && whatsapp.security.require_verified {
        let rota = whatsapp
            .oncall
            .static_oncall
            .iter()
            .map(|e| e.phone.as_str());
        let groups = whatsapp.groups.values().flatten().map(String::as_str);
        allowed.extend(rota.chain(groups).filter_map(aof_actors::WaId::parse));
    }
    allowed
}
