//! One SPDY/3.1 connection, server side: a reader task and a writer task.
//!
//! The reader decompresses each SYN_STREAM's headers, answers it with a SYN_REPLY and hands
//! the new [`Stream`] to the handler; DATA goes to the stream's channel (a FIN or
//! RST_STREAM closes it); PINGs from the client are echoed. The writer owns the outgoing
//! header compressor and serialises everything the handler and the reader send.
//!
//! Flow control: berth neither enforces nor advertises windows. The Kubernetes clients
//! (spdystream) ignore WINDOW_UPDATE and never send one; incoming DATA is bounded by the
//! channels instead (a slow consumer stalls the reader, which stalls TCP).

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::debug;

use super::frame::{self, FLAG_FIN, Frame};
use super::zlib::{Decoder, Encoder, Headers};
use crate::streaming::Gone;

/// Streams one connection may have open at once.
const MAX_STREAMS: usize = 64;

/// Chunks of DATA buffered per stream before the reader waits for the handler.
const STREAM_BUFFER: usize = 16;

/// A connection with no frame from the client for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// How long [`Connection::close`] waits for the client to hang up after berth is done.
const LINGER: Duration = Duration::from_secs(5);

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    /// The client's DATA; `None` once it sent FIN, reset the stream or went away.
    pub data: mpsc::Receiver<Vec<u8>>,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::zlib::header(&self.headers, name)
    }
}

enum Out {
    Frame(Frame),
    Reply { stream_id: u32 },
    Shutdown,
}

/// Sends frames on the connection; cheap to clone. Sends after the connection is gone
/// are dropped (the handler learns of it through [`Connection::gone`]).
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Out>,
}

impl Writer {
    /// Writes `data` on a stream, in frames of at most [`frame::MAX_DATA`] bytes.
    pub async fn data(&self, stream_id: u32, data: &[u8]) {
        for chunk in data.chunks(frame::MAX_DATA) {
            let f = Frame::Data {
                stream_id,
                flags: 0,
                data: chunk.to_vec(),
            };
            if self.tx.send(Out::Frame(f)).await.is_err() {
                return;
            }
        }
    }

    /// Closes berth's half of a stream.
    pub async fn fin(&self, stream_id: u32) {
        let f = Frame::Data {
            stream_id,
            flags: FLAG_FIN,
            data: Vec::new(),
        };
        let _ = self.tx.send(Out::Frame(f)).await;
    }

    pub async fn reset(&self, stream_id: u32, status: u32) {
        let _ = self
            .tx
            .send(Out::Frame(Frame::RstStream { stream_id, status }))
            .await;
    }
}

/// The handler's side of a connection.
pub struct Connection {
    /// Streams as the client opens them.
    pub streams: mpsc::Receiver<Stream>,
    pub writer: Writer,
    gone: watch::Receiver<bool>,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
}

impl Connection {
    /// Starts serving SPDY on an upgraded connection.
    pub fn start<IO>(io: IO) -> Connection
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(64);
        let (streams_tx, streams) = mpsc::channel(MAX_STREAMS);
        let (gone_tx, gone) = watch::channel(false);
        let writer = Writer { tx: out_tx };
        let writer_task = tokio::spawn(write_loop(write, out_rx));
        let reader = tokio::spawn(read_loop(read, writer.clone(), streams_tx, gone_tx));
        Connection {
            streams,
            writer,
            gone,
            reader,
            writer_task,
        }
    }

    /// A handle that resolves when the client has gone (GOAWAY, EOF, error, idle).
    pub fn gone(&self) -> Gone {
        Gone::new(self.gone.clone())
    }

    /// Flushes what was written, closes berth's side, and gives the client a moment to
    /// hang up before the connection is dropped.
    pub async fn close(self) {
        let _ = self.writer.tx.send(Out::Shutdown).await;
        let _ = tokio::time::timeout(LINGER, self.writer_task).await;
        let mut gone = Gone::new(self.gone);
        let _ = tokio::time::timeout(LINGER, gone.wait()).await;
        self.reader.abort();
    }
}

async fn write_loop<W: AsyncWrite>(write: W, mut rx: mpsc::Receiver<Out>) {
    let mut w = std::pin::pin!(BufWriter::new(write));
    let mut encoder = Encoder::new();
    while let Some(out) = rx.recv().await {
        let frame = match out {
            Out::Frame(f) => f,
            Out::Reply { stream_id } => Frame::SynReply {
                stream_id,
                flags: 0,
                headers: encoder.encode(&[]),
            },
            Out::Shutdown => break,
        };
        if w.write_all(&frame.encode()).await.is_err() {
            return;
        }
        // Flush when nothing else is queued: batches bursts, never holds data back.
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn read_loop<R: AsyncRead>(
    read: R,
    writer: Writer,
    streams_tx: mpsc::Sender<Stream>,
    gone: watch::Sender<bool>,
) {
    let mut read = std::pin::pin!(read);
    let mut decoder = Decoder::new();
    let mut open: HashMap<u32, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut last_id = 0u32;
    loop {
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, Frame::read(&mut read)).await {
            Err(_) => {
                debug!("spdy connection idle; closing");
                break;
            }
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                debug!(error = %e, "spdy connection ended");
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                // The header block must be decoded even for a refused stream: the zlib
                // stream spans every block.
                let headers = match decoder.decode(&headers) {
                    Ok(h) => h,
                    Err(e) => {
                        debug!(error = %e, "bad header block; closing");
                        break;
                    }
                };
                if stream_id % 2 == 0 || stream_id <= last_id {
                    writer.reset(stream_id, frame::RST_PROTOCOL_ERROR).await;
                    continue;
                }
                last_id = stream_id;
                if open.len() >= MAX_STREAMS {
                    writer.reset(stream_id, frame::RST_REFUSED_STREAM).await;
                    continue;
                }
                let (tx, data) = mpsc::channel(STREAM_BUFFER);
                let _ = writer.tx.send(Out::Reply { stream_id }).await;
                if flags & FLAG_FIN == 0 {
                    open.insert(stream_id, tx);
                }
                let stream = Stream {
                    id: stream_id,
                    headers,
                    data,
                };
                if streams_tx.try_send(stream).is_err() {
                    open.remove(&stream_id);
                    writer.reset(stream_id, frame::RST_REFUSED_STREAM).await;
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if let Some(tx) = open.get(&stream_id) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        // The handler dropped the stream: the rest is discarded.
                        open.remove(&stream_id);
                    }
                    if flags & FLAG_FIN != 0 {
                        open.remove(&stream_id);
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                open.remove(&stream_id);
            }
            Frame::Ping { id } => {
                // Client pings have odd ids; an even one would be the echo of ours.
                if id % 2 == 1 {
                    let _ = writer.tx.send(Out::Frame(Frame::Ping { id })).await;
                }
            }
            Frame::Headers { headers, .. } | Frame::SynReply { headers, .. } => {
                // Keep the zlib stream in step; the contents are not used.
                if decoder.decode(&headers).is_err() {
                    break;
                }
            }
            Frame::GoAway { .. } => {
                // The client is leaving: it opens no more streams and waits for the open
                // ones to end. Frames already sent are still read.
                let _ = gone.send(true);
            }
            Frame::Settings { .. } | Frame::WindowUpdate { .. } | Frame::Unknown { .. } => {}
        }
    }
    drop(open);
    let _ = gone.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streaming::spdy::zlib::header;
    use tokio::io::{AsyncWriteExt, DuplexStream};

    struct Peer {
        io: DuplexStream,
        enc: Encoder,
        dec: Decoder,
    }

    impl Peer {
        async fn open(&mut self, id: u32, kind: &str, fin: bool) {
            let headers = self.enc.encode(&[("streamType", kind)]);
            let f = Frame::SynStream {
                stream_id: id,
                associated_id: 0,
                priority: 0,
                flags: if fin { FLAG_FIN } else { 0 },
                headers,
            };
            self.io.write_all(&f.encode()).await.unwrap();
        }

        async fn send(&mut self, f: Frame) {
            self.io.write_all(&f.encode()).await.unwrap();
        }

        async fn next(&mut self) -> Frame {
            let f = tokio::time::timeout(Duration::from_secs(5), Frame::read(&mut self.io))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Frame::SynReply { headers, .. } = &f {
                self.dec.decode(headers).unwrap();
            }
            f
        }
    }

    fn pair() -> (Connection, Peer) {
        let (server, client) = tokio::io::duplex(1 << 16);
        let peer = Peer {
            io: client,
            enc: Encoder::new(),
            dec: Decoder::new(),
        };
        (Connection::start(server), peer)
    }

    #[tokio::test]
    async fn streams_are_replied_and_carry_data_until_fin() {
        let (mut conn, mut peer) = pair();
        peer.open(1, "stdin", false).await;
        let mut s = conn.streams.recv().await.unwrap();
        assert_eq!(s.id, 1);
        assert_eq!(header(&s.headers, "streamtype"), Some("stdin"));
        assert!(matches!(
            peer.next().await,
            Frame::SynReply { stream_id: 1, .. }
        ));
        peer.send(Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: b"abc".to_vec(),
        })
        .await;
        assert_eq!(s.data.recv().await, Some(b"abc".to_vec()));
        assert_eq!(s.data.recv().await, None);

        conn.writer.data(1, b"out").await;
        conn.writer.fin(1).await;
        assert_eq!(
            peer.next().await,
            Frame::Data {
                stream_id: 1,
                flags: 0,
                data: b"out".to_vec()
            }
        );
        assert!(matches!(
            peer.next().await,
            Frame::Data {
                flags: FLAG_FIN,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn pings_are_echoed_and_bad_ids_reset() {
        let (mut conn, mut peer) = pair();
        peer.send(Frame::Ping { id: 7 }).await;
        assert_eq!(peer.next().await, Frame::Ping { id: 7 });
        // Even ids belong to the server; ids must grow.
        peer.open(2, "error", false).await;
        assert!(matches!(
            peer.next().await,
            Frame::RstStream {
                stream_id: 2,
                status: frame::RST_PROTOCOL_ERROR
            }
        ));
        peer.open(5, "error", true).await;
        peer.open(3, "stdout", false).await;
        let s = conn.streams.recv().await.unwrap();
        assert_eq!(s.id, 5);
        assert!(matches!(
            peer.next().await,
            Frame::SynReply { stream_id: 5, .. }
        ));
        assert!(matches!(
            peer.next().await,
            Frame::RstStream { stream_id: 3, .. }
        ));
    }

    #[tokio::test]
    async fn goaway_or_hangup_means_gone() {
        let (conn, mut peer) = pair();
        let mut gone = conn.gone();
        assert!(!gone.is_gone());
        peer.send(Frame::GoAway {
            last_good_stream_id: 0,
            status: 0,
        })
        .await;
        gone.wait().await;

        let (conn, peer) = pair();
        let mut gone = conn.gone();
        drop(peer);
        gone.wait().await;
        assert!(gone.is_gone());
        conn.close().await;
    }

    #[tokio::test]
    async fn garbage_ends_the_connection() {
        let (conn, mut peer) = pair();
        let mut gone = conn.gone();
        peer.io
            .write_all(&[
                0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
            ])
            .await
            .unwrap();
        gone.wait().await;
    }
}
