//! `SILENCE api-server 1h` / `SILENCE api-server until 18:00` / `UNSILENCE api-server` from the
//! chat: while a service is silenced its pages are held (kept on the alert and listed when the
//! silence is lifted), not sent; a critical alert breaks through unless `oncall.silence_critical`
//! says otherwise. Only the people `oncall.silencers` names may silence.

use super::cover::{read_until, Until, LONGEST};
use super::Refused;
use crate::config::WhatsAppConfig;
use crate::store::AlertRecord;
use aof_actors::WaId;

/// How `SILENCE` is written, for an answer to one written otherwise.
pub const HOW: &str =
    "Write SILENCE <service> 1h, SILENCE <service> until 18:00, or UNSILENCE <service>.";

/// `SILENCE <service> <until>` as the service (lower-case) and when it ends.
pub fn parse(text: &str) -> Result<(String, Until), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [verb, service, rest @ ..] if verb.eq_ignore_ascii_case("SILENCE") && !rest.is_empty() => {
            let until = read_until(rest).ok_or(HOW)?;
            if matches!(until, Until::For(span) if span > LONGEST) {
                return Err(format!("A silence lasts at most 7 days. {HOW}"));
            }
            Ok((service.to_lowercase(), until))
        }
        _ => Err(HOW.to_owned()),
    }
}

/// `UNSILENCE <service>` as the service (lower-case).
pub fn parse_lift(text: &str) -> Result<String, String> {
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        [verb, service] if verb.eq_ignore_ascii_case("UNSILENCE") => Ok(service.to_lowercase()),
        _ => Err(HOW.to_owned()),
    }
}

/// Whether `who` may silence: named (by name, email or number) in `oncall.silencers`.
pub fn may_silence(wa: &WhatsAppConfig, who: &WaId) -> Result<(), Refused> {
    let allowed = wa
        .oncall
        .silencers
        .iter()
        .any(|s| wa.reach(s).as_ref() == Some(who) || wa.person(s).is_some_and(|p| p.is(who)));
    if allowed {
        Ok(())
    } else {
        Err(Refused::Answer(
            "ℹ️ Only the people in oncall.silencers may silence a service; ask one of them.".into(),
        ))
    }
}

/// Whether a page about `alert` goes out through a silence of its service: a critical alert breaks
/// through unless the config holds those too.
pub fn breaks_through(wa: &WhatsAppConfig, alert: &AlertRecord) -> bool {
    alert.severity.eq_ignore_ascii_case("critical") && !wa.oncall.silence_critical
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration as Span, NaiveTime};

    #[test]
    fn silences_are_read_as_written() {
        assert_eq!(
            parse("SILENCE API-Server 1h"),
            Ok(("api-server".into(), Until::For(Span::hours(1))))
        );
        assert_eq!(
            parse("silence db until 18:00"),
            Ok((
                "db".into(),
                Until::At(NaiveTime::from_hms_opt(18, 0, 0).unwrap())
            ))
        );
        for bad in [
            "SILENCE",
            "SILENCE db",
            "SILENCE db soon",
            "SILENCE db 300h",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_lift("UNSILENCE DB"), Ok("db".into()));
        assert!(parse_lift("UNSILENCE").is_err());
    }
}
