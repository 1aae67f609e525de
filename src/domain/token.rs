//! The two kinds of token that appear in supporters' links.
//!
//! - [`ConfirmToken`]: 256 random bits, shown once in the confirmation mail;
//!   only its SHA-256 is stored, so a database leak confirms nobody.
//! - [`SignedToken`]: an HMAC over (purpose, subscriber, list). It needs no
//!   storage, never expires (an unsubscribe link in a three-year-old mail must
//!   still work), and cannot be forged without the server's secret key.

use super::{ParseError, sha256_hex};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// A fresh or presented confirmation token.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfirmToken(String);

impl std::fmt::Debug for ConfirmToken {
    // Tokens are credentials: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmToken(..)")
    }
}

impl ConfirmToken {
    /// 32 bytes from the OS CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts only the exact shape we hand out, so garbage never reaches SQL.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match URL_SAFE_NO_PAD.decode(raw) {
            Ok(bytes) if bytes.len() == 32 => Ok(Self(raw.to_owned())),
            _ => Err(ParseError("that link is not valid")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database stores and looks up.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
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
    /// The list an unsubscribe token is for; nil for preference tokens.
    pub list: Uuid,
}

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 1 + 16 + 16;
const MAC_LEN: usize = 16;

impl SignedToken {
    pub fn unsubscribe(subscriber: Uuid, list: Uuid) -> Self {
        Self { purpose: TokenPurpose::Unsubscribe, subscriber, list }
    }

    pub fn preferences(subscriber: Uuid) -> Self {
        Self { purpose: TokenPurpose::Preferences, subscriber, list: Uuid::nil() }
    }

    fn payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut p = [0u8; PAYLOAD_LEN];
        p[0] = VERSION;
        p[1] = self.purpose as u8;
        p[2..18].copy_from_slice(self.subscriber.as_bytes());
        p[18..34].copy_from_slice(self.list.as_bytes());
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
        let mut out = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
        out.extend_from_slice(&payload);
        // A 128-bit truncated HMAC-SHA256 keeps links short and is still far
        // beyond guessing.
        out.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Checks shape, version, purpose and MAC (in constant time).
    pub fn verify(raw: &str, key: &[u8], purpose: TokenPurpose) -> Result<Self, ParseError> {
        let invalid = ParseError("that link is not valid");
        if raw.len() > 128 {
            return Err(invalid);
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid.clone())?;
        if bytes.len() != PAYLOAD_LEN + MAC_LEN || bytes[0] != VERSION || bytes[1] != purpose as u8 {
            return Err(invalid);
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        Self::mac(key, payload).verify_truncated_left(tag).map_err(|_| invalid.clone())?;
        let id = |range: std::ops::Range<usize>| Uuid::from_slice(&payload[range]).map_err(|_| invalid.clone());
        Ok(Self { purpose, subscriber: id(2..18)?, list: id(18..34)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn confirm_tokens_are_256_bit_and_hash_stably() {
        let t = ConfirmToken::generate().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(t.as_str()).unwrap().len(), 32);
        let again = ConfirmToken::parse(t.as_str()).unwrap();
        assert_eq!(t.hash(), again.hash());
        assert_ne!(t, ConfirmToken::generate().unwrap());
        assert!(ConfirmToken::parse("short").is_err());
        assert!(ConfirmToken::parse("' OR 1=1 --").is_err());
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
