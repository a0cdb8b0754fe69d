//! Reading CRI container logs: lines `<RFC3339Nano time> <stdout|stderr> <P|F> <message>`.
//! A `P` (partial) record continues in the next record of the same stream; berthctl joins
//! them into one line, as `kubectl logs` shows them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One whole log line after joining partial records.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The time of the record that completed the line, as written.
    pub time: String,
    /// Unix nanoseconds of `time`.
    pub nanos: i128,
    pub stream: String,
    pub message: String,
}

/// Joins records into lines; feed it records in file order.
#[derive(Debug, Default)]
pub struct Joiner {
    /// Unfinished (partial) text per stream.
    pending: Vec<(String, String)>,
}

impl Joiner {
    /// Takes one record; returns the line it completes, if any. Malformed records are
    /// passed through as stdout text so nothing is silently lost.
    pub fn push(&mut self, record: &str) -> Option<Line> {
        let record = record.strip_suffix('\n').unwrap_or(record);
        let Some((time, stream, partial, msg)) = split_record(record) else {
            return Some(Line {
                time: String::new(),
                nanos: 0,
                stream: "stdout".into(),
                message: record.to_string(),
            });
        };
        let slot = match self.pending.iter().position(|(s, _)| s == stream) {
            Some(i) => i,
            None => {
                self.pending.push((stream.to_string(), String::new()));
                self.pending.len() - 1
            }
        };
        self.pending[slot].1.push_str(msg);
        if partial {
            return None;
        }
        let message = std::mem::take(&mut self.pending[slot].1);
        Some(Line {
            time: time.to_string(),
            nanos: parse_rfc3339(time).unwrap_or(0),
            stream: stream.to_string(),
            message,
        })
    }
}

fn split_record(record: &str) -> Option<(&str, &str, bool, &str)> {
    let (time, rest) = record.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    // The tag field may carry more than P/F in future (`P:...`); its first letter counts.
    let (tag, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    let partial = match tag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return None,
    };
    Some((time, stream, partial, msg))
}

/// What `logs` selects and how it prints.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only the last N lines (None: all).
    pub tail: Option<usize>,
    /// Only lines at or after this time (unix nanoseconds).
    pub since: Option<i128>,
    pub timestamps: bool,
}

impl Options {
    pub fn wants(&self, line: &Line) -> bool {
        self.since.is_none_or(|s| line.nanos >= s)
    }

    pub fn format(&self, line: &Line) -> String {
        if self.timestamps {
            format!("{} {}\n", line.time, line.message)
        } else {
            format!("{}\n", line.message)
        }
    }
}

/// The selected lines of a whole log file's text, in order.
pub fn select(text: &str, opts: &Options) -> Vec<Line> {
    let mut joiner = Joiner::default();
    let mut lines: Vec<Line> = text
        .split_inclusive('\n')
        .filter_map(|r| joiner.push(r))
        .filter(|l| opts.wants(l))
        .collect();
    if let Some(n) = opts.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    lines
}

/// `--since`: a duration back from `now` ("10s", "5m", "1h30m") or an RFC3339 time.
pub fn parse_since(arg: &str, now: SystemTime) -> Result<i128, String> {
    if let Some(n) = parse_rfc3339(arg) {
        return Ok(n);
    }
    let d = humantime::parse_duration(arg)
        .map_err(|e| format!("--since {arg:?}: not a duration or RFC3339 time ({e})"))?;
    let t = now.checked_sub(d).unwrap_or(UNIX_EPOCH);
    Ok(nanos_since_epoch(t))
}

fn nanos_since_epoch(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Unix nanoseconds of an RFC3339 time with `Z` or a `±hh:mm` offset.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    if let Ok(t) = humantime::parse_rfc3339(s) {
        return Some(nanos_since_epoch(t));
    }
    // humantime reads UTC (`Z`) only: move an explicit offset into the value.
    if s.len() < 6 || !s.contains('T') {
        return None;
    }
    let (base, off) = s.split_at(s.len() - 6);
    let sign: i128 = match off.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = off[1..].split_once(':')?;
    let offset = (h.parse::<i128>().ok()? * 3600 + m.parse::<i128>().ok()? * 60) * 1_000_000_000;
    let t = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    Some(nanos_since_epoch(t) - sign * offset)
}

/// How often `logs -f` looks for more.
pub const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-25T05:00:00.000000001Z stdout F one
2026-11-25T05:00:01.000000000Z stdout P tw
2026-11-25T05:00:01.500000000Z stderr F err line
2026-11-25T05:00:02.000000000Z stdout F o
2026-11-25T05:00:03.000000000Z stdout F three
2026-11-25T05:00:04.000000000Z stdout F 
";

    fn messages(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn partial_records_are_joined_per_stream() {
        let lines = select(LOG, &Options::default());
        assert_eq!(messages(&lines), ["one", "err line", "two", "three", ""]);
        assert_eq!(lines[2].time, "2026-11-25T05:00:02.000000000Z");
        assert_eq!(lines[1].stream, "stderr");
    }

    #[test]
    fn tail_keeps_the_last_whole_lines() {
        let opts = Options {
            tail: Some(2),
            ..Default::default()
        };
        assert_eq!(messages(&select(LOG, &opts)), ["three", ""]);
        let opts = Options {
            tail: Some(0),
            ..Default::default()
        };
        assert!(select(LOG, &opts).is_empty());
        let opts = Options {
            tail: Some(100),
            ..Default::default()
        };
        assert_eq!(select(LOG, &opts).len(), 5);
    }

    #[test]
    fn since_filters_by_record_time() {
        let since = parse_since("2026-11-25T05:00:02Z", SystemTime::now()).unwrap();
        let opts = Options {
            since: Some(since),
            ..Default::default()
        };
        assert_eq!(messages(&select(LOG, &opts)), ["two", "three", ""]);
    }

    #[test]
    fn since_accepts_durations_and_offsets() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(parse_since("10s", now).unwrap(), 990 * 1_000_000_000);
        assert_eq!(parse_since("1m", now).unwrap(), 940 * 1_000_000_000);
        assert_eq!(
            parse_rfc3339("2026-11-25T06:00:02+01:00"),
            parse_rfc3339("2026-11-25T05:00:02Z")
        );
        assert!(parse_since("yesterday", now).is_err());
    }

    #[test]
    fn timestamps_prefix_the_line() {
        let opts = Options {
            timestamps: true,
            tail: Some(1),
            ..Default::default()
        };
        let lines = select(LOG, &opts);
        assert_eq!(opts.format(&lines[0]), "2026-11-25T05:00:04.000000000Z \n");
    }

    #[test]
    fn malformed_records_pass_through() {
        let lines = select("not a cri line\n", &Options::default());
        assert_eq!(messages(&lines), ["not a cri line"]);
    }
}
