//! A real SMTP capture server for integration tests.
//!
//! [`TestSmtp`] listens on `127.0.0.1`, speaks SMTP through the `mailin` protocol crate and records every message
//! it accepts, so tests can point the application's SMTP transport at it and then inspect what was sent.
//! Replies to `RCPT TO` can be scripted (temporary or permanent failures for one address, or for every address),
//! and the server can be stopped and started again on the same port to simulate an outage.
//!
//! mailin-embedded's `Server::serve()` runs forever and keeps the listening socket open, so it cannot simulate a
//! server going away. This module therefore owns the accept loop and drives `mailin::Session` directly, one std
//! thread per connection. Stopping (or dropping) a [`TestSmtp`] closes the listening socket, so new connections
//! are refused, and shuts down every open session.
//!
//! Everything here is blocking std code on background threads; the public methods only take short locks, so they
//! are safe to call from async tests. [`TestSmtp::wait_for`] is the only async method.

// Shared by several test binaries; not every binary uses every helper.
#![allow(dead_code)]

use mailin::{Action, Handler, Response, SessionBuilder};
use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the accept loop checks whether it has been asked to stop.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// Idle sessions are closed after this long (mailin-embedded uses the same value).
const SESSION_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long `start_on` keeps retrying to bind a port that is still in use.
const BIND_PATIENCE: Duration = Duration::from_secs(5);
/// Polling interval of `wait_for`.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// One message accepted by the server (after a successful `DATA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// Envelope sender (`MAIL FROM`), without angle brackets; empty for a null reverse path.
    pub from: String,
    /// Accepted envelope recipients (`RCPT TO`), without angle brackets, in the order given.
    pub to: Vec<String>,
    /// The raw message (headers and body) with dot-stuffing removed and CRLF line endings.
    pub data: Vec<u8>,
}

impl CapturedMail {
    /// The raw message as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// State shared between a [`TestSmtp`] and its session threads.
#[derive(Default)]
struct Shared {
    messages: Vec<CapturedMail>,
    /// Remaining scripted `RCPT TO` reply codes, keyed by lower-cased address.
    rcpt_scripts: HashMap<String, VecDeque<u16>>,
    /// When set, every `RCPT TO` gets this code.
    global_rcpt_reply: Option<u16>,
}

/// Open sessions, so that stopping the server can close them.
type Sessions = Mutex<HashMap<u64, TcpStream>>;

/// An SMTP server on `127.0.0.1` that captures mail; see the module documentation.
///
/// Dropping it stops it, like [`TestSmtp::stop`].
pub struct TestSmtp {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    sessions: Arc<Sessions>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl TestSmtp {
    /// Binds 127.0.0.1:0 and serves on a background std thread.
    pub fn start() -> TestSmtp {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the test SMTP server to 127.0.0.1:0");
        Self::serve(listener)
    }

    /// Binds 127.0.0.1:`port` (e.g. the port of a server that was stopped), retrying for up to 5 s while the port
    /// is still in use, and serves on a background std thread.
    pub fn start_on(port: u16) -> TestSmtp {
        let deadline = Instant::now() + BIND_PATIENCE;
        loop {
            // std sets SO_REUSEADDR on unix, so connections of a previous server in TIME_WAIT do not block this.
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(listener) => return Self::serve(listener),
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Err(err) => panic!("cannot bind the test SMTP server to 127.0.0.1:{port} within 5 s: {err}"),
            }
        }
    }

    fn serve(listener: TcpListener) -> TestSmtp {
        let port = listener.local_addr().expect("local address of the test SMTP listener").port();
        listener.set_nonblocking(true).expect("make the test SMTP listener non-blocking");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let sessions = Arc::new(Sessions::default());
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let (shared, sessions, stop) = (shared.clone(), sessions.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("test-smtp-{port}"))
                .spawn(move || accept_loop(listener, &shared, &sessions, &stop))
                .expect("spawn the test SMTP accept thread")
        };
        TestSmtp { port, shared, sessions, stop, accept_thread: Some(accept_thread) }
    }

    /// Stops the server: the listening socket is closed (new connections are refused) and open sessions are shut
    /// down. The port can be reused with [`TestSmtp::start_on`].
    pub fn stop(self) {
        drop(self);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Snapshot of the captured messages, in arrival order.
    pub fn messages(&self) -> Vec<CapturedMail> {
        lock(&self.shared).messages.clone()
    }

    /// Captured messages with `addr` among the envelope recipients (case-insensitive), in arrival order.
    pub fn messages_to(&self, addr: &str) -> Vec<CapturedMail> {
        let addr = normalize(addr);
        let shared = lock(&self.shared);
        shared.messages.iter().filter(|m| m.to.iter().any(|to| normalize(to) == addr)).cloned().collect()
    }

    /// Scripts the replies to `RCPT TO` for `addr` (case-insensitive): each code is used once, in order, then the
    /// address is accepted again. Codes must be 4xx or 5xx, e.g. `&[451, 451]` or `&[550]`. Calling it again for
    /// the same address appends to the remaining script.
    pub fn script_rcpt(&self, addr: &str, codes: &[u16]) {
        for &code in codes {
            assert_failure_code(code);
        }
        lock(&self.shared).rcpt_scripts.entry(normalize(addr)).or_default().extend(codes.iter().copied());
    }

    /// Every `RCPT TO` is answered with `code` (4xx or 5xx) until this is called with `None`. A 421 reply also
    /// closes the connection, like a server that is shutting down.
    pub fn set_global_rcpt_reply(&self, code: Option<u16>) {
        if let Some(code) = code {
            assert_failure_code(code);
        }
        lock(&self.shared).global_rcpt_reply = code;
    }

    /// Waits (polling every 20 ms) until at least `n` messages were captured or `timeout` passes, and returns the
    /// snapshot, which may hold fewer than `n` messages on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<CapturedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Joining guarantees the listener is closed and every accepted connection is registered in `sessions`.
        if let Some(accept_thread) = self.accept_thread.take() {
            let _ = accept_thread.join();
        }
        for (_, stream) in lock(&self.sessions).drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Mutex<Shared>>, sessions: &Arc<Sessions>, stop: &AtomicBool) {
    static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(0);
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
                let registered = stream.try_clone();
                match registered {
                    Ok(registered) => {
                        lock(sessions).insert(id, registered);
                    }
                    Err(err) => {
                        eprintln!("test SMTP server: cannot clone an accepted connection: {err}");
                        continue;
                    }
                }
                let (session_shared, session_registry) = (shared.clone(), sessions.clone());
                let spawned = thread::Builder::new().name("test-smtp-session".into()).spawn(move || {
                    // Errors only mean the client went away or the server was stopped.
                    let _ = run_session(stream, peer, session_shared);
                    lock(&session_registry).remove(&id);
                });
                if let Err(err) = spawned {
                    eprintln!("test SMTP server: cannot spawn a session thread: {err}");
                    if let Some(stream) = lock(sessions).remove(&id) {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(err) => {
                eprintln!("test SMTP server: accept failed: {err}");
                thread::sleep(ACCEPT_POLL);
            }
        }
    }
    // `listener` is dropped here, which closes the port.
}

fn run_session(stream: TcpStream, peer: SocketAddr, shared: Arc<Mutex<Shared>>) -> io::Result<()> {
    // Accepted sockets do not inherit O_NONBLOCK on Linux, but be explicit.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(SESSION_TIMEOUT))?;
    stream.set_write_timeout(Some(SESSION_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let handler = CaptureHandler { shared, from: String::new(), to: Vec::new(), data: Vec::new() };
    let mut session = SessionBuilder::new("tidings-test-smtp").build(peer.ip(), handler);
    write_response(&mut writer, &session.greeting())?;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let response = session.process(&line);
        match response.action {
            Action::NoReply => {}
            Action::Reply => write_response(&mut writer, &response)?,
            // STARTTLS is never advertised, so `UpgradeTls` cannot happen; treat it like `Close`.
            Action::Close | Action::UpgradeTls => {
                write_response(&mut writer, &response)?;
                return writer.shutdown(Shutdown::Both);
            }
        }
    }
}

fn write_response(writer: &mut TcpStream, response: &Response) -> io::Result<()> {
    writer.write_all(&response.buffer()?)?;
    writer.flush()
}

/// The mailin handler of one connection: records the current transaction and stores it when `DATA` completes.
#[derive(Clone)]
struct CaptureHandler {
    shared: Arc<Mutex<Shared>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for CaptureHandler {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let mut shared = lock(&self.shared);
        let code = match shared.global_rcpt_reply {
            Some(code) => Some(code),
            None => shared.rcpt_scripts.get_mut(&normalize(to)).and_then(VecDeque::pop_front),
        };
        match code {
            Some(code) => Response::custom(code, failure_text(code).to_owned()),
            None => mailin::response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        // `to` holds only the recipients that were accepted.
        self.to = to.to_vec();
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = CapturedMail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
        };
        lock(&self.shared).messages.push(mail);
        mailin::response::OK
    }
}

fn assert_failure_code(code: u16) {
    assert!((400..600).contains(&code), "scripted SMTP reply codes must be 4xx or 5xx, got {code}");
}

fn failure_text(code: u16) -> &'static str {
    match code {
        421 => "Service not available, closing transmission channel",
        450 => "Requested mail action not taken: mailbox unavailable",
        451 => "Requested action aborted: local error in processing",
        452 => "Requested action not taken: insufficient system storage",
        550 => "Requested action not taken: mailbox unavailable",
        551 => "User not local",
        552 => "Requested mail action aborted: exceeded storage allocation",
        553 => "Requested action not taken: mailbox name not allowed",
        554 => "Transaction failed",
        400..=499 => "Temporary failure (scripted by the test)",
        _ => "Permanent failure (scripted by the test)",
    }
}

/// Lower-cases an address and strips surrounding whitespace and angle brackets.
fn normalize(addr: &str) -> String {
    addr.trim().trim_start_matches('<').trim_end_matches('>').to_lowercase()
}

/// Locks `mutex`, ignoring poisoning: a panicking test thread must not hide the captured mail from others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
