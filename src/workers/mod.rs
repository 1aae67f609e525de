//! Long-running loops that claim work from the store under leases. Each
//! exposes a `run_once` step (which tests call directly to drain a queue)
//! and a `run` loop that stops when the shutdown signal fires.

pub mod bounce_mailbox;
pub mod delivery;
pub mod imports;
pub mod maintenance;
pub mod outbox;
pub mod scheduler;

use tokio::sync::watch;

/// `true` once shutdown has begun.
pub type Shutdown = watch::Receiver<bool>;

/// Sleeps for `d`, or less if shutdown begins; returns `true` on shutdown.
pub(crate) async fn sleep_or_shutdown(d: std::time::Duration, shutdown: &mut Shutdown) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
