//! The checks serde cannot make (ranges, regexes, phone numbers, credentials, templates), and the
//! normalization of values that have one right spelling. Every problem is collected, so one run of
//! `aofctl` lists all there is to fix.

use super::error::Problem;
use super::{templates, Config, EnvLookup, Secret, TransportKind, WhatsAppConfig};
use aof_actors::WaId;

/// Rewrites values to their canonical form: `base_path` as `""` or `/x` (no trailing slash),
/// `api_base_url` without a trailing slash, and `webhook_token` from `AOF_WEBHOOK_TOKEN` when the
/// config has none.
pub(super) fn normalize(config: &mut Config, env: EnvLookup<'_>) {
    let server = &mut config.server;
    let path = server.base_path.trim().trim_end_matches('/');
    server.base_path = match path {
        "" => String::new(),
        p if p.starts_with('/') => p.to_owned(),
        p => format!("/{p}"),
    };
    if server.webhook_token.is_none() {
        server.webhook_token = env("AOF_WEBHOOK_TOKEN")
            .filter(|t| !t.is_empty())
            .map(Secret::new);
    }
    let wa = &mut config.platforms.whatsapp;
    wa.api_base_url = wa.api_base_url.trim().trim_end_matches('/').to_owned();
}

/// Every problem of a deserialized, normalized config, in file order.
pub(super) fn problems(c: &Config) -> Vec<Problem> {
    let mut p = Vec::new();
    if c.version != "v1" {
        p.push(Problem::new(
            "version",
            format!(
                "`{}` is not supported; this aofctl reads `version: v1`",
                c.version
            ),
        ));
    }
    if c.kind != "TriggerConfig" {
        p.push(Problem::new("kind", format!("is `{}`, expected `TriggerConfig`; --config takes the TriggerConfig, flows go in flows.directory", c.kind)));
    }
    server(c, &mut p);
    whatsapp(c, &mut p);
    routing(c, &mut p);
    rest(c, &mut p);
    p
}

/// The `server` section.
fn server(c: &Config, p: &mut Vec<Problem>) {
    let s = &c.server;
    if s.base_path
        .contains(|ch: char| ch.is_whitespace() || ch == '?' || ch == '#')
    {
        p.push(Problem::new(
            "server.base_path",
            format!(
                "`{}` is not a URL path; write a path like /webhooks",
                s.base_path
            ),
        ));
    }
    if s.webhook_token.as_ref().is_some_and(Secret::is_empty) {
        p.push(Problem::new("server.webhook_token", "is empty, so any caller would pass; set AOF_WEBHOOK_TOKEN to a long random string or remove the key"));
    }
    if s.workers == Some(0) {
        p.push(Problem::new(
            "server.workers",
            "is 0; give at least 1, or remove it for one per core",
        ));
    }
    if s.mailbox_capacity == 0 {
        p.push(Problem::new(
            "server.mailbox_capacity",
            "is 0; give at least 1 (default 1024)",
        ));
    }
}

/// The `platforms.whatsapp` section.
fn whatsapp(c: &Config, p: &mut Vec<Problem>) {
    let wa = &c.platforms.whatsapp;
    let key = |k: &str| format!("platforms.whatsapp.{k}");
    if wa.kind != "whatsapp" {
        p.push(Problem::new(
            key("type"),
            format!("is `{}`; the only platform type is `whatsapp`", wa.kind),
        ));
    }
    if wa.transport == TransportKind::CloudApi {
        let required = [
            (
                "phone_number_id",
                wa.phone_number_id.is_empty(),
                "the Graph API needs the sending number's id",
                "WHATSAPP_PHONE_NUMBER_ID",
            ),
            (
                "access_token",
                wa.access_token.is_empty(),
                "messages cannot be sent to the Graph API",
                "WHATSAPP_ACCESS_TOKEN",
            ),
            (
                "verify_token",
                wa.verify_token.is_empty(),
                "Meta's webhook registration cannot be verified",
                "WHATSAPP_VERIFY_TOKEN",
            ),
            (
                "app_secret",
                wa.app_secret.is_empty(),
                "the webhook signature cannot be checked",
                "WHATSAPP_APP_SECRET",
            ),
        ];
        for (name, empty, why, var) in required {
            if empty {
                p.push(Problem::new(
                    key(name),
                    format!("is empty: {why}; set {var} or use transport: sandbox"),
                ));
            }
        }
    }
    if !(wa.api_base_url.starts_with("https://") || wa.api_base_url.starts_with("http://")) {
        p.push(Problem::new(key("api_base_url"), format!("`{}` is not an http:// or https:// URL; write e.g. https://graph.facebook.com/v21.0", wa.api_base_url)));
    }
    for (i, entry) in wa.oncall.static_oncall.iter().enumerate() {
        phone(
            p,
            &key(&format!("oncall.static_oncall[{i}].phone")),
            &entry.phone,
        );
        if let Some(hours) = &entry.hours {
            if !is_shift(hours) {
                p.push(Problem::new(
                    key(&format!("oncall.static_oncall[{i}].hours")),
                    format!("`{hours}` is not a shift; write HH:MM-HH:MM, e.g. 18:00-09:00"),
                ));
            }
        }
    }
    validate_ops(wa, p, &key);
    for (name, numbers) in &wa.groups {
        for (i, n) in numbers.iter().enumerate() {
            phone(p, &key(&format!("groups.{name}[{i}]")), n);
        }
    }
    if let Some(group) = &wa.oncall.team_group {
        if !wa.groups.contains_key(group) {
            p.push(Problem::new(key("oncall.team_group"), format!("no group `{group}`; define it under platforms.whatsapp.groups as a list of numbers")));
        }
    }
    for (i, n) in wa.allowed_numbers.iter().enumerate() {
        phone(p, &key(&format!("allowed_numbers[{i}]")), n);
    }
    for (i, n) in wa.security.allowed_numbers.iter().enumerate() {
        phone(p, &key(&format!("security.allowed_numbers[{i}]")), n);
    }
    let mps = wa.rate_limits.messages_per_second;
    if !(1..=80).contains(&mps) {
        p.push(Problem::new(
            key("rate_limits.messages_per_second"),
            format!("is {mps}; Meta allows at most 80 messages per second per number: use 1 to 80"),
        ));
    }
    if wa.rate_limits.per_person_burst == 0 {
        p.push(Problem::new(
            key("rate_limits.per_person_burst"),
            "is 0, so nobody could be sent anything; give at least 1 (WhatsApp lends a short burst)",
        ));
    }
    if wa.rate_limits.templates_per_day == 0 {
        p.push(Problem::new(
            key("rate_limits.templates_per_day"),
            "is 0, so no alert could be sent; give at least 1",
        ));
    }
    if wa.queue.batch_size == 0 {
        p.push(Problem::new(
            key("queue.batch_size"),
            "is 0, so the queue would never drain; give at least 1",
        ));
    }
    for (name, def) in &wa.templates {
        for m in templates::problems(def) {
            p.push(Problem::new(key(&format!("templates.{name}")), m));
        }
    }
    if let Some(name) = &wa.fallback_template {
        if !wa.templates.contains_key(name) {
            let known: Vec<&str> = wa.templates.keys().map(String::as_str).collect();
            p.push(Problem::new(key("fallback_template"), format!("unknown template `{name}` (known: {}); add it under platforms.whatsapp.templates, or write null to turn the fallback off", known.join(", "))));
        }
    }
    if wa.send_timeout.is_zero() {
        p.push(Problem::new(
            key("send_timeout_ms"),
            "is 0, so every send would time out; give milliseconds, e.g. 10000",
        ));
    }
    if wa.max_send_attempts == 0 {
        p.push(Problem::new(
            key("max_send_attempts"),
            "is 0, so nothing would be sent; give at least 1",
        ));
    }
    tunables(p, wa, &key);
}

/// The send pipeline's tunables: each has a default, and a value that would stall it is refused.
fn tunables(p: &mut Vec<Problem>, wa: &WhatsAppConfig, key: &dyn Fn(&str) -> String) {
    if wa.send_backoff.is_zero() {
        p.push(Problem::new(
            key("send_backoff_ms"),
            "is 0, so a failing send would be retried without a pause; give milliseconds, e.g. 500",
        ));
    }
    if wa.send_backoff_max < wa.send_backoff {
        p.push(Problem::new(
            key("send_backoff_max_ms"),
            format!(
                "is below send_backoff_ms ({} ms); give at least that much, e.g. 60000",
                wa.send_backoff.as_millis()
            ),
        ));
    }
    if wa.rate_limits.max_in_flight == Some(0) {
        p.push(Problem::new(
            key("rate_limits.max_in_flight"),
            "is 0, so nothing would be sent; give at least 1, or leave it out for twice the rate",
        ));
    }
    if wa.max_message_age.is_zero() {
        p.push(Problem::new(
            key("max_message_age_secs"),
            "is 0, so every message would be ignored as too old; give seconds, e.g. 604800 (7 days)",
        ));
    }
}

/// The `routing` section.
fn routing(c: &Config, p: &mut Vec<Problem>) {
    let r = &c.routing;
    if r.default_flow.as_deref() == Some("") {
        p.push(Problem::new(
            "routing.default_flow",
            "is empty; name a flow, or remove the key",
        ));
    }
    let mut seen = std::collections::BTreeMap::new();
    for (command, flow) in &r.commands {
        let key = format!("routing.commands.{command}");
        if command.trim().is_empty() {
            p.push(Problem::new(
                key.clone(),
                "the command is empty; write the word people send, e.g. ACK",
            ));
        }
        if flow.is_empty() {
            p.push(Problem::new(
                key.clone(),
                "names no flow; write the flow to run",
            ));
        }
        if let Some(other) = seen.insert(command.to_uppercase(), command) {
            p.push(Problem::new(
                key,
                format!(
                    "is the same command as `{other}` (commands are case-insensitive); keep one"
                ),
            ));
        }
    }
    for (i, route) in r.keywords.iter().enumerate() {
        if let Err(e) = regex::Regex::new(&route.pattern) {
            p.push(Problem::new(format!("routing.keywords[{i}].pattern"), format!("`{}` is not a valid regex: {}; fix the pattern (regex crate syntax: no look-around, no backreferences)", route.pattern, regex_error(&e))));
        }
        if route.flow.is_empty() {
            p.push(Problem::new(
                format!("routing.keywords[{i}].flow"),
                "is empty; write the flow to run",
            ));
        }
    }
}

/// `flows`, `storage`, `sessions`, `health_checks`.
fn rest(c: &Config, p: &mut Vec<Problem>) {
    if c.flows.directory.as_os_str().is_empty() {
        p.push(Problem::new(
            "flows.directory",
            "is empty; write the folder of flow files, e.g. ./flows/whatsapp",
        ));
    }
    if !c.storage.url.starts_with("sqlite:") && !crate::store::is_postgres(&c.storage.url) {
        p.push(Problem::new(
            "storage.url",
            format!(
                "`{}` is not a store aof knows; write sqlite://data/aof.db (one replica, no server) or postgres://user@host:5432/database",
                crate::store::postgres::redacted(&c.storage.url)
            ),
        ));
    }
    if c.storage.pool_size == 0 {
        p.push(Problem::new(
            "storage.pool_size",
            "is 0, so no query could run; give at least 1, e.g. 10",
        ));
    }
    if c.sessions.idle_timeout.is_zero() {
        p.push(Problem::new(
            "sessions.idle_timeout_secs",
            "is 0, so sessions would stop at once; give seconds, e.g. 900",
        ));
    }
    if c.server.body_timeout.is_zero() {
        p.push(Problem::new(
            "server.body_timeout_secs",
            "is 0, so every request with a body would be cut off; give seconds, e.g. 10",
        ));
    }
    if c.sessions.threads == Some(0) {
        p.push(Problem::new(
            "sessions.threads",
            "is 0, so no conversation could run; give at least 1, or leave it out for one per core",
        ));
    }
    if c.health_checks.timeout.is_zero() {
        p.push(Problem::new(
            "health_checks.timeout_ms",
            "is 0, so every check would fail; give milliseconds, e.g. 2000",
        ));
    }
    for (name, check) in &c.health_checks.services {
        let key = format!("health_checks.services.{name}");
        if !(check.url.starts_with("http://") || check.url.starts_with("https://")) {
            p.push(Problem::new(
                format!("{key}.url"),
                format!(
                    "`{}` is not an http:// or https:// URL; write the URL to GET",
                    check.url
                ),
            ));
        }
        if let Some(status) = check.expect_status.filter(|s| !(100..=599).contains(s)) {
            p.push(Problem::new(format!("{key}.expect_status"), format!("{status} is not an HTTP status; use 100 to 599, or remove it to accept any 2xx")));
        }
    }
}

/// Records a problem when `raw` is neither a phone number nor a WhatsApp user id.
fn phone(p: &mut Vec<Problem>, key: &str, raw: &str) {
    if WaId::parse(raw).is_none() {
        p.push(Problem::new(key, format!("`{raw}` is not a phone number; write digits with an optional + and spaces or dashes, e.g. +15551234567 (or a user id such as US.13491208655302741918)")));
    }
}

/// True for `HH:MM-HH:MM` with valid times.
fn is_shift(hours: &str) -> bool {
    let time = |t: &str| {
        let Some((h, m)) = t.trim().split_once(':') else {
            return false;
        };
        h.len() == 2
            && m.len() == 2
            && h.parse::<u8>().is_ok_and(|h| h < 24)
            && m.parse::<u8>().is_ok_and(|m| m < 60)
    };
    hours
        .split_once('-')
        .is_some_and(|(a, b)| time(a) && time(b))
}

/// The regex crate's message on one line: the `error: ...` line of a syntax error with the
/// character of the pattern where it is (from the crate's caret line), else all of it.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let Some(error) = lines.iter().find_map(|l| l.strip_prefix("error: ")) else {
        return lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    };
    // `regex parse error:`, the pattern indented, a line of spaces and `^` under the fault.
    let caret = lines.iter().position(|l| {
        let t = l.trim();
        !t.is_empty() && t.chars().all(|c| c == '^' || c == '~')
    });
    match caret.filter(|&i| i > 0) {
        Some(i) => {
            let indent = lines[i - 1].len() - lines[i - 1].trim_start().len();
            let at = lines[i]
                .find(['^', '~'])
                .unwrap_or(indent)
                .saturating_sub(indent)
                + 1;
            format!("{error} (at character {at} of the pattern)")
        }
        None => error.to_owned(),
    }
}

/// The people directory, approvers, deployments and notifier sections.
fn validate_ops(wa: &WhatsAppConfig, p: &mut Vec<Problem>, key: &dyn Fn(&str) -> String) {
    for (i, person) in wa.people.iter().enumerate() {
        if let Some(n) = &person.phone {
            phone(p, &key(&format!("people[{i}].phone")), n);
        }
        if let Some(id) = &person.user_id {
            if !WaId::parse(id).is_some_and(|wa| wa.is_user_id()) {
                p.push(Problem::new(
                    key(&format!("people[{i}].user_id")),
                    format!("`{id}` is not a WhatsApp user id; copy it from a message's `from_user_id`, e.g. US.13491208655302741918"),
                ));
            }
        }
    }
    for (i, entry) in wa.oncall.static_oncall.iter().enumerate() {
        if let Some(zone) = &entry.timezone {
            if zone.parse::<chrono_tz::Tz>().is_err() {
                p.push(Problem::new(
                    key(&format!("oncall.static_oncall[{i}].timezone")),
                    format!(
                        "`{zone}` is not an IANA time zone; write e.g. America/New_York or UTC"
                    ),
                ));
            }
        }
    }
    if let Some(n) = &wa.oncall.fallback_number {
        phone(p, &key("oncall.fallback_number"), n);
    }
    for (env, approvers) in &wa.approvals.environments {
        let lists = std::iter::once((
            format!("approvals.environments.{env}.approvers"),
            &approvers.approvers,
        ))
        .chain(
            approvers
                .services
                .iter()
                .map(|(svc, l)| (format!("approvals.environments.{env}.services.{svc}"), l)),
        );
        for (at, list) in lists {
            for name in list {
                match wa.person(name) {
                    Some(person) if person.wa().is_some() => {}
                    Some(_) => p.push(Problem::new(key(&at), format!("`{name}` has no phone or user_id in platforms.whatsapp.people; approvers answer on WhatsApp"))),
                    None => p.push(Problem::new(key(&at), format!("`{name}` is not in platforms.whatsapp.people; add them with a phone"))),
                }
            }
        }
    }
    if let Some(url) = &wa.deployments.webhook_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            p.push(Problem::new(
                key("deployments.webhook_url"),
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
    }
    if let Some(email) = &wa.notifier.email {
        if !["starttls", "tls", "none"].contains(&email.security.as_str()) {
            p.push(Problem::new(
                key("notifier.email.security"),
                format!("`{}` is not one of starttls, tls, none", email.security),
            ));
        }
    }
}
