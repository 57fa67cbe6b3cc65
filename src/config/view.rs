//! Lookups other modules make on a loaded config: the allow-list and groups as [`WaId`]s, and the
//! secret-free view flows read as `config` in their expressions.
//!
//! Numbers are validated at load, so the parsing here never drops one.

use super::{Config, Person, WhatsAppConfig};
use aof_actors::model::OutboundBody;
use aof_actors::WaId;
use serde_json::{json, Value};
use std::collections::BTreeSet;

impl WhatsAppConfig {
    /// The allow-list, both lists together, as the ids Meta writes in `from`. Empty means everyone
    /// may write.
    pub fn allowed(&self) -> Vec<WaId> {
        let all: BTreeSet<WaId> = self
            .allowed_numbers
            .iter()
            .chain(&self.security.allowed_numbers)
            .filter_map(|n| self.reach(n))
            .collect();
        all.into_iter().collect()
    }

    /// The one id a person goes by: a user id that a person of the directory has beside a phone
    /// number is that number (one conversation, one person, whichever Meta sends); anything else
    /// as it is.
    pub fn canonical(&self, who: WaId) -> WaId {
        if !who.is_user_id() {
            return who;
        }
        self.people
            .iter()
            .filter(|p| p.is(&who))
            .find_map(|p| p.phone.as_deref().and_then(WaId::parse))
            .unwrap_or(who)
    }

    /// A number or user id as the config writes it, as the one id that person goes by.
    pub fn reach(&self, raw: &str) -> Option<WaId> {
        WaId::parse(raw).map(|who| self.canonical(who))
    }
}

/// `fallback_template`, ready to carry a text outside the 24-hour window (where Meta refuses
/// free-form text, 131047): a flow's text, or a digest of what waited for one person.
#[derive(Debug, Clone)]
pub struct FallbackTemplate {
    name: String,
    language: String,
    placeholders: usize,
}

impl FallbackTemplate {
    /// The template with `parameters` (first `{{1}}`), cut to its placeholders; `None` when there
    /// are fewer parameters than placeholders.
    pub fn body(&self, mut parameters: Vec<String>) -> Option<OutboundBody> {
        parameters.truncate(self.placeholders);
        (parameters.len() == self.placeholders).then(|| OutboundBody::Template {
            name: self.name.clone(),
            language: self.language.clone(),
            parameters,
        })
    }
}

impl WhatsAppConfig {
    /// The fallback template, when `fallback_template` names one of the templates.
    pub fn fallback(&self) -> Option<FallbackTemplate> {
        let name = self.fallback_template.as_ref()?;
        let def = self.templates.get(name)?;
        Some(FallbackTemplate {
            name: name.clone(),
            language: def.language.clone(),
            placeholders: def.placeholders(),
        })
    }

    /// A person of the directory by name (any case), email (any case) or number (by digits).
    pub fn person(&self, key: &str) -> Option<&Person> {
        let key = key.trim();
        let id = WaId::parse(key);
        self.people.iter().find(|p| {
            p.name.eq_ignore_ascii_case(key)
                || p.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(key))
                || id.as_ref().is_some_and(|id| p.is(id))
        })
    }

    /// The name people know a number by: the directory, then the rota; `None` for strangers.
    pub fn name_of(&self, who: &WaId) -> Option<String> {
        let person = self.people.iter().find(|p| p.is(who));
        let rota = || {
            self.oncall
                .static_oncall
                .iter()
                .find(|e| WaId::parse(&e.phone).as_ref() == Some(who))
        };
        person
            .map(|p| p.name.clone())
            .or_else(|| rota().map(|e| e.name.clone()))
    }

    /// How people know an actor as recorded: the name of a number, else the text itself (a name,
    /// `pagerduty`); "someone" when nobody is recorded.
    pub fn label(&self, actor: Option<&str>) -> String {
        let Some(actor) = actor else {
            return "someone".to_owned();
        };
        WaId::parse(actor)
            .and_then(|wa| self.name_of(&wa))
            .unwrap_or_else(|| actor.to_owned())
    }
}

impl Config {
    /// The members of group `name` (`platforms.whatsapp.groups`), for `send_to_group`; `None` when
    /// no such group is defined.
    pub fn group_members(&self, name: &str) -> Option<Vec<WaId>> {
        let numbers = self.platforms.whatsapp.groups.get(name)?;
        let wa = &self.platforms.whatsapp;
        Some(numbers.iter().filter_map(|n| wa.reach(n)).collect())
    }

    /// What flows see as `config` (`config.oncall.team_group`, `config.oncall.schedule_id`,
    /// `config.commands`): the WhatsApp platform section without credentials, since expressions
    /// can end up in messages, and the routed command words.
    pub fn expression_view(&self) -> Value {
        let wa = &self.platforms.whatsapp;
        let rota: Vec<Value> = wa
            .oncall
            .static_oncall
            .iter()
            .map(|e| json!({ "name": e.name, "phone": e.phone, "hours": e.hours, "timezone": e.timezone }))
            .collect();
        json!({
            "oncall": {
                "schedule_id": wa.oncall.schedule_id,
                "team_group": wa.oncall.team_group,
                "static_oncall": rota,
            },
            "allowed_numbers": wa.allowed().iter().map(WaId::e164).collect::<Vec<_>>(),
            "groups": wa.groups,
            "people": wa.people.iter().map(|p| json!({ "name": p.name, "phone": p.phone, "email": p.email,
                "slack_id": p.slack_id })).collect::<Vec<_>>(),
            "templates": wa.templates.keys().collect::<Vec<_>>(),
            // The command words `routing.commands` routes, upper case: HELP lists them all.
            "commands": self.routing.commands.keys().map(|c| c.to_uppercase()).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn sandbox() -> crate::config::Config {
        let text = include_str!("../../config/sandbox.yaml");
        load_str("config/sandbox.yaml", text, &|_| None).expect("config/sandbox.yaml loads")
    }

    #[test]
    fn the_team_group_of_the_sandbox_has_its_three_members() {
        let members = sandbox().group_members("sre-team").unwrap();
        let numbers: Vec<String> = members.iter().map(|m| m.e164()).collect();
        assert_eq!(numbers, ["+15551234567", "+15557654321", "+15550001234"]);
        assert!(sandbox().group_members("nobody").is_none());
    }

    #[test]
    fn the_expression_view_has_the_oncall_section_and_no_secret() {
        let view = sandbox().expression_view();
        assert_eq!(view["oncall"]["team_group"], "sre-team");
        assert_eq!(view["oncall"]["static_oncall"][1]["name"], "Bob");
        let text = view.to_string();
        for secret in ["sandbox-secret", "sandbox-verify", "sandbox-token"] {
            assert!(!text.contains(secret), "{secret} is in the view: {text}");
        }
    }
}
