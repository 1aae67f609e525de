//! VERP return paths: every message Tidings sends to a supporter goes out
//! with an envelope sender that names it, so a bounce or complaint that
//! comes back to that address can be tied to exactly what was sent even
//! when the report quotes nothing useful. VERP is on whenever the bounce
//! domain (`TIDINGS_VERP_DOMAIN`) is set.
//!
//! Two kinds of tag, each signed with its own HMAC context:
//! - a copy of an update: `tb-{update}{subscriber}{tag}@{domain}`, the ids
//!   16 bytes each: 61 characters, within the 64 a local part may have;
//! - a transactional message (confirmation, re-permission request, data
//!   copy, test copy …): `tt-{outbox}{tag}@{domain}`, naming its outbox row:
//!   35 characters.
//!
//! `tag` is a 4-byte HMAC, and everything is lower-case base32 (mail systems
//! may lower-case local parts). The tag stops anyone from forging bounces
//! that would mark supporters as bounced (a guess succeeds once in four
//! billion).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const TAG_LEN: usize = 4;
const COPY_PREFIX: &str = "tb-";
const COPY_LEN: usize = 16 + 16 + TAG_LEN;
const MAIL_PREFIX: &str = "tt-";
const MAIL_LEN: usize = 16 + TAG_LEN;

/// What a VERP address whose tag verified names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    /// The copy of `update` sent to `subscriber`.
    Copy { update: Uuid, subscriber: Uuid },
    /// The transactional message in this outbox row.
    Mail { outbox: Uuid },
}

/// The HMAC of `ids` under `context` (each kind of tag has its own, so one
/// kind's tag never verifies as another's).
fn tag(key: &[u8], context: &[u8], ids: &[&Uuid]) -> [u8; TAG_LEN] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(context);
    for id in ids {
        mac.update(id.as_bytes());
    }
    let full = mac.finalize().into_bytes();
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&full[..TAG_LEN]);
    t
}

const COPY_CONTEXT: &[u8] = b"tidings-verp";
const MAIL_CONTEXT: &[u8] = b"tidings-verp-mail";

/// Constant-time comparison of a tag.
fn same_tag(expected: &[u8; TAG_LEN], given: &[u8]) -> bool {
    given.len() == TAG_LEN && expected.iter().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
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
    let mut raw = Vec::with_capacity(COPY_LEN);
    raw.extend_from_slice(update.as_bytes());
    raw.extend_from_slice(subscriber.as_bytes());
    raw.extend_from_slice(&tag(key, COPY_CONTEXT, &[&update, &subscriber]));
    format!("{COPY_PREFIX}{}@{domain}", base32(&raw))
}

/// The return path for the transactional message in outbox row `outbox`.
pub fn encode_mail(key: &[u8], domain: &str, outbox: Uuid) -> String {
    let mut raw = Vec::with_capacity(MAIL_LEN);
    raw.extend_from_slice(outbox.as_bytes());
    raw.extend_from_slice(&tag(key, MAIL_CONTEXT, &[&outbox]));
    format!("{MAIL_PREFIX}{}@{domain}", base32(&raw))
}

/// What a VERP address names, if it is one of ours and its tag verifies.
/// Case-insensitive.
pub fn decode(key: &[u8], address: &str) -> Option<Tagged> {
    let local = address.trim().trim_matches(['<', '>']).rsplit_once('@')?.0.to_ascii_lowercase();
    if let Some(code) = local.strip_prefix(COPY_PREFIX) {
        let raw = unbase32(code)?;
        if raw.len() != COPY_LEN {
            return None;
        }
        let update = Uuid::from_slice(&raw[..16]).ok()?;
        let subscriber = Uuid::from_slice(&raw[16..32]).ok()?;
        let expected = tag(key, COPY_CONTEXT, &[&update, &subscriber]);
        return same_tag(&expected, &raw[32..]).then_some(Tagged::Copy { update, subscriber });
    }
    let raw = unbase32(local.strip_prefix(MAIL_PREFIX)?)?;
    if raw.len() != MAIL_LEN {
        return None;
    }
    let outbox = Uuid::from_slice(&raw[..16]).ok()?;
    let expected = tag(key, MAIL_CONTEXT, &[&outbox]);
    same_tag(&expected, &raw[16..]).then_some(Tagged::Mail { outbox })
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
        let copy = Some(Tagged::Copy { update: u, subscriber: s });
        assert_eq!(decode(KEY, &addr), copy);
        assert_eq!(decode(KEY, &addr.to_uppercase()), copy, "case-insensitive");
        assert_eq!(decode(KEY, &format!("<{addr}>")), copy);

        let o = Uuid::now_v7();
        let mail = encode_mail(KEY, "mail.example.org", o);
        assert!(mail.starts_with("tt-") && mail.ends_with("@mail.example.org"), "{mail}");
        assert_eq!(decode(KEY, &mail), Some(Tagged::Mail { outbox: o }));
        assert_eq!(decode(KEY, &mail.to_uppercase()), Some(Tagged::Mail { outbox: o }), "case-insensitive");
    }

    #[test]
    fn a_copy_tag_written_as_before_still_verifies() {
        // The form and HMAC context of update copies are unchanged: a
        // return path written by an earlier release is still ours.
        let (u, s) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(KEY).unwrap();
        mac.update(b"tidings-verp");
        mac.update(u.as_bytes());
        mac.update(s.as_bytes());
        let mut raw = [u.as_bytes().as_slice(), s.as_bytes(), &mac.finalize().into_bytes()[..4]].concat();
        let old = format!("tb-{}@x.test", base32(&raw));
        assert_eq!(decode(KEY, &old), Some(Tagged::Copy { update: u, subscriber: s }));
        raw[35] ^= 1;
        assert_eq!(decode(KEY, &format!("tb-{}@x.test", base32(&raw))), None);
    }

    #[test]
    fn one_kind_of_tag_never_passes_as_the_other() {
        let o = Uuid::now_v7();
        let mail = encode_mail(KEY, "x.test", o);
        // The same bytes under the other prefix are refused (wrong length),
        // and a mail tag's HMAC is not a copy's.
        assert_eq!(decode(KEY, &mail.replacen("tt-", "tb-", 1)), None);
        let mut raw = o.as_bytes().to_vec();
        raw.extend_from_slice(&tag(KEY, COPY_CONTEXT, &[&o]));
        assert_eq!(decode(KEY, &format!("tt-{}@x.test", base32(&raw))), None);
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
        let mail = encode_mail(KEY, "x.test", Uuid::now_v7());
        assert_eq!(decode(b"another key", &mail), None);
        let mut forged = mail.into_bytes();
        forged[3] = if forged[3] == b'a' { b'b' } else { b'a' };
        assert_eq!(decode(KEY, &String::from_utf8(forged).unwrap()), None);
        for bad in ["", "someone@example.org", "tb-@x.test", "tb-!!!@x.test", "tt-@x.test", "tt-!!!@x.test"] {
            assert_eq!(decode(KEY, bad), None, "{bad}");
        }
    }
}
