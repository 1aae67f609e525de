//! A small POP3 client (RFC 1939, with STLS from RFC 2595) for the bounce
//! mailbox: log in, list (with unique ids), retrieve, delete, quit. Deletions take effect only
//! at QUIT (the protocol's UPDATE state), so a connection that breaks leaves
//! every message where it was. Connections and TLS: [`super::mailbox`].

use super::mailbox::{Io, MAX_MESSAGE_BYTES, MailboxError, MailboxSettings, Tls, timed};
use std::collections::HashMap;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A logged-in session (the TRANSACTION state).
pub struct Pop3Session {
    host: String,
    stream: BufReader<Box<dyn Io>>,
}

impl Pop3Session {
    /// Connects, (upgrades to TLS,) and logs in with USER/PASS.
    pub async fn connect(settings: &MailboxSettings) -> Result<Self, MailboxError> {
        let host = settings.host.clone();
        let mut session = Self { host: host.clone(), stream: BufReader::new(settings.connect().await?) };
        session.reply("greeting").await?;
        if settings.tls == Tls::Upgrade {
            session.command("STLS", "STLS").await?;
            if !session.stream.buffer().is_empty() {
                return Err(MailboxError::Protocol(host, "data arrived before the TLS handshake".into()));
            }
            let upgraded = settings.start_tls(session.stream.into_inner()).await?;
            session = Self { host, stream: BufReader::new(upgraded) };
        }
        session.command(&format!("USER {}", settings.user), "USER").await?;
        session.command(&format!("PASS {}", settings.password), "PASS").await?;
        Ok(session)
    }

    async fn line(&mut self) -> Result<String, MailboxError> {
        let mut buf = Vec::new();
        let n = timed(&self.host, (&mut self.stream).take(64 * 1024).read_until(b'\n', &mut buf)).await?;
        if n == 0 {
            return Err(MailboxError::Protocol(self.host.clone(), "the server closed the connection".into()));
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    async fn reply(&mut self, command: &'static str) -> Result<String, MailboxError> {
        let line = self.line().await?;
        match line.strip_prefix("+OK") {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => {
                Err(MailboxError::Refused { host: self.host.clone(), command, reply: line.chars().take(200).collect() })
            }
        }
    }

    async fn command(&mut self, text: &str, name: &'static str) -> Result<String, MailboxError> {
        let host = self.host.clone();
        timed(&host, async {
            self.stream.get_mut().write_all(format!("{text}\r\n").as_bytes()).await?;
            self.stream.get_mut().flush().await
        })
        .await?;
        self.reply(name).await
    }

    /// The lines of a multi-line answer up to the terminating ".", with
    /// byte-stuffing removed.
    async fn multiline(&mut self, limit: u64) -> Result<Vec<u8>, MailboxError> {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = timed(&self.host, (&mut self.stream).take(1024 * 1024).read_until(b'\n', &mut buf)).await?;
            if n == 0 {
                return Err(MailboxError::Protocol(self.host.clone(), "the connection closed inside a message".into()));
            }
            let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content == b"." {
                return Ok(out);
            }
            let content = content.strip_prefix(b".").unwrap_or(content);
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
            if out.len() as u64 > limit {
                return Err(MailboxError::Protocol(self.host.clone(), "a message is larger than announced".into()));
            }
        }
    }

    /// Message numbers and sizes (LIST).
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, MailboxError> {
        self.command("LIST", "LIST").await?;
        let text = self.multiline(16 * 1024 * 1024).await?;
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&text).lines() {
            let mut parts = line.split_whitespace();
            match (parts.next().and_then(|n| n.parse().ok()), parts.next().and_then(|s| s.parse().ok())) {
                (Some(n), Some(size)) => out.push((n, size)),
                _ => return Err(MailboxError::Protocol(self.host.clone(), format!("unreadable LIST line {line:?}"))),
            }
        }
        Ok(out)
    }

    /// Each message's unique id (UIDL, RFC 1939 §7), which stays the same
    /// across sessions while message numbers shift. `None` when the server
    /// does not offer UIDL (it is optional).
    pub async fn unique_ids(&mut self) -> Result<Option<HashMap<u32, String>>, MailboxError> {
        match self.command("UIDL", "UIDL").await {
            Ok(_) => {}
            Err(MailboxError::Refused { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let text = self.multiline(16 * 1024 * 1024).await?;
        let mut out = HashMap::new();
        for line in String::from_utf8_lossy(&text).lines() {
            let mut parts = line.split_whitespace();
            match (parts.next().and_then(|n| n.parse().ok()), parts.next()) {
                (Some(n), Some(uid)) => out.insert(n, uid.to_owned()),
                _ => return Err(MailboxError::Protocol(self.host.clone(), format!("unreadable UIDL line {line:?}"))),
            };
        }
        Ok(Some(out))
    }

    /// One whole message (RETR).
    pub async fn retrieve(&mut self, n: u32) -> Result<Vec<u8>, MailboxError> {
        self.command(&format!("RETR {n}"), "RETR").await?;
        self.multiline(MAX_MESSAGE_BYTES * 2).await
    }

    /// Marks a message for deletion at QUIT (DELE).
    pub async fn delete(&mut self, n: u32) -> Result<(), MailboxError> {
        self.command(&format!("DELE {n}"), "DELE").await.map(|_| ())
    }

    /// Ends the session; the server now removes what was marked.
    pub async fn quit(mut self) -> Result<(), MailboxError> {
        self.command("QUIT", "QUIT").await.map(|_| ())
    }
}
