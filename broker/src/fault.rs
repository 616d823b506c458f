//! Seeded fault injection for client tests.
//!
//! A [`FaultPlan`] is a seed and a list of [`FaultRule`]s. Each rule applies to
//! one operation (or all) and can add latency, fail the call with a chosen
//! error, or reset the connection mid-response. The plan is read at start from
//! a file ([`FaultPlan::from_file`]) and replaced at run time by the body of
//! `PUT /admin/faults` ([`FaultPlan::from_json`], [`FaultInjector::replace`]).
//!
//! # JSON format
//!
//! ```json
//! {
//!   "seed": 42,
//!   "rules": [
//!     { "operation": "PutRecords", "error_rate": 0.05,
//!       "error": "ProvisionedThroughputExceededException" },
//!     { "operation": "GetRecords", "latency_ms": 200, "jitter_ms": 50 },
//!     { "error_rate": 0.01, "error": "InternalFailure",
//!       "message": "Internal Service Failure" },
//!     { "operation": "SubscribeToShard", "reset_rate": 0.1 }
//!   ]
//! }
//! ```
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `seed` | 0 | seeds every decision; the same seed gives the same decisions |
//! | `operation` | all | operation name as in `X-Amz-Target`, e.g. `PutRecord` |
//! | `error_rate` | 0 | probability of failing the call with `error` |
//! | `error` | `InternalFailure` | error type: `InternalFailure`, `ServiceUnavailable`, `ProvisionedThroughputExceededException`, `KMSThrottlingException`, `LimitExceededException`, … (the `Exception` suffix is optional) |
//! | `message` | `"<standard text> (injected fault)"` | the error's message |
//! | `latency_ms` | none | delay added before answering |
//! | `jitter_ms` | 0 | extra delay drawn uniformly from `0..=jitter_ms` |
//! | `latency_rate` | 1 | probability that the latency applies |
//! | `reset_rate` | 0 | probability of resetting the connection mid-response |
//!
//! `error_rate + reset_rate` must not exceed 1: one draw decides between
//! failing, resetting and proceeding, so each rate is honoured as written.
//! The `latency_ms + jitter_ms` of all rules applying to one operation must
//! not exceed [`MAX_INJECTED_DELAY`] (60 s).
//! Unknown fields, unknown operations and out-of-range rates are rejected.
//!
//! # Decisions
//!
//! [`FaultInjector::decide`] walks the rules that match the operation in
//! order: latencies add up, and the first rule whose draw fails or resets
//! decides the outcome. Every operation draws from its own random stream
//! derived from the seed, so the n-th PutRecords call gets the same decision
//! for the same seed however GetRecords calls interleave with it; replacing
//! the plan restarts every stream.

use kinesis_proto::model::Operation;
use kinesis_proto::{ErrorCode, KinesisError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The longest delay a plan may add to one call: enough to outlast any
/// client timeout, bounded so that a plan cannot park requests (and the
/// connections and bodies they hold) for good.
pub const MAX_INJECTED_DELAY: Duration = Duration::from_secs(60);

/// One fault-injection rule; see the module documentation for the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The operation this rule applies to; `None` applies to all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Probability (0–1) of failing the call with `error`.
    #[serde(default)]
    pub error_rate: f64,
    /// The error a failing call answers with.
    #[serde(default = "default_error", with = "error_code_serde")]
    pub error: ErrorCode,
    /// The failing call's message; a standard text when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Delay added before answering.
    #[serde(
        default,
        rename = "latency_ms",
        with = "millis_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub latency: Option<Duration>,
    /// Upper bound of a uniformly drawn extra delay added to `latency`.
    #[serde(
        default,
        rename = "jitter_ms",
        with = "millis_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub jitter: Option<Duration>,
    /// Probability (0–1) that `latency` applies to a call.
    #[serde(default = "one")]
    pub latency_rate: f64,
    /// Probability (0–1) of resetting the connection mid-response.
    #[serde(default)]
    pub reset_rate: f64,
}

fn default_error() -> ErrorCode {
    ErrorCode::InternalFailure
}

fn one() -> f64 {
    1.0
}

impl Default for FaultRule {
    fn default() -> FaultRule {
        FaultRule {
            operation: None,
            error_rate: 0.0,
            error: default_error(),
            message: None,
            latency: None,
            jitter: None,
            latency_rate: 1.0,
            reset_rate: 0.0,
        }
    }
}

impl FaultRule {
    /// Whether this rule applies to `operation`.
    pub fn matches(&self, operation: &str) -> bool {
        self.operation.as_deref().is_none_or(|op| op == operation)
    }

    /// The error a failing call gets under this rule.
    pub fn kinesis_error(&self) -> KinesisError {
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| default_message(self.error));
        KinesisError::new(self.error, message)
    }

    fn validate(&self, index: usize) -> Result<(), FaultPlanError> {
        let rule = index + 1;
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("reset_rate", self.reset_rate),
            ("latency_rate", self.latency_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultPlanError(format!(
                    "rule {rule}: {name} must be between 0 and 1, got {rate}"
                )));
            }
        }
        if self.error_rate + self.reset_rate > 1.0 {
            return Err(FaultPlanError(format!(
                "rule {rule}: error_rate + reset_rate must not exceed 1, got {} + {}",
                self.error_rate, self.reset_rate
            )));
        }
        if let Some(op) = &self.operation
            && !Operation::ALL.iter().any(|known| known.name() == op)
        {
            return Err(FaultPlanError(format!(
                "rule {rule}: unknown operation \"{op}\" (use the X-Amz-Target name, e.g. \"PutRecords\", or omit it for all operations)"
            )));
        }
        Ok(())
    }
}

fn default_message(code: ErrorCode) -> String {
    let text = match code {
        ErrorCode::InternalFailure => "Internal Service Failure",
        ErrorCode::ServiceUnavailable => "Service Unavailable",
        ErrorCode::ProvisionedThroughputExceeded | ErrorCode::LimitExceeded => "Rate exceeded",
        ErrorCode::KmsThrottling => "KMS rate exceeded",
        other => other.as_str(),
    };
    format!("{text} (injected fault)")
}

/// A seed and the rules to apply; the unit loaded from a file or the admin endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Seed of every random decision.
    #[serde(default)]
    pub seed: u64,
    /// Rules, applied in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// Why a fault plan was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlanError(String);

impl fmt::Display for FaultPlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid fault plan: {}", self.0)
    }
}

impl std::error::Error for FaultPlanError {}

impl FaultPlan {
    /// A plan with no rules: every call proceeds untouched.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Parse and validate a plan from its JSON form.
    pub fn from_json(json: &str) -> Result<FaultPlan, FaultPlanError> {
        let plan: FaultPlan =
            serde_json::from_str(json).map_err(|e| FaultPlanError(e.to_string()))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Read, parse and validate a plan from a JSON file.
    pub fn from_file(path: &Path) -> Result<FaultPlan, FaultPlanError> {
        let json = std::fs::read_to_string(path)
            .map_err(|e| FaultPlanError(format!("cannot read {}: {e}", path.display())))?;
        FaultPlan::from_json(&json)
            .map_err(|e| FaultPlanError(format!("{}: {}", path.display(), e.0)))
    }

    /// The plan's JSON form, e.g. for `GET /admin/faults`.
    pub fn to_json(&self) -> String {
        // A plan is plain data (strings, numbers); serializing it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Check rates, their sums, operation names, and that no call can be
    /// delayed longer than [`MAX_INJECTED_DELAY`].
    pub fn validate(&self) -> Result<(), FaultPlanError> {
        self.rules
            .iter()
            .enumerate()
            .try_for_each(|(i, rule)| rule.validate(i))?;
        for op in Operation::ALL {
            let worst = self
                .rules
                .iter()
                .filter(|r| r.matches(op.name()))
                .filter_map(|r| {
                    r.latency
                        .map(|l| l.saturating_add(r.jitter.unwrap_or_default()))
                })
                .fold(Duration::ZERO, Duration::saturating_add);
            if worst > MAX_INJECTED_DELAY {
                return Err(FaultPlanError(format!(
                    "{} could be delayed {} ms (latency_ms + jitter_ms of every rule that applies), more than the {} ms allowed",
                    op.name(),
                    worst.as_millis(),
                    MAX_INJECTED_DELAY.as_millis()
                )));
            }
        }
        Ok(())
    }
}

/// What happens to the connection's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Handle the request normally.
    Proceed,
    /// Answer with this error instead of handling the request.
    Fail(KinesisError),
    /// Start the response, then reset the connection.
    ResetConnection,
}

/// The injector's verdict for one call: wait `delay`, then `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultDecision {
    /// Time to wait before answering, if any.
    pub delay: Option<Duration>,
    /// What to do after the delay.
    pub outcome: FaultOutcome,
}

impl FaultDecision {
    /// No delay, no fault.
    pub const PROCEED: FaultDecision = FaultDecision {
        delay: None,
        outcome: FaultOutcome::Proceed,
    };

    /// Whether this decision changes nothing.
    pub fn is_noop(&self) -> bool {
        self.delay.is_none() && self.outcome == FaultOutcome::Proceed
    }
}

/// SplitMix64: tiny, fast, and fixed forever, so recorded test sequences
/// never change under a dependency upgrade (rand's `StdRng` promises no
/// value stability across versions).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n] (bias below 2^-64 × n, irrelevant here).
    fn up_to(&mut self, n: u64) -> u64 {
        let span = u128::from(n) + 1;
        ((u128::from(self.next_u64()) * span) >> 64) as u64
    }
}

/// FNV-1a, to give each operation its own stream from one seed.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[derive(Debug)]
struct State {
    plan: FaultPlan,
    streams: HashMap<&'static str, SplitMix64>,
}

/// Applies a [`FaultPlan`]; shared by all connections (`Send + Sync`).
#[derive(Debug)]
pub struct FaultInjector {
    /// Lets the common no-fault case skip the lock.
    active: AtomicBool,
    state: Mutex<State>,
}

impl Default for FaultInjector {
    fn default() -> FaultInjector {
        FaultInjector::new(FaultPlan::none())
    }
}

impl FaultInjector {
    /// An injector applying `plan`.
    pub fn new(plan: FaultPlan) -> FaultInjector {
        FaultInjector {
            active: AtomicBool::new(!plan.rules.is_empty()),
            state: Mutex::new(State {
                plan,
                streams: HashMap::new(),
            }),
        }
    }

    /// An injector that never injects anything.
    pub fn disabled() -> FaultInjector {
        FaultInjector::default()
    }

    /// Replace the plan and restart every random stream from the new seed.
    pub fn replace(&self, plan: FaultPlan) {
        let mut state = self.lock();
        self.active.store(!plan.rules.is_empty(), Ordering::Release);
        state.plan = plan;
        state.streams.clear();
    }

    /// The plan in force.
    pub fn plan(&self) -> FaultPlan {
        self.lock().plan.clone()
    }

    /// Whether any rule is in force.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Decide the fate of one call of `operation` (its `X-Amz-Target` name).
    pub fn decide(&self, operation: &str) -> FaultDecision {
        if !self.is_active() {
            return FaultDecision::PROCEED;
        }
        let mut guard = self.lock();
        let State { plan, streams } = &mut *guard;
        // Keyed by the static name so that arbitrary request text cannot grow
        // the map; unknown operations share one stream.
        let key = Operation::ALL
            .iter()
            .map(|op| op.name())
            .find(|name| *name == operation)
            .unwrap_or("");
        let rng = streams
            .entry(key)
            .or_insert_with(|| SplitMix64(plan.seed ^ fnv1a(key)));
        let mut delay: Option<Duration> = None;
        let mut outcome = FaultOutcome::Proceed;
        for rule in plan.rules.iter().filter(|r| r.matches(operation)) {
            if let Some(latency) = rule.latency
                && (rule.latency_rate >= 1.0 || rng.next_f64() < rule.latency_rate)
            {
                let jitter = match rule.jitter {
                    Some(j) if !j.is_zero() => {
                        let max = u64::try_from(j.as_nanos()).unwrap_or(u64::MAX);
                        Duration::from_nanos(rng.up_to(max))
                    }
                    _ => Duration::ZERO,
                };
                let extra = latency.saturating_add(jitter);
                delay = Some(delay.map_or(extra, |d| d.saturating_add(extra)));
            }
            if outcome == FaultOutcome::Proceed && (rule.error_rate > 0.0 || rule.reset_rate > 0.0)
            {
                let u = rng.next_f64();
                if u < rule.error_rate {
                    outcome = FaultOutcome::Fail(rule.kinesis_error());
                } else if u < rule.error_rate + rule.reset_rate {
                    outcome = FaultOutcome::ResetConnection;
                }
            }
        }
        FaultDecision { delay, outcome }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Decisions keep no invariant a panic could break mid-way.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

mod error_code_serde {
    use super::*;

    pub fn serialize<S: Serializer>(code: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(code.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        let raw = String::deserialize(d)?;
        ErrorCode::parse(&raw)
            .or_else(|| ErrorCode::parse(&format!("{raw}Exception")))
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown error type \"{raw}\": expected a Kinesis error such as \"InternalFailure\", \"ServiceUnavailable\", \"ProvisionedThroughputExceededException\" or \"KMSThrottlingException\""
                ))
            })
    }
}

mod millis_serde {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "seed": 42,
      "rules": [
        { "operation": "PutRecords", "error_rate": 0.05,
          "error": "ProvisionedThroughputExceededException" },
        { "operation": "GetRecords", "latency_ms": 200, "jitter_ms": 50 },
        { "error_rate": 0.01, "error": "InternalFailure",
          "message": "Internal Service Failure" },
        { "operation": "SubscribeToShard", "reset_rate": 0.1 }
      ]
    }"#;

    fn rule(op: Option<&str>) -> FaultRule {
        FaultRule {
            operation: op.map(str::to_string),
            ..FaultRule::default()
        }
    }

    #[test]
    fn documented_example_parses() {
        let plan = FaultPlan::from_json(EXAMPLE).unwrap();
        assert_eq!(plan.seed, 42);
        assert_eq!(plan.rules.len(), 4);
        assert_eq!(
            plan.rules[0].error,
            ErrorCode::ProvisionedThroughputExceeded
        );
        assert_eq!(plan.rules[1].latency, Some(Duration::from_millis(200)));
        assert_eq!(plan.rules[1].jitter, Some(Duration::from_millis(50)));
        assert_eq!(plan.rules[2].operation, None);
        assert_eq!(plan.rules[3].reset_rate, 0.1);
        // Round trip through the admin endpoint's GET form.
        assert_eq!(FaultPlan::from_json(&plan.to_json()).unwrap(), plan);
    }

    #[test]
    fn error_names_are_accepted_with_or_without_suffix() {
        for (name, code) in [
            ("InternalFailure", ErrorCode::InternalFailure),
            ("InternalFailureException", ErrorCode::InternalFailure),
            ("ServiceUnavailable", ErrorCode::ServiceUnavailable),
            (
                "ProvisionedThroughputExceeded",
                ErrorCode::ProvisionedThroughputExceeded,
            ),
            ("KMSThrottlingException", ErrorCode::KmsThrottling),
            ("LimitExceededException", ErrorCode::LimitExceeded),
        ] {
            let json = format!(r#"{{"rules":[{{"error_rate":1,"error":"{name}"}}]}}"#);
            assert_eq!(
                FaultPlan::from_json(&json).unwrap().rules[0].error,
                code,
                "{name}"
            );
        }
    }

    #[test]
    fn bad_plans_are_rejected_clearly() {
        let cases = [
            (r#"{"rules": [ {"error_rate": 0.1,} ]}"#, "line 1"),
            (
                r#"{"rules": [{"error_rte": 0.1}]}"#,
                "unknown field `error_rte`",
            ),
            (r#"{"seeed": 1}"#, "unknown field `seeed`"),
            (
                r#"{"rules": [{"error": "Boom"}]}"#,
                "unknown error type \"Boom\"",
            ),
            (
                r#"{"rules": [{"error_rate": 1.5}]}"#,
                "rule 1: error_rate must be between 0 and 1",
            ),
            (
                r#"{"rules": [{}, {"error_rate": 0.6, "reset_rate": 0.6}]}"#,
                "rule 2: error_rate + reset_rate must not exceed 1",
            ),
            (
                r#"{"rules": [{"operation": "PutRecordz"}]}"#,
                "unknown operation \"PutRecordz\"",
            ),
            (r#"{"rules": [{"latency_ms": -5}]}"#, "invalid value"),
            (
                r#"{"rules": [{"latency_ms": 18446744073709551615}]}"#,
                "more than the 60000 ms allowed",
            ),
            (
                r#"{"rules": [{"operation": "PutRecords", "latency_ms": 40000}, {"latency_ms": 10000, "jitter_ms": 10001}]}"#,
                "PutRecords could be delayed 60001 ms",
            ),
            ("", "EOF"),
        ];
        for (json, expected) in cases {
            let err = FaultPlan::from_json(json).unwrap_err().to_string();
            assert!(err.starts_with("invalid fault plan: "), "{err}");
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn from_file_names_the_file() {
        let dir = std::env::temp_dir().join(format!("fault-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, EXAMPLE).unwrap();
        assert_eq!(FaultPlan::from_file(&good).unwrap().seed, 42);
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let err = FaultPlan::from_file(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
        let err = FaultPlan::from_file(&dir.join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn sequence(injector: &FaultInjector, ops: &[&str], n: usize) -> Vec<FaultDecision> {
        (0..n)
            .map(|i| injector.decide(ops[i % ops.len()]))
            .collect()
    }

    #[test]
    fn same_seed_same_decisions() {
        let plan = FaultPlan::from_json(EXAMPLE).unwrap();
        let ops = ["PutRecords", "GetRecords", "SubscribeToShard", "ListShards"];
        let a = sequence(&FaultInjector::new(plan.clone()), &ops, 2000);
        let b = sequence(&FaultInjector::new(plan.clone()), &ops, 2000);
        assert_eq!(a, b);
        let other = FaultPlan { seed: 43, ..plan };
        let c = sequence(&FaultInjector::new(other), &ops, 2000);
        assert_ne!(a, c);
    }

    #[test]
    fn operations_draw_from_their_own_streams() {
        let plan = FaultPlan::from_json(EXAMPLE).unwrap();
        let alone = FaultInjector::new(plan.clone());
        let puts_alone: Vec<_> = (0..500).map(|_| alone.decide("PutRecords")).collect();
        let mixed = FaultInjector::new(plan);
        let puts_mixed: Vec<_> = (0..500)
            .map(|_| {
                mixed.decide("GetRecords");
                mixed.decide("UnknownThing");
                mixed.decide("PutRecords")
            })
            .collect();
        assert_eq!(puts_alone, puts_mixed);
    }

    #[test]
    fn rates_are_honoured_over_ten_thousand_calls() {
        let plan = FaultPlan {
            seed: 7,
            rules: vec![FaultRule {
                error_rate: 0.1,
                reset_rate: 0.05,
                error: ErrorCode::ServiceUnavailable,
                latency: Some(Duration::from_millis(10)),
                latency_rate: 0.3,
                ..rule(None)
            }],
        };
        let injector = FaultInjector::new(plan);
        let (mut fails, mut resets, mut delayed) = (0, 0, 0);
        for _ in 0..10_000 {
            let d = injector.decide("PutRecord");
            match d.outcome {
                FaultOutcome::Fail(e) => {
                    assert_eq!(e.code, ErrorCode::ServiceUnavailable);
                    assert_eq!(e.code.http_status(), 503);
                    fails += 1;
                }
                FaultOutcome::ResetConnection => resets += 1,
                FaultOutcome::Proceed => {}
            }
            if d.delay.is_some() {
                delayed += 1;
            }
        }
        // Binomial 3-sigma bands: sd ≈ 30, 22, 46.
        assert!((910..=1090).contains(&fails), "fails {fails}");
        assert!((435..=565).contains(&resets), "resets {resets}");
        assert!((2860..=3140).contains(&delayed), "delayed {delayed}");
    }

    #[test]
    fn operation_filter_applies() {
        let plan = FaultPlan {
            seed: 1,
            rules: vec![FaultRule {
                error_rate: 1.0,
                ..rule(Some("PutRecords"))
            }],
        };
        let injector = FaultInjector::new(plan);
        for _ in 0..100 {
            assert!(injector.decide("GetRecords").is_noop());
            let d = injector.decide("PutRecords");
            let FaultOutcome::Fail(e) = d.outcome else {
                panic!("expected a failure, got {d:?}");
            };
            assert_eq!(e.code, ErrorCode::InternalFailure);
            assert_eq!(e.message, "Internal Service Failure (injected fault)");
        }
    }

    #[test]
    fn latency_and_jitter_add_up_across_rules() {
        let plan = FaultPlan {
            seed: 3,
            rules: vec![
                FaultRule {
                    latency: Some(Duration::from_millis(100)),
                    jitter: Some(Duration::from_millis(50)),
                    ..rule(None)
                },
                FaultRule {
                    latency: Some(Duration::from_millis(5)),
                    ..rule(Some("GetRecords"))
                },
            ],
        };
        let injector = FaultInjector::new(plan);
        let delays: Vec<Duration> = (0..1000)
            .map(|_| injector.decide("GetRecords").delay.unwrap())
            .collect();
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(
            *min >= Duration::from_millis(105) && *min < Duration::from_millis(107),
            "{min:?}"
        );
        assert!(
            *max <= Duration::from_millis(155) && *max > Duration::from_millis(153),
            "{max:?}"
        );
        assert_eq!(
            injector.decide("PutRecord").outcome,
            FaultOutcome::Proceed,
            "latency-only rules never fail"
        );
    }

    #[test]
    fn first_firing_rule_decides_the_outcome() {
        let plan = FaultPlan {
            seed: 9,
            rules: vec![
                FaultRule {
                    reset_rate: 1.0,
                    ..rule(Some("ListShards"))
                },
                FaultRule {
                    error_rate: 1.0,
                    ..rule(None)
                },
            ],
        };
        let injector = FaultInjector::new(plan);
        assert_eq!(
            injector.decide("ListShards").outcome,
            FaultOutcome::ResetConnection
        );
        assert!(matches!(
            injector.decide("ListStreams").outcome,
            FaultOutcome::Fail(_)
        ));
    }

    #[test]
    fn replacing_the_plan_reseeds() {
        let plan = FaultPlan::from_json(EXAMPLE).unwrap();
        let injector = FaultInjector::new(plan.clone());
        let first = sequence(&injector, &["PutRecords"], 300);
        injector.replace(plan.clone());
        assert_eq!(sequence(&injector, &["PutRecords"], 300), first);
        assert_eq!(injector.plan(), plan);
        injector.replace(FaultPlan::none());
        assert!(!injector.is_active());
        assert!(injector.decide("PutRecords").is_noop());
        assert!(FaultInjector::disabled().decide("PutRecords").is_noop());
    }

    #[test]
    fn injector_is_shared_across_threads() {
        let plan = FaultPlan {
            seed: 5,
            rules: vec![FaultRule {
                error_rate: 0.5,
                ..rule(None)
            }],
        };
        let injector = std::sync::Arc::new(FaultInjector::new(plan.clone()));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let inj = injector.clone();
                std::thread::spawn(move || {
                    (0..250)
                        .filter(|_| inj.decide("PutRecord").outcome != FaultOutcome::Proceed)
                        .count()
                })
            })
            .collect();
        let failed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        // Whatever the interleaving, the 1000 draws are the stream's first 1000.
        let serial = sequence(&FaultInjector::new(plan), &["PutRecord"], 1000)
            .iter()
            .filter(|d| d.outcome != FaultOutcome::Proceed)
            .count();
        assert_eq!(failed, serial);
    }
}
