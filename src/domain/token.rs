//! The two kinds of token that appear in supporters' links.
//!
//! - [`ConfirmToken`]: 256 random bits, shown once in the confirmation mail;
//!   only its SHA-256 is stored, so a database leak confirms nobody.
//! - [`SignedToken`]: an HMAC over (purpose, subscriber, list). It needs no
//!   storage, never expires (an unsubscribe link in a three-year-old mail must
//!   still work), and cannot be forged without the server's secret key.
//!   One copy of an update sent for several of a person's lists carries an
//!   unsubscribe token for all of them (layout version 2, a list of lists);
//!   a copy for one list keeps the version 1 layout, and every version 1
//!   link ever mailed still verifies.

use super::{ParseError, hex_lower, sha256_hex};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// A fresh or presented confirmation token.
///
/// A token is 6 bytes of its issue time (milliseconds, big-endian) followed
/// by 32 random bytes. The random part is the secret; the time part only
/// orders the stored keys ([`ConfirmToken::hash`]) by when they were made,
/// so a busy signup page appends to the token index instead of writing a
/// random page of it for every subscribe. Tokens issued before this layout
/// (32 random bytes alone) are still accepted and keep their old key.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfirmToken(String);

impl std::fmt::Debug for ConfirmToken {
    // Tokens are credentials: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmToken(..)")
    }
}

/// Bytes of issue time in front of the secret.
const TIME_BYTES: usize = 6;
/// The secret: 256 random bits.
const SECRET_BYTES: usize = 32;

impl ConfirmToken {
    /// The issue time, then 32 bytes from the OS CSPRNG.
    pub fn generate(issued_at: DateTime<Utc>) -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TIME_BYTES + SECRET_BYTES];
        // Before 1970 or after the year 10889 the time part wraps; only the
        // order of keys would suffer, never the secret.
        let millis = issued_at.timestamp_millis().to_be_bytes();
        bytes[..TIME_BYTES].copy_from_slice(&millis[millis.len() - TIME_BYTES..]);
        getrandom::fill(&mut bytes[TIME_BYTES..])?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts only the exact shapes we hand out (this layout, or a bare
    /// secret from before it), so garbage never reaches SQL.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match URL_SAFE_NO_PAD.decode(raw) {
            Ok(bytes) if bytes.len() == SECRET_BYTES || bytes.len() == TIME_BYTES + SECRET_BYTES => {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(ParseError("that link is not valid")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database stores and looks up: the issue time in hex, then
    /// the SHA-256 of the whole token (a bare secret's key is its SHA-256
    /// alone, as it was stored). The time reveals nothing the mail's own
    /// date does not, and the hash cannot be turned back into a link.
    pub fn hash(&self) -> String {
        let digest = sha256_hex(self.0.as_bytes());
        match URL_SAFE_NO_PAD.decode(&self.0) {
            Ok(bytes) if bytes.len() == TIME_BYTES + SECRET_BYTES => {
                let mut key = hex_lower(&bytes[..TIME_BYTES]);
                key.push_str(&digest);
                key
            }
            _ => digest,
        }
    }
}

/// What a signed token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Unsubscribe = 1,
    Preferences = 2,
}

/// A verified (or freshly minted) signed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedToken {
    pub purpose: TokenPurpose,
    pub subscriber: Uuid,
    /// The list an unsubscribe token is for (the first, when it is for
    /// several); nil for preference tokens.
    pub list: Uuid,
    /// The other lists an unsubscribe token is for, in order; usually none.
    pub more_lists: Vec<Uuid>,
}

/// One list: purpose, subscriber, list.
const VERSION: u8 = 1;
/// Several lists: purpose, subscriber, then 2 to [`MAX_TOKEN_LISTS`] lists.
const VERSION_LISTS: u8 = 2;
const HEAD_LEN: usize = 1 + 1 + 16;
const PAYLOAD_LEN: usize = HEAD_LEN + 16;
const MAC_LEN: usize = 16;
/// The most lists one unsubscribe token names. It keeps the link (and the
/// `List-Unsubscribe` header line carrying it) well under 1,000 characters;
/// an update may go to no more lists than this (see `services::updates`).
pub const MAX_TOKEN_LISTS: usize = 32;
/// The longest token [`SignedToken::verify`] looks at.
const MAX_RAW_LEN: usize = (HEAD_LEN + 16 * MAX_TOKEN_LISTS + MAC_LEN).div_ceil(3) * 4;

impl SignedToken {
    pub fn unsubscribe(subscriber: Uuid, list: Uuid) -> Self {
        Self { purpose: TokenPurpose::Unsubscribe, subscriber, list, more_lists: Vec::new() }
    }

    /// An unsubscribe token for every one of `lists` (one copy of an
    /// update sent for them all). `None` when `lists` is empty or longer
    /// than [`MAX_TOKEN_LISTS`].
    pub fn unsubscribe_lists(subscriber: Uuid, lists: &[Uuid]) -> Option<Self> {
        let (first, more) = lists.split_first()?;
        if lists.len() > MAX_TOKEN_LISTS {
            return None;
        }
        Some(Self { purpose: TokenPurpose::Unsubscribe, subscriber, list: *first, more_lists: more.to_vec() })
    }

    pub fn preferences(subscriber: Uuid) -> Self {
        Self { purpose: TokenPurpose::Preferences, subscriber, list: Uuid::nil(), more_lists: Vec::new() }
    }

    /// Every list the token is for, the first first.
    pub fn lists(&self) -> impl Iterator<Item = Uuid> + '_ {
        std::iter::once(self.list).chain(self.more_lists.iter().copied())
    }

    fn payload(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(PAYLOAD_LEN + 16 * self.more_lists.len());
        p.push(if self.more_lists.is_empty() { VERSION } else { VERSION_LISTS });
        p.push(self.purpose as u8);
        p.extend_from_slice(self.subscriber.as_bytes());
        for list in self.lists() {
            p.extend_from_slice(list.as_bytes());
        }
        p
    }

    fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"tidings-link-token");
        mac.update(payload);
        mac
    }

    /// The URL-safe string placed in links.
    pub fn encode(&self, key: &[u8]) -> String {
        let payload = self.payload();
        let tag = Self::mac(key, &payload).finalize().into_bytes();
        let mut out = Vec::with_capacity(payload.len() + MAC_LEN);
        out.extend_from_slice(&payload);
        // A 128-bit truncated HMAC-SHA256 keeps links short and is still far
        // beyond guessing.
        out.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Checks shape, version, purpose and MAC (in constant time).
    pub fn verify(raw: &str, key: &[u8], purpose: TokenPurpose) -> Result<Self, ParseError> {
        let invalid = ParseError("that link is not valid");
        if raw.len() > MAX_RAW_LEN {
            return Err(invalid);
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid.clone())?;
        let lists = bytes.len().saturating_sub(HEAD_LEN + MAC_LEN) / 16;
        let shape_ok = match bytes.first() {
            Some(&VERSION) => bytes.len() == PAYLOAD_LEN + MAC_LEN,
            // Several lists (at least two; one list is always version 1).
            Some(&VERSION_LISTS) => {
                (2..=MAX_TOKEN_LISTS).contains(&lists) && bytes.len() == HEAD_LEN + 16 * lists + MAC_LEN
            }
            _ => false,
        };
        if !shape_ok || bytes[1] != purpose as u8 {
            return Err(invalid);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        Self::mac(key, payload).verify_truncated_left(tag).map_err(|_| invalid.clone())?;
        let id = |range: std::ops::Range<usize>| Uuid::from_slice(&payload[range]).map_err(|_| invalid.clone());
        let subscriber = id(2..18)?;
        let mut all = (0..lists).map(|i| id(HEAD_LEN + 16 * i..HEAD_LEN + 16 * (i + 1)));
        let list = all.next().ok_or_else(|| invalid.clone())??;
        let more_lists = all.collect::<Result<Vec<_>, _>>()?;
        Ok(Self { purpose, subscriber, list, more_lists })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn confirm_tokens_are_256_bit_and_hash_stably() {
        let now = Utc::now();
        let t = ConfirmToken::generate(now).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(t.as_str()).unwrap().len(), 38);
        let again = ConfirmToken::parse(t.as_str()).unwrap();
        assert_eq!(t.hash(), again.hash());
        assert_ne!(t, ConfirmToken::generate(now).unwrap());
        assert!(ConfirmToken::parse("short").is_err());
        assert!(ConfirmToken::parse("' OR 1=1 --").is_err());
        // One byte short of either layout.
        assert!(ConfirmToken::parse(&URL_SAFE_NO_PAD.encode([7u8; 37])).is_err());
    }

    #[test]
    fn confirm_token_keys_follow_issue_time() {
        let earlier = Utc::now();
        let later = earlier + chrono::Duration::milliseconds(1);
        let mut keys: Vec<String> =
            (0..50).map(|i| ConfirmToken::generate(if i % 2 == 0 { later } else { earlier }).unwrap().hash()).collect();
        assert!(keys.iter().all(|k| k.len() == 12 + 64));
        keys.sort();
        // Every key made at the earlier time sorts before every later one.
        let prefix = |t: DateTime<Utc>| hex_lower(&t.timestamp_millis().to_be_bytes()[2..]);
        assert!(keys[..25].iter().all(|k| k.starts_with(&prefix(earlier))));
        assert!(keys[25..].iter().all(|k| k.starts_with(&prefix(later))));
    }

    #[test]
    fn tokens_from_before_the_time_prefix_keep_their_key() {
        let bare = URL_SAFE_NO_PAD.encode([42u8; 32]);
        let token = ConfirmToken::parse(&bare).unwrap();
        assert_eq!(token.hash(), sha256_hex(bare.as_bytes()));
    }

    #[test]
    fn signed_tokens_round_trip() {
        let s = Uuid::now_v7();
        let l = Uuid::now_v7();
        let raw = SignedToken::unsubscribe(s, l).encode(KEY);
        let back = SignedToken::verify(&raw, KEY, TokenPurpose::Unsubscribe).unwrap();
        assert_eq!((back.subscriber, back.list), (s, l));
    }

    #[test]
    fn one_token_can_name_several_lists_and_old_links_still_verify() {
        let s = Uuid::now_v7();
        let lists: Vec<Uuid> = (0..MAX_TOKEN_LISTS).map(|_| Uuid::now_v7()).collect();
        for n in [1, 2, 3, MAX_TOKEN_LISTS] {
            let raw = SignedToken::unsubscribe_lists(s, &lists[..n]).unwrap().encode(KEY);
            assert!(raw.len() <= MAX_RAW_LEN, "{n} lists: {} chars", raw.len());
            let back = SignedToken::verify(&raw, KEY, TokenPurpose::Unsubscribe).unwrap();
            assert_eq!(back.subscriber, s);
            assert_eq!(back.lists().collect::<Vec<_>>(), lists[..n].to_vec());
        }
        // One list is exactly the version 1 link every old mail carries.
        let one = SignedToken::unsubscribe_lists(s, &lists[..1]).unwrap().encode(KEY);
        assert_eq!(one, SignedToken::unsubscribe(s, lists[0]).encode(KEY));
        assert!(SignedToken::unsubscribe_lists(s, &[]).is_none());
        let too_many: Vec<Uuid> = (0..=MAX_TOKEN_LISTS).map(|_| Uuid::now_v7()).collect();
        assert!(SignedToken::unsubscribe_lists(s, &too_many).is_none());
        // A list cannot be dropped or added without the key.
        let raw = SignedToken::unsubscribe_lists(s, &lists[..3]).unwrap().encode(KEY);
        let bytes = URL_SAFE_NO_PAD.decode(&raw).unwrap();
        let mut cut = bytes[..HEAD_LEN + 32].to_vec();
        cut.extend_from_slice(&bytes[bytes.len() - MAC_LEN..]);
        assert!(SignedToken::verify(&URL_SAFE_NO_PAD.encode(cut), KEY, TokenPurpose::Unsubscribe).is_err());
    }

    #[test]
    fn signed_tokens_resist_forgery_and_misuse() {
        let s = Uuid::now_v7();
        let raw = SignedToken::unsubscribe(s, Uuid::now_v7()).encode(KEY);
        // Wrong key.
        assert!(SignedToken::verify(&raw, b"another key", TokenPurpose::Unsubscribe).is_err());
        // Wrong purpose.
        assert!(SignedToken::verify(&raw, KEY, TokenPurpose::Preferences).is_err());
        // Any flipped byte.
        let mut bytes = URL_SAFE_NO_PAD.decode(&raw).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&bytes);
            assert!(SignedToken::verify(&tampered, KEY, TokenPurpose::Unsubscribe).is_err(), "byte {i}");
            bytes[i] ^= 1;
        }
        assert!(SignedToken::verify("", KEY, TokenPurpose::Unsubscribe).is_err());
        assert!(SignedToken::verify(&"A".repeat(500), KEY, TokenPurpose::Unsubscribe).is_err());
    }
}
