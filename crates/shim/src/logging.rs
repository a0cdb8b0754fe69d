//! The shim's own log: one line per tracing event on stderr (the daemon's stderr is
//! `<state-dir>/shim.log`). A few dozen lines of our own in place of tracing-subscriber: the
//! shim's resident size is dominated by the code it maps, and the formatter and its
//! dependencies cost more than the rest of the shim.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// `2026-11-25T03:34:22.780893221Z INFO container created container_id=x pid=7`.
pub struct StderrLog {
    pub max: Level,
}

impl StderrLog {
    /// Installs the logger for the whole process.
    pub fn install(max: Level) {
        let _ = tracing::subscriber::set_global_default(StderrLog { max });
    }
}

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format!(
            "{} {}",
            humantime::format_rfc3339_nanos(std::time::SystemTime::now()),
            event.metadata().level()
        );
        event.record(&mut Line(&mut line));
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_more_verbose_than_max_are_off() {
        let l = StderrLog { max: Level::INFO };
        assert!(Level::WARN <= l.max);
        assert!(Level::DEBUG > l.max);
    }
}
