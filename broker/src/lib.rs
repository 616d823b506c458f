//! A Kinesis Data Streams compatible broker: streams, shards, retention, replay
//! and resharding, spoken over the real wire protocol so the official AWS SDKs,
//! the AWS CLI and our own producer and consumer work against it unchanged.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use kinesis_broker::{Broker, BrokerConfig};
//! let broker = Broker::start(BrokerConfig::builder().port(0).build()).await?;
//! println!("Kinesis endpoint: {}", broker.endpoint());
//! broker.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod admin_faults;
pub mod admin_token;
pub mod arn;
pub mod auth;
pub mod body;
pub mod catalog;
pub mod config;
pub mod connection;
pub mod console;
pub mod counter;
pub mod deadline;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
pub mod hot_keys;
pub mod limiter;
pub mod metrics;
pub mod name;
pub mod ops;
pub mod pending_reshard;
pub mod response;
pub mod server;
pub mod service;
pub mod shard;
pub mod store;
pub mod stream;
pub mod stream_record;
pub mod sts;
pub mod subscription;
pub mod token;
pub mod validation;

pub use config::{BrokerConfig, BrokerConfigBuilder, ConnectionLimits, TlsFiles};
pub use service::Service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Entry point: start a broker.
pub struct Broker;

impl Broker {
    /// Bind, start serving, and return once the port accepts connections.
    pub async fn start(config: BrokerConfig) -> std::io::Result<RunningBroker> {
        // With a data dir this recovers every stream before the port opens.
        let svc = Service::open(config).map_err(std::io::Error::other)?;
        Self::start_service(svc).await
    }

    /// Serve an already built service (custom storage, shared state in tests).
    pub async fn start_service(svc: Arc<Service>) -> std::io::Result<RunningBroker> {
        let config = svc.config();
        let tls = match &config.tls {
            Some(files) => Some(server::tls_acceptor(files)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let serve = tokio::spawn(server::serve(
            listener,
            Arc::clone(&svc),
            tls.clone(),
            rx.clone(),
        ));
        let ticker = {
            let svc = Arc::clone(&svc);
            let mut rx = rx;
            tokio::spawn(async move {
                let mut trim = tokio::time::interval(Duration::from_secs(1));
                let mut due = tokio::time::interval(deadline::TICK);
                due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = rx.changed() => break,
                        _ = trim.tick() => {
                            // Deleting segment files blocks: keep it off the async workers.
                            let svc = Arc::clone(&svc);
                            let trimmed = tokio::task::spawn_blocking(move || {
                                svc.trim_expired(service::now_ms())
                            });
                            if let Err(e) = trimmed.await {
                                tracing::error!(error = %e, "retention trimming failed");
                            }
                        }
                        _ = due.tick() => {
                            let now = std::time::Instant::now();
                            if !svc.any_due(now) {
                                continue;
                            }
                            // Removing a stream and resharding block on the disk too.
                            let svc = Arc::clone(&svc);
                            let applied = tokio::task::spawn_blocking(move || svc.apply_due(now));
                            if let Err(e) = applied.await {
                                tracing::error!(error = %e, "a delayed status change failed");
                            }
                        }
                    }
                }
            })
        };
        Ok(RunningBroker {
            addr,
            tls: tls.is_some(),
            service: svc,
            shutdown: tx,
            tasks: vec![serve, ticker],
        })
    }
}

/// A broker serving on a socket.
pub struct RunningBroker {
    addr: SocketAddr,
    tls: bool,
    service: Arc<Service>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningBroker {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL clients use (`http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS).
    pub fn endpoint(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// The service state behind the socket.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Stop accepting, close connections, and wait for the tasks to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        // Put on disk what an interval fsync has not synced yet.
        let svc = self.service;
        let flushed = tokio::task::spawn_blocking(move || svc.storage().flush()).await;
        if let Ok(Err(e)) = flushed {
            tracing::error!(error = %e, "cannot flush the store at shutdown");
        }
    }
}
