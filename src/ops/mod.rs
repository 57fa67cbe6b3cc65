//! The ops domain, apart from how its events arrive (`http`) and how flows ask for it (`agents`):
//! what an alert from another system means for the open ones ([`alerts`]), how those systems'
//! payloads map to a page ([`intake`]), who is on call ([`oncall`]), and war rooms ([`war_room`]).

pub mod alerts;
pub mod intake;
pub mod oncall;
pub mod war_room;
