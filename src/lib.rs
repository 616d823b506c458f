//! The toolkit in one dependency: the wire ([`proto`]), the reference broker ([`broker`]), the
//! producer ([`kpl`]) and the consumer ([`kcl`]), re-exported under short names.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use kinesis_toolkit::{broker, kpl};
//! let running = broker::Broker::start(broker::BrokerConfig::builder().port(0).build()).await?;
//! let producer = kpl::Producer::new(kpl::Config::builder().endpoint(running.endpoint()).build())?;
//! # drop(producer);
//! # Ok(())
//! # }
//! ```

pub use kinesis_broker as broker;
pub use kinesis_kcl as kcl;
pub use kinesis_kpl as kpl;
pub use kinesis_proto as proto;
