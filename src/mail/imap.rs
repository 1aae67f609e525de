//! A small IMAP4rev1 client (RFC 3501, the commands a bounce mailbox needs)
//! : LOGIN, SELECT, `UID SEARCH UNDELETED`, `UID FETCH` (size, then
//! `BODY.PEEK[]`), `UID STORE +FLAGS.SILENT (\Deleted)`, EXPUNGE, LOGOUT,
//! with STARTTLS. A message is flagged `\Deleted` only after it was applied
//! and goes at the EXPUNGE that ends the session; one flagged by a session
//! that broke off is no longer listed (it was applied) and goes at the next
//! session's EXPUNGE. Connections and TLS: [`super::mailbox`].

use super::mailbox::{Io, MAX_MESSAGE_BYTES, MailboxError, MailboxSettings, Tls, timed};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One untagged response line, with any literals it carried.
struct Untagged {
    /// The line's text, literals replaced by `{N}`.
    text: String,
    literals: Vec<Vec<u8>>,
}

/// A logged-in session with the folder selected.
pub struct ImapSession {
    host: String,
    stream: BufReader<Box<dyn Io>>,
    next_tag: u32,
    /// The folder's UIDVALIDITY from SELECT (empty if the server gave
    /// none): a UID names the same message only while it is unchanged.
    uid_validity: String,
}

/// A quoted string (RFC 3501 §4.3); callers have refused control characters.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl ImapSession {
    pub async fn connect(settings: &MailboxSettings) -> Result<Self, MailboxError> {
        let host = settings.host.clone();
        let mut session = Self {
            host: host.clone(),
            stream: BufReader::new(settings.connect().await?),
            next_tag: 1,
            uid_validity: String::new(),
        };
        let greeting = session.line().await?;
        if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
            return Err(MailboxError::Refused {
                host,
                command: "greeting",
                reply: greeting.chars().take(200).collect(),
            });
        }
        if settings.tls == Tls::Upgrade {
            session.command("STARTTLS", "STARTTLS").await?;
            if !session.stream.buffer().is_empty() {
                return Err(MailboxError::Protocol(host, "data arrived before the TLS handshake".into()));
            }
            let upgraded = settings.start_tls(session.stream.into_inner()).await?;
            session = Self {
                host,
                stream: BufReader::new(upgraded),
                next_tag: session.next_tag,
                uid_validity: String::new(),
            };
        }
        session.command(&format!("LOGIN {} {}", quoted(&settings.user), quoted(&settings.password)), "LOGIN").await?;
        let selected = session.command(&format!("SELECT {}", quoted(&settings.folder)), "SELECT").await?;
        session.uid_validity = selected
            .iter()
            .find_map(|u| {
                let upper = u.text.to_ascii_uppercase();
                let at = upper.find("[UIDVALIDITY ")? + "[UIDVALIDITY ".len();
                Some(u.text[at..].split(']').next()?.trim().to_owned())
            })
            .unwrap_or_default();
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

    /// `{N}` at the end of a line announces N bytes of literal data.
    fn literal_size(line: &str) -> Option<u64> {
        let open = line.rfind('{')?;
        line[open + 1..].strip_suffix('}')?.parse().ok()
    }

    /// Sends a command and reads up to its tagged completion; the untagged
    /// responses on the way are returned.
    async fn command(&mut self, text: &str, name: &'static str) -> Result<Vec<Untagged>, MailboxError> {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        let host = self.host.clone();
        timed(&host, async {
            self.stream.get_mut().write_all(format!("{tag} {text}\r\n").as_bytes()).await?;
            self.stream.get_mut().flush().await
        })
        .await?;
        let mut untagged = Vec::new();
        loop {
            let mut line = self.line().await?;
            if let Some(status) = line.strip_prefix(&format!("{tag} ")) {
                return if status.starts_with("OK") {
                    Ok(untagged)
                } else {
                    Err(MailboxError::Refused { host, command: name, reply: status.chars().take(200).collect() })
                };
            }
            let mut literals = Vec::new();
            while let Some(size) = Self::literal_size(&line) {
                if size > MAX_MESSAGE_BYTES * 2 {
                    return Err(MailboxError::Protocol(host, format!("a {size}-byte literal is too large")));
                }
                let mut data = vec![0; size as usize];
                timed(&host, self.stream.read_exact(&mut data)).await?;
                literals.push(data);
                let rest = self.line().await?;
                line.push_str(&rest);
            }
            untagged.push(Untagged { text: line, literals });
        }
    }

    /// UIDs and sizes of the messages not flagged `\Deleted`, oldest first.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, MailboxError> {
        let found = self.command("UID SEARCH UNDELETED", "UID SEARCH").await?;
        let mut uids: Vec<u32> = found
            .iter()
            .filter_map(|u| u.text.strip_prefix("* SEARCH"))
            .flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()).collect::<Vec<u32>>())
            .collect();
        uids.sort_unstable();
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let fetched = self.command(&format!("UID FETCH {set} (RFC822.SIZE)"), "UID FETCH").await?;
        let mut sizes = std::collections::HashMap::new();
        for u in &fetched {
            let words: Vec<&str> = u.text.split(|c: char| c.is_whitespace() || c == '(' || c == ')').collect();
            let after =
                |key: &str| words.iter().position(|w| w.eq_ignore_ascii_case(key)).and_then(|i| words.get(i + 1));
            if let (Some(uid), Some(size)) = (after("UID"), after("RFC822.SIZE"))
                && let (Ok(uid), Ok(size)) = (uid.parse::<u32>(), size.parse::<u64>())
            {
                sizes.insert(uid, size);
            }
        }
        Ok(uids.into_iter().filter_map(|uid| sizes.get(&uid).map(|size| (uid, *size))).collect())
    }

    /// A key for a message that stays the same across sessions:
    /// UIDVALIDITY and UID.
    pub fn unique_id(&self, uid: u32) -> String {
        format!("{}:{uid}", self.uid_validity)
    }

    /// One whole message, without setting `\Seen`.
    pub async fn retrieve(&mut self, uid: u32) -> Result<Vec<u8>, MailboxError> {
        let fetched = self.command(&format!("UID FETCH {uid} (BODY.PEEK[])"), "UID FETCH").await?;
        fetched
            .into_iter()
            .find_map(|u| u.literals.into_iter().next())
            .ok_or_else(|| MailboxError::Protocol(self.host.clone(), format!("message {uid} came back without a body")))
    }

    /// Flags a message `\Deleted` (it goes at the EXPUNGE in [`Self::finish`]).
    pub async fn delete(&mut self, uid: u32) -> Result<(), MailboxError> {
        self.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"), "UID STORE").await.map(|_| ())
    }

    /// Removes the flagged messages and logs out.
    pub async fn finish(mut self) -> Result<(), MailboxError> {
        self.command("EXPUNGE", "EXPUNGE").await?;
        self.command("LOGOUT", "LOGOUT").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_literals() {
        assert_eq!(quoted(r#"pa"ss\word"#), r#""pa\"ss\\word""#);
        assert_eq!(ImapSession::literal_size("* 1 FETCH (UID 7 BODY[] {1234}"), Some(1234));
        assert_eq!(ImapSession::literal_size("* 1 FETCH (UID 7)"), None);
    }
}
