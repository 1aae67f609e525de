//! VERP return paths: each copy of an update is sent with an envelope
//! sender that names its delivery, so a bounce that comes back to that
//! address can be tied to the exact (update, subscriber) even when the DSN
//! quotes nothing useful.
//!
//! Form: `tb-{update}{subscriber}{tag}@{domain}`, where the ids are 16 bytes
//! each and `tag` is a 4-byte HMAC, all in lower-case base32 (mail systems
//! may lower-case local parts): 61 characters, within the 64 a local part
//! may have. The tag stops anyone from forging bounces that would mark
//! supporters as bounced (a guess succeeds once in four billion).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const TAG_LEN: usize = 4;
const PREFIX: &str = "tb-";
const RAW_LEN: usize = 16 + 16 + TAG_LEN;

fn tag(key: &[u8], update: Uuid, subscriber: Uuid) -> [u8; TAG_LEN] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"tidings-verp");
    mac.update(update.as_bytes());
    mac.update(subscriber.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&full[..TAG_LEN]);
    t
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The return path for one copy of an update.
pub fn encode(key: &[u8], domain: &str, update: Uuid, subscriber: Uuid) -> String {
    let mut raw = Vec::with_capacity(RAW_LEN);
    raw.extend_from_slice(update.as_bytes());
    raw.extend_from_slice(subscriber.as_bytes());
    raw.extend_from_slice(&tag(key, update, subscriber));
    format!("{PREFIX}{}@{domain}", base32(&raw))
}

/// The (update, subscriber) a VERP address names, if it is one of ours
/// and its tag verifies. Case-insensitive.
pub fn decode(key: &[u8], address: &str) -> Option<(Uuid, Uuid)> {
    let local = address.trim().trim_matches(['<', '>']).rsplit_once('@')?.0;
    let code = local.to_ascii_lowercase().strip_prefix(PREFIX)?.to_owned();
    let raw = unbase32(&code)?;
    if raw.len() != RAW_LEN {
        return None;
    }
    let update = Uuid::from_slice(&raw[..16]).ok()?;
    let subscriber = Uuid::from_slice(&raw[16..32]).ok()?;
    let expected = tag(key, update, subscriber);
    // Constant-time comparison of the tag.
    let diff = expected.iter().zip(&raw[32..]).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    (diff == 0).then_some((update, subscriber))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trips_and_fits_a_local_part() {
        let (u, s) = (Uuid::now_v7(), Uuid::now_v7());
        let addr = encode(KEY, "mail.example.org", u, s);
        let local = addr.split('@').next().unwrap();
        assert!(local.len() <= 64, "{} chars: {local}", local.len());
        assert_eq!(decode(KEY, &addr), Some((u, s)));
        assert_eq!(decode(KEY, &addr.to_uppercase()), Some((u, s)), "case-insensitive");
        assert_eq!(decode(KEY, &format!("<{addr}>")), Some((u, s)));
    }

    #[test]
    fn forged_or_foreign_addresses_are_refused() {
        let (u, s) = (Uuid::now_v7(), Uuid::now_v7());
        let addr = encode(KEY, "x.test", u, s);
        assert_eq!(decode(b"another key", &addr), None);
        let mut forged = addr.clone().into_bytes();
        let i = 6;
        forged[i] = if forged[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(decode(KEY, &String::from_utf8(forged).unwrap()), None);
        for bad in ["", "someone@example.org", "tb-@x.test", "tb-!!!@x.test"] {
            assert_eq!(decode(KEY, bad), None, "{bad}");
        }
    }
}
