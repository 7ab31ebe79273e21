//! tracing to `<home>/logs/medxfer.log` (the TUI owns the terminal), and to stderr with `-v`.

use std::path::Path;
use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Keeps the background log writer alive; drop it last to flush.
pub struct LogGuard {
    _worker: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Starts logging. `verbosity` 0 = file only (info), 1 = also stderr (info), 2+ = debug.
pub fn init(logs_dir: &Path, verbosity: u8) -> LogGuard {
    let level = if verbosity >= 2 { "debug" } else { "info" };
    let filter = || EnvFilter::try_from_env("MEDXFER_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let (file_layer, guard) = match std::fs::create_dir_all(logs_dir) {
        Ok(()) => {
            let appender = tracing_appender::rolling::never(logs_dir, "medxfer.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(fmt::layer().with_writer(writer).with_ansi(false).with_filter(filter())), Some(guard))
        }
        Err(_) => (None, None),
    };
    let stderr_layer =
        (verbosity > 0).then(|| fmt::layer().with_writer(std::io::stderr).with_target(false).with_filter(filter()));
    let _ = tracing_subscriber::registry().with(file_layer).with(stderr_layer).try_init();
    LogGuard { _worker: guard }
}
