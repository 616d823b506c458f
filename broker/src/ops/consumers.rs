//! Enhanced fan-out consumer registration: Register, Deregister, Describe, List.

use crate::deadline::Due;
use crate::service::{Service, now_ms};
use crate::stream::{ConsumerEntry, ConsumerStatus, Stream};
use crate::token::PageToken;
use crate::validation::Violations;
use kinesis_proto::KinesisError;
use kinesis_proto::codec::Timestamp;
use kinesis_proto::model::*;
use std::sync::Arc;

/// Most consumers a stream may have.
pub const MAX_CONSUMERS: usize = 20;
/// Most consumers that may be CREATING at once.
pub const MAX_CREATING: usize = 5;

impl Service {
    fn stream_for_arn(&self, arn: &str) -> Result<Arc<Stream>, KinesisError> {
        self.stream(&StreamRef::arn(arn))
    }

    /// The stream and consumer a Deregister/Describe request names.
    pub fn resolve_consumer(
        &self,
        r: &ConsumerRef,
    ) -> Result<(Arc<Stream>, ConsumerEntry), KinesisError> {
        let mut v = Violations::new();
        if let Some(a) = &r.stream_arn {
            v.stream_arn("streamARN", a);
        }
        if let Some(n) = &r.consumer_name {
            v.name("consumerName", n);
        }
        v.finish()?;
        let (stream_arn, name) = match (&r.consumer_arn, &r.stream_arn, &r.consumer_name) {
            (Some(c), _, _) => {
                let (s, n, _) = crate::arn::parse_consumer_arn(c)
                    .ok_or_else(|| KinesisError::invalid(format!("Invalid ConsumerARN {c}.")))?;
                if r.stream_arn.as_deref().is_some_and(|x| x != s)
                    || r.consumer_name.as_deref().is_some_and(|x| x != n)
                {
                    return Err(KinesisError::invalid(
                        "ConsumerARN does not match StreamARN and ConsumerName.",
                    ));
                }
                (s.to_string(), n.to_string())
            }
            (None, Some(s), Some(n)) => (s.clone(), n.clone()),
            _ => {
                return Err(KinesisError::invalid(
                    "Either ConsumerARN or both StreamARN and ConsumerName must be provided.",
                ));
            }
        };
        let stream = self.stream_for_arn(&stream_arn)?;
        let entry = stream.meta.read().consumers.get(&name).cloned();
        let entry = entry
            .filter(|e| r.consumer_arn.as_deref().is_none_or(|a| a == e.arn))
            .ok_or_else(|| {
                KinesisError::not_found(format!(
                    "Consumer {name} under stream {} under account {} not found.",
                    stream.name,
                    self.config().account_id
                ))
            })?;
        Ok((stream, entry))
    }

    /// Move the consumer `name` (if still the one with `arn`) to `to`, or
    /// remove it with `None`, once the consumer delay has passed.
    fn set_consumer_status_later(
        self: &Arc<Self>,
        stream: &Arc<Stream>,
        name: String,
        arn: String,
        to: Option<ConsumerStatus>,
    ) {
        let due = Due::Consumer {
            stream: Arc::clone(stream),
            name,
            arn,
            to,
        };
        self.schedule(self.config().consumer_delay, due);
    }

    /// RegisterStreamConsumer.
    pub fn register_consumer(
        self: &Arc<Self>,
        input: RegisterStreamConsumerInput,
    ) -> Result<RegisterStreamConsumerOutput, KinesisError> {
        let mut v = Violations::new();
        if v.required("streamARN", &input.stream_arn) {
            v.stream_arn("streamARN", input.stream_arn.as_deref().unwrap_or_default());
        }
        if v.required("consumerName", &input.consumer_name) {
            v.name(
                "consumerName",
                input.consumer_name.as_deref().unwrap_or_default(),
            );
        }
        v.finish()?;
        let stream = self.stream_for_arn(input.stream_arn.as_deref().unwrap_or_default())?;
        let name = input.consumer_name.unwrap_or_default();
        let now = now_ms();
        let entry = self.mutate_and_persist(&stream, |m| {
            if m.consumers.contains_key(&name) {
                return Err(KinesisError::in_use(format!(
                    "Consumer {name} under stream {} already exists for account {}.",
                    stream.name,
                    self.config().account_id
                )));
            }
            if m.consumers.len() >= MAX_CONSUMERS {
                return Err(KinesisError::limit_exceeded(format!(
                    "Stream {} under account {} already has {MAX_CONSUMERS} registered consumers.",
                    stream.name,
                    self.config().account_id
                )));
            }
            if m.consumers
                .values()
                .filter(|c| c.status == ConsumerStatus::Creating)
                .count()
                >= MAX_CREATING
            {
                return Err(KinesisError::limit_exceeded(format!(
                    "Stream {} under account {} already has {MAX_CREATING} consumers in CREATING state.",
                    stream.name,
                    self.config().account_id
                )));
            }
            // The ARN embeds the registration second; make it unique even for a
            // re-registration within the same second.
            let mut secs = now / 1000;
            while m
                .consumers
                .values()
                .any(|c| c.created_ms / 1000 == secs && c.name == name)
            {
                secs += 1;
            }
            let entry = ConsumerEntry {
                arn: crate::arn::consumer_arn(&stream.arn, &name, secs),
                name: name.clone(),
                status: if self.config().consumer_delay.is_zero() {
                    ConsumerStatus::Active
                } else {
                    ConsumerStatus::Creating
                },
                created_ms: now,
            };
            m.consumers.insert(name.clone(), entry.clone());
            Ok(entry)
        })?;
        self.set_consumer_status_later(
            &stream,
            name,
            entry.arn.clone(),
            Some(ConsumerStatus::Active),
        );
        Ok(RegisterStreamConsumerOutput {
            consumer: Consumer {
                consumer_name: entry.name,
                consumer_arn: entry.arn,
                consumer_status: entry.status.clone(),
                consumer_creation_timestamp: Timestamp(entry.created_ms),
            },
        })
    }

    /// DeregisterStreamConsumer.
    pub fn deregister_consumer(
        self: &Arc<Self>,
        input: ConsumerRef,
    ) -> Result<Empty, KinesisError> {
        let (stream, entry) = self.resolve_consumer(&input)?;
        self.mutate_and_persist(&stream, |m| {
            if let Some(c) = m.consumers.get_mut(&entry.name) {
                c.status = ConsumerStatus::Deleting;
            }
            Ok(())
        })?;
        self.set_consumer_status_later(&stream, entry.name, entry.arn, None);
        Ok(Empty {})
    }

    /// DescribeStreamConsumer.
    pub fn describe_consumer(
        &self,
        input: ConsumerRef,
    ) -> Result<DescribeStreamConsumerOutput, KinesisError> {
        let (stream, e) = self.resolve_consumer(&input)?;
        Ok(DescribeStreamConsumerOutput {
            consumer_description: ConsumerDescription {
                consumer_name: e.name,
                consumer_arn: e.arn,
                consumer_status: e.status.clone(),
                consumer_creation_timestamp: Timestamp(e.created_ms),
                stream_arn: stream.arn.clone(),
            },
        })
    }

    /// ListStreamConsumers.
    pub fn list_consumers(
        &self,
        input: ListStreamConsumersInput,
    ) -> Result<ListStreamConsumersOutput, KinesisError> {
        let mut v = Violations::new();
        if v.required("streamARN", &input.stream_arn) {
            v.stream_arn("streamARN", input.stream_arn.as_deref().unwrap_or_default());
        }
        if let Some(m) = input.max_results {
            v.range("maxResults", m, 1, 10_000);
        }
        v.finish()?;
        let stream = self.stream_for_arn(input.stream_arn.as_deref().unwrap_or_default())?;
        let scope = format!("consumers:{}", stream.name);
        let after = match &input.next_token {
            Some(t) => Some(self.open_page_token(t, &scope)?),
            None => None,
        };
        let max = input.max_results.unwrap_or(100) as usize;
        let m = stream.meta.read();
        let rest: Vec<&ConsumerEntry> = m
            .consumers
            .values()
            .filter(|c| after.as_deref().is_none_or(|a| c.name.as_str() > a))
            .collect();
        let page = &rest[..rest.len().min(max)];
        let next_token = (rest.len() > max)
            .then(|| page.last())
            .flatten()
            .map(|last| {
                self.sealer().seal_page(&PageToken {
                    scope: scope.clone(),
                    after: last.name.clone(),
                    issued_ms: now_ms(),
                })
            });
        Ok(ListStreamConsumersOutput {
            consumers: page
                .iter()
                .map(|e| Consumer {
                    consumer_name: e.name.clone(),
                    consumer_arn: e.arn.clone(),
                    consumer_status: e.status.clone(),
                    consumer_creation_timestamp: Timestamp(e.created_ms),
                })
                .collect(),
            next_token,
        })
    }
}
