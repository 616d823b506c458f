//! Inputs shared by two operations, wrapped into a type per operation.

use super::consumers::ConsumerRef;
use super::settings::{EnhancedMonitoringInput, RetentionPeriodInput, StreamEncryptionInput};
use serde::{Deserialize, Serialize};

/// Wraps an input shared by two operations into a type of its own, so that
/// each operation's input names it (see [`crate::operation_types`]).
macro_rules! operation_specific_inputs {
    ($( $(#[$doc:meta])* $name:ident($shared:ty); )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
            #[serde(transparent)]
            pub struct $name(pub $shared);

            impl From<$shared> for $name {
                fn from(input: $shared) -> Self {
                    $name(input)
                }
            }
        )*
    };
}

operation_specific_inputs! {
    /// IncreaseStreamRetentionPeriod input.
    IncreaseStreamRetentionPeriodInput(RetentionPeriodInput);
    /// DecreaseStreamRetentionPeriod input.
    DecreaseStreamRetentionPeriodInput(RetentionPeriodInput);
    /// EnableEnhancedMonitoring input.
    EnableEnhancedMonitoringInput(EnhancedMonitoringInput);
    /// DisableEnhancedMonitoring input.
    DisableEnhancedMonitoringInput(EnhancedMonitoringInput);
    /// StartStreamEncryption input.
    StartStreamEncryptionInput(StreamEncryptionInput);
    /// StopStreamEncryption input.
    StopStreamEncryptionInput(StreamEncryptionInput);
    /// DeregisterStreamConsumer input.
    DeregisterStreamConsumerInput(ConsumerRef);
    /// DescribeStreamConsumer input.
    DescribeStreamConsumerInput(ConsumerRef);
}
