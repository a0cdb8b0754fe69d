//! Clients of the streaming protocols, for berthd's tests and benchmarks (not used by berthd
//! itself): the HTTP upgrade, SPDY/3.1 over berthd's own frame and header codec, and the
//! WebSocket channel protocol. They speak what the kubelet and crictl speak, so they work
//! against any CRI runtime's streaming server (containerd's included: the exec benchmark,
//! hack/bench/exec, drives both), and berthctl uses the SPDY halves ([`spdy_split`]) for its
//! interactive exec, attach and port-forward. Minimal by design: no flow control; the
//! test client buffers everything.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::spdy::frame::{FLAG_FIN, Frame};
use super::spdy::zlib::{Decoder, Encoder};
use super::websocket::{MessageReader, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, encode_frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The answer to an upgrade request, and the connection.
pub struct Upgraded {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body of a refused upgrade.
    pub body: String,
    pub stream: TcpStream,
}

impl Upgraded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `POST <url>` with `headers` and reads the response head.
pub async fn upgrade(url: &str, headers: &[(&str, &str)]) -> std::io::Result<Upgraded> {
    let bad_url = || std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("url {url}"));
    let rest = url.strip_prefix("http://").ok_or_else(bad_url)?;
    let (host, path) = rest.split_at(rest.find('/').ok_or_else(bad_url)?);
    let mut stream = TcpStream::connect(host).await?;
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    // Byte by byte, so nothing after the head is taken from the upgraded stream.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if stream.read(&mut b).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = String::new();
    if status != 101 {
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
        body = String::from_utf8_lossy(&buf).into_owned();
    }
    Ok(Upgraded {
        status,
        headers,
        body,
        stream,
    })
}

/// A SPDY client: opens streams, sends data, and collects what berthd sends per stream.
pub struct SpdyClient<S = TcpStream> {
    stream: S,
    enc: Encoder,
    dec: Decoder,
    next_id: u32,
    pub data: HashMap<u32, Vec<u8>>,
    pub fin: HashSet<u32>,
    pub replied: HashSet<u32>,
    pub reset: HashSet<u32>,
    pub pings: Vec<u32>,
    pub eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SpdyClient<S> {
    pub fn new(stream: S) -> SpdyClient<S> {
        SpdyClient {
            stream,
            enc: Encoder::new(),
            dec: Decoder::new(),
            next_id: 1,
            data: HashMap::new(),
            fin: HashSet::new(),
            replied: HashSet::new(),
            reset: HashSet::new(),
            pings: Vec::new(),
            eof: false,
        }
    }

    async fn write(&mut self, f: Frame) -> std::io::Result<()> {
        self.stream.write_all(&f.encode()).await
    }

    /// Opens a stream with these headers; returns its id.
    pub async fn open(&mut self, headers: &[(&str, &str)]) -> std::io::Result<u32> {
        let id = self.next_id;
        self.next_id += 2;
        let headers = self.enc.encode(headers);
        self.write(Frame::SynStream {
            stream_id: id,
            associated_id: 0,
            priority: 0,
            flags: 0,
            headers,
        })
        .await?;
        Ok(id)
    }

    pub async fn send(&mut self, id: u32, data: &[u8]) -> std::io::Result<()> {
        self.write(Frame::Data {
            stream_id: id,
            flags: 0,
            data: data.to_vec(),
        })
        .await
    }

    /// Closes the client's half of a stream.
    pub async fn close(&mut self, id: u32) -> std::io::Result<()> {
        self.write(Frame::Data {
            stream_id: id,
            flags: FLAG_FIN,
            data: Vec::new(),
        })
        .await
    }

    pub async fn ping(&mut self, id: u32) -> std::io::Result<()> {
        self.write(Frame::Ping { id }).await
    }

    pub fn text(&self, id: u32) -> String {
        String::from_utf8_lossy(self.data.get(&id).map(Vec::as_slice).unwrap_or_default())
            .into_owned()
    }

    /// Reads frames until `done` holds, the connection ends, or `timeout` passes.
    pub async fn read_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&SpdyClient<S>) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(self) {
            if self.eof {
                return Err("connection closed".into());
            }
            let f = match tokio::time::timeout_at(deadline, Frame::read(&mut self.stream)).await {
                Err(_) => return Err("timed out".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(None)) => {
                    self.eof = true;
                    continue;
                }
                Ok(Ok(Some(f))) => f,
            };
            match f {
                Frame::SynReply {
                    stream_id, headers, ..
                } => {
                    self.dec.decode(&headers).map_err(|e| e.to_string())?;
                    self.replied.insert(stream_id);
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    self.data.entry(stream_id).or_default().extend(data);
                    if flags & FLAG_FIN != 0 {
                        self.fin.insert(stream_id);
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    self.reset.insert(stream_id);
                }
                Frame::Ping { id } => self.pings.push(id),
                _ => {}
            }
        }
        Ok(())
    }
}

/// One thing the server did, as [`SpdyReader::next_event`] reports it.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The server accepted a stream the client opened.
    Replied {
        stream: u32,
    },
    Data {
        stream: u32,
        bytes: Vec<u8>,
    },
    /// The server closed its half of a stream.
    Closed {
        stream: u32,
    },
    Reset {
        stream: u32,
    },
    Ping {
        id: u32,
    },
    GoAway,
}

/// The reading half of a SPDY connection, for interactive clients: one event at a time,
/// so that the writing half can be driven elsewhere.
pub struct SpdyReader<R> {
    r: R,
    dec: Decoder,
    pending: Option<Event>,
}

impl<R: AsyncRead + Unpin> SpdyReader<R> {
    pub fn new(r: R) -> SpdyReader<R> {
        SpdyReader {
            r,
            dec: Decoder::new(),
            pending: None,
        }
    }

    /// The next event; `None` once the connection has ended. Not cancel safe: run it in its
    /// own task when it has to race with other work.
    pub async fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        if let Some(e) = self.pending.take() {
            return Ok(Some(e));
        }
        loop {
            let f = match Frame::read(&mut self.r).await {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(None),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            };
            return Ok(Some(match f {
                Frame::SynReply {
                    stream_id, headers, ..
                } => {
                    self.dec
                        .decode(&headers)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    Event::Replied { stream: stream_id }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    let fin = flags & FLAG_FIN != 0;
                    if fin && data.is_empty() {
                        Event::Closed { stream: stream_id }
                    } else {
                        if fin {
                            self.pending = Some(Event::Closed { stream: stream_id });
                        }
                        Event::Data {
                            stream: stream_id,
                            bytes: data,
                        }
                    }
                }
                Frame::RstStream { stream_id, .. } => Event::Reset { stream: stream_id },
                Frame::Ping { id } => Event::Ping { id },
                Frame::GoAway { .. } => Event::GoAway,
                _ => continue,
            }));
        }
    }
}

/// The writing half of a SPDY connection: opens streams, sends data, closes them.
pub struct SpdyWriter<W> {
    w: W,
    enc: Encoder,
    next_id: u32,
}

impl<W: AsyncWrite + Unpin> SpdyWriter<W> {
    pub fn new(w: W) -> SpdyWriter<W> {
        SpdyWriter {
            w,
            enc: Encoder::new(),
            next_id: 1,
        }
    }

    /// The id the next [`open`](Self::open) will use, so that a reader can expect it.
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    async fn write(&mut self, f: Frame) -> std::io::Result<()> {
        self.w.write_all(&f.encode()).await
    }

    /// Opens a stream with these headers; returns its id.
    pub async fn open(&mut self, headers: &[(&str, &str)]) -> std::io::Result<u32> {
        let id = self.next_id;
        self.next_id += 2;
        let headers = self.enc.encode(headers);
        self.write(Frame::SynStream {
            stream_id: id,
            associated_id: 0,
            priority: 0,
            flags: 0,
            headers,
        })
        .await?;
        Ok(id)
    }

    pub async fn send(&mut self, id: u32, data: &[u8]) -> std::io::Result<()> {
        self.write(Frame::Data {
            stream_id: id,
            flags: 0,
            data: data.to_vec(),
        })
        .await
    }

    /// Closes the client's half of a stream.
    pub async fn close(&mut self, id: u32) -> std::io::Result<()> {
        self.write(Frame::Data {
            stream_id: id,
            flags: FLAG_FIN,
            data: Vec::new(),
        })
        .await
    }

    pub async fn ping(&mut self, id: u32) -> std::io::Result<()> {
        self.write(Frame::Ping { id }).await
    }
}

/// Splits an upgraded connection into its SPDY reading and writing halves.
pub fn spdy_split(stream: TcpStream) -> (SpdyReader<OwnedReadHalf>, SpdyWriter<OwnedWriteHalf>) {
    let (r, w) = stream.into_split();
    (SpdyReader::new(r), SpdyWriter::new(w))
}

/// A WebSocket channel-protocol client (masked frames, binary channel messages).
pub struct WsClient {
    reader: MessageReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub channels: HashMap<u8, Vec<u8>>,
    pub closed: bool,
}

impl WsClient {
    pub fn new(stream: TcpStream) -> WsClient {
        let (r, w) = stream.into_split();
        WsClient {
            reader: MessageReader::new(r, false),
            writer: w,
            channels: HashMap::new(),
            closed: false,
        }
    }

    pub async fn send(&mut self, channel: u8, data: &[u8]) -> std::io::Result<()> {
        let mut msg = vec![channel];
        msg.extend_from_slice(data);
        self.writer
            .write_all(&encode_frame(OP_BINARY, &msg, Some([9, 8, 7, 6])))
            .await
    }

    pub async fn ping(&mut self) -> std::io::Result<()> {
        self.writer
            .write_all(&encode_frame(OP_PING, b"hi", Some([1, 2, 3, 4])))
            .await
    }

    pub fn text(&self, channel: u8) -> String {
        String::from_utf8_lossy(
            self.channels
                .get(&channel)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
        .into_owned()
    }

    /// Reads messages until berthd closes; returns whether a pong arrived.
    pub async fn read_to_close(&mut self, timeout: Duration) -> Result<bool, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pong = false;
        loop {
            match tokio::time::timeout_at(deadline, self.reader.next()).await {
                Err(_) => return Err("timed out".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(None)) => break,
                Ok(Ok(Some((OP_CLOSE, _)))) => {
                    self.closed = true;
                    let _ = self
                        .writer
                        .write_all(&encode_frame(
                            OP_CLOSE,
                            &1000u16.to_be_bytes(),
                            Some([0; 4]),
                        ))
                        .await;
                    break;
                }
                Ok(Ok(Some((OP_PONG, _)))) => pong = true,
                Ok(Ok(Some((_, msg)))) => {
                    if let Some((&c, d)) = msg.split_first() {
                        self.channels.entry(c).or_default().extend_from_slice(d);
                    }
                }
            }
        }
        Ok(pong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reader_reports_each_frame_as_an_event() {
        let (mut w, theirs) = tokio::io::duplex(4096);
        let mut reader = SpdyReader::new(theirs);
        let frames = [
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: b"out".to_vec(),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: b"last".to_vec(),
            },
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Vec::new(),
            },
            Frame::RstStream {
                stream_id: 5,
                status: 1,
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good_stream_id: 5,
                status: 0,
            },
        ];
        for f in &frames {
            w.write_all(&f.encode()).await.unwrap();
        }
        drop(w);
        let mut events = Vec::new();
        while let Some(e) = reader.next_event().await.unwrap() {
            events.push(e);
        }
        assert_eq!(
            events,
            [
                Event::Data {
                    stream: 3,
                    bytes: b"out".to_vec()
                },
                Event::Data {
                    stream: 3,
                    bytes: b"last".to_vec()
                },
                Event::Closed { stream: 3 },
                Event::Closed { stream: 1 },
                Event::Reset { stream: 5 },
                Event::Ping { id: 2 },
                Event::GoAway,
            ]
        );
    }

    #[tokio::test]
    async fn writer_numbers_streams_odd_and_says_which_comes_next() {
        let (a, b) = tokio::io::duplex(4096);
        let mut w = SpdyWriter::new(a);
        assert_eq!(w.next_id(), 1);
        assert_eq!(w.open(&[("streamType", "error")]).await.unwrap(), 1);
        assert_eq!(w.next_id(), 3);
        assert_eq!(w.open(&[("streamType", "data")]).await.unwrap(), 3);
        w.send(3, b"x").await.unwrap();
        w.close(3).await.unwrap();
        drop(w);
        let mut b = b;
        let mut kinds = Vec::new();
        while let Some(f) = Frame::read(&mut b).await.unwrap() {
            kinds.push(match f {
                Frame::SynStream { stream_id, .. } => format!("syn {stream_id}"),
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => format!("data {stream_id} {flags} {}", data.len()),
                _ => "other".into(),
            });
        }
        assert_eq!(
            kinds,
            [
                "syn 1",
                "syn 3",
                "data 3 0 1",
                &format!("data 3 {FLAG_FIN} 0")
            ]
        );
    }
}
