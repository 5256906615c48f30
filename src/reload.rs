//! Hot reload of the config file: watch, debounce, validate, build and publish the next
//! topology, start its migration.
//!
//! Owns: the file watcher (notify, on the file's parent directory, so that editors that save by
//! writing a temporary file and renaming it over the original, and `mv new.toml
//! ringcache.toml`, are seen; events for other files in the directory are ignored), SIGHUP, the
//! debounce, the reload log line and the `config_reloads` counters.
//! Must not touch: protocols, the store's internals, migration logic (`route::rebalance`).
//!
//! Invariants:
//! - A file that does not read, parse or validate is rejected whole: the running topology and
//!   limits stay, the error (file, line, field) is logged once, `config_reloads_error` counts it.
//!   A deleted file is such an error; recreating it triggers a reload.
//! - An applied reload bumps the generation by one, marks the old topology superseded, then
//!   publishes the new one with ONE `ArcSwap::store` (and the limits with one more), logs one
//!   line (`ring generation 3: +cache-d -cache-a ~cache-b(weight 2) (3 nodes); migrating ~N
//!   keys (x%)`) and starts the migrator on a blocking thread. A file whose content equals the
//!   running config (after ignoring `[listen]`) changes nothing and does not bump the generation.
//! - `[snapshot]` needs a restart too: a change is logged as a warning and ignored.
//! - `[listen]` needs a restart: a changed address, allow-list or set of TLS listeners is logged
//!   as a warning and ignored. The exception is the TLS certificate and key: the files are read
//!   again on every reload (a bad one rejects the reload like any other error), and when they
//!   changed the new pair is swapped in (one `ArcSwap::store`) for the handshakes that follow;
//!   open connections keep their session. A renewal alone does not bump the generation.
//! - Events are debounced: a reload runs once no event arrived for [`DEBOUNCE`]; SIGHUP reloads
//!   at once. Reloads run one at a time, in this task.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError, NodeConfig};
use crate::route::rebalance;
use crate::route::topology::Topology;
use crate::server::{Shared, Stats};

/// Quiet time after the last file event before the file is read.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file equals the running config.
    Unchanged,
    /// Only the TLS certificate and key changed: new handshakes use them; the ring is the same.
    TlsRenewed,
    /// A new generation was published.
    Applied {
        /// The new generation.
        generation: u64,
        /// The log line describing it.
        summary: String,
    },
}

/// The reload state of one server: the file and the config now applied.
pub struct Reloader {
    path: PathBuf,
    shared: Arc<Shared>,
    current: Config,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Reloader {
    /// A reloader for `path`, whose content `current` is running now.
    pub fn new(
        path: PathBuf,
        current: Config,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Reloader {
        Reloader {
            path,
            shared,
            current,
            shutdown,
            tracker,
        }
    }

    /// Watches the file (and SIGHUP) until shutdown, reloading on every change. The watcher is
    /// set up before this returns its future, so a change made right after is not missed.
    pub fn watch(self) -> impl Future<Output = ()> + Send + 'static {
        let (tx, rx) = mpsc::unbounded_channel::<()>();
        let watcher = watch_file(&self.path, tx);
        if let Err(e) = &watcher {
            tracing::error!(file = %self.path.display(), error = %e, "cannot watch the config file; reload with SIGHUP");
        }
        async move {
            let _watcher = watcher.ok();
            self.run(rx).await;
        }
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<()>) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle SIGHUP");
                None
            }
        };
        let shutdown = self.shutdown.clone();
        loop {
            let from_signal = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                Some(()) = events.recv() => false,
                Some(()) = async { match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                } } => true,
            };
            if !from_signal {
                // Debounce: an editor's save is several events; read the file once they stop.
                loop {
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return,
                        Some(()) = events.recv() => {}
                        () = tokio::time::sleep(DEBOUNCE) => break,
                    }
                }
            }
            let (back, _) = match tokio::task::spawn_blocking(move || {
                let r = self.reload();
                (self, r)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "config reload panicked; reloading stops");
                    return;
                }
            };
            self = back;
        }
    }

    /// Reads, validates and applies the file now (blocking: building a ring and shrinking a
    /// node's budget take time). Logs the result and counts it.
    pub fn reload(&mut self) -> Result<Outcome, ConfigError> {
        let result = self.apply();
        let stats = &self.shared.stats;
        match &result {
            Ok(Outcome::Applied { summary, .. }) => {
                Stats::add(&stats.config_reloads_ok, 1);
                tracing::info!("{summary}");
            }
            Ok(Outcome::Unchanged) => {
                Stats::add(&stats.config_reloads_ok, 1);
                tracing::info!(file = %self.path.display(), "config reloaded: nothing to apply");
            }
            Ok(Outcome::TlsRenewed) => {
                Stats::add(&stats.config_reloads_ok, 1);
                tracing::info!(
                    file = %self.path.display(),
                    "config reloaded: new TLS certificate and key for new connections; ring unchanged"
                );
            }
            Err(e) => {
                Stats::add(&stats.config_reloads_error, 1);
                let generation = self.shared.topology.load().generation;
                tracing::error!(
                    "config reload rejected, ring generation {generation} keeps serving: {e}"
                );
            }
        }
        result
    }

    fn apply(&mut self) -> Result<Outcome, ConfigError> {
        let mut config = Config::load(&self.path)?;
        // A new TLS certificate and key (other paths, or the same files rewritten) apply live;
        // which listeners speak TLS is fixed at start, like their addresses.
        let renewed = match (&self.current.listen.tls, &config.listen.tls) {
            (Some(old), Some(new)) if old.listeners == new.listeners && old != new => {
                Some(new.clone())
            }
            _ => None,
        };
        if renewed.is_some() {
            config.listen.tls.clone_from(&self.current.listen.tls);
        }
        if config.listen != self.current.listen {
            tracing::warn!(
                file = %self.path.display(),
                "[listen] changed; listener addresses, allow-lists and which listeners use TLS apply only at restart, keeping the current ones"
            );
            config.listen = self.current.listen.clone();
        }
        if config.snapshot != self.current.snapshot {
            tracing::warn!(
                file = %self.path.display(),
                "[snapshot] changed; snapshot settings apply only at restart, keeping the current ones"
            );
            config.snapshot.clone_from(&self.current.snapshot);
        }
        if let Some(tls) = renewed {
            if let Some(slot) = &self.shared.tls {
                slot.store(Arc::clone(&tls.material.server));
            }
            let unchanged = config == self.current;
            config.listen.tls = Some(tls);
            if unchanged {
                self.current = config;
                return Ok(Outcome::TlsRenewed);
            }
        }
        if config == self.current {
            return Ok(Outcome::Unchanged);
        }
        let shared = &self.shared;
        let old = shared.topology.load_full();
        let new = Arc::new(old.successor(&config.ring, &config.nodes, &shared.clock));
        let migrating = new.is_migrating();
        let estimate = migrating.then(|| rebalance::estimate_moves(&old, &new));
        if migrating {
            new.ledger().in_progress.store(true, Ordering::Relaxed);
        }
        // Superseded first: a request still on `old` that takes a key's lock from now on is
        // redirected to `new`, so nothing is written through `old` once keys may move.
        old.supersede(Arc::clone(&new));
        shared.swap_topology(Arc::clone(&new));
        shared.limits.store(Arc::new(config.limits.clone()));
        shared.pubsub.set_limit(config.limits.max_output_buffer);
        shared.sync_key_events();
        shared.auth.store(Arc::new(config.auth.clone()));
        let summary = summary(&self.current, &config, &new, estimate);
        let pause = config.rebalance.pause;
        self.current = config;
        drop(old);
        if migrating {
            let shutdown = self.shutdown.clone();
            let generation = new.generation;
            let pass = shared.gate.pass();
            self.tracker.spawn_blocking(move || {
                let inside = |chunk: &mut dyn FnMut() -> bool| {
                    pass.enter();
                    let done = chunk();
                    pass.leave();
                    done
                };
                if rebalance::run(&new, pause, &|| shutdown.is_cancelled(), &inside)
                    && let Some(p) = new.migration_progress()
                {
                    tracing::info!(
                        "ring generation {generation}: migration done, moved {} keys ({} bytes) in {:.3}s",
                        p.keys_moved,
                        p.bytes_moved,
                        p.elapsed.as_secs_f64()
                    );
                }
            });
        }
        Ok(Outcome::Applied {
            generation: self.shared.topology.load().generation,
            summary,
        })
    }
}

/// Watches `path`'s directory and sends a unit on `tx` for every event that concerns `path`.
fn watch_file(
    path: &Path,
    tx: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::event::{AccessKind, EventKind};
    use notify::{RecursiveMode, Watcher};
    let name = path.file_name().map(|n| n.to_owned());
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            // Opening the file (as every reload does to read it) is no change; without this
            // filter each reload would trigger the next, forever.
            Ok(event) if matches!(event.kind, EventKind::Access(AccessKind::Open(_))) => {}
            Ok(event) => {
                if event.paths.iter().any(|p| p.file_name() == name.as_deref()) {
                    let _ = tx.send(());
                }
            }
            // The watcher may have lost events (queue overflow): read the file to be sure.
            Err(_) => {
                let _ = tx.send(());
            }
        })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// The one line logged for an applied reload.
fn summary(
    before: &Config,
    after: &Config,
    topology: &Topology,
    estimate: Option<(u64, u64)>,
) -> String {
    let mut line = format!("ring generation {}:", topology.generation);
    let find = |nodes: &[NodeConfig], name: &str| nodes.iter().find(|n| n.name == name).cloned();
    for node in &after.nodes {
        match find(&before.nodes, &node.name) {
            None => line.push_str(&format!(" +{}", node.name)),
            Some(old) => {
                let mut changes = Vec::new();
                if old.weight != node.weight {
                    changes.push(format!("weight {}", node.weight));
                }
                if old.max_memory != node.max_memory {
                    changes.push(format!("max_memory {}", bytes(node.max_memory)));
                }
                if !changes.is_empty() {
                    line.push_str(&format!(" ~{}({})", node.name, changes.join(", ")));
                }
            }
        }
    }
    for node in &before.nodes {
        if find(&after.nodes, &node.name).is_none() {
            line.push_str(&format!(" -{}", node.name));
        }
    }
    let mut ring = Vec::new();
    if before.ring.hash != after.ring.hash {
        ring.push(format!("hash {}", after.ring.hash));
    }
    if before.ring.points_per_weight != after.ring.points_per_weight {
        ring.push(format!(
            "points_per_weight {}",
            after.ring.points_per_weight
        ));
    }
    if before.ring.hash_tags != after.ring.hash_tags {
        ring.push("hash_tags".to_string());
    }
    if !ring.is_empty() {
        line.push_str(&format!(" ~ring({})", ring.join(", ")));
    }
    if before.limits != after.limits {
        line.push_str(" ~limits");
    }
    if before.rebalance != after.rebalance {
        line.push_str(" ~rebalance");
    }
    if before.listen.tls != after.listen.tls {
        line.push_str(" ~tls(new certificate and key for new connections)");
    }
    line.push_str(&format!(" ({} nodes)", topology.nodes.len()));
    match estimate {
        Some((moving, total)) => {
            let pct = if total == 0 {
                0.0
            } else {
                moving as f64 * 100.0 / total as f64
            };
            line.push_str(&format!(
                " ; migrating ~{moving} keys ({pct:.1}% of {total})"
            ));
        }
        None => line.push_str(" ; no keys move"),
    }
    line
}

/// A byte count in the largest binary unit that divides it.
fn bytes(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n % size == 0 {
            return format!("{}{unit}", n / size);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_like_the_config() {
        assert_eq!(bytes(256 << 20), "256MiB");
        assert_eq!(bytes(3 << 30), "3GiB");
        assert_eq!(bytes(1000), "1000B");
        assert_eq!(bytes(1536), "1536B");
        assert_eq!(bytes(2048), "2KiB");
    }
}
