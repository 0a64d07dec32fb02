//! `edgewasm serve` in a child process, and a minimal HTTP/1.1 client for
//! talking to it (whole responses, chunked or not, and a streamed body read
//! as it arrives).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bins::edgewasm_command;

/// A running `edgewasm serve ... --addr 127.0.0.1:0`; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `edgewasm serve ARGS --addr 127.0.0.1:0` and waits until it
    /// listens (at most 120 s: a first start compiles the component).
    pub fn start(args: &[&str]) -> Server {
        let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = edgewasm_command(&all).stdin(Stdio::null()).spawn().expect("spawn edgewasm serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        // Drain stdout so a chatty guest never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut BufReader::new(stdout), &mut std::io::sink()));
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a.parse().expect("the printed address"),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("edgewasm serve did not start ({status:?}):\n{}", log.lock().unwrap());
            }
        };
        Server { child: Some(child), addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the server printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) and waits for the exit (at
    /// most `wait`); the exit status and the server's stderr.
    pub fn stop(mut self, signal: i32, wait: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for edgewasm serve") {
                break s;
            }
            if t0.elapsed() > wait {
                let _ = child.kill();
                panic!("edgewasm serve did not exit within {wait:?} of signal {signal}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Let the stderr thread read the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.log())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A whole HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut r = open(addr, method, path, headers, body);
    let mut body = Vec::new();
    r.read_to_end(&mut body).expect("read the response body");
    Response { status: r.status, headers: r.headers.clone(), body }
}

/// `POST path` with a JSON body.
pub fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Response {
    request(addr, "POST", path, &[("content-type", "application/json")], body.to_string().as_bytes())
}

/// A response whose body is read as it arrives.
#[derive(Debug)]
pub struct Streaming {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes left in the current chunk (chunked) or the body (length).
    left: Option<usize>,
    done: bool,
}

/// Sends a request and reads the head; the body is read from the result.
pub fn open(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Streaming {
    let mut s = TcpStream::connect(addr).expect("connect to edgewasm serve");
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read the status line");
    let status: u16 =
        line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let left = if chunked { Some(0) } else { get("content-length").and_then(|v| v.parse().ok()) };
    Streaming { status, headers, reader, chunked, left, done: false }
}

impl Read for Streaming {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.chunked {
            if self.left == Some(0) {
                let mut line = String::new();
                self.reader.read_line(&mut line)?;
                if line.trim().is_empty() {
                    // The CRLF after the previous chunk.
                    line.clear();
                    self.reader.read_line(&mut line)?;
                }
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|e| std::io::Error::other(format!("chunk size {line:?}: {e}")))?;
                if size == 0 {
                    self.done = true;
                    return Ok(0);
                }
                self.left = Some(size);
            }
            let n = buf.len().min(self.left.unwrap());
            let got = self.reader.read(&mut buf[..n])?;
            if got == 0 {
                return Err(std::io::Error::other("the connection closed inside a chunk"));
            }
            self.left = Some(self.left.unwrap() - got);
            return Ok(got);
        }
        match self.left {
            Some(0) => {
                self.done = true;
                Ok(0)
            }
            Some(left) => {
                let n = buf.len().min(left);
                let got = self.reader.read(&mut buf[..n])?;
                self.left = Some(left - got);
                if got == 0 {
                    self.done = true;
                }
                Ok(got)
            }
            None => self.reader.read(buf),
        }
    }
}

impl Streaming {
    /// The next server-sent event's data (`None` at the end of the body).
    pub fn next_event(&mut self) -> Option<String> {
        let mut pending = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.read(&mut byte) {
                Ok(0) => return None,
                Ok(_) => pending.push(byte[0]),
                Err(e) => panic!("reading the event stream: {e}"),
            }
            if pending.ends_with(b"\n\n") {
                let text = String::from_utf8(pending).expect("UTF-8 event");
                let data =
                    text.trim_end().strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {text:?}"));
                return Some(data.to_string());
            }
        }
    }
}
