//! Against real programs from Debian's packages, which `.ci/run` installs: a Prometheus
//! Alertmanager and chromium with chromedriver. Without them each test says so and passes, unless
//! `AOF_REQUIRE_ALERTMANAGER=1` / `AOF_REQUIRE_BROWSER=1` (CI sets both).
//!
//! - `alertmanager_real`: alerts from a real Alertmanager page, and resolve, through the webhook.
//! - `browser`: the sandbox chat page in a real browser.

mod common;

mod external {
    mod alertmanager_real;
    mod browser;
}
