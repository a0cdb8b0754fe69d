//! WebSocket (RFC 6455) for exec and attach: the channel protocols.
//!
//! Each binary message is one channel byte and the payload: 0 stdin, 1 stdout, 2 stderr,
//! 3 error (the status, as over SPDY), 4 resize. `base64.channel.k8s.io` sends text
//! messages instead: the channel as an ASCII digit, the payload base64. With
//! `v5.channel.k8s.io` the message `[255, c]` closes channel `c` (the client closes stdin
//! that way; berth closes stdout and stderr at the exit, and the error channel after the
//! status).
//!
//! Only what a server needs is written: the handshake answer, unmasked frames out, masked
//! frames in (unmasked ones from a client are refused), fragments reassembled, pings
//! answered, messages capped at [`MAX_MESSAGE`].

use std::sync::Arc;

use base64::Engine;
use berth_sandbox::Sandboxes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::Gone;
use super::remotecommand::{self, Channel, Io, Output, Version};
use super::tokens::Target;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The largest message berth accepts from a client.
pub const MAX_MESSAGE: usize = 1 << 20;

pub const OP_CONTINUATION: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// The channel byte of v5's close message.
const CLOSE_CHANNEL: u8 = 255;

/// Subprotocols for exec and attach, in preference order: (name, version, base64).
const PROTOCOLS: &[(&str, Version, bool)] = &[
    ("v5.channel.k8s.io", Version::V5, false),
    ("v4.channel.k8s.io", Version::V4, false),
    ("v4.base64.channel.k8s.io", Version::V4, true),
    ("channel.k8s.io", Version::V1, false),
    ("base64.channel.k8s.io", Version::V1, true),
];

/// The subprotocol berth speaks for what the client offered; a client that offers none
/// gets `channel.k8s.io` (and no protocol header).
pub fn negotiate(offered: &[String]) -> Option<(Option<&'static str>, Version, bool)> {
    if offered.is_empty() {
        return Some((None, Version::V1, false));
    }
    PROTOCOLS
        .iter()
        .find(|(name, _, _)| offered.iter().any(|o| o == name))
        .map(|(name, v, b)| (Some(*name), *v, *b))
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha1(&input))
}

/// SHA-1, needed only for the handshake's accept key: aws-lc-rs, already linked for TLS.
fn sha1(data: &[u8]) -> [u8; 20] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

/// One frame's bytes; `mask` is for clients (berth's tests), servers send unmasked.
pub fn encode_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("websocket read: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
}

/// Reads whole messages (fragments joined); control frames come out as they arrive.
pub struct MessageReader<R> {
    r: R,
    /// Whether frames must be masked (a server reading a client).
    require_mask: bool,
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub fn new(r: R, require_mask: bool) -> Self {
        MessageReader {
            r,
            require_mask,
            partial: None,
        }
    }

    /// The next message as (opcode, payload); None at a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<(u8, Vec<u8>)>, WsError> {
        loop {
            let mut head = [0u8; 2];
            match self.r.read_exact(&mut head).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            let fin = head[0] & 0x80 != 0;
            if head[0] & 0x70 != 0 {
                return Err(WsError::Protocol("reserved bits set"));
            }
            let opcode = head[0] & 0x0f;
            let masked = head[1] & 0x80 != 0;
            if self.require_mask && !masked {
                return Err(WsError::Protocol("unmasked client frame"));
            }
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.r.read_exact(&mut b).await?;
                    u16::from_be_bytes(b) as u64
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.r.read_exact(&mut b).await?;
                    u64::from_be_bytes(b)
                }
                n => n as u64,
            };
            let have = self.partial.as_ref().map_or(0, |(_, p)| p.len()) as u64;
            if len + have > MAX_MESSAGE as u64 {
                return Err(WsError::Protocol("message too large"));
            }
            let mut mask = [0u8; 4];
            if masked {
                self.r.read_exact(&mut mask).await?;
            }
            let mut payload = vec![0u8; len as usize];
            self.r.read_exact(&mut payload).await?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            if opcode >= OP_CLOSE {
                if !fin || len > 125 {
                    return Err(WsError::Protocol("bad control frame"));
                }
                return Ok(Some((opcode, payload)));
            }
            match (opcode, self.partial.take()) {
                (OP_CONTINUATION, None) => {
                    return Err(WsError::Protocol("continuation without a start"));
                }
                (OP_CONTINUATION, Some((op, mut data))) => {
                    data.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some((op, data)));
                    }
                    self.partial = Some((op, data));
                }
                (_, Some(_)) => {
                    return Err(WsError::Protocol("new message inside a fragmented one"));
                }
                (op, None) => {
                    if fin {
                        return Ok(Some((op, payload)));
                    }
                    self.partial = Some((op, payload));
                }
            }
        }
    }
}

/// Serves exec or attach on an upgraded WebSocket connection.
pub async fn serve_remotecommand<IO>(
    sandboxes: Arc<Sandboxes>,
    target: Target,
    version: Version,
    base64: bool,
    io: IO,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let stdin_wanted = matches!(
        target,
        Target::Exec { stdin: true, .. } | Target::Attach { stdin: true, .. }
    );
    let tty = matches!(
        target,
        Target::Exec { tty: true, .. } | Target::Attach { tty: true, .. }
    );
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<Vec<u8>>(4);
    let (frames_tx, frames_rx) = mpsc::channel::<Vec<u8>>(64);
    let (gone_tx, gone_rx) = watch::channel(false);
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(16);

    let writer = tokio::spawn(write_frames(write, frames_rx));
    let reader = tokio::spawn(read_client(
        read,
        base64,
        version,
        stdin_wanted.then_some(stdin_tx),
        tty.then_some(resize_tx),
        frames_tx.clone(),
        gone_tx,
    ));
    let encode = {
        let frames = frames_tx.clone();
        tokio::spawn(async move {
            while let Some(o) = out_rx.recv().await {
                let frame = match o {
                    Output::Data(c, d) => channel_message(base64, channel_byte(c), &d),
                    Output::Close(c) if version >= Version::V5 => {
                        encode_frame(OP_BINARY, &[CLOSE_CHANNEL, channel_byte(c)], None)
                    }
                    Output::Close(_) => continue,
                };
                if frames.send(frame).await.is_err() {
                    break;
                }
            }
        })
    };
    let io = Io {
        stdin: stdin_wanted.then_some(stdin_rx),
        resize: tty.then_some(resize_rx),
        out: out_tx,
        gone: Gone::new(gone_rx),
    };
    remotecommand::serve(sandboxes, target, version, io).await;
    let _ = encode.await;
    // Normal closure; the client answers with its own close and hangs up.
    let _ = frames_tx
        .send(encode_frame(OP_CLOSE, &1000u16.to_be_bytes(), None))
        .await;
    drop(frames_tx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
    reader.abort();
}

fn channel_byte(c: Channel) -> u8 {
    match c {
        Channel::Stdout => 1,
        Channel::Stderr => 2,
        Channel::Error => 3,
    }
}

pub(crate) fn channel_message(base64: bool, channel: u8, data: &[u8]) -> Vec<u8> {
    if base64 {
        let mut text = vec![b'0' + channel];
        text.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(data)
                .as_bytes(),
        );
        encode_frame(OP_TEXT, &text, None)
    } else {
        let mut msg = Vec::with_capacity(data.len() + 1);
        msg.push(channel);
        msg.extend_from_slice(data);
        encode_frame(OP_BINARY, &msg, None)
    }
}

pub(crate) async fn write_frames<W: AsyncWrite>(write: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut w = std::pin::pin!(write);
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

async fn read_client<R: AsyncRead + Unpin>(
    read: R,
    base64: bool,
    version: Version,
    mut stdin: Option<mpsc::Sender<Vec<u8>>>,
    mut resize: Option<mpsc::Sender<Vec<u8>>>,
    frames: mpsc::Sender<Vec<u8>>,
    gone: watch::Sender<bool>,
) {
    let mut reader = MessageReader::new(read, true);
    loop {
        let (opcode, payload) = match reader.next().await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                debug!(error = %e, "websocket client");
                break;
            }
        };
        let msg = match opcode {
            OP_PING => {
                let _ = frames.send(encode_frame(OP_PONG, &payload, None)).await;
                continue;
            }
            OP_CLOSE => break,
            OP_PONG => continue,
            OP_TEXT if base64 => match decode_base64_message(&payload) {
                Some(m) => m,
                None => continue,
            },
            _ => payload,
        };
        let Some((&channel, data)) = msg.split_first() else {
            continue;
        };
        match channel {
            0 => {
                if let Some(tx) = &stdin
                    && !data.is_empty()
                    && tx.send(data.to_vec()).await.is_err()
                {
                    stdin = None;
                }
            }
            4 => {
                if let Some(tx) = &resize
                    && tx.send(data.to_vec()).await.is_err()
                {
                    resize = None;
                }
            }
            CLOSE_CHANNEL if version >= Version::V5 => match data.first() {
                Some(0) => stdin = None,
                Some(4) => resize = None,
                _ => {}
            },
            _ => {}
        }
    }
    drop((stdin, resize));
    let _ = gone.send(true);
}

/// A base64 protocol text message: ASCII channel digit, then base64.
pub(crate) fn decode_base64_message(text: &[u8]) -> Option<Vec<u8>> {
    let (&digit, rest) = text.split_first()?;
    let channel = digit.checked_sub(b'0').filter(|c| *c <= 9)?;
    let mut msg = vec![channel];
    msg.extend(
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?,
    );
    Some(msg)
}

/// The subprotocol of SPDY tunnelled through WebSocket for port forwarding, as client-go's
/// WebSocket port-forward dialer asks for it.
pub const SPDY_TUNNEL_PORTFORWARD: &str = "SPDY/3.1+portforward.k8s.io";

/// Which end of a WebSocket this side is: clients mask what they send, servers require
/// masked frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// A byte stream carried in binary messages (SPDY tunnelled through WebSocket): what is
/// written to the returned stream goes out as one message per write, and the payloads of
/// incoming messages are read from it in order. A close (either way) or a client silent
/// past the SPDY idle timeout ends it.
pub fn tunnel<IO>(io: IO, role: Role) -> tokio::io::DuplexStream
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (ws_read, ws_write) = tokio::io::split(io);
    let (mut t_read, mut t_write) = tokio::io::split(theirs);
    let (frames_tx, frames_rx) = mpsc::channel::<Vec<u8>>(64);
    let (closing_tx, mut closing) = watch::channel(false);
    let mask = move || (role == Role::Client).then_some(rand_mask());
    tokio::spawn(write_frames(ws_write, frames_rx));
    let pongs = frames_tx.clone();
    tokio::spawn(async move {
        let mut reader = MessageReader::new(ws_read, role == Role::Server);
        let idle = super::spdy::session::IDLE_TIMEOUT;
        loop {
            let limit = if *closing.borrow() {
                std::time::Duration::from_secs(5)
            } else {
                idle
            };
            let next = tokio::select! {
                m = tokio::time::timeout(limit, reader.next()) => m,
                _ = closing.changed(), if !*closing.borrow() => continue,
            };
            match next {
                Ok(Ok(Some((OP_BINARY, p)))) => {
                    if t_write.write_all(&p).await.is_err() {
                        break;
                    }
                }
                Ok(Ok(Some((OP_PING, p)))) => {
                    let _ = pongs.send(encode_frame(OP_PONG, &p, mask())).await;
                }
                Ok(Ok(Some((OP_CLOSE, _)))) => {
                    let _ = pongs
                        .send(encode_frame(OP_CLOSE, &1000u16.to_be_bytes(), mask()))
                        .await;
                    break;
                }
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
        }
        let _ = t_write.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match t_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = encode_frame(OP_BINARY, &buf[..n], mask());
                    if frames_tx.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = frames_tx
            .send(encode_frame(OP_CLOSE, &1000u16.to_be_bytes(), mask()))
            .await;
        let _ = closing_tx.send(true);
    });
    ours
}

fn rand_mask() -> [u8; 4] {
    let mut m = [0u8; 4];
    let _ = rustix::rand::getrandom(&mut m, rustix::rand::GetRandomFlags::empty());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn sha1_of_abc() {
        let h = sha1(b"abc");
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[tokio::test]
    async fn masked_fragments_are_joined_and_pings_pass_between() {
        let mut wire = Vec::new();
        let m = Some([1, 2, 3, 4]);
        let mut first = encode_frame(OP_BINARY, b"\x00hel", m);
        first[0] &= 0x7f; // not FIN
        wire.extend(first);
        wire.extend(encode_frame(OP_PING, b"p", m));
        wire.extend(encode_frame(OP_CONTINUATION, b"lo", m));
        let big = vec![7u8; 70_000];
        wire.extend(encode_frame(OP_BINARY, &big, m));
        let mut r = MessageReader::new(&wire[..], true);
        assert_eq!(r.next().await.unwrap(), Some((OP_PING, b"p".to_vec())));
        assert_eq!(
            r.next().await.unwrap(),
            Some((OP_BINARY, b"\x00hello".to_vec()))
        );
        assert_eq!(r.next().await.unwrap(), Some((OP_BINARY, big)));
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn unmasked_client_frames_and_huge_messages_are_refused() {
        let wire = encode_frame(OP_BINARY, b"x", None);
        assert!(MessageReader::new(&wire[..], true).next().await.is_err());
        let mut huge = vec![0x82u8, 0xff];
        huge.extend_from_slice(&(u64::MAX / 2).to_be_bytes());
        assert!(MessageReader::new(&huge[..], true).next().await.is_err());
    }

    #[test]
    fn protocols_negotiate_newest_first() {
        let offered = vec![
            "base64.channel.k8s.io".to_string(),
            "v4.channel.k8s.io".into(),
        ];
        assert_eq!(
            negotiate(&offered),
            Some((Some("v4.channel.k8s.io"), Version::V4, false))
        );
        assert_eq!(negotiate(&[]), Some((None, Version::V1, false)));
        assert_eq!(negotiate(&["x".to_string()]), None);
        assert_eq!(decode_base64_message(b"0aGk="), Some(b"\x00hi".to_vec()));
    }
}
