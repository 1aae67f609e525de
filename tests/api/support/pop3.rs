//! A small but real POP3 server (RFC 1939: USER, PASS, STAT, LIST, UIDL, RETR,
//! DELE, RSET, NOOP, QUIT; STLS from RFC 2595) on `127.0.0.1`, plain, with
//! implicit TLS, or upgrading with STLS, for
//! the bounce-mailbox worker's tests. As the RFC requires, deletions take
//! effect only when the client QUITs; a session that ends any other way
//! leaves the mailbox as it was. It can be told to drop the connection when
//! a given message is retrieved, to stand for a crash mid-poll.

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Default)]
struct Mailbox {
    /// (id, message) in arrival order.
    messages: Vec<(u64, Vec<u8>)>,
    next_id: u64,
    /// Every command received, passwords blanked.
    log: Vec<String>,
    /// Drop the connection when this message number is retrieved.
    drop_on_retr: Option<u32>,
}

pub struct TestPop3 {
    port: u16,
    user: String,
    password: String,
    mailbox: Arc<Mutex<Mailbox>>,
    stop: Arc<AtomicBool>,
    /// PEM of the self-signed certificate when serving TLS.
    pub ca_pem: Option<String>,
    starttls: bool,
}

/// How a session's connection is carried.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// Only while upgrading.
    Gone,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Gone => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Gone => Ok(()),
        }
    }
}

/// How the server offers TLS.
#[derive(Clone)]
enum TlsOffer {
    None,
    Implicit(Arc<ServerConfig>),
    StartTls(Arc<ServerConfig>),
}

impl TestPop3 {
    pub fn start(user: &str, password: &str) -> TestPop3 {
        Self::serve(user, password, TlsOffer::None)
    }

    /// Implicit TLS (pop3s) with a self-signed certificate for `localhost`.
    pub fn start_tls(user: &str, password: &str) -> TestPop3 {
        Self::start_with_tls(user, password, false)
    }

    /// Plain until the client says STLS (RFC 2595), then TLS as above.
    pub fn start_starttls(user: &str, password: &str) -> TestPop3 {
        Self::start_with_tls(user, password, true)
    }

    fn start_with_tls(user: &str, password: &str, starttls: bool) -> TestPop3 {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("server certificate");
        let config = Arc::new(config);
        let offer = if starttls { TlsOffer::StartTls(config) } else { TlsOffer::Implicit(config) };
        let mut server = Self::serve(user, password, offer);
        server.ca_pem = Some(certified.cert.pem());
        server.starttls = starttls;
        server
    }

    fn serve(user: &str, password: &str, tls: TlsOffer) -> TestPop3 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the test POP3 server");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("address").port();
        let mailbox = Arc::new(Mutex::new(Mailbox::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (mb, st, u, p) = (mailbox.clone(), stop.clone(), user.to_owned(), password.to_owned());
        thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((socket, _)) => {
                        let (mb, u, p, tls) = (mb.clone(), u.clone(), p.clone(), tls.clone());
                        thread::spawn(move || {
                            socket.set_nonblocking(false).ok();
                            socket.set_read_timeout(Some(Duration::from_secs(30))).ok();
                            let conn = match &tls {
                                TlsOffer::Implicit(config) => match ServerConnection::new(config.clone()) {
                                    Ok(c) => Conn::Tls(Box::new(StreamOwned::new(c, socket))),
                                    Err(_) => return,
                                },
                                _ => Conn::Plain(socket),
                            };
                            let upgrade = match tls {
                                TlsOffer::StartTls(config) => Some(config),
                                _ => None,
                            };
                            session(conn, upgrade, &mb, &u, &p);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TestPop3 {
            port,
            user: user.to_owned(),
            password: password.to_owned(),
            mailbox,
            stop,
            ca_pem: None,
            starttls: false,
        }
    }

    /// `pop3://user:pass@127.0.0.1:port` (or `pop3s://…@localhost:port`).
    pub fn url(&self) -> String {
        match (&self.ca_pem, self.starttls) {
            (Some(_), false) => format!("pop3s://{}:{}@localhost:{}", self.user, self.password, self.port),
            (Some(_), true) => format!("pop3://{}:{}@localhost:{}?tls=starttls", self.user, self.password, self.port),
            (None, _) => format!("pop3://{}:{}@127.0.0.1:{}", self.user, self.password, self.port),
        }
    }

    pub fn deliver(&self, message: &[u8]) {
        let mut mb = self.mailbox.lock().unwrap();
        mb.next_id += 1;
        let id = mb.next_id;
        mb.messages.push((id, message.to_vec()));
    }

    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.mailbox.lock().unwrap().messages.iter().map(|(_, m)| m.clone()).collect()
    }

    pub fn log(&self) -> Vec<String> {
        self.mailbox.lock().unwrap().log.clone()
    }

    pub fn drop_connection_on_retr(&self, n: Option<u32>) {
        self.mailbox.lock().unwrap().drop_on_retr = n;
    }
}

impl Drop for TestPop3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn session(conn: Conn, mut upgrade: Option<Arc<ServerConfig>>, mailbox: &Mutex<Mailbox>, user: &str, password: &str) {
    let mut reader = BufReader::new(conn);
    let send = |r: &mut BufReader<Conn>, text: &str| -> bool {
        r.get_mut().write_all(text.as_bytes()).and_then(|()| r.get_mut().flush()).is_ok()
    };
    if !send(&mut reader, "+OK Tidings test POP3 ready\r\n") {
        return;
    }
    let mut given_user: Option<String> = None;
    // The messages as they were at login: (id, message, marked for deletion).
    let mut snapshot: Option<Vec<(u64, Vec<u8>, bool)>> = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return, // gone without QUIT: nothing is deleted
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        let (command, arg) = line.split_once(' ').map_or((line.as_str(), ""), |(c, a)| (c, a));
        let command = command.to_ascii_uppercase();
        mailbox.lock().unwrap().log.push(if command == "PASS" { "PASS ***".into() } else { line.clone() });
        let number = |snap: &Vec<(u64, Vec<u8>, bool)>| {
            arg.trim().parse::<usize>().ok().filter(|n| *n >= 1 && *n <= snap.len() && !snap[n - 1].2)
        };
        let reply = match (command.as_str(), snapshot.as_mut()) {
            ("STLS", None) if upgrade.is_some() && given_user.is_none() => {
                if !send(&mut reader, "+OK begin TLS negotiation\r\n") {
                    return;
                }
                let Some(config) = upgrade.take() else { return };
                let Conn::Plain(tcp) = std::mem::replace(reader.get_mut(), Conn::Gone) else { return };
                let Ok(tls) = ServerConnection::new(config) else { return };
                reader = BufReader::new(Conn::Tls(Box::new(StreamOwned::new(tls, tcp))));
                continue;
            }
            ("USER", None) if upgrade.is_some() => "-ERR STLS first\r\n".to_owned(),
            ("USER", None) => {
                given_user = Some(arg.to_owned());
                "+OK\r\n".to_owned()
            }
            ("PASS", None) if given_user.as_deref() == Some(user) && arg == password => {
                let mb = mailbox.lock().unwrap();
                snapshot = Some(mb.messages.iter().map(|(id, m)| (*id, m.clone(), false)).collect());
                "+OK logged in\r\n".to_owned()
            }
            ("PASS", None) => "-ERR invalid login\r\n".to_owned(),
            ("QUIT", snap) => {
                if let Some(snap) = snap {
                    let gone: Vec<u64> = snap.iter().filter(|m| m.2).map(|m| m.0).collect();
                    mailbox.lock().unwrap().messages.retain(|(id, _)| !gone.contains(id));
                }
                send(&mut reader, "+OK bye\r\n");
                return;
            }
            ("STAT", Some(snap)) => {
                let live: Vec<_> = snap.iter().filter(|m| !m.2).collect();
                format!("+OK {} {}\r\n", live.len(), live.iter().map(|m| m.1.len()).sum::<usize>())
            }
            ("LIST", Some(snap)) => {
                let mut out = "+OK\r\n".to_owned();
                for (i, m) in snap.iter().enumerate().filter(|(_, m)| !m.2) {
                    out.push_str(&format!("{} {}\r\n", i + 1, m.1.len()));
                }
                out + ".\r\n"
            }
            ("UIDL", Some(snap)) => {
                let mut out = "+OK\r\n".to_owned();
                for (i, m) in snap.iter().enumerate().filter(|(_, m)| !m.2) {
                    out.push_str(&format!("{} msg-{}\r\n", i + 1, m.0));
                }
                out + ".\r\n"
            }
            ("RETR", Some(snap)) => match number(snap) {
                Some(n) => {
                    if mailbox.lock().unwrap().drop_on_retr == Some(n as u32) {
                        return; // the "crash"
                    }
                    let body = String::from_utf8_lossy(&snap[n - 1].1).replace("\r\n", "\n");
                    let mut out = format!("+OK {} octets\r\n", snap[n - 1].1.len());
                    for l in body.lines() {
                        if l.starts_with('.') {
                            out.push('.');
                        }
                        out.push_str(l);
                        out.push_str("\r\n");
                    }
                    out + ".\r\n"
                }
                None => "-ERR no such message\r\n".to_owned(),
            },
            ("DELE", Some(snap)) => match number(snap) {
                Some(n) => {
                    snap[n - 1].2 = true;
                    "+OK marked\r\n".to_owned()
                }
                None => "-ERR no such message\r\n".to_owned(),
            },
            ("RSET", Some(snap)) => {
                snap.iter_mut().for_each(|m| m.2 = false);
                "+OK\r\n".to_owned()
            }
            ("NOOP", Some(_)) => "+OK\r\n".to_owned(),
            _ => "-ERR command not valid here\r\n".to_owned(),
        };
        if !send(&mut reader, &reply) {
            return;
        }
    }
}
