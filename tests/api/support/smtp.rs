//! A real SMTP capture server for integration tests.
//!
//! [`TestSmtp`] listens on `127.0.0.1`, speaks SMTP through the `mailin` protocol crate and records every message
//! it accepts, so tests can point the application's SMTP transport at it and then inspect what was sent.
//! Replies to `RCPT TO` can be scripted (temporary or permanent failures for one address, or for every address),
//! and the server can be stopped and started again on the same port to simulate an outage, or keep listening but
//! refuse service with `421` for a while ([`TestSmtp::set_outage`]), cutting the sessions that were open.
//!
//! [`TestSmtp::start_tls`] starts a server with a self-signed certificate for `localhost`, made at start with rcgen
//! and served with rustls (ring provider, the same rustls lettre uses): either STARTTLS is advertised and upgrades
//! the session, or TLS starts with the first byte. [`TestSmtp::ca_pem`] gives the certificate for the client to
//! trust. [`TestSmtp::require_auth`] makes new sessions require `AUTH PLAIN`/`LOGIN`. Every captured message records
//! whether its session was encrypted and who had authenticated.
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

use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
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
    /// Whether the session was encrypted (STARTTLS or implicit TLS) when the message was sent.
    pub tls: bool,
    /// The user the session had authenticated as, if any.
    pub auth_user: Option<String>,
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
    /// When set (`require_auth`), new sessions must authenticate with these credentials before `MAIL FROM`.
    auth: Option<Credentials>,
    /// Connections accepted so far.
    connections: usize,
    /// When set, the server is refusing service (see [`TestSmtp::set_outage`]).
    outage: Option<Outage>,
    /// When set, each message is acknowledged only after this long (a slow relay).
    data_delay: Option<Duration>,
}

/// How a server refuses service during [`TestSmtp::set_outage`], as a relay that is overloaded or restarting does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// New connections are greeted with `421` and closed.
    Greeting421,
    /// Sessions are greeted and may say `EHLO`, but `MAIL`, `RCPT` and `DATA` are answered with `421` and the
    /// connection is closed.
    Command421,
}

/// A user name and password.
#[derive(Clone)]
struct Credentials {
    user: String,
    pass: String,
}

/// How a [`TestSmtp::start_tls`] server encrypts its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsTestMode {
    /// Sessions start in clear text; `STARTTLS` is advertised and upgrades them.
    StartTls,
    /// TLS from the first byte, like port 465 (smtps).
    Implicit,
}

/// The TLS side of a [`TestSmtp::start_tls`] server.
#[derive(Clone)]
struct TlsSetup {
    mode: TlsTestMode,
    config: Arc<ServerConfig>,
}

impl TlsSetup {
    /// Wraps an accepted socket in a server-side TLS session; the handshake happens on the first read or write.
    fn accept(&self, tcp: TcpStream) -> io::Result<StreamOwned<ServerConnection, TcpStream>> {
        let conn = ServerConnection::new(self.config.clone()).map_err(io::Error::other)?;
        Ok(StreamOwned::new(conn, tcp))
    }
}

/// What one session knows about itself, shared by its read loop and its mailin handler.
#[derive(Default)]
struct SessionState {
    tls: bool,
    auth_user: Option<String>,
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
    /// PEM of the self-signed certificate of a `start_tls` server.
    ca_pem: Option<String>,
}

impl TestSmtp {
    /// Binds 127.0.0.1:0 and serves on a background std thread.
    pub fn start() -> TestSmtp {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the test SMTP server to 127.0.0.1:0");
        Self::serve(listener, None)
    }

    /// Like [`TestSmtp::start`], with TLS: a self-signed certificate for `localhost` (and 127.0.0.1) is made now;
    /// clients must connect to `localhost` and trust [`TestSmtp::ca_pem`].
    pub fn start_tls(mode: TlsTestMode) -> TestSmtp {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("generate a self-signed certificate for the test SMTP server");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        // The provider is named explicitly: rustls refuses to guess one when a build enables both ring and
        // aws-lc-rs, and ring is the one lettre already compiles in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls supports its default protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("use the self-signed certificate for the test SMTP server");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the test SMTP server to 127.0.0.1:0");
        let mut server = Self::serve(listener, Some(TlsSetup { mode, config: Arc::new(config) }));
        server.ca_pem = Some(certified.cert.pem());
        server
    }

    /// Binds 127.0.0.1:`port` (e.g. the port of a server that was stopped), retrying for up to 5 s while the port
    /// is still in use, and serves on a background std thread.
    pub fn start_on(port: u16) -> TestSmtp {
        let deadline = Instant::now() + BIND_PATIENCE;
        loop {
            // std sets SO_REUSEADDR on unix, so connections of a previous server in TIME_WAIT do not block this.
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(listener) => return Self::serve(listener, None),
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Err(err) => panic!("cannot bind the test SMTP server to 127.0.0.1:{port} within 5 s: {err}"),
            }
        }
    }

    fn serve(listener: TcpListener, tls: Option<TlsSetup>) -> TestSmtp {
        let port = listener.local_addr().expect("local address of the test SMTP listener").port();
        listener.set_nonblocking(true).expect("make the test SMTP listener non-blocking");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let sessions = Arc::new(Sessions::default());
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let (shared, sessions, stop) = (shared.clone(), sessions.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("test-smtp-{port}"))
                .spawn(move || accept_loop(listener, &shared, &sessions, &stop, tls.as_ref()))
                .expect("spawn the test SMTP accept thread")
        };
        TestSmtp { port, shared, sessions, stop, accept_thread: Some(accept_thread), ca_pem: None }
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

    /// The PEM of the self-signed certificate of a [`TestSmtp::start_tls`] server; `None` for a plain server.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Sessions that start from now on advertise `AUTH PLAIN LOGIN` and answer `MAIL FROM` with 530 until the
    /// client has authenticated as `user`/`pass`; wrong credentials get 535. On a TLS server AUTH is offered only
    /// once the session is encrypted, as real servers do; a plain server offers it in clear text.
    pub fn require_auth(&self, user: &str, pass: &str) {
        lock(&self.shared).auth = Some(Credentials { user: user.to_owned(), pass: pass.to_owned() });
    }

    /// Starts (`Some`) or ends (`None`) an outage. Starting one also cuts every open session at once, as a relay
    /// that restarts does: a message whose data was already taken is kept, but its client may not see the reply.
    /// Makes every message wait `delay` before it is acknowledged (`None`: at once), like a slow relay.
    pub fn set_data_delay(&self, delay: Option<Duration>) {
        lock(&self.shared).data_delay = delay;
    }

    pub fn set_outage(&self, outage: Option<Outage>) {
        lock(&self.shared).outage = outage;
        if outage.is_some() {
            for stream in lock(&self.sessions).values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// How many messages were captured so far.
    pub fn message_count(&self) -> usize {
        lock(&self.shared).messages.len()
    }

    /// How many copies each envelope recipient (lower-cased) received, without copying the messages.
    pub fn copies(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for m in &lock(&self.shared).messages {
            for to in &m.to {
                *counts.entry(normalize(to)).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Waits (polling every 20 ms) until at least `n` messages were captured or `timeout` passes; returns how many
    /// were. Cheaper than [`TestSmtp::wait_for`] on a large send: nothing is copied.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.message_count();
            if count >= n || Instant::now() >= deadline {
                return count;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// How many connections the server has accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.shared).connections
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

fn accept_loop(
    listener: TcpListener,
    shared: &Arc<Mutex<Shared>>,
    sessions: &Arc<Sessions>,
    stop: &AtomicBool,
    tls: Option<&TlsSetup>,
) {
    static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(0);
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                lock(shared).connections += 1;
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
                let (session_shared, session_registry, session_tls) = (shared.clone(), sessions.clone(), tls.cloned());
                let spawned = thread::Builder::new().name("test-smtp-session".into()).spawn(move || {
                    // Errors only mean the client went away (or failed the TLS handshake) or the server was stopped.
                    let _ = run_session(stream, peer, session_shared, session_tls);
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

/// A session's byte stream: the plain socket, or TLS over it.
trait SessionStream: Read + Write + Send {}
impl<T: Read + Write + Send> SessionStream for T {}

fn run_session(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    tls: Option<TlsSetup>,
) -> io::Result<()> {
    // Accepted sockets do not inherit O_NONBLOCK on Linux, but be explicit.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(SESSION_TIMEOUT))?;
    stream.set_write_timeout(Some(SESSION_TIMEOUT))?;
    // Read once: `require_auth` applies to sessions that start after it.
    let auth = lock(&shared).auth.clone();
    let state = Arc::new(Mutex::new(SessionState::default()));
    let mode = tls.as_ref().map(|t| t.mode);

    let mut builder = SessionBuilder::new("tidings-test-smtp");
    if mode == Some(TlsTestMode::StartTls) {
        builder.enable_start_tls();
    }
    if auth.is_some() {
        builder.enable_auth(AuthMechanism::Plain).enable_auth(AuthMechanism::Login);
        // mailin offers AUTH only over TLS; a plain server would otherwise have no way to authenticate at all.
        if tls.is_none() {
            builder.insecure_enable_plaintext_auth();
        }
    }
    let handler = CaptureHandler {
        shared: shared.clone(),
        session: state.clone(),
        auth: auth.clone(),
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut session = builder.build(peer.ip(), handler);

    let mut reader: BufReader<Box<dyn SessionStream>> = match &tls {
        Some(setup) if setup.mode == TlsTestMode::Implicit => {
            session.tls_active();
            lock(&state).tls = true;
            BufReader::new(Box::new(setup.accept(stream.try_clone()?)?))
        }
        _ => BufReader::new(Box::new(stream.try_clone()?)),
    };
    if lock(&shared).outage == Some(Outage::Greeting421) {
        reader.get_mut().write_all(b"421 tidings-test-smtp Service not available, closing transmission channel\r\n")?;
        return stream.shutdown(Shutdown::Both);
    }
    write_response(reader.get_mut(), &session.greeting())?;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        // mailin itself answers an unauthenticated MAIL FROM with 503 (bad sequence); real servers say 530. Before
        // authentication no transaction can be open, so a line starting with MAIL is always the command.
        if auth.is_some() && lock(&state).auth_user.is_none() && starts_with_ignore_case(&line, b"MAIL ") {
            write_response(reader.get_mut(), &mailin::response::AUTHENTICATION_REQUIRED)?;
            continue;
        }
        let refused = [b"MAIL ".as_slice(), b"RCPT ", b"DATA"].iter().any(|c| starts_with_ignore_case(&line, c));
        if refused && lock(&shared).outage == Some(Outage::Command421) {
            reader
                .get_mut()
                .write_all(b"421 tidings-test-smtp Service not available, closing transmission channel\r\n")?;
            return stream.shutdown(Shutdown::Both);
        }
        let response = session.process(&line);
        match (&response.action, &tls) {
            (Action::NoReply, _) => {}
            (Action::Reply, _) => write_response(reader.get_mut(), &response)?,
            (Action::UpgradeTls, Some(setup)) if setup.mode == TlsTestMode::StartTls && !lock(&state).tls => {
                write_response(reader.get_mut(), &response)?;
                // Anything the client sent after STARTTLS came in clear text and must not be taken as part of the
                // encrypted session (RFC 3207, section 5).
                if !reader.buffer().is_empty() {
                    return stream.shutdown(Shutdown::Both);
                }
                reader = BufReader::new(Box::new(setup.accept(stream.try_clone()?)?));
                session.tls_active();
                lock(&state).tls = true;
            }
            // STARTTLS is only advertised by a StartTls server before the upgrade; treat any other `UpgradeTls`
            // like `Close`.
            (Action::Close | Action::UpgradeTls, _) => {
                write_response(reader.get_mut(), &response)?;
                return stream.shutdown(Shutdown::Both);
            }
        }
    }
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn write_response(writer: &mut dyn SessionStream, response: &Response) -> io::Result<()> {
    writer.write_all(&response.buffer()?)?;
    writer.flush()
}

/// The mailin handler of one connection: records the current transaction and stores it when `DATA` completes.
#[derive(Clone)]
struct CaptureHandler {
    shared: Arc<Mutex<Shared>>,
    session: Arc<Mutex<SessionState>>,
    /// The credentials this session requires, if any.
    auth: Option<Credentials>,
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
        let (tls, auth_user) = {
            let session = lock(&self.session);
            (session.tls, session.auth_user.clone())
        };
        let mail = CapturedMail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
            tls,
            auth_user,
        };
        let delay = {
            let mut shared = lock(&self.shared);
            shared.messages.push(mail);
            shared.data_delay
        };
        if let Some(d) = delay {
            // Each session has a thread of its own: only this sender waits.
            thread::sleep(d);
        }
        mailin::response::OK
    }

    fn auth_plain(&mut self, authorization_id: &str, authentication_id: &str, password: &str) -> Response {
        // lettre sends an empty authorization identity; a client acting for someone else is not supported here.
        if !authorization_id.is_empty() && authorization_id != authentication_id {
            return mailin::response::INVALID_CREDENTIALS;
        }
        self.authenticate(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.authenticate(username, password)
    }
}

impl CaptureHandler {
    /// 235 and remembers the user if the credentials match `require_auth`, else 535.
    fn authenticate(&mut self, user: &str, pass: &str) -> Response {
        match &self.auth {
            Some(expected) if expected.user == user && expected.pass == pass => {
                lock(&self.session).auth_user = Some(user.to_owned());
                mailin::response::AUTH_OK
            }
            _ => mailin::response::INVALID_CREDENTIALS,
        }
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
        // A hard bounce, with its RFC 3463 enhanced status code.
        551 => "5.1.1 Recipient address rejected: user unknown",
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
