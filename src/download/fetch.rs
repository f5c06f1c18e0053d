//! One HTTP GET with a timeout, a size limit and the answer classified: the body is an image, or a
//! [`FetchError`] that says whether trying again can help.

use std::time::Duration;

use crate::stages::decode::{SourceFormat, sniff};

/// Why a URL gave no image. The message becomes the manifest's reject reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a non-2xx status.
    #[error("HTTP {0}")]
    Status(u16),
    /// No complete answer within the time limit.
    #[error("timed out after {0:.1} s")]
    Timeout(f64),
    /// DNS, connect, TLS or a connection closed mid-answer.
    #[error("connection failed: {0}")]
    Connection(String),
    /// A 2xx answer whose body is not an image we decode.
    #[error("not an image (content-type {content_type}, {bytes} bytes)")]
    NotAnImage {
        /// The Content-Type header, or `none`.
        content_type: String,
        /// Body size.
        bytes: usize,
    },
    /// The body exceeds the size limit.
    #[error("answer larger than the {0}-byte limit")]
    TooLarge(u64),
    /// Too many redirects or a malformed URL.
    #[error("bad URL or redirect: {0}")]
    BadUrl(String),
}

impl FetchError {
    /// Whether a later attempt may succeed (timeouts, dropped connections, 5xx, 408, 429).
    pub fn retryable(&self) -> bool {
        match self {
            FetchError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            FetchError::Timeout(_) | FetchError::Connection(_) => true,
            FetchError::NotAnImage { .. } | FetchError::TooLarge(_) | FetchError::BadUrl(_) => {
                false
            }
        }
    }

    /// The HTTP status, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            FetchError::Status(s) => Some(*s),
            _ => None,
        }
    }
}

/// A fetched image: its bytes and the file extension its magic bytes call for.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body.
    pub bytes: Vec<u8>,
    /// `jpg`, `png`, `webp`, `gif` or `bmp`.
    pub extension: &'static str,
}

/// A reusable HTTP client (connection pool shared by the worker threads).
#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    timeout: Duration,
    max_bytes: u64,
}

impl Fetcher {
    /// A client with a whole-request time limit, a body-size limit and up to 5 redirects.
    pub fn new(timeout: Duration, max_bytes: u64, user_agent: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(5)
            .http_status_as_error(false)
            .user_agent(user_agent)
            .build();
        Fetcher {
            agent: config.into(),
            timeout,
            max_bytes,
        }
    }

    /// GETs `url` and checks that the answer is an image.
    pub fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut resp = self.agent.get(url).call().map_err(|e| self.classify(e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(FetchError::Status(status));
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(self.max_bytes)
            .read_to_vec()
            .map_err(|e| self.classify(e))?;
        let extension = match sniff(&bytes) {
            Some(SourceFormat::Jpeg) => "jpg",
            Some(SourceFormat::Other(format)) => format.extensions_str().first().unwrap_or(&"img"),
            None => {
                return Err(FetchError::NotAnImage {
                    content_type,
                    bytes: bytes.len(),
                });
            }
        };
        Ok(Fetched { bytes, extension })
    }

    fn classify(&self, e: ureq::Error) -> FetchError {
        match e {
            ureq::Error::StatusCode(s) => FetchError::Status(s),
            ureq::Error::Timeout(_) => FetchError::Timeout(self.timeout.as_secs_f64()),
            ureq::Error::BodyExceedsLimit(n) => FetchError::TooLarge(n),
            ureq::Error::TooManyRedirects
            | ureq::Error::RedirectFailed
            | ureq::Error::BadUri(_)
            | ureq::Error::Http(_) => FetchError::BadUrl(e.to_string()),
            other => FetchError::Connection(other.to_string()),
        }
    }
}

/// `host[:port]` of a URL (lower-cased), the key of the per-host rate limit.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_retry_classes() {
        assert_eq!(
            host_of("http://Static.Flickr.com/2723/a.jpg"),
            "static.flickr.com"
        );
        assert_eq!(host_of("https://u:p@127.0.0.1:8080/x?y"), "127.0.0.1:8080");
        assert_eq!(host_of("https://a.b"), "a.b");
        assert!(FetchError::Status(503).retryable());
        assert!(FetchError::Status(429).retryable());
        assert!(!FetchError::Status(404).retryable());
        assert!(FetchError::Timeout(1.0).retryable());
        assert!(!FetchError::TooLarge(5).retryable());
    }
}
