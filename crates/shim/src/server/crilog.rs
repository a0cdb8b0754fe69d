//! The CRI log format the kubelet reads:
//! `2016-10-06T00:17:09.669794202Z stdout F text\n`.
//!
//! Each stream keeps its own pending line. A line is written when its newline arrives (`F`);
//! a line longer than [`MAX_LINE`] is written in pieces of that size tagged `P`, the last
//! piece `F`. Output left without a newline when the stream ends is written as `P`: the
//! process never finished that line. Records of stdout and stderr interleave in the order
//! their lines complete. One `write` per record, on an `O_APPEND` file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Longest text in one record, as containerd.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// Where records go: a file, or (in unit tests) memory.
pub trait Sink {
    fn write_record(&mut self, record: &[u8]);
}

pub struct CriLog<S: Sink> {
    sink: S,
    pending: [Vec<u8>; 2],
    clock: fn() -> SystemTime,
}

impl<S: Sink> CriLog<S> {
    pub fn new(sink: S) -> Self {
        CriLog {
            sink,
            pending: [Vec::new(), Vec::new()],
            clock: SystemTime::now,
        }
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Takes bytes read from a stream.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) {
        while !data.is_empty() {
            let room = MAX_LINE - self.pending[stream.index()].len();
            let newline = data.iter().position(|&b| b == b'\n');
            match newline {
                Some(n) if n <= room => {
                    let line = std::mem::take(&mut self.pending[stream.index()]);
                    self.emit_joined(stream, b'F', &line, &data[..n]);
                    data = &data[n + 1..];
                }
                _ if data.len() > room => {
                    let line = std::mem::take(&mut self.pending[stream.index()]);
                    self.emit_joined(stream, b'P', &line, &data[..room]);
                    data = &data[room..];
                }
                _ => {
                    self.pending[stream.index()].extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }

    /// Writes what is pending on `stream` as a partial record (the stream ended).
    pub fn flush(&mut self, stream: Stream) {
        let line = std::mem::take(&mut self.pending[stream.index()]);
        if !line.is_empty() {
            self.emit_joined(stream, b'P', &line, &[]);
        }
    }

    fn emit_joined(&mut self, stream: Stream, tag: u8, a: &[u8], b: &[u8]) {
        let ts = humantime::format_rfc3339_nanos((self.clock)()).to_string();
        let mut rec = Vec::with_capacity(ts.len() + 10 + a.len() + b.len());
        rec.extend_from_slice(ts.as_bytes());
        rec.push(b' ');
        rec.extend_from_slice(stream.name().as_bytes());
        rec.push(b' ');
        rec.push(tag);
        rec.push(b' ');
        rec.extend_from_slice(a);
        rec.extend_from_slice(b);
        rec.push(b'\n');
        self.sink.write_record(&rec);
    }
}

/// The log file at a path, reopened on request.
pub struct LogFile {
    path: Option<PathBuf>,
    file: Option<File>,
}

impl LogFile {
    /// No path: output is dropped.
    pub fn open(path: Option<&Path>) -> std::io::Result<LogFile> {
        let mut l = LogFile {
            path: path.map(Path::to_owned),
            file: None,
        };
        l.reopen()?;
        Ok(l)
    }

    pub fn reopen(&mut self) -> std::io::Result<()> {
        self.file = None;
        if let Some(path) = &self.path {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o640)
                    .open(path)?,
            );
        }
        Ok(())
    }
}

impl Sink for LogFile {
    fn write_record(&mut self, record: &[u8]) {
        if let Some(f) = &mut self.file
            && let Err(e) = f.write_all(record)
        {
            tracing::warn!(path = ?self.path, error = %e, "write log record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Sink for Vec<Vec<u8>> {
        fn write_record(&mut self, record: &[u8]) {
            self.push(record.to_vec());
        }
    }

    fn log() -> CriLog<Vec<Vec<u8>>> {
        let mut l = CriLog::new(Vec::new());
        l.clock = || SystemTime::UNIX_EPOCH + std::time::Duration::new(1475713029, 669794202);
        l
    }

    fn text(l: &CriLog<Vec<Vec<u8>>>) -> Vec<String> {
        l.sink
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn full_lines_are_tagged_f_with_rfc3339_nanos() {
        let mut l = log();
        l.write(Stream::Stdout, b"hello\nwor");
        l.write(Stream::Stderr, b"oops\n");
        l.write(Stream::Stdout, b"ld\n");
        assert_eq!(
            text(&l),
            [
                "2016-10-06T00:17:09.669794202Z stdout F hello\n",
                "2016-10-06T00:17:09.669794202Z stderr F oops\n",
                "2016-10-06T00:17:09.669794202Z stdout F world\n",
            ]
        );
    }

    #[test]
    fn long_lines_split_at_16k_and_unterminated_end_is_partial() {
        let mut l = log();
        let mut line = vec![b'a'; 2 * MAX_LINE + 5];
        line.push(b'\n');
        l.write(Stream::Stdout, &line[..100]);
        l.write(Stream::Stdout, &line[100..]);
        l.write(Stream::Stdout, &[b'b'; MAX_LINE]);
        l.write(Stream::Stdout, b"\ntail");
        l.flush(Stream::Stdout);
        let recs = text(&l);
        let tags: Vec<(&str, usize)> = recs
            .iter()
            .map(|r| {
                let mut f = r.splitn(4, ' ');
                let _ = (f.next(), f.next());
                (f.next().unwrap(), f.next().unwrap().len() - 1)
            })
            .collect();
        assert_eq!(
            tags,
            [
                ("P", MAX_LINE),
                ("P", MAX_LINE),
                ("F", 5),
                ("F", MAX_LINE),
                ("P", 4)
            ]
        );
    }

    #[test]
    fn empty_lines_are_records() {
        let mut l = log();
        l.write(Stream::Stdout, b"\n\n");
        assert_eq!(text(&l).len(), 2);
        assert!(text(&l)[0].ends_with("stdout F \n"));
    }
}
