//! The CLI's logger for the library crates' `log` records: one line on
//! stderr per record, `[target] message` (targets are `edgewasm`,
//! `edgewasm-nn`, `edgewasm-llm`), at Info and above. The library crates
//! only emit; what reaches the terminal is the binary's choice.

use std::io::Write;

#[derive(Debug)]
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            // A closed stderr has nowhere to report to: drop the line.
            let _ = writeln!(std::io::stderr().lock(), "[{}] {}", record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once, at start).
pub fn init() {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
