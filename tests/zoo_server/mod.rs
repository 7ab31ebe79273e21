//! A small HTTP/1.1 file server on 127.0.0.1 for the zoo tests: honours or ignores Range, and can cut
//! the connection mid-file, stall, redirect (`/redirect/<path>` → `/<path>`), serve wrong bytes,
//! throttle, and count connections and body bytes per request.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to the next file request (one fault per request, in order).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Send this many body bytes, then close the connection.
    Cut(u64),
    /// Send this many body bytes, then hold the connection silent for 20 s.
    Stall(u64),
    /// Send the file with every byte inverted.
    Wrong,
    /// Answer with this HTTP status (a 5xx: the server is failing) and no body.
    Status(u16),
}

/// One answered file request.
#[derive(Debug, Clone)]
pub struct Served {
    pub path: String,
    pub range: Option<String>,
    pub status: u16,
    pub body_bytes: u64,
}

#[derive(Default)]
pub struct State {
    pub files: Mutex<HashMap<String, Vec<u8>>>,
    pub faults: Mutex<VecDeque<Fault>>,
    pub ignore_range: AtomicBool,
    /// (chunk size, pause after each chunk)
    pub throttle: Mutex<Option<(usize, Duration)>>,
    pub served: Mutex<Vec<Served>>,
    pub connections: AtomicUsize,
    /// While set, file bodies stop after their first chunk until it is cleared.
    pub paused: AtomicBool,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// The first file body that sends the byte at this file offset sends it inverted.
    pub flip_byte: Mutex<Option<usize>>,
}

pub struct Server {
    pub base: String,
    pub state: Arc<State>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = shared.clone();
                std::thread::spawn(move || {
                    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
                    let flight = InFlight { state: &state, done: std::cell::Cell::new(false) };
                    let _ = handle(stream, &state, &flight);
                    flight.release();
                });
            }
        });
        Server { base, state }
    }

    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state.files.lock().unwrap().insert(path.to_string(), bytes);
    }

    pub fn fault(&self, fault: Fault) {
        self.state.faults.lock().unwrap().push_back(fault);
    }

    pub fn throttle(&self, chunk: usize, pause: Duration) {
        *self.state.throttle.lock().unwrap() = Some((chunk, pause));
    }

    pub fn served(&self) -> Vec<Served> {
        self.state.served.lock().unwrap().clone()
    }

    pub fn body_bytes(&self) -> u64 {
        self.served().iter().map(|s| s.body_bytes).sum()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// One connection's share of `State::in_flight`, given back once: before the last body chunk is written (the
/// client may have the whole body, and start its next download, before this thread runs again), or at the end.
struct InFlight<'a> {
    state: &'a State,
    done: std::cell::Cell<bool>,
}

impl InFlight<'_> {
    fn release(&self) {
        if !self.done.replace(true) {
            self.state.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn handle(stream: TcpStream, state: &State, flight: &InFlight) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut out = stream;
    if let Some(rest) = path.strip_prefix("/redirect") {
        let head = format!("HTTP/1.1 302 Found\r\nLocation: {rest}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return out.write_all(head.as_bytes());
    }
    let Some(file) = state.files.lock().unwrap().get(&path).cloned() else {
        state.served.lock().unwrap().push(Served { path, range, status: 404, body_bytes: 0 });
        return out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    let fault = state.faults.lock().unwrap().pop_front();
    if let Some(Fault::Status(code)) = fault {
        state.served.lock().unwrap().push(Served { path, range, status: code, body_bytes: 0 });
        let head = format!("HTTP/1.1 {code} Failing\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return out.write_all(head.as_bytes());
    }
    let start = range
        .as_deref()
        .filter(|_| !state.ignore_range.load(Ordering::SeqCst))
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse::<usize>().ok());
    let len = file.len();
    let (status, head) = match start {
        Some(s) if s >= len => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            state.served.lock().unwrap().push(Served { path, range, status: 416, body_bytes: 0 });
            return out.write_all(head.as_bytes());
        }
        Some(s) => (
            206,
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                len - 1,
                len - s
            ),
        ),
        None => (
            200,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            ),
        ),
    };
    let mut body = file[start.unwrap_or(0)..].to_vec();
    if matches!(fault, Some(Fault::Wrong)) {
        body.iter_mut().for_each(|b| *b = !*b);
    }
    let limit = match fault {
        Some(Fault::Cut(n)) | Some(Fault::Stall(n)) => (n as usize).min(body.len()),
        _ => body.len(),
    };
    let mut flip = state.flip_byte.lock().unwrap();
    if let Some(i) = flip.and_then(|at| at.checked_sub(start.unwrap_or(0))).filter(|i| *i < limit) {
        body[i] = !body[i];
        *flip = None;
    }
    drop(flip);
    let throttle = *state.throttle.lock().unwrap();
    let chunk = throttle.map(|t| t.0).unwrap_or(256 * 1024);
    let index = {
        let mut served = state.served.lock().unwrap();
        served.push(Served { path, range, status, body_bytes: 0 });
        served.len() - 1
    };
    out.write_all(head.as_bytes())?;
    let mut sent = 0;
    while sent < limit {
        let end = (sent + chunk).min(limit);
        if end == body.len() {
            flight.release();
        }
        out.write_all(&body[sent..end])?;
        state.served.lock().unwrap()[index].body_bytes += (end - sent) as u64;
        sent = end;
        if let Some((_, pause)) = throttle {
            std::thread::sleep(pause);
        }
        while state.paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    out.flush()?;
    if matches!(fault, Some(Fault::Stall(_))) {
        std::thread::sleep(Duration::from_secs(20));
    }
    Ok(())
}
