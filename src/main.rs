//! The `ringcache` binary: parse arguments, set up logging, start the server, wait for a
//! signal, shut down. The only place that decides exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ringcache::app::App;
use ringcache::config::{self, Config};

/// An elastic in-memory cache: memcached (text and meta) and Redis (RESP2/RESP3) clients on
/// one endpoint, keys spread over in-process nodes by a ketama ring that is hot-reloaded from
/// the config file, with Prometheus metrics.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The config file to serve.
    #[arg(long, short, default_value_os_t = config::default_path())]
    config: PathBuf,

    /// Read an RDB snapshot to its end (every record, the checksum, each function library
    /// loaded into a scratch engine), print its key count and function libraries and exit 0,
    /// or print where it is broken and exit 1. Serves nothing.
    #[arg(long, value_name = "FILE")]
    check_snapshot: Option<PathBuf>,

    /// Read a twemproxy (nutcracker) config and print the equivalent ringcache config: same
    /// listen address, hash, distribution, hash tag and server identities, so every key stays on
    /// its server. A file with several pools prints one config per pool. Serves nothing.
    #[arg(long, value_name = "NUTCRACKER_YML")]
    from_twemproxy: Option<PathBuf>,

    /// With --from-twemproxy: convert only this pool.
    #[arg(long, value_name = "NAME", requires = "from_twemproxy")]
    pool: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    if let Some(file) = &args.check_snapshot {
        // Each function library is loaded into an engine of its own, as a start would load it:
        // a library that would stop the start fails the check.
        let scripts = std::sync::Arc::new(ringcache::server::scripts::Scripts::default());
        let mut names = Vec::new();
        let mut functions = |code: &[u8]| {
            names.push(ringcache::proto::resp::load_from_snapshot(&scripts, code)?);
            Ok(())
        };
        return match ringcache::persist::snapshot::check_with(file, &mut functions) {
            Ok((keys, bytes)) => {
                let libraries = match names.len() {
                    0 => String::new(),
                    1 => format!(", 1 function library ({})", names[0]),
                    n => format!(", {n} function libraries ({})", names.join(", ")),
                };
                println!(
                    "{}: OK, {keys} keys, {bytes} bytes{libraries}",
                    file.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ringcache: {e}");
                ExitCode::FAILURE
            }
        };
    }

    if let Some(file) = &args.from_twemproxy {
        return from_twemproxy(file, args.pool.as_deref());
    }

    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringcache: invalid config: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime_builder().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringcache: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match App::start(config.clone()).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("ringcache: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Handlers first: once the ready line is out, SIGTERM must mean a graceful stop.
        let stop = stop_signal();
        app.watch_config(args.config.clone(), config);
        println!("{}", app.ready_line());
        tracing::info!(config = %args.config.display(), nodes = app.shared.topology.load().nodes.len(), "serving");
        stop.await;
        tracing::info!("shutting down");
        app.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// `--from-twemproxy`: prints the converted config; exit 2 if the file is not a valid twemproxy
/// config, 1 if it cannot be read.
fn from_twemproxy(file: &std::path::Path, pool: Option<&str>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ringcache: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let name = file.display().to_string();
    match config::twemproxy::convert(&text, &name, pool) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringcache: invalid twemproxy config: {e}");
            ExitCode::from(2)
        }
    }
}

/// A multi-thread runtime with one worker per available core, unless only one core is available
/// (a pinned process, a one-CPU container) and `TOKIO_WORKER_THREADS` does not ask for more: then
/// a current-thread runtime, which runs the same tasks without the work-stealing scheduler's
/// atomics and idle-worker bookkeeping on every wake (about 4% of user-space instructions per
/// request at pipeline 1).
fn runtime_builder() -> tokio::runtime::Builder {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cores == 1 && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        // Lua scripts run on these threads (workers, and blocking threads after
        // block_in_place): room for the libraries' nesting limits (cjson's 1000 levels), as
        // redis has on its 8 MiB main thread. Only touched pages cost memory.
        b.thread_stack_size(8 << 20);
        b
    }
}

/// Installs the SIGTERM and SIGINT handlers now and returns a future that resolves on either.
fn stop_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            // Without signal handlers the process can only be killed; serve until then.
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
