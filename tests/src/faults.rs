//! A fault-injecting HTTP proxy for the tests: it sits between zstream-ship and the server and, on a fixed
//! schedule, answers some requests 500 or 503 itself (the request never reaches the server, as when a front end
//! sheds load) and drops the connection halfway through some large request or response bodies. A tool that
//! retries and resumes correctly still moves the exact bytes; the counters show the faults really happened.
//! It can also flip one byte in every large response body, to show that a reader checks what it gets.
//!
//! HTTP/1.1 with Content-Length bodies only (what the AWS SDK sends and moto answers); anything else fails the
//! test loudly rather than being passed through wrongly.

use crate::http::Head;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

/// Which requests get which fault. Request numbers count from 1 across all connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct Schedule {
    /// Every Nth request is answered 503 SlowDown (and the next one after it 500 InternalError), 0 for never.
    pub error_every: u64,
    /// Every Nth request with a body of at least `BIG` bytes, either way, is cut halfway, 0 for never.
    pub cut_every: u64,
    /// Flip a byte in the middle of every response body of at least `BIG` bytes.
    pub corrupt: bool,
    /// Refuse for good (403 AccessDenied) every request whose request line contains this, e.g. "partNumber=2".
    pub refuse: Option<&'static str>,
    /// Rewrite moto's one date for every unfinished upload (2010-11-10T20:48:33, in ListMultipartUploads) to the
    /// present, so that an age filter has real ages to work on (same length: Content-Length still holds).
    pub redate: bool,
    /// The first request whose request line contains this reaches the server, which acts on it, but its answer is
    /// lost (the connection closes): the client retries a request that has already taken effect.
    pub lose_answer: Option<&'static str>,
    /// Requests whose body contains the text (an EC2 `Action=ModifyVolume`), past the first N of them, are held:
    /// never forwarded nor answered, until the client goes away. A test kills the client midway through a
    /// sequence of calls this way, at a known point.
    pub hold_after: Option<(&'static str, u64)>,
}

/// The date moto gives every unfinished upload.
pub const MOTO_UPLOAD_DATE: &[u8] = b"2010-11-10T20:48:33";

/// Bodies this large are worth cutting or corrupting.
pub const BIG: u64 = 64 << 10;

#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub cuts: AtomicU64,
    pub corrupted: AtomicU64,
    pub lost: AtomicU64,
    pub held: AtomicU64,
    big: AtomicU64,
    matched: AtomicU64,
}

pub struct Proxy {
    pub port: u16,
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy on a free loopback port in front of `upstream` (host:port).
    pub fn start(upstream: u16, schedule: Schedule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st) = (counts.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let c = c.clone();
                std::thread::spawn(move || serve(conn, upstream, schedule, &c));
            }
        });
        Proxy { port, counts, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn count(&self, which: fn(&Counts) -> &AtomicU64) -> u64 {
        which(&self.counts).load(SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(client: TcpStream, upstream: u16, sched: Schedule, counts: &Counts) {
    let mut from_client = BufReader::new(client.try_clone().expect("dup"));
    let mut to_client = client;
    while let Some(mut req) = Head::read(&mut from_client) {
        let n = counts.requests.fetch_add(1, SeqCst) + 1;
        let method = req.first.split(' ').next().unwrap_or_default().to_string();
        let req_len = req.length().unwrap_or(0);
        if req.get("expect").is_some() {
            // Answer "go ahead" here so that a fault can be injected after the body has started.
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("expect"));
            if to_client
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
        let refused = sched.refuse.is_some_and(|r| req.first.contains(r));
        if refused
            || sched.error_every > 0
                && (n % sched.error_every == 0 || n % sched.error_every == 1 && n > 1)
        {
            // Read the body so the client sees the answer rather than a reset, then refuse.
            if std::io::copy(&mut (&mut from_client).take(req_len), &mut std::io::sink()).is_err() {
                return;
            }
            counts.errors.fetch_add(1, SeqCst);
            let (status, code) = if refused {
                ("403 Forbidden", "AccessDenied")
            } else if n % sched.error_every == 0 {
                ("503 Slow Down", "SlowDown")
            } else {
                ("500 Internal Server Error", "InternalError")
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the \
                 test proxy</Message><RequestId>0</RequestId></Error>"
            );
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if to_client.write_all(resp.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        // A body read here to be matched is forwarded from memory.
        let mut body_read = None;
        if let Some((needle, after)) = sched.hold_after {
            let mut body = Vec::new();
            if (&mut from_client)
                .take(req_len)
                .read_to_end(&mut body)
                .is_err()
            {
                return;
            }
            let matches = body.windows(needle.len()).any(|w| w == needle.as_bytes());
            if matches && counts.matched.fetch_add(1, SeqCst) + 1 > after {
                counts.held.fetch_add(1, SeqCst);
                // Until the client closes the connection (it is killed).
                let _ = std::io::copy(&mut from_client, &mut std::io::sink());
                return;
            }
            body_read = Some(body);
        }
        let cut_this = |len: u64| {
            len >= BIG
                && sched.cut_every > 0
                && (counts.big.fetch_add(1, SeqCst) + 1) % sched.cut_every == 0
        };
        let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        if up.write_all(&req.bytes()).is_err() {
            return;
        }
        if let Some(body) = body_read {
            if up.write_all(&body).is_err() {
                return;
            }
        } else if cut_this(req_len) {
            // Half the body, then both connections go away mid-transfer.
            let _ = std::io::copy(&mut (&mut from_client).take(req_len / 2), &mut up);
            counts.cuts.fetch_add(1, SeqCst);
            let _ = up.shutdown(Shutdown::Both);
            let _ = to_client.shutdown(Shutdown::Both);
            return;
        } else if std::io::copy(&mut (&mut from_client).take(req_len), &mut up).is_err() {
            return;
        }
        let mut from_up = BufReader::new(up);
        let Some(resp) = Head::read(&mut from_up) else {
            return;
        };
        let status: u16 = resp
            .first
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let resp_len = if method == "HEAD" || status == 204 || status == 304 {
            0
        } else {
            resp.length()
                .expect("fault proxy: a response body without Content-Length")
        };
        let lose = sched.lose_answer.is_some_and(|l| req.first.contains(l));
        if lose && counts.lost.compare_exchange(0, 1, SeqCst, SeqCst).is_ok() {
            let _ = std::io::copy(&mut (&mut from_up).take(resp_len), &mut std::io::sink());
            let _ = to_client.shutdown(Shutdown::Both);
            return;
        }
        if to_client.write_all(&resp.bytes()).is_err() {
            return;
        }
        if cut_this(resp_len) {
            let _ = std::io::copy(&mut (&mut from_up).take(resp_len / 2), &mut to_client);
            counts.cuts.fetch_add(1, SeqCst);
            let _ = to_client.shutdown(Shutdown::Both);
            return;
        }
        let mut body = Vec::with_capacity(resp_len as usize);
        if (&mut from_up)
            .take(resp_len)
            .read_to_end(&mut body)
            .is_err()
        {
            return;
        }
        if sched.redate {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formatting the time");
            let now = &now[..MOTO_UPLOAD_DATE.len()];
            let n = MOTO_UPLOAD_DATE.len();
            let mut i = 0;
            while let Some(k) = body[i..].windows(n).position(|w| w == MOTO_UPLOAD_DATE) {
                body[i + k..i + k + n].copy_from_slice(now.as_bytes());
                i += k + n;
            }
        }
        if sched.corrupt && resp_len >= BIG && (200..300).contains(&status) {
            body[resp_len as usize / 2] ^= 0x20;
            counts.corrupted.fetch_add(1, SeqCst);
        }
        if to_client.write_all(&body).is_err() {
            return;
        }
    }
}
