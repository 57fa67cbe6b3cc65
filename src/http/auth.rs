//! The bearer token that every non-Meta webhook requires (`server.webhook_token`).

use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

/// Whether the request carries `Authorization: Bearer <expected>`. Compares digests of equal length
/// in constant time, so the time taken says nothing about the token. No token configured: refused.
pub fn bearer_ok(req: &HttpRequest, expected: Option<&str>) -> bool {
    let Some(expected) = expected.filter(|t| !t.is_empty()) else {
        return false;
    };
    let Some(given) = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    let (a, b) = (
        Sha256::digest(expected.as_bytes()),
        Sha256::digest(given.trim().as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Whether a request carries the configured `server.webhook_token`; counts refusals.
pub fn webhook_token_ok(req: &HttpRequest, state: &super::AppState) -> bool {
    let ok = bearer_ok(
        req,
        state
            .config
            .server
            .webhook_token
            .as_ref()
            .map(|t| t.expose()),
    );
    if !ok {
        metrics::counter!("aof_webhook_rejected_total", "reason" => "token").increment(1);
    }
    ok
}
