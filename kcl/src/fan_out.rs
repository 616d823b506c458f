//! Enhanced fan-out retrieval (docs/kcl-behaviour.md §7): registering the stream consumer
//! (KCL `FanOutConsumerRegistration`) and reading a shard with SubscribeToShard
//! (KCL `FanOutRecordsPublisher`).
//!
//! Both are split into a pure state machine that takes answers and time as
//! arguments ([`ConsumerRegistration`], [`Subscription`]) and a thin driver
//! that makes the calls. A shard's records go through the same deaggregation
//! and sub-sequence filter as polling, so a processor sees no difference.

use std::time::Duration;

use kinesis_proto::client::{Client, ClientError};
use kinesis_proto::codec::Timestamp;
use kinesis_proto::error::ErrorCode;
use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model::{
    ConsumerRef, ConsumerStatus, DescribeStreamSummaryInput, GetShardIteratorInput,
    RegisterStreamConsumerInput, ShardIteratorType, StartingPosition, StreamRef,
    SubscribeToShardEvent, SubscribeToShardInput,
};
use tokio::sync::mpsc;

use crate::data_fetcher::Fetched;
use crate::deaggregation::{Deaggregated, deaggregate_records};
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::metrics::Metrics;
use crate::polling_config::PollingConfig;

/// KCL's bound on tries of each registration step (`maxDescribeStreamSummaryRetries`,
/// `maxDescribeStreamConsumerRetries`, `registerStreamConsumerRetries`).
pub const REGISTRATION_MAX_TRIES: u32 = 10;
/// KCL's wait between registration tries (`retryBackoffMillis`).
pub const REGISTRATION_BACKOFF: Duration = Duration::from_secs(1);
/// AWS allows one SubscribeToShard call a second per consumer and shard.
pub const MIN_SUBSCRIBE_INTERVAL: Duration = Duration::from_secs(1);

/// A registration call to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationCall {
    /// DescribeStreamSummary, for the stream's ARN.
    DescribeStreamSummary,
    /// DescribeStreamConsumer(StreamARN, ConsumerName).
    DescribeStreamConsumer,
    /// RegisterStreamConsumer(StreamARN, ConsumerName).
    RegisterStreamConsumer,
}

/// What a registration call answered, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationAnswer {
    /// DescribeStreamSummary succeeded.
    StreamArn(String),
    /// Describe/RegisterStreamConsumer succeeded.
    Consumer {
        /// The consumer's ARN.
        arn: String,
        /// Its status.
        status: ConsumerStatus,
    },
    /// `ResourceNotFoundException`.
    NotFound,
    /// `ResourceInUseException`.
    InUse,
    /// Throttling, `LimitExceededException` or a transient failure.
    Retryable,
    /// Anything retrying cannot fix.
    Failed(String),
}

/// What registration does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationAction {
    /// Wait `after`, then make `call`.
    Call {
        /// The call.
        call: RegistrationCall,
        /// The wait before it.
        after: Duration,
    },
    /// The consumer is ACTIVE: subscribe with this ARN.
    Active(String),
    /// Registration failed.
    Fail(String),
}

/// KCL's `getOrCreateStreamConsumerArn` as a pure state machine: feed it each
/// call's answer, make the call it returns.
#[derive(Debug, Clone, Default)]
pub struct ConsumerRegistration {
    pending: Option<RegistrationCall>,
    summary_tries: u32,
    describe_tries: u32,
    register_tries: u32,
    registered: bool,
}

impl ConsumerRegistration {
    /// A registration that has made no call yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first call: DescribeStreamSummary.
    pub fn start(&mut self) -> RegistrationAction {
        self.call(RegistrationCall::DescribeStreamSummary, Duration::ZERO)
    }

    fn call(&mut self, call: RegistrationCall, after: Duration) -> RegistrationAction {
        let tries = match call {
            RegistrationCall::DescribeStreamSummary => &mut self.summary_tries,
            RegistrationCall::DescribeStreamConsumer => &mut self.describe_tries,
            RegistrationCall::RegisterStreamConsumer => &mut self.register_tries,
        };
        if *tries >= REGISTRATION_MAX_TRIES {
            return RegistrationAction::Fail(format!(
                "{call:?} did not succeed in {REGISTRATION_MAX_TRIES} tries"
            ));
        }
        *tries += 1;
        self.pending = Some(call);
        RegistrationAction::Call { call, after }
    }

    /// The next step after the pending call answered `answer`.
    pub fn on_answer(&mut self, answer: RegistrationAnswer) -> RegistrationAction {
        use RegistrationAnswer as A;
        use RegistrationCall as C;
        let Some(pending) = self.pending.take() else {
            return RegistrationAction::Fail("an answer came without a call".into());
        };
        match (pending, answer) {
            (_, A::Failed(reason)) => RegistrationAction::Fail(reason),
            (C::DescribeStreamSummary, A::StreamArn(_)) => {
                self.call(C::DescribeStreamConsumer, Duration::ZERO)
            }
            (
                C::DescribeStreamConsumer | C::RegisterStreamConsumer,
                A::Consumer {
                    arn,
                    status: ConsumerStatus::Active,
                },
            ) => RegistrationAction::Active(arn),
            (C::RegisterStreamConsumer, A::Consumer { .. }) => {
                self.registered = true;
                self.call(C::DescribeStreamConsumer, REGISTRATION_BACKOFF)
            }
            // CREATING: poll until ACTIVE, bounded by the describe tries.
            (C::DescribeStreamConsumer, A::Consumer { .. }) => {
                self.call(C::DescribeStreamConsumer, REGISTRATION_BACKOFF)
            }
            (C::DescribeStreamConsumer, A::NotFound) if !self.registered => {
                self.call(C::RegisterStreamConsumer, Duration::ZERO)
            }
            // Someone else registered it meanwhile: describe it.
            (C::RegisterStreamConsumer, A::InUse) => {
                self.registered = true;
                self.call(C::DescribeStreamConsumer, Duration::ZERO)
            }
            (C::RegisterStreamConsumer, A::NotFound) => {
                RegistrationAction::Fail("the stream does not exist".into())
            }
            (C::DescribeStreamSummary, A::NotFound) => {
                RegistrationAction::Fail("the stream does not exist".into())
            }
            // Throttled, in use, just registered but not visible yet: try again.
            (call, _) => self.call(call, REGISTRATION_BACKOFF),
        }
    }
}

fn classify(error: &ClientError) -> RegistrationAnswer {
    if error.is_code(ErrorCode::ResourceNotFound) {
        RegistrationAnswer::NotFound
    } else if error.is_code(ErrorCode::ResourceInUse) {
        RegistrationAnswer::InUse
    } else if error.is_retryable() || error.is_code(ErrorCode::LimitExceeded) {
        RegistrationAnswer::Retryable
    } else {
        RegistrationAnswer::Failed(error.to_string())
    }
}

/// Find `consumer_name` on `stream`, registering it if needed, and wait until
/// it is ACTIVE; returns its ARN. Idempotent: workers may race to register.
pub async fn register_stream_consumer(
    client: &Client,
    stream: &StreamRef,
    consumer_name: &str,
) -> Result<String, Error> {
    let mut registration = ConsumerRegistration::new();
    let mut action = registration.start();
    let mut stream_arn = stream.stream_arn.clone().unwrap_or_default();
    loop {
        let (call, after) = match action {
            RegistrationAction::Active(arn) => return Ok(arn),
            RegistrationAction::Fail(reason) => {
                return Err(Error::FanOut(format!(
                    "registering consumer {consumer_name:?}: {reason}"
                )));
            }
            RegistrationAction::Call { call, after } => (call, after),
        };
        tokio::time::sleep(after).await;
        let answer = match call {
            RegistrationCall::DescribeStreamSummary => {
                let input = DescribeStreamSummaryInput {
                    stream: stream.clone(),
                };
                match client.describe_stream_summary(&input).await {
                    Ok(out) => {
                        stream_arn = out.stream_description_summary.stream_arn;
                        RegistrationAnswer::StreamArn(stream_arn.clone())
                    }
                    Err(e) => classify(&e),
                }
            }
            RegistrationCall::DescribeStreamConsumer => {
                let input = ConsumerRef {
                    stream_arn: Some(stream_arn.clone()),
                    consumer_name: Some(consumer_name.to_string()),
                    consumer_arn: None,
                };
                match client.describe_stream_consumer(&input).await {
                    Ok(out) => RegistrationAnswer::Consumer {
                        arn: out.consumer_description.consumer_arn,
                        status: out.consumer_description.consumer_status,
                    },
                    Err(e) => classify(&e),
                }
            }
            RegistrationCall::RegisterStreamConsumer => {
                let input = RegisterStreamConsumerInput {
                    stream_arn: Some(stream_arn.clone()),
                    consumer_name: Some(consumer_name.to_string()),
                };
                match client.register_stream_consumer(&input).await {
                    Ok(out) => RegistrationAnswer::Consumer {
                        arn: out.consumer.consumer_arn,
                        status: out.consumer.consumer_status,
                    },
                    Err(e) => classify(&e),
                }
            }
        };
        tracing::debug!(
            consumer = consumer_name,
            ?call,
            ?answer,
            "consumer registration"
        );
        action = registration.on_answer(answer);
    }
}

/// The subscription state of one shard: where the next SubscribeToShard
/// starts and when it may be made. Time is milliseconds from any monotonic origin.
#[derive(Debug, Clone)]
pub struct Subscription {
    start: ExtendedSequenceNumber,
    timestamp: Option<Timestamp>,
    continuation: Option<String>,
    last_call_ms: Option<u64>,
    failures: u32,
    ended: bool,
}

impl Subscription {
    /// A shard read from `start` (a checkpoint or a sentinel); `timestamp` is AT_TIMESTAMP's time.
    pub fn new(start: ExtendedSequenceNumber, timestamp: Option<Timestamp>) -> Self {
        Subscription {
            ended: start.is_shard_end(),
            start,
            timestamp,
            continuation: None,
            last_call_ms: None,
            failures: 0,
        }
    }

    /// Whether the shard's last event (no ContinuationSequenceNumber) was seen.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Consecutive failed subscriptions.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The StartingPosition of the next call: after the last continuation
    /// sequence number once there is one, else the checkpoint (AT it: the
    /// sub-sequence filter drops what was already processed) or its sentinel.
    pub fn starting_position(&self) -> StartingPosition {
        let (kind, sequence_number, timestamp) = match (&self.continuation, &self.start) {
            (Some(c), _) => (
                ShardIteratorType::AfterSequenceNumber,
                Some(c.clone()),
                None,
            ),
            (
                None,
                ExtendedSequenceNumber::Sequence {
                    sequence_number, ..
                },
            ) => (
                ShardIteratorType::AtSequenceNumber,
                Some(sequence_number.as_str().to_string()),
                None,
            ),
            (None, ExtendedSequenceNumber::AtTimestamp) => (
                ShardIteratorType::AtTimestamp,
                None,
                Some(self.timestamp.unwrap_or(Timestamp::from_millis(0))),
            ),
            (None, ExtendedSequenceNumber::Latest) => (ShardIteratorType::Latest, None, None),
            (None, _) => (ShardIteratorType::TrimHorizon, None, None),
        };
        StartingPosition {
            position_type: kind,
            sequence_number,
            timestamp,
        }
    }

    /// When the next call may be made: at least [`MIN_SUBSCRIBE_INTERVAL`]
    /// after the last one, and after `failures` the backoff from `now`.
    pub fn next_call_at(&self, now_ms: u64, polling: &PollingConfig) -> u64 {
        let spaced = self
            .last_call_ms
            .map_or(0, |last| last + MIN_SUBSCRIBE_INTERVAL.as_millis() as u64);
        let backoff = if self.failures == 0 {
            0
        } else {
            now_ms + polling.backoff(self.failures).as_millis() as u64
        };
        spaced.max(backoff).max(now_ms)
    }

    /// A SubscribeToShard call is being made at `now_ms`.
    pub fn on_call(&mut self, now_ms: u64) {
        self.last_call_ms = Some(now_ms);
    }

    /// An event arrived: remember where to continue; `true` if it is the shard's last.
    pub fn on_event(&mut self, event: &SubscribeToShardEvent) -> bool {
        self.failures = 0;
        match &event.continuation_sequence_number {
            Some(c) => self.continuation = Some(c.clone()),
            None => self.ended = true,
        }
        self.ended
    }

    /// The call or its stream failed: back off before the next call.
    pub fn on_error(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }
}

/// Everything a shard's subscription task needs.
pub(crate) struct FanOutReader {
    pub client: Client,
    pub stream: StreamRef,
    pub consumer_name: String,
    pub consumer_arn: String,
    pub shard_id: String,
    pub shard_range: Option<HashRange>,
    pub polling: PollingConfig,
    pub start: ExtendedSequenceNumber,
    pub timestamp: Option<Timestamp>,
    pub metrics: Option<Metrics>,
}

impl FanOutReader {
    fn count_end(&self, outcome: &str) {
        if let Some(m) = &self.metrics {
            m.subscriptions_ended
                .with_label_values(&[&self.shard_id, outcome])
                .inc();
        }
    }

    fn page(&self, event: SubscribeToShardEvent, at_shard_end: bool) -> Fetched {
        let resume_after = (!self.start.is_sentinel()).then_some(&self.start);
        let Deaggregated {
            records,
            dropped_out_of_range,
            rejected,
            ..
        } = deaggregate_records(event.records, self.shard_range, resume_after);
        if let Some(m) = &self.metrics {
            if !rejected.is_empty() {
                m.records_rejected
                    .with_label_values(&[&self.shard_id])
                    .inc_by(rejected.len() as u64);
            }
            if dropped_out_of_range > 0 {
                m.records_dropped_out_of_range
                    .with_label_values(&[&self.shard_id])
                    .inc_by(dropped_out_of_range as u64);
            }
            m.millis_behind_latest
                .with_label_values(&[&self.shard_id])
                .set(event.millis_behind_latest);
        }
        Fetched {
            records,
            rejected,
            millis_behind_latest: Some(event.millis_behind_latest),
            child_shards: event.child_shards.unwrap_or_default(),
            at_shard_end,
            fetched_at: std::time::Instant::now(),
            kinesis_bytes: 0,
        }
    }

    /// Whether the service no longer knows the shard. SubscribeToShard answers
    /// ResourceNotFound both for a missing consumer and for a missing shard; a
    /// GetShardIterator on the shard tells them apart. A shard that is gone has
    /// ended, as the Java KCL treats it, so its children can start.
    async fn shard_is_gone(&self) -> bool {
        let input = GetShardIteratorInput {
            stream: self.stream.clone(),
            shard_id: Some(self.shard_id.clone()),
            shard_iterator_type: Some(ShardIteratorType::TrimHorizon),
            ..GetShardIteratorInput::default()
        };
        match self.client.get_shard_iterator(&input).await {
            Err(e) if e.is_code(ErrorCode::ResourceNotFound) => {
                tracing::info!(
                    shard = %self.shard_id,
                    error = %e,
                    "the shard does not exist (expired after a reshard, or its stream was \
                     deleted); treating it as ended"
                );
                true
            }
            _ => false,
        }
    }

    /// Subscribe, and re-subscribe after each expiry or failure, sending pages
    /// to `pages` until the shard ends or the receiver is dropped.
    pub(crate) async fn run(mut self, pages: mpsc::Sender<Fetched>) {
        let origin = tokio::time::Instant::now();
        let now_ms = || origin.elapsed().as_millis() as u64;
        let mut sub = Subscription::new(self.start.clone(), self.timestamp);
        if sub.is_ended() {
            let _ = pages.send(Fetched::shard_end()).await;
            return;
        }
        loop {
            let at = sub.next_call_at(now_ms(), &self.polling);
            tokio::time::sleep_until(origin + Duration::from_millis(at)).await;
            sub.on_call(now_ms());
            let input = SubscribeToShardInput {
                consumer_arn: Some(self.consumer_arn.clone()),
                shard_id: Some(self.shard_id.clone()),
                starting_position: Some(sub.starting_position()),
            };
            let mut stream = match self.client.subscribe_to_shard(&input).await {
                Ok(s) => s,
                Err(e) => {
                    sub.on_error();
                    self.count_end("failed");
                    tracing::debug!(shard = %self.shard_id, error = %e, failures = sub.failures(), "SubscribeToShard failed; backing off");
                    if e.is_code(ErrorCode::ResourceNotFound) {
                        if self.shard_is_gone().await {
                            let _ = pages.send(Fetched::shard_end()).await;
                            return;
                        }
                        // The consumer went away (deregistered, or a service that
                        // forgot it): register it again; its ARN is new then.
                        match register_stream_consumer(
                            &self.client,
                            &self.stream,
                            &self.consumer_name,
                        )
                        .await
                        {
                            Ok(arn) => self.consumer_arn = arn,
                            Err(e) => {
                                tracing::warn!(shard = %self.shard_id, error = %e, "re-registering the consumer failed")
                            }
                        }
                    }
                    continue;
                }
            };
            loop {
                match stream.next_event().await {
                    Ok(Some(event)) => {
                        let end = sub.on_event(&event);
                        let page = self.page(event, end);
                        if pages.send(page).await.is_err() || end {
                            return;
                        }
                    }
                    // The subscription's lifetime is over: continue where it stopped.
                    Ok(None) => {
                        self.count_end("expired");
                        break;
                    }
                    Err(e) => {
                        sub.on_error();
                        self.count_end("failed");
                        tracing::debug!(shard = %self.shard_id, error = %e, failures = sub.failures(), "subscription failed; re-subscribing");
                        if e.is_code(ErrorCode::ResourceNotFound) && self.shard_is_gone().await {
                            let _ = pages.send(Fetched::shard_end()).await;
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegistrationAction as Act;
    use RegistrationAnswer as A;
    use RegistrationCall as C;

    fn call(c: C, after: Duration) -> Act {
        Act::Call { call: c, after }
    }

    fn consumer(status: &str) -> A {
        A::Consumer {
            arn: "arn:c".into(),
            status: status.into(),
        }
    }

    #[test]
    fn an_active_consumer_is_found_without_registering() {
        let mut r = ConsumerRegistration::new();
        assert_eq!(r.start(), call(C::DescribeStreamSummary, Duration::ZERO));
        assert_eq!(
            r.on_answer(A::StreamArn("arn:s".into())),
            call(C::DescribeStreamConsumer, Duration::ZERO)
        );
        assert_eq!(r.on_answer(consumer("ACTIVE")), Act::Active("arn:c".into()));
    }

    #[test]
    fn a_missing_consumer_is_registered_then_polled_until_active() {
        let mut r = ConsumerRegistration::new();
        r.start();
        r.on_answer(A::StreamArn("arn:s".into()));
        assert_eq!(
            r.on_answer(A::NotFound),
            call(C::RegisterStreamConsumer, Duration::ZERO)
        );
        assert_eq!(
            r.on_answer(A::Retryable),
            call(C::RegisterStreamConsumer, REGISTRATION_BACKOFF),
            "LimitExceeded retries the registration"
        );
        assert_eq!(
            r.on_answer(consumer("CREATING")),
            call(C::DescribeStreamConsumer, REGISTRATION_BACKOFF)
        );
        assert_eq!(
            r.on_answer(A::NotFound),
            call(C::DescribeStreamConsumer, REGISTRATION_BACKOFF),
            "not visible yet: poll, do not register twice"
        );
        assert_eq!(
            r.on_answer(consumer("CREATING")),
            call(C::DescribeStreamConsumer, REGISTRATION_BACKOFF)
        );
        assert_eq!(r.on_answer(consumer("ACTIVE")), Act::Active("arn:c".into()));
    }

    #[test]
    fn a_registration_race_describes_again() {
        let mut r = ConsumerRegistration::new();
        r.start();
        r.on_answer(A::StreamArn("arn:s".into()));
        r.on_answer(A::NotFound);
        assert_eq!(
            r.on_answer(A::InUse),
            call(C::DescribeStreamConsumer, Duration::ZERO)
        );
        assert_eq!(r.on_answer(consumer("ACTIVE")), Act::Active("arn:c".into()));
    }

    #[test]
    fn registration_is_bounded_and_fails_clearly() {
        let mut r = ConsumerRegistration::new();
        r.start();
        r.on_answer(A::StreamArn("arn:s".into()));
        let mut polls = 1;
        loop {
            match r.on_answer(consumer("CREATING")) {
                Act::Call { .. } => polls += 1,
                Act::Fail(_) => break,
                Act::Active(_) => panic!("never active"),
            }
        }
        assert_eq!(polls, REGISTRATION_MAX_TRIES);

        let mut r = ConsumerRegistration::new();
        r.start();
        assert!(matches!(r.on_answer(A::NotFound), Act::Fail(_)));
        let mut r = ConsumerRegistration::new();
        r.start();
        assert!(matches!(
            r.on_answer(A::Failed("AccessDenied".into())),
            Act::Fail(_)
        ));
        let mut r = ConsumerRegistration::new();
        assert!(matches!(r.on_answer(A::NotFound), Act::Fail(_)));
    }

    const SEQ: &str = "49600871682957036442365024926191073437251060580128653314";

    fn event(continuation: Option<&str>) -> SubscribeToShardEvent {
        SubscribeToShardEvent {
            continuation_sequence_number: continuation.map(str::to_string),
            ..SubscribeToShardEvent::default()
        }
    }

    #[test]
    fn the_first_subscription_starts_at_the_checkpoint_or_its_sentinel() {
        let at = Subscription::new(ExtendedSequenceNumber::parse(SEQ, 3).unwrap(), None)
            .starting_position();
        assert_eq!(at.position_type, "AT_SEQUENCE_NUMBER");
        assert_eq!(at.sequence_number.as_deref(), Some(SEQ));
        for (start, kind) in [
            (ExtendedSequenceNumber::TrimHorizon, "TRIM_HORIZON"),
            (ExtendedSequenceNumber::Latest, "LATEST"),
            (ExtendedSequenceNumber::AtTimestamp, "AT_TIMESTAMP"),
        ] {
            let p = Subscription::new(start, Some(Timestamp::from_millis(7))).starting_position();
            assert_eq!(p.position_type, kind);
            assert_eq!(p.sequence_number, None);
        }
        let p = Subscription::new(
            ExtendedSequenceNumber::AtTimestamp,
            Some(Timestamp::from_millis(7)),
        )
        .starting_position();
        assert_eq!(p.timestamp, Some(Timestamp::from_millis(7)));
        assert!(Subscription::new(ExtendedSequenceNumber::ShardEnd, None).is_ended());
    }

    #[test]
    fn resubscribes_after_the_last_continuation_at_most_once_a_second() {
        let polling = PollingConfig::default();
        let mut s = Subscription::new(ExtendedSequenceNumber::TrimHorizon, None);
        assert_eq!(s.next_call_at(0, &polling), 0);
        s.on_call(0);
        assert!(!s.on_event(&event(Some("5"))));
        assert!(!s.on_event(&event(Some("9"))));
        // The lifetime ended normally 300 ms later: the next call waits for the second.
        assert_eq!(s.next_call_at(300, &polling), 1_000);
        let p = s.starting_position();
        assert_eq!(p.position_type, "AFTER_SEQUENCE_NUMBER");
        assert_eq!(p.sequence_number.as_deref(), Some("9"));
        s.on_call(1_000);
        // Failures back off, doubling, from when they happened.
        s.on_error();
        assert_eq!(s.next_call_at(5_000, &polling), 5_500);
        s.on_call(5_500);
        s.on_error();
        assert_eq!(s.next_call_at(5_600, &polling), 6_600);
        assert_eq!(s.failures(), 2);
        // An event resets the backoff, and the position is kept across failures.
        s.on_call(6_600);
        assert!(!s.on_event(&event(Some("12"))));
        assert_eq!(s.failures(), 0);
        assert_eq!(s.next_call_at(9_000, &polling), 9_000);
        assert_eq!(s.starting_position().sequence_number.as_deref(), Some("12"));
        // The last event has no continuation: the shard is finished.
        assert!(s.on_event(&event(None)));
        assert!(s.is_ended());
    }

    #[test]
    fn a_failure_before_any_event_retries_from_the_checkpoint() {
        let polling = PollingConfig::default();
        let mut s = Subscription::new(ExtendedSequenceNumber::parse(SEQ, 0).unwrap(), None);
        s.on_call(0);
        s.on_error();
        assert_eq!(s.next_call_at(10, &polling), 1_000);
        assert_eq!(s.starting_position().position_type, "AT_SEQUENCE_NUMBER");
    }
}
