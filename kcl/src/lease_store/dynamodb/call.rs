//! One DynamoDB request sent until it answers: throttles, 5xx answers, timeouts and
//! connection failures are retried with jittered backoff, remembering whether an earlier
//! attempt may have been applied; a refused condition is final.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use super::DynamoDbLeaseStore;
use crate::error::Error;

/// How one request attempt ended, for the retry loop.
enum Failure {
    /// The condition was refused: final.
    Condition,
    /// Worth another attempt; `maybe_applied` when the request may have taken effect.
    Retry { maybe_applied: bool, error: String },
    /// Not worth another attempt.
    Fatal(CallError),
}

/// A call that failed for good: DynamoDB's error code (if it answered) and its words.
#[derive(Debug)]
pub(super) struct CallError {
    pub(super) code: Option<String>,
    message: String,
}

fn classify<E, R>(error: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            match code {
                "ConditionalCheckFailedException" => Failure::Condition,
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "LimitExceededException" => Failure::Retry {
                    maybe_applied: false,
                    error: message,
                },
                "InternalServerError" | "ServiceUnavailable" | "InternalFailure" => {
                    Failure::Retry {
                        maybe_applied: true,
                        error: message,
                    }
                }
                _ => Failure::Fatal(CallError {
                    code: Some(code.to_string()),
                    message,
                }),
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) | SdkError::DispatchFailure(_) => {
            Failure::Retry {
                maybe_applied: true,
                error: message,
            }
        }
        _ => Failure::Fatal(CallError {
            code: None,
            message,
        }),
    }
}

/// The answer of a conditional call once the retries are over.
pub(super) enum Conditional<T> {
    Applied(T),
    /// Refused; `after_ambiguous` when an earlier attempt may have been applied.
    Refused {
        after_ambiguous: bool,
    },
}

/// A store error that keeps DynamoDB's own words.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {table}: {message}")]
struct DynamoDbError {
    table: String,
    message: String,
}

impl DynamoDbLeaseStore {
    pub(super) fn fatal(&self, operation: &'static str, e: CallError) -> Error {
        let message = match e.code {
            Some(code) => format!("{code}: {}", e.message),
            None => e.message,
        };
        self.failed(operation, message)
    }

    pub(super) fn failed(&self, operation: &'static str, message: impl Into<String>) -> Error {
        Error::store(
            operation,
            DynamoDbError {
                table: self.config.table_name.clone(),
                message: message.into(),
            },
        )
    }

    /// Backoff before retry number `retry` (1-based): full jitter under a doubling ceiling.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.config.backoff_cap);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random::<u64>() % millis.saturating_add(1))
    }

    /// Send `attempt` until it answers, is refused, fails for good, or the attempts run out.
    pub(super) async fn call<T, E, R, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<Conditional<T>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let mut maybe_applied = false;
        let mut tries = 0;
        loop {
            tries += 1;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let error = match attempt().await {
                Ok(out) => return Ok(Conditional::Applied(out)),
                Err(e) => e,
            };
            match classify(&error) {
                Failure::Condition => {
                    return Ok(Conditional::Refused {
                        after_ambiguous: maybe_applied,
                    });
                }
                Failure::Fatal(e) => return Err(e),
                Failure::Retry {
                    maybe_applied: this_one,
                    error,
                } => {
                    maybe_applied |= this_one;
                    if tries >= self.config.max_attempts {
                        return Err(CallError {
                            code: None,
                            message: format!("{operation} gave up after {tries} attempts: {error}"),
                        });
                    }
                    tracing::debug!(operation, tries, %error, "DynamoDB call retried");
                    tokio::time::sleep(self.backoff(tries)).await;
                }
            }
        }
    }
}
