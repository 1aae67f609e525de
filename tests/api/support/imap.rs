//! A small but real IMAP4rev1 server on `127.0.0.1` with one folder, INBOX,
//! for the bounce-mailbox worker's tests: LOGIN, SELECT, UID SEARCH
//! (UNDELETED or ALL), UID FETCH (RFC822.SIZE, BODY.PEEK[] / BODY[] as a
//! literal), UID STORE +FLAGS(.SILENT) (\Deleted), EXPUNGE, NOOP, LOGOUT.
//! Flags live in the mailbox, as on a real server: a `\Deleted` flag set by
//! a session that broke off stays, and EXPUNGE removes what is flagged. It
//! can be told to drop the connection when a given UID's body is fetched.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Default)]
struct Folder {
    /// (uid, message, \Deleted)
    messages: Vec<(u32, Vec<u8>, bool)>,
    next_uid: u32,
    log: Vec<String>,
    drop_on_fetch: Option<u32>,
}

pub struct TestImap {
    port: u16,
    user: String,
    password: String,
    folder: Arc<Mutex<Folder>>,
    stop: Arc<AtomicBool>,
}

impl TestImap {
    pub fn start(user: &str, password: &str) -> TestImap {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the test IMAP server");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("address").port();
        let folder = Arc::new(Mutex::new(Folder { next_uid: 1, ..Folder::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, st, u, p) = (folder.clone(), stop.clone(), user.to_owned(), password.to_owned());
        thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((socket, _)) => {
                        let (f, u, p) = (f.clone(), u.clone(), p.clone());
                        thread::spawn(move || {
                            socket.set_nonblocking(false).ok();
                            socket.set_read_timeout(Some(Duration::from_secs(30))).ok();
                            session(socket, &f, &u, &p);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TestImap { port, user: user.to_owned(), password: password.to_owned(), folder, stop }
    }

    pub fn url(&self) -> String {
        format!("imap://{}:{}@127.0.0.1:{}/INBOX", self.user, self.password, self.port)
    }

    pub fn deliver(&self, message: &[u8]) {
        let mut f = self.folder.lock().unwrap();
        let uid = f.next_uid;
        f.next_uid += 1;
        f.messages.push((uid, message.to_vec(), false));
    }

    /// (uid, flagged \Deleted) of every message still in the folder.
    pub fn messages(&self) -> Vec<(u32, bool)> {
        self.folder.lock().unwrap().messages.iter().map(|(uid, _, d)| (*uid, *d)).collect()
    }

    pub fn log(&self) -> Vec<String> {
        self.folder.lock().unwrap().log.clone()
    }

    pub fn drop_connection_on_fetch(&self, uid: Option<u32>) {
        self.folder.lock().unwrap().drop_on_fetch = uid;
    }
}

impl Drop for TestImap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The quoted or atom arguments of a command line.
fn arguments(rest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => s.extend(chars.next()),
                        '"' => break,
                        other => s.push(other),
                    }
                }
                out.push(s);
            }
            other => {
                let mut s = other.to_string();
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    out
}

/// UIDs named by a set such as `4`, `1,3,9` or `2:*`.
fn uid_set(set: &str, all: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let lo: u32 = a.parse().unwrap_or(0);
                let hi: u32 = if b == "*" { u32::MAX } else { b.parse().unwrap_or(0) };
                out.extend(all.iter().copied().filter(|u| *u >= lo && *u <= hi));
            }
            None => out.extend(part.parse::<u32>().ok().filter(|u| all.contains(u))),
        }
    }
    out
}

fn session(socket: TcpStream, folder: &Mutex<Folder>, user: &str, password: &str) {
    let mut reader = BufReader::new(socket);
    let send = |r: &mut BufReader<TcpStream>, data: &[u8]| -> bool {
        r.get_mut().write_all(data).and_then(|()| r.get_mut().flush()).is_ok()
    };
    if !send(&mut reader, b"* OK Tidings test IMAP ready\r\n") {
        return;
    }
    let (mut logged_in, mut selected) = (false, false);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        let Some((tag, rest)) = line.split_once(' ') else { continue };
        let (command, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut command = command.to_ascii_uppercase();
        let mut rest = rest.to_owned();
        if command == "UID" {
            let (sub, more) = rest.split_once(' ').unwrap_or((rest.as_str(), ""));
            command = format!("UID {}", sub.to_ascii_uppercase());
            rest = more.to_owned();
        }
        folder.lock().unwrap().log.push(if command == "LOGIN" {
            "LOGIN ***".into()
        } else {
            format!("{command} {rest}").trim().to_owned()
        });
        let ok = |text: &str| format!("{tag} OK {text}\r\n").into_bytes();
        let reply: Vec<u8> = match command.as_str() {
            "LOGIN" => {
                let args = arguments(&rest);
                if args.len() == 2 && args[0] == user && args[1] == password {
                    logged_in = true;
                    ok("LOGIN completed")
                } else {
                    format!("{tag} NO [AUTHENTICATIONFAILED] invalid credentials\r\n").into_bytes()
                }
            }
            "SELECT" if logged_in && arguments(&rest).first().is_some_and(|f| f.eq_ignore_ascii_case("INBOX")) => {
                selected = true;
                let n = folder.lock().unwrap().messages.len();
                let mut out =
                    format!("* {n} EXISTS\r\n* FLAGS (\\Deleted \\Seen)\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n")
                        .into_bytes();
                out.extend(ok("[READ-WRITE] SELECT completed"));
                out
            }
            "SELECT" => format!("{tag} NO no such folder\r\n").into_bytes(),
            "UID SEARCH" if selected => {
                let undeleted = rest.to_ascii_uppercase().contains("UNDELETED");
                let f = folder.lock().unwrap();
                let uids: Vec<String> =
                    f.messages.iter().filter(|m| !undeleted || !m.2).map(|m| m.0.to_string()).collect();
                let mut out = format!("* SEARCH {}\r\n", uids.join(" ")).replace("SEARCH \r", "SEARCH\r").into_bytes();
                out.extend(ok("SEARCH completed"));
                out
            }
            "UID FETCH" if selected => {
                let (set, items) = rest.split_once(' ').unwrap_or((rest.as_str(), ""));
                let items = items.to_ascii_uppercase();
                let f = folder.lock().unwrap();
                let all: Vec<u32> = f.messages.iter().map(|m| m.0).collect();
                let wanted = uid_set(set, &all);
                if items.contains("BODY") && wanted.iter().any(|u| Some(*u) == f.drop_on_fetch) {
                    return; // the "crash"
                }
                let mut out = Vec::new();
                for uid in wanted {
                    let (seq, m) =
                        f.messages.iter().enumerate().find(|(_, m)| m.0 == uid).map(|(i, m)| (i + 1, m)).unwrap();
                    if items.contains("BODY") {
                        out.extend(format!("* {seq} FETCH (UID {uid} BODY[] {{{}}}\r\n", m.1.len()).into_bytes());
                        out.extend_from_slice(&m.1);
                        out.extend(b")\r\n");
                    } else {
                        out.extend(format!("* {seq} FETCH (UID {uid} RFC822.SIZE {})\r\n", m.1.len()).into_bytes());
                    }
                }
                out.extend(ok("FETCH completed"));
                out
            }
            "UID STORE" if selected && rest.to_ascii_uppercase().contains("+FLAGS") && rest.contains("\\Deleted") => {
                let set = rest.split(' ').next().unwrap_or("");
                let mut f = folder.lock().unwrap();
                let all: Vec<u32> = f.messages.iter().map(|m| m.0).collect();
                for uid in uid_set(set, &all) {
                    if let Some(m) = f.messages.iter_mut().find(|m| m.0 == uid) {
                        m.2 = true;
                    }
                }
                ok("STORE completed")
            }
            "EXPUNGE" if selected => {
                let mut f = folder.lock().unwrap();
                let mut out = Vec::new();
                let mut seq = 1;
                f.messages.retain(|m| {
                    if m.2 {
                        out.extend(format!("* {seq} EXPUNGE\r\n").into_bytes());
                        false
                    } else {
                        seq += 1;
                        true
                    }
                });
                out.extend(ok("EXPUNGE completed"));
                out
            }
            "NOOP" => ok("NOOP completed"),
            "LOGOUT" => {
                let mut out = b"* BYE logging out\r\n".to_vec();
                out.extend(ok("LOGOUT completed"));
                send(&mut reader, &out);
                return;
            }
            _ => format!("{tag} BAD command not valid here\r\n").into_bytes(),
        };
        if !send(&mut reader, &reply) {
            return;
        }
    }
}
