//! A small read-only HTTP/1.1 server for the status page and `/metrics`: GET and HEAD only,
//! one request per connection (`Connection: close`), a request head bounded to
//! [`MAX_REQUEST_HEAD`] bytes, read and write timeouts, and a cap on connections served at
//! once. It never reads a request body and never touches the batch: it renders a snapshot of
//! the [`StatusBoard`].

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::StatusBoard;

/// Request line and headers; a browser's are well under 2 KiB.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// A client that sends its request more slowly than this, or does not take the answer, is cut.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more get `503` at once.
pub const MAX_CONNECTIONS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum StatusServerError {
    #[error("--status-listen {addr}: not an address to listen on ({detail}); e.g. 0.0.0.0:9100 or 127.0.0.1:9100")]
    Address { addr: String, detail: String },
    #[error("--status-listen {addr}: cannot listen: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

pub struct StatusServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl StatusServer {
    pub fn bind(addr: &str, board: Arc<StatusBoard>) -> Result<Self, StatusServerError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| StatusServerError::Address {
                addr: addr.to_owned(),
                detail: e.to_string(),
            })?
            .collect();
        let listener =
            TcpListener::bind(addrs.as_slice()).map_err(|source| StatusServerError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let bind_error = |source| StatusServerError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let local = listener.local_addr().map_err(bind_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("status-http".into())
                .spawn(move || accept_loop(listener, board, stop))
                .map_err(bind_error)?
        };
        Ok(Self {
            addr: local,
            stop,
            accept: Some(accept),
        })
    }

    /// The address actually bound (the port the system chose for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; an unspecified address is reached on loopback.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: TcpListener, board: Arc<StatusBoard>, stop: Arc<AtomicBool>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = respond(
                &mut stream,
                &Response::text(503, "busy: try again\n"),
                false,
            );
            continue;
        }
        let board = board.clone();
        let done = busy.clone();
        let spawned = std::thread::Builder::new()
            .name("status-conn".into())
            .spawn(move || {
                serve(stream, &board);
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve(mut stream: TcpStream, board: &StatusBoard) {
    let (response, head_only) = match read_head(&mut stream) {
        Ok(head) => match parse_request(&head) {
            Ok(request) => (route(&request, board), request.method == "HEAD"),
            Err(response) => (response, false),
        },
        Err(Some(response)) => (response, false),
        Err(None) => return, // timed out or closed before a request: nothing to answer
    };
    let _ = respond(&mut stream, &response, head_only);
    let _ = stream.shutdown(Shutdown::Write);
}

/// The request head up to its blank line; `Err(None)` when the client went away or stalled.
fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, Option<Response>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = find_head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() >= MAX_REQUEST_HEAD {
            return Err(Some(Response::text(431, "request head too large\n")));
        }
        let want = buf.len().min(MAX_REQUEST_HEAD + 4 - head.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) => return Err(None),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(_) => return Err(None),
        }
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
}

fn parse_request(head: &[u8]) -> Result<Request, Response> {
    let bad = || Response::text(400, "bad request\n");
    let head = std::str::from_utf8(head).map_err(|_| bad())?;
    let line = head.lines().next().ok_or_else(bad)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(Response::text(505, "HTTP/1.0 and HTTP/1.1 only\n"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    if !matches!(method, "GET" | "HEAD") {
        let mut response = Response::text(405, "read-only: GET and HEAD only\n");
        response.allow = true;
        return Err(response);
    }
    // Origin form only (`/metrics?x`); the query is ignored.
    if !target.starts_with('/') {
        return Err(bad());
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
    Ok(Request {
        method: method.to_owned(),
        path,
    })
}

fn route(request: &Request, board: &StatusBoard) -> Response {
    match request.path.as_str() {
        "/" | "/index.html" => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: board.snapshot().page().into_bytes(),
            allow: false,
        },
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: board.snapshot().metrics().into_bytes(),
            allow: false,
        },
        _ => Response::text(404, "not found: / (the slots) and /metrics only\n"),
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// Send `Allow: GET, HEAD` (with 405).
    allow: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            allow: false,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// `Date` in the IMF-fixdate form HTTP requires.
fn http_date() -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

fn respond(stream: &mut TcpStream, response: &Response, head_only: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        http_date(),
        response.content_type,
        response.body.len()
    );
    if response.allow {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&response.body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a").unwrap(),
            Request {
                method: "GET".into(),
                path: "/metrics".into()
            }
        );
        assert_eq!(parse_request(b"HEAD / HTTP/1.0").unwrap().method, "HEAD");
        let status = |head: &[u8]| parse_request(head).unwrap_err().status;
        assert_eq!(status(b"POST / HTTP/1.1"), 405);
        assert!(parse_request(b"DELETE / HTTP/1.1").unwrap_err().allow);
        assert_eq!(status(b"GET / HTTP/2.0"), 505);
        assert_eq!(status(b"GET /  HTTP/1.1"), 400);
        assert_eq!(status(b"GET http://x/ HTTP/1.1"), 400);
        assert_eq!(status(b"get / HTTP/1.1"), 400);
        assert_eq!(status(b"GET /\xff HTTP/1.1"), 400);
        assert_eq!(status(b""), 400);
    }

    #[test]
    fn head_ends_at_the_blank_line() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"),
            Some(20)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\n"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(http_date().len(), 29, "{}", http_date());
    }
}
