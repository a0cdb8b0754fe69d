//! Logging for the CLI: text, or runc's JSON lines ({"level","msg","time"}) that containerd's
//! runc shim parses to report a runtime's last error.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = ();
    fn from_str(s: &str) -> Result<Format, ()> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(()),
        }
    }
}

static TO_STDERR: AtomicBool = AtomicBool::new(true);

pub fn logs_to_stderr() -> bool {
    TO_STDERR.load(Ordering::Relaxed)
}

struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
    format: Format,
}

#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.rest
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_owned();
        } else {
            self.rest.push((field.name().to_owned(), value.to_owned()));
        }
    }
}

impl<S: Subscriber> Layer<S> for Sink {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let line = match self.format {
            Format::Json => {
                let mut obj = serde_json::Map::new();
                obj.insert("level".into(), level.into());
                obj.insert("msg".into(), f.msg.into());
                obj.insert("time".into(), time.into());
                for (k, v) in f.rest {
                    obj.insert(k, v.into());
                }
                serde_json::Value::Object(obj).to_string()
            }
            Format::Text => {
                let mut s = format!("time=\"{time}\" level={level} msg=\"{}\"", f.msg);
                for (k, v) in f.rest {
                    s.push_str(&format!(" {k}=\"{v}\""));
                }
                s
            }
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Installs the logger; on failure to open the log file, logs go to stderr.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Option<()> {
    let out: Box<dyn Write + Send> =
        match path.map(|p| OpenOptions::new().create(true).append(true).open(p)) {
            Some(Ok(f)) => {
                TO_STDERR.store(false, Ordering::Relaxed);
                Box::new(f)
            }
            _ => Box::new(std::io::stderr()),
        };
    let level = if debug { Level::DEBUG } else { Level::WARN };
    tracing_subscriber::registry()
        .with(
            Sink {
                out: Mutex::new(out),
                format,
            }
            .with_filter(LevelFilter::from_level(level)),
        )
        .try_init()
        .ok()
}
