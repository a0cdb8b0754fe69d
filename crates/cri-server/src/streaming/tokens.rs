//! Single-use tokens naming one streaming request.
//!
//! Exec, Attach and PortForward store what was asked under a random token and answer
//! with a URL carrying it; the streaming server takes the token out when a client
//! connects. A token is good once, for [`TOKEN_TTL`]; there are at most [`MAX_TOKENS`]
//! outstanding (expired ones are swept on every insert).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);

/// Outstanding tokens at most: a caller looping on Exec cannot grow the map without bound.
pub const MAX_TOKENS: usize = 4096;

/// What a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Exec {
        container_id: String,
        cmd: Vec<String>,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Attach {
        container_id: String,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    PortForward {
        pod_id: String,
        /// Ports named in the request; empty: any port the client asks for.
        ports: Vec<u16>,
    },
}

impl Target {
    /// The URL path segment that serves this kind of request.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Exec { .. } => "exec",
            Target::Attach { .. } => "attach",
            Target::PortForward { .. } => "portforward",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("too many outstanding streaming requests ({MAX_TOKENS})")]
    Full,
    #[error("getrandom: {0}")]
    Random(String),
}

#[derive(Default)]
pub struct Tokens {
    map: Mutex<HashMap<String, (Instant, Target)>>,
}

impl Tokens {
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Stores `target` under a new token and returns the token.
    pub fn insert(&self, target: Target) -> Result<String, TokenError> {
        let token = random_token()?;
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (expires, _)| *expires > now);
        if map.len() >= MAX_TOKENS {
            return Err(TokenError::Full);
        }
        map.insert(token.clone(), (now + TOKEN_TTL, target));
        Ok(token)
    }

    /// Takes the token's target out: a second take of the same token finds nothing.
    pub fn take(&self, token: &str) -> Option<Target> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let (expires, target) = map.remove(token)?;
        (expires > Instant::now()).then_some(target)
    }

    #[cfg(test)]
    fn expire_all(&self) {
        let mut map = self.map.lock().unwrap();
        for (expires, _) in map.values_mut() {
            *expires = Instant::now() - Duration::from_secs(1);
        }
    }
}

/// 32 random bytes, URL-safe base64 without padding (43 characters).
fn random_token() -> Result<String, TokenError> {
    use base64::Engine;
    let mut b = [0u8; 32];
    let mut filled = 0;
    while filled < b.len() {
        filled += rustix::rand::getrandom(&mut b[filled..], rustix::rand::GetRandomFlags::empty())
            .map_err(|e| TokenError::Random(e.to_string()))?;
    }
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::PortForward {
            pod_id: "p".into(),
            ports: vec![80],
        }
    }

    #[test]
    fn a_token_is_good_once() {
        let tokens = Tokens::new();
        let t = tokens.insert(target()).unwrap();
        assert_eq!(t.len(), 43);
        assert_eq!(tokens.take(&t), Some(target()));
        assert_eq!(tokens.take(&t), None);
        assert_eq!(tokens.take("unknown"), None);
    }

    #[test]
    fn expired_tokens_are_refused_and_swept() {
        let tokens = Tokens::new();
        let t = tokens.insert(target()).unwrap();
        tokens.expire_all();
        assert_eq!(tokens.take(&t), None);
        let _ = tokens.insert(target()).unwrap();
        tokens.expire_all();
        let _ = tokens.insert(target()).unwrap();
        assert_eq!(tokens.map.lock().unwrap().len(), 1);
    }

    #[test]
    fn tokens_are_distinct_and_bounded() {
        let tokens = Tokens::new();
        let a = tokens.insert(target()).unwrap();
        let b = tokens.insert(target()).unwrap();
        assert_ne!(a, b);
        for _ in 2..MAX_TOKENS {
            tokens.insert(target()).unwrap();
        }
        assert_eq!(tokens.insert(target()), Err(TokenError::Full));
    }
}
