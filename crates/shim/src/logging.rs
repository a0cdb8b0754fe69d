//! The shim's own log: one line (text or JSON) per tracing event on stderr (the daemon's stderr is
//! `<state-dir>/shim.log`). A few dozen lines of our own in place of tracing-subscriber: the
//! shim's resident size is dominated by the code it maps, and the formatter and its
//! dependencies cost more than the rest of the shim.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Text: `2026-11-25T03:34:22.780893221Z INFO container created container_id=x pid=7`;
/// JSON: `{"time":"...","level":"info","msg":"container created","container_id":"x","pid":7}`.
pub struct StderrLog {
    pub max: Level,
    pub json: bool,
}

impl StderrLog {
    /// Installs the logger for the whole process.
    pub fn install(max: Level, json: bool) {
        let _ = tracing::subscriber::set_global_default(StderrLog { max, json });
    }

    fn format(&self, event: &Event<'_>) -> String {
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let level = event.metadata().level();
        if self.json {
            let mut fields = Json(serde_json::Map::new());
            event.record(&mut fields);
            let mut obj = serde_json::Map::new();
            obj.insert("time".into(), time.into());
            obj.insert("level".into(), level.as_str().to_lowercase().into());
            obj.extend(fields.0);
            serde_json::Value::Object(obj).to_string()
        } else {
            let mut line = format!("{time} {level}");
            event.record(&mut Line(&mut line));
            line
        }
    }
}

struct Json(serde_json::Map<String, serde_json::Value>);

impl Visit for Json {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(key(field), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(key(field), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(key(field), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(key(field), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(key(field), format!("{value:?}").into());
    }
}

fn key(field: &Field) -> String {
    match field.name() {
        "message" => "msg".into(),
        n => n.into(),
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
        let mut line = self.format(event);
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
        let l = StderrLog {
            max: Level::INFO,
            json: false,
        };
        assert!(Level::WARN <= l.max);
        assert!(Level::DEBUG > l.max);
    }
}
