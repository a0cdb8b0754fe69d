//! SPDY/3.1 frames on the wire: the 8-byte header, the control frames berth reads and
//! writes, and DATA. Header blocks stay compressed here; [`super::zlib`] owns the
//! per-direction zlib streams that turn them into name/value pairs.
//!
//! ```text
//! control: |1| version (15) | type (16) | flags (8) | length (24) | payload
//! data:    |0| stream id (31)           | flags (8) | length (24) | payload
//! ```

use tokio::io::{AsyncRead, AsyncReadExt};

pub const VERSION: u16 = 3;

pub const TYPE_SYN_STREAM: u16 = 1;
pub const TYPE_SYN_REPLY: u16 = 2;
pub const TYPE_RST_STREAM: u16 = 3;
pub const TYPE_SETTINGS: u16 = 4;
pub const TYPE_PING: u16 = 6;
pub const TYPE_GOAWAY: u16 = 7;
pub const TYPE_HEADERS: u16 = 8;
pub const TYPE_WINDOW_UPDATE: u16 = 9;

/// FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS: the sender's half is closed.
pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes used by berth.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// The largest frame payload berth accepts (the 24-bit length allows 16 MiB; nothing a
/// streaming client sends needs more than a few KiB of headers or 32 KiB of data).
pub const MAX_PAYLOAD: usize = 1 << 20;

/// The largest DATA payload berth writes.
pub const MAX_DATA: usize = 32 * 1024;

const STREAM_ID_MASK: u32 = 0x7fff_ffff;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("read frame: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame payload of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("short {kind} frame ({len} bytes)")]
    Short { kind: &'static str, len: usize },
}

/// One frame, header blocks still compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_id: u32,
        priority: u8,
        flags: u8,
        headers: Vec<u8>,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Vec<u8>,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// (flags, id, value) entries.
    Settings {
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Vec<u8>,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Vec<u8>,
    },
    /// A control frame of a type berth does not know: ignored, as the spec asks.
    Unknown {
        kind: u16,
    },
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn need(kind: &'static str, payload: &[u8], len: usize) -> Result<(), FrameError> {
    if payload.len() < len {
        return Err(FrameError::Short {
            kind,
            len: payload.len(),
        });
    }
    Ok(())
}

impl Frame {
    /// Reads one frame; `Ok(None)` at a clean end of stream (between frames).
    pub async fn read(r: &mut (impl AsyncRead + Unpin)) -> Result<Option<Frame>, FrameError> {
        let mut head = [0u8; 8];
        let mut got = 0;
        while got < head.len() {
            let n = r.read(&mut head[got..]).await?;
            if n == 0 {
                if got == 0 {
                    return Ok(None);
                }
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            got += n;
        }
        let flags = head[4];
        let len = (be32(&head[4..8]) & 0x00ff_ffff) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).await?;
        Frame::parse(head, flags, payload).map(Some)
    }

    fn parse(head: [u8; 8], flags: u8, p: Vec<u8>) -> Result<Frame, FrameError> {
        if head[0] & 0x80 == 0 {
            return Ok(Frame::Data {
                stream_id: be32(&head[0..4]) & STREAM_ID_MASK,
                flags,
                data: p,
            });
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        Ok(match kind {
            TYPE_SYN_STREAM => {
                need("SYN_STREAM", &p, 10)?;
                Frame::SynStream {
                    stream_id: be32(&p[0..4]) & STREAM_ID_MASK,
                    associated_id: be32(&p[4..8]) & STREAM_ID_MASK,
                    priority: p[8] >> 5,
                    flags,
                    headers: p[10..].to_vec(),
                }
            }
            TYPE_SYN_REPLY => {
                need("SYN_REPLY", &p, 4)?;
                Frame::SynReply {
                    stream_id: be32(&p[0..4]) & STREAM_ID_MASK,
                    flags,
                    headers: p[4..].to_vec(),
                }
            }
            TYPE_RST_STREAM => {
                need("RST_STREAM", &p, 8)?;
                Frame::RstStream {
                    stream_id: be32(&p[0..4]) & STREAM_ID_MASK,
                    status: be32(&p[4..8]),
                }
            }
            TYPE_SETTINGS => {
                need("SETTINGS", &p, 4)?;
                let count = be32(&p[0..4]) as usize;
                need("SETTINGS", &p, 4 + count.saturating_mul(8))?;
                let entries = p[4..4 + count * 8]
                    .chunks_exact(8)
                    .map(|e| (e[0], be32(&e[0..4]) & 0x00ff_ffff, be32(&e[4..8])))
                    .collect();
                Frame::Settings { entries }
            }
            TYPE_PING => {
                need("PING", &p, 4)?;
                Frame::Ping { id: be32(&p[0..4]) }
            }
            TYPE_GOAWAY => {
                need("GOAWAY", &p, 4)?;
                Frame::GoAway {
                    last_good_stream_id: be32(&p[0..4]) & STREAM_ID_MASK,
                    status: if p.len() >= 8 { be32(&p[4..8]) } else { 0 },
                }
            }
            TYPE_HEADERS => {
                need("HEADERS", &p, 4)?;
                Frame::Headers {
                    stream_id: be32(&p[0..4]) & STREAM_ID_MASK,
                    flags,
                    headers: p[4..].to_vec(),
                }
            }
            TYPE_WINDOW_UPDATE => {
                need("WINDOW_UPDATE", &p, 8)?;
                Frame::WindowUpdate {
                    stream_id: be32(&p[0..4]) & STREAM_ID_MASK,
                    delta: be32(&p[4..8]) & STREAM_ID_MASK,
                }
            }
            kind => Frame::Unknown { kind },
        })
    }

    /// The frame's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        match self {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                out.extend_from_slice(&(stream_id & STREAM_ID_MASK).to_be_bytes());
                push_flags_len(&mut out, *flags, data.len());
                out.extend_from_slice(data);
            }
            Frame::SynStream {
                stream_id,
                associated_id,
                priority,
                flags,
                headers,
            } => {
                control(&mut out, TYPE_SYN_STREAM, *flags, 10 + headers.len());
                out.extend_from_slice(&(stream_id & STREAM_ID_MASK).to_be_bytes());
                out.extend_from_slice(&(associated_id & STREAM_ID_MASK).to_be_bytes());
                out.extend_from_slice(&[priority << 5, 0]);
                out.extend_from_slice(headers);
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                control(&mut out, TYPE_SYN_REPLY, *flags, 4 + headers.len());
                out.extend_from_slice(&(stream_id & STREAM_ID_MASK).to_be_bytes());
                out.extend_from_slice(headers);
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                control(&mut out, TYPE_HEADERS, *flags, 4 + headers.len());
                out.extend_from_slice(&(stream_id & STREAM_ID_MASK).to_be_bytes());
                out.extend_from_slice(headers);
            }
            Frame::RstStream { stream_id, status } => {
                control(&mut out, TYPE_RST_STREAM, 0, 8);
                out.extend_from_slice(&(stream_id & STREAM_ID_MASK).to_be_bytes());
                out.extend_from_slice(&status.to_be_bytes());
            }
            Frame::Settings { entries } => {
                control(&mut out, TYPE_SETTINGS, 0, 4 + 8 * entries.len());
                out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for (flags, id, value) in entries {
                    out.extend_from_slice(
                        &(((*flags as u32) << 24) | (id & 0x00ff_ffff)).to_be_bytes(),
                    );
                    out.extend_from_slice(&value.to_be_bytes());
                }
            }
            Frame::Ping { id } => {
                control(&mut out, TYPE_PING, 0, 4);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control(&mut out, TYPE_GOAWAY, 0, 8);
                out.extend_from_slice(&(last_good_stream_id & STREAM_ID_MASK).to_be_bytes());
                out.extend_from_slice(&status.to_be_bytes());
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control(&mut out, TYPE_WINDOW_UPDATE, 0, 8);
                out.extend_from_slice(&(stream_id & STREAM_ID_MASK).to_be_bytes());
                out.extend_from_slice(&(delta & STREAM_ID_MASK).to_be_bytes());
            }
            Frame::Unknown { kind } => control(&mut out, *kind, 0, 0),
        }
        out
    }
}

fn control(out: &mut Vec<u8>, kind: u16, flags: u8, len: usize) {
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    push_flags_len(out, flags, len);
}

fn push_flags_len(out: &mut Vec<u8>, flags: u8, len: usize) {
    out.extend_from_slice(&(((flags as u32) << 24) | (len as u32 & 0x00ff_ffff)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(f: Frame) -> Frame {
        let bytes = f.encode();
        Frame::read(&mut &bytes[..]).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let frames = [
            Frame::SynStream {
                stream_id: 5,
                associated_id: 0,
                priority: 0,
                flags: FLAG_FIN,
                headers: b"abc".to_vec(),
            },
            Frame::SynReply {
                stream_id: 5,
                flags: 0,
                headers: b"xyz".to_vec(),
            },
            Frame::RstStream {
                stream_id: 7,
                status: RST_CANCEL,
            },
            Frame::Settings {
                entries: vec![(0, 7, 65536)],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 4096,
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: b"hello".to_vec(),
            },
        ];
        for f in frames {
            assert_eq!(roundtrip(f.clone()).await, f);
        }
    }

    #[tokio::test]
    async fn bad_frames_are_errors_not_panics() {
        // Truncated header, oversized length, short SYN_STREAM, wrong version.
        assert!(Frame::read(&mut &[0x80u8, 3, 0][..]).await.is_err());
        assert!(matches!(
            Frame::read(&mut &[0u8, 0, 0, 1, 0, 0xff, 0xff, 0xff][..]).await,
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            Frame::read(&mut &[0x80u8, 3, 0, 1, 0, 0, 0, 2, 0, 0][..]).await,
            Err(FrameError::Short { .. })
        ));
        assert!(matches!(
            Frame::read(&mut &[0x80u8, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]).await,
            Err(FrameError::Version(2))
        ));
        assert!(Frame::read(&mut &[][..]).await.unwrap().is_none());
    }
}
