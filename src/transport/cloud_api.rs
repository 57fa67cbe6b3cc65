//! The WhatsApp Cloud API client: one `POST {api_base_url}/{phone_number_id}/messages` per send,
//! with the body from [`crate::wire::whatsapp::send_body`] and the answer read by
//! [`crate::wire::whatsapp::parse_send_response`]. Retrying is the Sender's job; this only says
//! how a single attempt ended.

use crate::wire::whatsapp::{parse_send_response, send_body};
use aof_actors::model::OutboundMessage;
use aof_actors::ports::{SendError, SendErrorKind, Transport};
use aof_actors::{JobId, Wamid};
use awc::error::SendRequestError;
use awc::http::header::{HeaderValue, AUTHORIZATION};
use futures_util::future::LocalBoxFuture;
use std::fmt;
use std::time::Duration;

#[cfg(test)]
mod tests;

/// The most of a response body read: a send answer is a few hundred bytes.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Sends messages through Meta's Graph API.
///
/// It holds an [`awc::Client`], which is `!Send`: build it with [`CloudApi::new`] on the arbiter
/// (thread) that sends, as the actors' `Rc<dyn Transport>` expects.
pub struct CloudApi {
    /// `{api_base_url}/{phone_number_id}/messages`.
    endpoint: String,
    /// `Bearer <token>`, marked sensitive; `None` when the token cannot be a header value, so
    /// every send fails as fatal instead of the bot refusing to start on a pasted newline.
    authorization: Option<HeaderValue>,
    timeout: Duration,
    client: awc::Client,
}

impl CloudApi {
    /// A client for one business phone number. `api_base_url` includes the Graph API version
    /// (`https://graph.facebook.com/v21.0`); `timeout` bounds connecting and the whole request.
    pub fn new(
        api_base_url: String,
        phone_number_id: String,
        access_token: String,
        timeout: Duration,
    ) -> Self {
        // Only the `ring` provider is compiled in; installing it explicitly keeps awc's TLS
        // connector from panicking should another crate ever enable a second provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = format!(
            "{}/{}/messages",
            api_base_url.trim_end_matches('/'),
            phone_number_id.trim_matches('/')
        );
        let authorization = HeaderValue::from_str(&format!("Bearer {}", access_token.trim()))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        let client = awc::Client::builder()
            .connector(awc::Connector::new().timeout(timeout))
            .timeout(timeout)
            .finish();
        Self {
            endpoint,
            authorization,
            timeout,
            client,
        }
    }

    /// Where sends go (for logs; holds no secret).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl fmt::Debug for CloudApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApi")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport for CloudApi {
    fn send(
        &self,
        id: &JobId,
        message: &OutboundMessage,
    ) -> LocalBoxFuture<'static, Result<Wamid, SendError>> {
        let Some(authorization) = self.authorization.clone() else {
            return Box::pin(futures_util::future::ready(Err(SendError {
                kind: SendErrorKind::Fatal,
                code: None,
                message: "the access token holds characters not allowed in an HTTP header; \
                          check platforms.whatsapp.access_token"
                    .into(),
                retry_after: None,
            })));
        };
        let mut body = send_body(message);
        // Echoed in this message's statuses: they name it even if the bot crashes before it
        // stores the wamid of this answer.
        body["biz_opaque_callback_data"] = serde_json::json!(id.0);
        let request = self
            .client
            .post(&self.endpoint)
            .insert_header((AUTHORIZATION, authorization))
            .timeout(self.timeout);
        let timeout = self.timeout;
        Box::pin(async move {
            let mut response = request
                .send_json(&body)
                .await
                .map_err(|e| transport_error(e, timeout))?;
            let status = response.status().as_u16();
            let bytes = response
                .body()
                .limit(MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| {
                    transient(format!(
                        "reading the Graph API response (HTTP {status}) failed: {e}"
                    ))
                })?;
            tracing::debug!(status, "Graph API answered a send");
            parse_send_response(status, &bytes)
        })
    }
}

/// The request never got an answer: retrying the same body is safe enough (a duplicate page
/// beats a lost one), except for a URL no retry can fix. The message names no header, so no
/// token can leak through it.
fn transport_error(err: SendRequestError, timeout: Duration) -> SendError {
    let message = match err {
        SendRequestError::Url(e) => {
            return SendError {
                kind: SendErrorKind::Fatal,
                code: None,
                message: format!(
                    "the Graph API URL is invalid ({e}); check platforms.whatsapp.api_base_url"
                ),
                retry_after: None,
            }
        }
        SendRequestError::Timeout => {
            format!(
                "Graph API request timed out after {} ms",
                timeout.as_millis()
            )
        }
        SendRequestError::Connect(e) => format!("connecting to the Graph API failed: {e}"),
        other => format!("sending to the Graph API failed: {other}"),
    };
    transient(message)
}

fn transient(message: String) -> SendError {
    SendError {
        kind: SendErrorKind::Transient,
        code: None,
        message,
        retry_after: None,
    }
}
