//! Startup, wiring and graceful shutdown.
//!
//! [`App::build`] connects to the database, migrates it, runs first-run
//! setup and builds the mail transport. [`App::run`] serves HTTP and/or runs
//! the workers until the shutdown signal; then the server stops accepting,
//! finishes in-flight requests, and workers release what they had claimed.

use crate::clock::Clock;
use crate::config::Config;
use crate::mail::{Composer, Transport};
use crate::services::{Context, ServiceError, setup};
use crate::store::{Store, StoreError};
use crate::web::{self, AppState};
use crate::workers::bounce_mailbox::BounceMailboxWorker;
use crate::workers::delivery::DeliveryWorker;
use crate::workers::imports::ImportWorker;
use crate::workers::maintenance::MaintenanceWorker;
use crate::workers::outbox::OutboxWorker;
use crate::workers::scheduler::SchedulerWorker;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("setup: {0}")]
    Setup(#[from] ServiceError),
    #[error("mail: {0}")]
    Mail(String),
    #[error("DKIM: {0}")]
    Dkim(String),
    #[error("{0}")]
    SenderAuth(#[from] crate::services::sender_auth::SenderAuthError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    BounceMailbox(#[from] crate::mail::mailbox::MailboxError),
}

/// Most connections the metrics listener (`TIDINGS_METRICS_BIND`) holds.
const OPS_CONNECTIONS: usize = 32;

pub struct App {
    pub ctx: Context,
    pub transport: Transport,
}

/// What [`App::run`] should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Web server and workers in one process (the default).
    All,
    /// Web server only (`serve --no-workers`).
    Web,
    /// Workers only (`worker`).
    Workers,
}

impl App {
    pub async fn build(config: Config, clock: Clock) -> Result<Self, AppError> {
        let store = Store::connect(&config.database_url).await?;
        store.migrate().await?;
        let secret_key = setup::bootstrap(&store, &clock, &config).await?;
        let address_key = crate::domain::AddressKey::derive(&secret_key);
        crate::services::fingerprints::convert_at_start(&store, &address_key).await?;
        let transport =
            Transport::from_config(config.smtp_url.as_ref(), &config.outbox_dir, config.send_concurrency as usize)
                .map_err(AppError::Mail)?;
        let composer = Composer {
            from: config.from.clone(),
            host: config.mail_host(),
            group_name: config.group_name.clone(),
            contact_address: config.contact_address.clone(),
            dkim: dkim_config(&config)?,
        };
        let sender_auth = crate::services::sender_auth::SenderAuth::new(&config)?;
        let ctx = Context {
            store,
            clock,
            config: Arc::new(config),
            composer: Arc::new(composer),
            secret_key: Arc::new(secret_key),
            address_key: Arc::new(address_key),
            outbox_wakeup: Arc::new(Notify::new()),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            sender_auth: Arc::new(sender_auth),
        };
        Ok(Self { ctx, transport })
    }

    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker::new(self.ctx.clone(), self.transport.clone())
    }

    pub fn delivery_worker(&self) -> DeliveryWorker {
        DeliveryWorker::new(self.ctx.clone(), self.transport.clone())
    }

    pub fn scheduler_worker(&self) -> SchedulerWorker {
        SchedulerWorker::new(self.ctx.clone())
    }

    pub fn maintenance_worker(&self) -> MaintenanceWorker {
        MaintenanceWorker::new(self.ctx.clone())
    }

    /// The bounce-mailbox poller, when `TIDINGS_BOUNCE_MAILBOX_URL` is set.
    pub fn bounce_mailbox_worker(&self) -> Result<Option<BounceMailboxWorker>, AppError> {
        Ok(BounceMailboxWorker::new(self.ctx.clone())?)
    }

    pub fn import_worker(&self) -> ImportWorker {
        ImportWorker::new(self.ctx.clone())
    }

    pub fn router(&self) -> axum::Router {
        web::router(AppState::new(self.ctx.clone()))
    }

    /// Binds the configured address.
    pub async fn bind(&self) -> Result<TcpListener, AppError> {
        let addr = self.ctx.config.bind;
        TcpListener::bind(addr).await.map_err(|source| AppError::Bind { addr, source })
    }

    /// Runs until `shutdown` turns true. `listener` is needed unless `role`
    /// is [`Role::Workers`].
    pub async fn run(
        self,
        listener: Option<TcpListener>,
        role: Role,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), AppError> {
        let mut tasks = tokio::task::JoinSet::new();
        let c = &self.ctx.config;
        if c.metrics_public && c.metrics_token.is_none() && role != Role::Workers {
            tracing::warn!(
                "TIDINGS_METRICS_PUBLIC is on without TIDINGS_METRICS_TOKEN: anyone can read /metrics, whose \
                 counters show whether a subscribe was for someone new; set a token or use TIDINGS_METRICS_BIND"
            );
        }
        if let Some(addr) = self.ctx.config.metrics_bind {
            // Metrics and probes on their own address: the only HTTP a
            // worker-only process offers, and a way to keep /metrics off
            // the public listener.
            let ops = TcpListener::bind(addr).await.map_err(|source| AppError::Bind { addr, source })?;
            let router = web::ops_router(AppState::new(self.ctx.clone()));
            let mut stop = shutdown.clone();
            tracing::info!(address = %addr, "serving /metrics, /healthz and /readyz");
            // The same timeouts as the public listener, and a small share
            // of the connections (scrapers and probes need few).
            let mut limits = web::server::Limits::from_config(&self.ctx.config);
            limits.max_connections = limits.max_connections.min(OPS_CONNECTIONS);
            tasks.spawn(async move {
                let served = web::server::serve(ops, router, limits, async move {
                    let _ = stop.wait_for(|s| *s).await;
                });
                if let Err(e) = served.await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
        }
        if role != Role::Web {
            tasks.spawn(self.outbox_worker().run(shutdown.clone()));
            tasks.spawn(self.delivery_worker().run(shutdown.clone()));
            tasks.spawn(self.scheduler_worker().run(shutdown.clone()));
            tasks.spawn(self.maintenance_worker().run(shutdown.clone()));
            if let Some(mailbox) = self.bounce_mailbox_worker()? {
                tasks.spawn(mailbox.run(shutdown.clone()));
            }
            tasks.spawn(self.import_worker().run(shutdown.clone()));
        }
        let server = match (role, listener) {
            (Role::Workers, _) | (_, None) => None,
            (_, Some(listener)) => {
                let limits = web::server::Limits::from_config(&self.ctx.config);
                tracing::info!(
                    max_connections = limits.max_connections,
                    header_read_timeout_s = limits.header_read_timeout.as_secs(),
                    idle_timeout_s = limits.idle_timeout.as_secs(),
                    "connection limits"
                );
                let mut stop = shutdown.clone();
                Some(web::server::serve(listener, self.router(), limits, async move {
                    let _ = stop.wait_for(|s| *s).await;
                }))
            }
        };
        let served = match server {
            Some(server) => server.await.map_err(AppError::Serve),
            None => {
                let mut stop = shutdown.clone();
                let _ = stop.wait_for(|s| *s).await;
                Ok(())
            }
        };
        // Workers see the same signal; wait for them to release their work.
        while tasks.join_next().await.is_some() {}
        self.ctx.store.close().await;
        served
    }
}

/// The DKIM signer, when a selector and key are configured. The signature
/// covers the list headers (README, "Sending updates"), so the one-click unsubscribe headers
/// cannot be stripped or altered in transit without breaking it.
fn dkim_config(config: &Config) -> Result<Option<DkimConfig>, AppError> {
    let (Some(selector), Some(path)) = (&config.dkim_selector, &config.dkim_key_file) else { return Ok(None) };
    let pem = std::fs::read_to_string(path).map_err(|e| AppError::Dkim(format!("{}: {e}", path.display())))?;
    let algorithm =
        if config.dkim_algorithm == "ed25519" { DkimSigningAlgorithm::Ed25519 } else { DkimSigningAlgorithm::Rsa };
    let pem = if config.dkim_algorithm == "rsa" {
        rsa_pkcs1_pem(&pem).map_err(|e| AppError::Dkim(format!("{}: {e}", path.display())))?
    } else {
        pem
    };
    let key =
        DkimSigningKey::new(pem.trim(), algorithm).map_err(|e| AppError::Dkim(format!("{}: {e}", path.display())))?;
    let domain = config.dkim_domain.clone().unwrap_or_else(|| config.from.email.domain().to_owned());
    let headers =
        ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"]
            .into_iter()
            .map(HeaderName::new_from_ascii_str)
            .collect();
    let canonicalization =
        DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
    Ok(Some(DkimConfig::new(selector.clone(), domain, key, headers, canonicalization)))
}

/// lettre reads RSA keys in PKCS#1 form only, while `openssl genrsa` writes
/// PKCS#8 by default: accept both.
fn rsa_pkcs1_pem(pem: &str) -> Result<String, String> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    if !pem.contains("BEGIN PRIVATE KEY") {
        return Ok(pem.to_owned());
    }
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| format!("not an RSA key: {e}"))?;
    let pkcs1 = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).map_err(|e| e.to_string())?;
    Ok(pkcs1.to_string())
}

/// A receiver that turns true on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutting down: finishing in-flight work");
        let _ = tx.send(true);
    });
    rx
}
