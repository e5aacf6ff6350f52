//! A small Glacier vault endpoint for the tests, because moto has no Glacier multipart upload (it answers 404)
//! and checks no tree hashes. It speaks the parts of the Glacier REST API that zstream-ship uses: multipart
//! uploads (initiate, upload part, complete, abort, list), single uploads, deletes, and archive and inventory
//! retrieval jobs with ranged output. Unlike moto it checks what AWS checks: every part is aligned and of the
//! declared power-of-two size, and every part's and archive's SHA-256 tree hash is right. Retrieval jobs finish
//! `job_secs` after they start. Requests are not authenticated.

mod routes;

use crate::http::Head;
pub use routes::tree_hash;
use routes::{handle, State};
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Vault {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) path: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub(crate) fn resp(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> Resp {
    Resp {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        body,
    }
}

pub(crate) fn error(status: u16, code: &str, message: &str) -> Resp {
    let body = serde_json::json!({"code": code, "message": message, "type": "Client"});
    resp(
        status,
        &[("x-amzn-ErrorType", code.to_string())],
        body.to_string().into_bytes(),
    )
}

impl Vault {
    /// Serves on a free loopback port, with the given vaults, until dropped with the test.
    pub fn start(vaults: &[&str], job_secs: f64) -> Vault {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the vault endpoint");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State::new(vaults)));
        let st = state.clone();
        let job = Duration::from_secs_f64(job_secs);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st, job));
            }
        });
        Vault { port, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Unfinished uploads the endpoint holds.
    pub fn uploads(&self) -> usize {
        self.state.lock().unwrap().uploads()
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, job: Duration) {
    let mut r = BufReader::new(conn.try_clone().expect("dup"));
    let mut w = conn;
    while let Some(head) = Head::read(&mut r) {
        let mut parts = head.first.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default();
        let mut req = Req {
            method,
            path: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            body: Vec::new(),
            headers: head.headers.clone(),
        };
        if head.get("expect").is_some() && w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
        if (&mut r)
            .take(head.length().unwrap_or(0))
            .read_to_end(&mut req.body)
            .is_err()
        {
            return;
        }
        let out = handle(&req, &mut state.lock().unwrap(), job);
        let mut answer = Head {
            first: format!("HTTP/1.1 {} X", out.status),
            headers: vec![
                ("Content-Length".into(), out.body.len().to_string()),
                ("Content-Type".into(), "application/json".into()),
            ],
        };
        answer.headers.extend(out.headers);
        if w.write_all(&answer.bytes()).is_err() || w.write_all(&out.body).is_err() {
            return;
        }
    }
}
