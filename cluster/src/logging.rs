//! The log lines of a cluster process: Ballista's own (executors
//! registering, tasks failing, executors lost) on standard error, one
//! line each, at info and above (`TRAWL_LOG=debug` for more, `off` for
//! none).

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLog {
    level: LevelFilter,
}

impl Log for StderrLog {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        // Ballista's messages may hold newlines (plans, nested errors).
        let text = r.args().to_string().replace('\n', " ");
        let level = match r.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        eprintln!("trawl cluster: {level}: {text} [{}]", r.target());
    }

    fn flush(&self) {}
}

/// Sends Ballista's log to standard error (once per process).
pub fn init() {
    let level = match std::env::var("TRAWL_LOG").as_deref() {
        Ok("off") => LevelFilter::Off,
        Ok("error") => LevelFilter::Error,
        Ok("warn") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        _ => LevelFilter::Info,
    };
    if log::set_boxed_logger(Box::new(StderrLog { level })).is_ok() {
        log::set_max_level(level);
    }
}
