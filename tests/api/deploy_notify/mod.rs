//! The `deployment-manager` and `notifier` agents through the real server: webhook-triggered test
//! flows call them, a second fake records what the deploy webhook and Slack received, a script
//! written by the test stands in for a deploy command, and a tiny SMTP server takes the email.
//!
//! - `flows`: the webhook-triggered test flows and the directory they are written to.
//! - `support`: the people directory, the server, running a flow to its end and reading its output.
//! - `deploy`: the `deployment-manager` agent through a webhook and through a command.
//! - `notifier`: the `notifier` agent on Slack and WhatsApp.
//! - `fake_smtp` and `email`: the `notifier` agent's email channel against a tiny SMTP server.

mod deploy;
mod email;
mod fake_smtp;
mod flows;
mod notifier;
mod support;
