//! Wiring: builds the shared state from a config, binds the listeners, starts the background
//! tasks, and shuts everything down in order.
//!
//! Owns: the cancellation token and the task tracker of the whole server, loading the
//! snapshot before the listeners are bound, the `save` rules task and the final save on
//! shutdown.
//! Must not touch: protocol or store logic.
//! Invariants: `App::start` returns only once every listener is bound, with the real bound
//! addresses (port 0 works); `App::shutdown` returns once every connection has flushed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::config::{CacheListener, Config};
use crate::net::listener;
use crate::net::stop::Ticker;
use crate::persist::snapshot::{self, Snapshots};
use crate::proto::resp::load_from_snapshot;
use crate::reload::Reloader;
use crate::route::topology::Topology;
use crate::server::Shared;
use crate::store::Clock;

/// How often the expiry sweep runs, and how many slots each node examines per run.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
const SWEEP_SLOTS: usize = 4096;

/// A running server.
pub struct App {
    /// Bound memcached address.
    pub memcache: Option<SocketAddr>,
    /// Bound RESP address.
    pub resp: Option<SocketAddr>,
    /// Bound combined (RESP or memcached by first byte) address.
    pub any: Option<SocketAddr>,
    /// Bound metrics address.
    pub metrics: Option<SocketAddr>,
    /// The state every connection shares.
    pub shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl App {
    /// Builds the nodes and ring from `config`, binds every configured listener and starts
    /// serving on the current tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<App> {
        App::start_with_clock(config, Clock::real()).await
    }

    /// Like [`App::start`] with a chosen clock (tests use a mock clock).
    pub async fn start_with_clock(config: Config, clock: Clock) -> std::io::Result<App> {
        let topology = Topology::build(1, &config.ring, &config.nodes, &[], &clock);
        let mut shared = Shared::new(topology, config.limits.clone(), clock);
        shared.auth = arc_swap::ArcSwap::from_pointee(config.auth.clone());
        shared.tls = config
            .listen
            .tls
            .as_ref()
            .map(|t| arc_swap::ArcSwap::new(Arc::clone(&t.material.server)));
        shared.metrics = config
            .listen
            .metrics
            .map(|_| Arc::new(crate::metrics::Metrics::new()));
        if let Some(cfg) = &config.snapshot {
            let now_s = shared.clock.now_ms() / 1000;
            let snapshots = Snapshots::new(cfg.clone(), now_s);
            if cfg.path.exists() {
                load_snapshot(&shared, &cfg.path).await?;
                snapshots.loaded(snapshot::writes(&shared.topology.load()));
            }
            let snapshots = Arc::new(snapshots);
            shared.snapshots = Some(snapshots);
        }
        let shared = Arc::new(shared);
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();

        let mut bound = [None; CacheListener::ALL.len()];
        for kind in CacheListener::ALL {
            let Some(addr) = config.listen.address(kind) else {
                continue;
            };
            let l = bind(addr, kind.name()).await?;
            bound[kind.index()] = Some(l.local_addr()?);
            tracker.spawn(listener::serve(
                l,
                kind,
                config.listen.allow.of(kind).map(<[_]>::to_vec),
                config.listen.tls_on(kind),
                Arc::clone(&shared),
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        let mut metrics = None;
        if let (Some(addr), Some(recorder)) = (config.listen.metrics, shared.metrics.clone()) {
            let l = bind(addr, "metrics").await?;
            metrics = Some(l.local_addr()?);
            admin::bind_remote_metrics(&recorder, &shared);
            tracker.spawn(admin::upkeep(Arc::clone(&recorder), shutdown.clone()));
            tracker.spawn(admin::serve(
                l,
                config.listen.allow.metrics.clone(),
                Arc::clone(&shared),
                recorder,
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        tracker.spawn(sweep(Arc::clone(&shared), shutdown.clone()));
        if shared.snapshots.is_some() {
            tracker.spawn(save_by_rules(Arc::clone(&shared), shutdown.clone()));
        }

        Ok(App {
            memcache: bound[CacheListener::Memcache.index()],
            resp: bound[CacheListener::Resp.index()],
            any: bound[CacheListener::Any.index()],
            metrics,
            shared,
            shutdown,
            tracker,
        })
    }

    /// The line printed once the server is ready: every bound address.
    pub fn ready_line(&self) -> String {
        let mut line = String::from("ringcache ready");
        if let Some(a) = self.resp {
            line.push_str(&format!(" resp={a}"));
        }
        if let Some(a) = self.memcache {
            line.push_str(&format!(" memcache={a}"));
        }
        if let Some(a) = self.any {
            line.push_str(&format!(" any={a}"));
        }
        if let Some(a) = self.metrics {
            line.push_str(&format!(" metrics={a}"));
        }
        line
    }

    /// Reloads the config from `path` whenever it changes (or on SIGHUP) until shutdown; see
    /// `reload.rs`. `current` is the config the server was started with (read from `path`).
    pub fn watch_config(&self, path: PathBuf, current: Config) {
        let _ = self.shared.config_path.set(path.clone());
        let reloader = Reloader::new(
            path,
            current,
            Arc::clone(&self.shared),
            self.shutdown.clone(),
            self.tracker.clone(),
        );
        self.tracker.spawn(reloader.watch());
    }

    /// Stops accepting, lets every connection answer what it has read and flush, and waits
    /// for all tasks to end.
    /// With `snapshot.on_shutdown`, writes a final snapshot once they have.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Some(s) = self
            .shared
            .snapshots
            .as_ref()
            .filter(|s| s.config.on_shutdown)
        {
            let shared = Arc::clone(&self.shared);
            let s = Arc::clone(s);
            let _ = tokio::task::spawn_blocking(move || save_now(&shared, &s, "shutdown")).await;
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}"))
    })
}

/// Loads the snapshot at `path` into the server's ring before any listener is bound. A file
/// that does not read to its end (corrupt, truncated) stops the start: serving part of it as
/// if it were whole would look like data loss to every client.
///
/// It runs on the calling thread, blocking it: nothing else runs yet (no listener is bound),
/// and in the binary that thread is the main one (`block_on`), whose allocations come from
/// glibc's main arena, which grows by `brk` with padding. On a blocking-pool thread the loaded
/// data came from a thread arena, which grows page by page with one `mprotect` each: a tenth
/// of a load's time (perf, 68 MiB mixed-type file).
async fn load_snapshot(shared: &Shared, path: &Path) -> std::io::Result<()> {
    let topology = shared.topology.load_full();
    let now = shared.clock.now_ms();
    // Each library as redis loads it: as FUNCTION LOAD would, a failure fails the load.
    let mut functions = |code: &[u8]| load_from_snapshot(&shared.scripts, code).map(drop);
    let loaded = snapshot::load(&topology, path, now, &mut functions)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    tracing::info!(
        path = %path.display(),
        keys = loaded.keys,
        expired = loaded.expired,
        too_large = loaded.too_large,
        evicted = loaded.evicted,
        libraries = loaded.functions,
        bytes = loaded.bytes,
        ms = loaded.duration.as_millis() as u64,
        "snapshot loaded"
    );
    Ok(())
}

/// Saves the ring now (blocking: run it off the runtime), logging the outcome once.
fn save_now(shared: &Shared, snapshots: &Snapshots, why: &str) {
    let topology = shared.topology.load_full();
    let writes = snapshot::writes(&topology);
    let now_s = shared.clock.now_ms() / 1000;
    let functions = shared.scripts.library_code();
    match snapshots.save(&topology, &functions, now_s, writes) {
        Ok(saved) => tracing::info!(
            why,
            keys = saved.keys,
            bytes = saved.bytes,
            ms = saved.duration.as_millis() as u64,
            "snapshot saved"
        ),
        Err(e) => tracing::error!(why, error = %e, "snapshot failed"),
    }
}

/// Checks the `save` rules every second and saves when one is met.
async fn save_by_rules(shared: Arc<Shared>, shutdown: CancellationToken) {
    let Some(snapshots) = shared.snapshots.clone() else {
        return;
    };
    // Ticks even without rules: CONFIG SET save may add some.
    let mut ticker = Ticker::new(Duration::from_secs(1), &shutdown);
    while ticker.tick().await {
        let writes = snapshot::writes(&shared.topology.load());
        if snapshots.in_progress() || !snapshots.due(writes) {
            continue;
        }
        let (shared, s) = (Arc::clone(&shared), Arc::clone(&snapshots));
        let _ = tokio::task::spawn_blocking(move || save_now(&shared, &s, "save rule")).await;
    }
}

/// Reclaims expired items in bounded steps so that memory held by keys nobody reads again is
/// returned without a full scan.
async fn sweep(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut ticker = Ticker::new(SWEEP_EVERY, &shutdown);
    while ticker.tick().await {
        let topology = shared.topology.load_full();
        for node in &topology.nodes {
            node.sweep_expired(SWEEP_SLOTS);
        }
    }
}
