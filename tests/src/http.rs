//! The little HTTP/1.1 the tests speak, written once: heads read off a connection (the fault proxy, the vault
//! endpoint) and one-shot requests (moto's control API, the odd unsigned call). Content-Length bodies only, which
//! is what the AWS SDK sends and moto answers.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A request or response head: the first line, the header lines, and what they say about the body.
pub struct Head {
    /// The request or status line.
    pub first: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The next head on the connection; None at its end (or on a malformed head).
    pub fn read(r: &mut impl BufRead) -> Option<Head> {
        let mut first = String::new();
        if r.read_line(&mut first).ok()? == 0 {
            return None;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        Some(Head {
            first: first.trim_end().to_string(),
            headers,
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's length. Chunked bodies are not spoken here: a test that meets one fails loudly.
    pub fn length(&self) -> Option<u64> {
        assert!(
            self.get("transfer-encoding").is_none(),
            "test HTTP: chunked bodies are not handled ({})",
            self.first
        );
        self.get("content-length")
            .map(|v| v.parse().expect("a numeric Content-Length"))
    }

    /// The head as it goes on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        let mut s = format!("{}\r\n", self.first);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

/// One request on a new connection to 127.0.0.1:`port`, closed after the answer: its status and body text, or
/// None when the server does not answer.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = Head {
        first: format!("{method} {path} HTTP/1.1"),
        headers: vec![
            ("Host".into(), format!("127.0.0.1:{port}")),
            ("Content-Length".into(), body.len().to_string()),
            ("Connection".into(), "close".into()),
        ],
    };
    head.headers
        .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    s.write_all(&head.bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        code,
        resp.split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string()),
    ))
}
