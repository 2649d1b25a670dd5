//! Logging: `tracing` to stderr as text or JSON, filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests starting several apps) are no-ops.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Requests refused for their signature or token: counted, and logged at most once per interval with the
/// count since the last line, so a flood of forgeries cannot fill the disk.
#[derive(Default)]
pub struct Rejections {
    total: std::sync::atomic::AtomicU64,
    logged: std::sync::Mutex<(i64, u64)>,
}

/// Seconds between two log lines about refused requests.
const REJECTION_LOG_INTERVAL_SECS: i64 = 10;

impl Rejections {
    /// Counts one refusal; returns the refusals since the last line when one should be written.
    pub fn count(&self, now_unix: i64) -> Option<u64> {
        let total = self.total.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        let (last_at, last_total) = *logged;
        if last_total > 0 && now_unix - last_at < REJECTION_LOG_INTERVAL_SECS {
            return None;
        }
        *logged = (now_unix, total);
        Some(total - last_total)
    }

    /// Every refusal since the process started.
    pub fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod rejection_tests {
    use super::*;

    #[test]
    fn refusals_are_all_counted_and_logged_once_per_interval() {
        let rejections = Rejections::default();
        assert_eq!(rejections.count(100), Some(1), "the first is logged");
        for _ in 0..999 {
            assert_eq!(rejections.count(105), None);
        }
        assert_eq!(rejections.count(111), Some(1000), "then one line with the count");
        assert_eq!(rejections.total(), 1001);
    }
}
