//! SPDY/3 name/value header blocks and their compression.
//!
//! A block is `count (u32)` then `count` pairs of `len (u32) name`, `len (u32) value`
//! (several values of one name joined by NUL). Each direction of a connection is one zlib
//! stream, primed with the SPDY/3 dictionary (spec section 2.6.10.1) and flushed with a
//! sync flush after every block, so a block decompresses as soon as its frame arrives.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The dictionary's header-name words; each is written as a 4-byte big-endian length and
/// the word.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail, appended as is after the words.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 zlib dictionary.
pub fn dictionary() -> Vec<u8> {
    let mut d = Vec::with_capacity(1424);
    for w in DICTIONARY_WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    d
}

/// Header names are lowercase; a name may carry several values.
pub type Headers = Vec<(String, String)>;

/// The largest decompressed header block accepted (a zlib bomb stops here).
const MAX_BLOCK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("header block: zlib: {0}")]
    Zlib(String),
    #[error("header block is over {MAX_BLOCK} bytes")]
    TooLarge,
    #[error("header block is malformed")]
    Malformed,
}

/// Encodes outgoing blocks: one zlib stream for everything this side sends.
pub struct Encoder {
    z: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(&dictionary())
            .expect("a fresh deflate stream takes a dictionary");
        Encoder { z }
    }

    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            raw.extend_from_slice(&(name.len() as u32).to_be_bytes());
            raw.extend_from_slice(name.to_ascii_lowercase().as_bytes());
            raw.extend_from_slice(&(value.len() as u32).to_be_bytes());
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let start = self.z.total_in();
        loop {
            let done = (self.z.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            self.z
                .compress_vec(&raw[done..], &mut out, FlushCompress::Sync)
                .expect("deflate of an in-memory buffer");
            // The sync flush is complete once all input is taken and the output stopped
            // short of the room it had.
            if (self.z.total_in() - start) as usize == raw.len() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }
}

/// Decodes incoming blocks: the peer's zlib stream.
pub struct Decoder {
    z: Decompress,
    dictionary_set: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            z: Decompress::new(true),
            dictionary_set: false,
        }
    }

    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, HeaderError> {
        let raw = self.inflate(block)?;
        parse_block(&raw)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, HeaderError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 64);
        let start = self.z.total_in();
        loop {
            let done = (self.z.total_in() - start) as usize;
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(256));
            }
            let before = out.len();
            match self
                .z
                .decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() && !self.dictionary_set => {
                    self.z
                        .set_dictionary(&dictionary())
                        .map_err(|e| HeaderError::Zlib(e.to_string()))?;
                    self.dictionary_set = true;
                    continue;
                }
                Err(e) => return Err(HeaderError::Zlib(e.to_string())),
            }
            if out.len() > MAX_BLOCK {
                return Err(HeaderError::TooLarge);
            }
            let consumed_all = (self.z.total_in() - start) as usize == input.len();
            if consumed_all && out.len() < out.capacity() {
                break;
            }
            if !consumed_all && out.len() == before && (self.z.total_in() - start) as usize == done
            {
                return Err(HeaderError::Zlib("no progress".into()));
            }
        }
        Ok(out)
    }
}

fn parse_block(raw: &[u8]) -> Result<Headers, HeaderError> {
    let mut at = 0usize;
    let take_u32 = |at: &mut usize| -> Result<usize, HeaderError> {
        let b = raw.get(*at..*at + 4).ok_or(HeaderError::Malformed)?;
        *at += 4;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = take_u32(&mut at)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let n = take_u32(&mut at)?;
        let name = raw.get(at..at + n).ok_or(HeaderError::Malformed)?;
        at += n;
        let n = take_u32(&mut at)?;
        let value = raw.get(at..at + n).ok_or(HeaderError::Malformed)?;
        at += n;
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        for v in value.split(|b| *b == 0) {
            headers.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(headers)
}

/// The first value of `name` (lowercase) in `headers`.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_has_the_spec_length() {
        assert_eq!(dictionary().len(), 1423);
        assert!(dictionary().starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
    }

    #[test]
    fn blocks_round_trip_over_one_stream_each_way() {
        let (mut enc, mut dec) = (Encoder::new(), Decoder::new());
        for i in 0..5 {
            let port = i.to_string();
            let block = enc.encode(&[("streamType", "data"), ("port", &port)]);
            let headers = dec.decode(&block).unwrap();
            assert_eq!(header(&headers, "streamtype"), Some("data"));
            assert_eq!(header(&headers, "port"), Some(port.as_str()));
        }
    }

    #[test]
    fn garbage_block_is_an_error() {
        assert!(Decoder::new().decode(b"\x78\xbb garbage").is_err());
    }
}
