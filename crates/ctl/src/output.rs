//! Output in crictl's shapes: aligned tables, JSON, YAML, and the human forms of ages,
//! sizes and ids.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::error::Error;

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// crictl's table columns: at least 20 wide, 3 spaces of padding; the last cell unpadded.
const MIN_WIDTH: usize = 20;
const PADDING: usize = 3;

/// A table whose columns line up, as crictl's tabwriter prints them.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let width = (widths[i] + PADDING).max(MIN_WIDTH);
                    out.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn print(&self) -> Result<(), Error> {
        std::io::stdout().write_all(self.render().as_bytes())?;
        Ok(())
    }
}

/// Prints `v` as pretty JSON or YAML (`Format::Table` means JSON here: used by commands
/// whose default is JSON, such as inspect).
pub fn print_value(v: &Value, format: Format) -> Result<(), Error> {
    let text = match format {
        // crictl follows YAML with an empty line.
        Format::Yaml => to_yaml(v) + "\n",
        Format::Json | Format::Table => {
            let mut s = serde_json::to_string_pretty(v).expect("a Value serializes");
            s.push('\n');
            s
        }
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// YAML for a JSON value: block mappings and sequences, scalars quoted when YAML would
/// read them as something else.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(_) | Value::Array(_) if !is_empty_container(v) => {
            yaml_block(v, 0, &mut out);
        }
        _ => {
            out.push_str(&yaml_scalar(v));
            out.push('\n');
        }
    }
    out
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                out.push_str(&pad);
                out.push_str(&yaml_string(k));
                out.push(':');
                yaml_child(val, indent, out);
            }
        }
        Value::Array(a) => {
            for val in a {
                out.push_str(&pad);
                out.push('-');
                match val {
                    Value::Object(_) | Value::Array(_) if !is_empty_container(val) => {
                        // The first entry goes on the dash's line.
                        let mut inner = String::new();
                        yaml_block(val, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(&inner[indent + 2..]);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&yaml_scalar(val));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            out.push_str(&pad);
            out.push_str(&yaml_scalar(v));
            out.push('\n');
        }
    }
}

fn yaml_child(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(_) if !is_empty_container(val) => {
            out.push('\n');
            yaml_block(val, indent + 2, out);
        }
        Value::Array(_) if !is_empty_container(val) => {
            out.push('\n');
            yaml_block(val, indent, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&yaml_scalar(val));
            out.push('\n');
        }
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn yaml_string(s: &str) -> String {
    // Digits may start a plain scalar unless the whole would read as a number.
    let numeric = s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || (s.contains('_') && s.chars().all(|c| c.is_ascii_digit() || c == '_'));
    let plain = !s.is_empty()
        && !numeric
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains(|c: char| c.is_control())
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "True" | "False" | "~"
        );
    if plain {
        s.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(s).expect("a string serializes")
    }
}

/// The first 13 characters of an id (after any `sha256:`), unless `--no-trunc`.
pub fn trunc_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_string();
    }
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(13).collect()
}

/// "2 minutes ago" for a creation time in unix nanoseconds, as crictl prints ages.
pub fn age(created_at_nanos: i64, now: SystemTime) -> String {
    let created = UNIX_EPOCH + Duration::from_nanos(created_at_nanos.max(0) as u64);
    let d = now.duration_since(created).unwrap_or_default();
    format!("{} ago", human_duration(d))
}

/// Docker's human duration wording, which crictl shows.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let mins = secs / 60;
    let hours = mins / 60;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".into()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// A decimal size ("1.47MB") with `precision` significant digits, as crictl prints sizes
/// (3 for images, 4 for stats).
pub fn human_size(bytes: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(v, precision), UNITS[unit])
}

/// `v` with at most `digits` significant digits, trailing zeros dropped.
fn significant(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i64;
    let decimals = (digits as i64 - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_columns_are_at_least_20_wide_and_last_is_unpadded() {
        let mut t = Table::new(&["POD ID", "NAME", "STATE"]);
        t.row(vec![
            "abc".into(),
            "a-rather-long-pod-name".into(),
            "Ready".into(),
        ]);
        let out = t.render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            format!("{:<20}{:<25}STATE", "POD ID", "NAME"),
            "{out}"
        );
        assert_eq!(
            lines[1],
            format!("{:<20}{:<25}Ready", "abc", "a-rather-long-pod-name")
        );
    }

    #[test]
    fn ids_are_truncated_to_13_without_sha256_prefix() {
        assert_eq!(
            trunc_id("sha256:0123456789abcdef0123", false),
            "0123456789abc"
        );
        assert_eq!(trunc_id("0123456789abcdef", false), "0123456789abc");
        assert_eq!(trunc_id("0123456789abcdef", true), "0123456789abcdef");
    }

    #[test]
    fn ages_read_like_crictl() {
        let now = UNIX_EPOCH + Duration::from_secs(100_000_000);
        let ago = |s: u64| age(((100_000_000 - s) * 1_000_000_000) as i64, now);
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(42), "42 seconds ago");
        assert_eq!(ago(90), "About a minute ago");
        assert_eq!(ago(150), "2 minutes ago");
        assert_eq!(ago(3700), "About an hour ago");
        assert_eq!(ago(5 * 3600), "5 hours ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(20 * 86400), "2 weeks ago");
    }

    #[test]
    fn sizes_have_significant_digits() {
        assert_eq!(human_size(0.0, 3), "0B");
        assert_eq!(human_size(999.0, 3), "999B");
        assert_eq!(human_size(1_468_006.0, 3), "1.47MB");
        assert_eq!(human_size(2_000_000.0, 3), "2MB");
        assert_eq!(human_size(12_345_678.0, 4), "12.35MB");
        assert_eq!(human_size(4096.0, 4), "4.096kB");
    }

    #[test]
    fn yaml_nests_maps_and_lists_and_quotes_ambiguous_scalars() {
        let v = json!({
            "id": "abc",
            "labels": {"app": "web", "n": "1"},
            "tags": ["a:1", "b"],
            "mounts": [{"path": "/x", "ro": true}],
            "empty": {},
            "none": [],
            "count": 3,
            "flag": "true",
            "ip": "10.96.0.10",
            "hex": "39fd17",
            "num": "1e5"
        });
        assert_eq!(
            to_yaml(&v),
            "count: 3\nempty: {}\nflag: \"true\"\nhex: 39fd17\nid: abc\nip: 10.96.0.10\nlabels:\n  app: web\n  n: \"1\"\n\
             mounts:\n- path: /x\n  ro: true\nnone: []\nnum: \"1e5\"\ntags:\n- a:1\n- b\n"
        );
    }
}
