//! SubscribeToShard: one signed request whose response is an event stream
//! (`docs/event-stream.md` §3–§4), read frame by frame as the body arrives.

use super::response::{classify_send_error, parse_error_response};
use super::{Client, ClientError, Detail};
use crate::codec::Encoding;
use crate::error::{ErrorBody, KinesisError};
use crate::event_stream::{Decoder, Message};
use crate::model::Operation;
use crate::model::SubscribeToShardEvent;
use crate::model::SubscribeToShardInput;
use http::header::{CONTENT_TYPE, HOST};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// An open SubscribeToShard response: the `SubscribeToShardEvent`s the
/// service pushes, read with [`next_event`](Self::next_event) or as a
/// [`futures::Stream`]. Dropping it ends the subscription.
///
/// The stream ends (`None`) when the service ends the response normally:
/// after its lifetime (5 minutes on AWS) or after the final event of a
/// closed shard (the one with `ChildShards`). An exception or error message,
/// a transport failure or an idle read timeout is returned once as an
/// error; the stream then ends.
#[derive(Debug)]
pub struct SubscribeToShardStream {
    body: Incoming,
    decoder: Decoder,
    read_timeout: Duration,
    /// Fires when no body bytes arrived for `read_timeout`.
    idle: Pin<Box<Sleep>>,
    version: http::Version,
    request_id: Option<String>,
    done: bool,
    /// A record event that arrived where `initial-response` belongs.
    pending: Option<Message>,
    /// The stream subscribed to, which the stream's errors name.
    stream: Option<String>,
}

impl SubscribeToShardStream {
    pub(super) fn new(
        body: Incoming,
        version: http::Version,
        request_id: Option<String>,
        read_timeout: Duration,
        stream: Option<String>,
    ) -> Self {
        SubscribeToShardStream {
            body,
            decoder: Decoder::default(),
            read_timeout,
            idle: Box::pin(tokio::time::sleep(read_timeout)),
            version,
            request_id,
            done: false,
            pending: None,
            stream,
        }
    }

    /// The HTTP version the response came on.
    pub fn http_version(&self) -> http::Version {
        self.version
    }

    /// The service's `x-amzn-RequestId` of the subscription, if it sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The next event; `Ok(None)` once the response has ended normally (and
    /// after an error has been returned).
    pub async fn next_event(&mut self) -> Result<Option<SubscribeToShardEvent>, ClientError> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Read the mandatory `initial-response` event that opens the stream.
    pub(super) async fn read_initial_response(&mut self) -> Result<(), ClientError> {
        let first = std::future::poll_fn(|cx| self.poll_message(cx)).await;
        let outcome = match first {
            Ok(Some(m)) => match classify(&m) {
                Frame::Event("initial-response") => Ok(()),
                // kinesis-mock omits the initial-response and opens with a record
                // event; keep it for `next_event` rather than losing its records.
                Frame::Event("SubscribeToShardEvent") => {
                    self.pending = Some(m);
                    Ok(())
                }
                Frame::Failure(e) => Err(e),
                Frame::Event(other) => Err(ClientError::Decode(
                    format!("the first event-stream message was {other:?}, not initial-response")
                        .into(),
                )),
            },
            Ok(None) => Err(ClientError::Transport(
                "the SubscribeToShard response ended before its initial-response".into(),
            )),
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            self.done = true;
        }
        outcome
    }

    /// Poll for the next event (the core of [`next_event`](Self::next_event)
    /// and of the `Stream` implementation).
    pub fn poll_next_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<SubscribeToShardEvent>, ClientError>> {
        self.poll_event(cx)
            .map_err(|e| e.in_call(Operation::SubscribeToShard.name(), self.stream.as_deref()))
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<SubscribeToShardEvent>, ClientError>> {
        loop {
            if self.done {
                return Poll::Ready(Ok(None));
            }
            let polled = match self.pending.take() {
                Some(m) => Poll::Ready(Ok(Some(m))),
                None => self.poll_message(cx),
            };
            let message = match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Some(m))) => m,
                Poll::Ready(Ok(None)) => {
                    self.done = true;
                    return Poll::Ready(Ok(None));
                }
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
            };
            match classify(&message) {
                Frame::Event("SubscribeToShardEvent") => {
                    let encoding = match message.content_type() {
                        Some(ct) if ct.contains("cbor") => Encoding::Cbor,
                        _ => Encoding::Json,
                    };
                    return Poll::Ready(match encoding.decode(&message.payload) {
                        Ok(event) => Ok(Some(event)),
                        Err(e) => {
                            // A skipped event would lose its records silently.
                            self.done = true;
                            Err(ClientError::Decode(Detail::with_source(
                                format!("SubscribeToShardEvent payload: {}", e.message),
                                e,
                            )))
                        }
                    });
                }
                // Unknown event types (and a repeated initial-response) are
                // ignored, as the AWS SDKs do.
                Frame::Event(_) => continue,
                Frame::Failure(e) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// The next whole event-stream message, reading body chunks as needed.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, ClientError>> {
        loop {
            match self.decoder.next_message() {
                Ok(Some(m)) => return Poll::Ready(Ok(Some(m))),
                Ok(None) => {}
                Err(e) => {
                    return Poll::Ready(Err(ClientError::Decode(Detail::with_source(
                        format!("event stream: {e}"),
                        e,
                    ))));
                }
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = Instant::now() + self.read_timeout;
                    self.idle.as_mut().reset(deadline);
                    // Trailers carry nothing for us.
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(ClientError::Transport(Detail::caused_by(e))));
                }
                Poll::Ready(None) => {
                    let left = self.decoder.buffered_len();
                    return Poll::Ready(if left == 0 {
                        Ok(None)
                    } else {
                        Err(ClientError::Transport(
                            format!("the event stream ended inside a frame ({left} bytes unread)")
                                .into(),
                        ))
                    });
                }
                Poll::Pending => {
                    if self.idle.as_mut().poll(cx).is_ready() {
                        let idle = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no event-stream bytes arrived",
                        );
                        return Poll::Ready(Err(ClientError::timeout(self.read_timeout, idle)));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl futures::Stream for SubscribeToShardStream {
    type Item = Result<SubscribeToShardEvent, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_event(cx).map(Result::transpose)
    }
}

/// What one message means to a subscriber.
#[derive(Debug)]
enum Frame<'a> {
    /// An `event` message of this `:event-type`.
    Event(&'a str),
    /// An `exception` or `error` message, or one that is not valid here.
    Failure(ClientError),
}

fn classify(m: &Message) -> Frame<'_> {
    match m.message_type() {
        Some("event") => Frame::Event(m.event_type().unwrap_or("")),
        Some("exception") => {
            let kind = m.exception_type().unwrap_or("InternalFailureException");
            Frame::Failure(ClientError::from(KinesisError::from_body(
                400,
                &ErrorBody {
                    error_type: kind.to_string(),
                    message: Some(exception_message(&m.payload)),
                },
            )))
        }
        // Unmodelled errors are server faults (e.g. `InternalFailure`).
        Some("error") => Frame::Failure(ClientError::from(KinesisError::from_body(
            500,
            &ErrorBody {
                error_type: m.error_code().unwrap_or("InternalFailure").to_string(),
                message: m.error_message().map(str::to_string),
            },
        ))),
        other => Frame::Failure(ClientError::Decode(
            format!("event-stream message with :message-type {other:?}").into(),
        )),
    }
}

/// The `message` (or `Message`) of an exception payload; the raw text if it
/// is not such JSON.
fn exception_message(payload: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(alias = "Message", default)]
        message: Option<String>,
    }
    match serde_json::from_slice::<Payload>(payload) {
        Ok(Payload { message: Some(m) }) => m,
        _ => String::from_utf8_lossy(payload).into_owned(),
    }
}

impl Client {
    /// SubscribeToShard: open an event stream of the shard's records for a
    /// registered, ACTIVE consumer.
    ///
    /// The request body is JSON. It goes over HTTP/2 when
    /// [`ClientConfig::http2`] is set (h2c with prior knowledge on `http://`)
    /// or when TLS ALPN selects `h2` on `https://`, else over HTTP/1.1 with a
    /// chunked response. Errors before the stream (unknown consumer or shard,
    /// a consumer not ACTIVE, a second call within 5 s) are
    /// [`ClientError::Service`] as for other calls. Returns once the
    /// `initial-response` event has arrived.
    ///
    /// [`ClientConfig::request_timeout`] bounds everything up to that event;
    /// afterwards [`ClientConfig::subscribe_read_timeout`] bounds each wait
    /// for more bytes. A slot of [`ClientConfig::max_connections`] is held
    /// only until then, so long-lived subscriptions do not starve other
    /// calls. Never retried: AWS allows one call a second per consumer and
    /// shard, so the caller decides when to subscribe again (typically
    /// `AFTER_SEQUENCE_NUMBER` the last `ContinuationSequenceNumber`).
    pub async fn subscribe_to_shard(
        &self,
        input: &SubscribeToShardInput,
    ) -> Result<SubscribeToShardStream, ClientError> {
        let inner = &*self.inner;
        let stream = input.stream().map(str::to_string);
        let body = Encoding::Json.encode(input);
        let _permit = inner
            .limiter
            .acquire()
            .await
            .map_err(|_| ClientError::Config("connection limiter closed".into()))?;
        let mut req = self
            .signed_request(Operation::SubscribeToShard, body, Encoding::Json)
            .await?;
        let http = match &inner.stream_http {
            Some(negotiated) => {
                // HTTP/2 carries the host as :authority; for HTTP/1.1 hyper
                // adds the same Host from the URI.
                req.headers_mut().remove(HOST);
                negotiated
            }
            None => &inner.http,
        };
        let timeout = inner.config.request_timeout;
        let read_timeout = inner.config.subscribe_read_timeout;
        let handshake = async {
            let resp = http.request(req).await.map_err(classify_send_error)?;
            let (parts, incoming) = resp.into_parts();
            if parts.status != http::StatusCode::OK {
                let bytes = incoming
                    .collect()
                    .await
                    .map_err(|e| ClientError::Transport(Detail::caused_by(e)))?
                    .to_bytes();
                return Err(parse_error_response(
                    parts.status.as_u16(),
                    &parts.headers,
                    &bytes,
                    Encoding::Json,
                ));
            }
            if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
                let ct = ct.to_str().unwrap_or("");
                let base = ct.split(';').next().unwrap_or("").trim();
                if !base.eq_ignore_ascii_case(crate::event_stream::CONTENT_TYPE) {
                    return Err(ClientError::Decode(
                        format!(
                            "SubscribeToShard answered with content type {ct:?}, not an event stream"
                        )
                        .into(),
                    ));
                }
            }
            let request_id = parts
                .headers
                .get("x-amzn-requestid")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut stream = SubscribeToShardStream::new(
                incoming,
                parts.version,
                request_id,
                read_timeout,
                stream.clone(),
            );
            stream.read_initial_response().await?;
            Ok(stream)
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|elapsed| ClientError::timeout(timeout, elapsed))
            .and_then(|r| r)
            .map_err(|e| e.in_call(Operation::SubscribeToShard.name(), stream.as_deref()))
    }
}
