//! A request body must keep coming. A client that sends half a body and then goes silent for
//! `server.body_timeout_secs` gets 408 and its connection closed, instead of holding a worker and
//! a connection for as long as it likes. (actix-web times out the request head by itself, not
//! the body.)

use super::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, HttpResponse};
use futures_util::Stream;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{sleep, Sleep};

/// The body as it arrives, failing once it has been silent for longer than `limit`. The timer
/// starts only when the body makes the reader wait: a body that is already there (nearly every
/// webhook) never arms one.
struct Silence<S> {
    body: S,
    limit: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    timed_out: Rc<Cell<bool>>,
}

impl<S: Stream<Item = Result<Bytes, PayloadError>> + Unpin> Stream for Silence<S> {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.body).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.deadline = None;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(end_or_error) => Poll::Ready(end_or_error),
            Poll::Pending => {
                let limit = self.limit;
                let deadline = self.deadline.get_or_insert_with(|| Box::pin(sleep(limit)));
                if deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.timed_out.set(true);
                let silent = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body stopped arriving",
                );
                Poll::Ready(Some(Err(PayloadError::Io(silent))))
            }
        }
    }
}

/// Middleware: puts every request's body behind `Silence` and answers 408 when it fired.
pub async fn cut_off_silent_bodies(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = req
        .app_data::<Data<AppState>>()
        .map_or_else(crate::config::defaults::body_timeout, |s| {
            s.config.server.body_timeout
        });
    let timed_out = Rc::new(Cell::new(false));
    let body = Silence {
        body: req.take_payload(),
        limit,
        deadline: None,
        timed_out: timed_out.clone(),
    };
    req.set_payload(Payload::from(
        Box::pin(body) as Pin<Box<dyn Stream<Item = _>>>
    ));
    let res = next.call(req).await?;
    if !timed_out.get() {
        return Ok(res.map_into_left_body());
    }
    tracing::warn!(
        path = res.request().path(),
        limit_s = limit.as_secs(),
        "a request body went silent; answered 408"
    );
    let timeout = HttpResponse::RequestTimeout()
        .insert_header(("connection", "close"))
        .body("the request body stopped arriving");
    Ok(res.into_response(timeout).map_into_right_body())
}
