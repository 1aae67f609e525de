//! The sign-up proof-of-work challenge (README, "Abuse resistance"), after
//! the open ALTCHA scheme, served by Tidings itself.
//!
//! `GET /subscribe/challenge` issues `{algorithm: "SHA-256", challenge,
//! maxnumber, salt, signature}`: `challenge` is hex(SHA-256(salt ‖ number))
//! for a secret `number` in `0..=maxnumber`, `salt` carries its expiry
//! (`…?expires=UNIX`, covered by the hash), and `signature` is
//! hex(HMAC-SHA-256(key, challenge)) with a key derived from the secret key.
//! The browser finds `number` by brute force (`/assets/challenge.js`) and
//! posts base64(JSON {algorithm, challenge, number, salt, signature}) as the
//! `altcha` field. This module checks a solution's signature, hash and
//! expiry; the caller then notes its challenge as used in the database
//! (`used_challenges`, kept until it expires), so a solution is accepted
//! once on any instance.

use crate::domain::{hex_lower, sha256_hex};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long an issued challenge may be solved and used.
pub const LIFETIME_SECONDS: i64 = 20 * 60;

/// The longest payload read (a real one is about 250 characters).
const MAX_PAYLOAD: usize = 2048;

/// Why a posted solution was refused. Never shown in detail to the client
/// (one message covers them all), but logged and tested.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChallengeError {
    #[error("no solution was posted")]
    Missing,
    #[error("the solution could not be read")]
    Malformed,
    #[error("the challenge was not issued by this server")]
    BadSignature,
    #[error("the number does not solve the challenge")]
    WrongNumber,
    #[error("the challenge has expired")]
    Expired,
    /// Found by the caller, which keeps the used challenges.
    #[error("the challenge was already used")]
    Reused,
}

/// One issued challenge, as `GET /subscribe/challenge` answers it.
#[derive(Debug, serde::Serialize)]
pub struct Challenge {
    pub algorithm: &'static str,
    pub challenge: String,
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
}

/// A posted solution.
#[derive(serde::Deserialize)]
struct Solution {
    algorithm: String,
    challenge: String,
    number: u64,
    salt: String,
    signature: String,
}

pub struct Challenges {
    key: Vec<u8>,
    max_number: u64,
}

/// A solution that holds: its challenge, to be noted as used until it
/// expires (UNIX seconds).
#[derive(Debug, PartialEq, Eq)]
pub struct Solved {
    pub challenge: String,
    pub expires: i64,
}

impl Challenges {
    /// `secret_key` is the instance's secret; the signing key is derived
    /// from it, so it signs nothing else.
    pub fn new(secret_key: &[u8], max_number: u64) -> Self {
        let key = mac(secret_key, b"tidings subscribe challenge v1");
        Self { key, max_number }
    }

    /// A fresh challenge, valid for [`LIFETIME_SECONDS`] from `now`.
    pub fn issue(&self, now: i64) -> Result<Challenge, getrandom::Error> {
        let mut random = [0u8; 20];
        getrandom::fill(&mut random)?;
        let (salt_bytes, number_bytes) = random.split_at(12);
        let mut n = [0u8; 8];
        n.copy_from_slice(number_bytes);
        let number = u64::from_le_bytes(n) % (self.max_number + 1);
        let salt = format!("{}?expires={}", hex_lower(salt_bytes), now + LIFETIME_SECONDS);
        let challenge = sha256_hex(format!("{salt}{number}"));
        let signature = hex_lower(&mac(&self.key, challenge.as_bytes()));
        Ok(Challenge { algorithm: "SHA-256", challenge, maxnumber: self.max_number, salt, signature })
    }

    /// Checks a posted solution (base64 JSON) at `now`: issued by us, solved,
    /// not expired. Whether it was used before is the caller's to check.
    pub fn verify(&self, payload: Option<&str>, now: i64) -> Result<Solved, ChallengeError> {
        let payload = payload.map(str::trim).filter(|p| !p.is_empty()).ok_or(ChallengeError::Missing)?;
        if payload.len() > MAX_PAYLOAD {
            return Err(ChallengeError::Malformed);
        }
        let json = base64::engine::general_purpose::STANDARD.decode(payload).map_err(|_| ChallengeError::Malformed)?;
        let s: Solution = serde_json::from_slice(&json).map_err(|_| ChallengeError::Malformed)?;
        if s.algorithm != "SHA-256" {
            return Err(ChallengeError::Malformed);
        }
        let signature = hex_decode(&s.signature).ok_or(ChallengeError::BadSignature)?;
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).map_err(|_| ChallengeError::BadSignature)?;
        m.update(s.challenge.as_bytes());
        m.verify_slice(&signature).map_err(|_| ChallengeError::BadSignature)?;
        if sha256_hex(format!("{}{}", s.salt, s.number)) != s.challenge {
            return Err(ChallengeError::WrongNumber);
        }
        let expires = expiry(&s.salt).ok_or(ChallengeError::Malformed)?;
        if now >= expires {
            return Err(ChallengeError::Expired);
        }
        Ok(Solved { challenge: s.challenge, expires })
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length; this cannot fail.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The `expires` parameter of a salt (`…?expires=UNIX&…`).
fn expiry(salt: &str) -> Option<i64> {
    let (_, params) = salt.split_once('?')?;
    params.split('&').find_map(|p| p.strip_prefix("expires=")).and_then(|v| v.parse().ok())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(c: &Challenge) -> String {
        let number = (0..=c.maxnumber).find(|n| sha256_hex(format!("{}{n}", c.salt)) == c.challenge).unwrap();
        let json = serde_json::json!({
            "algorithm": c.algorithm, "challenge": c.challenge, "number": number,
            "salt": c.salt, "signature": c.signature,
        });
        base64::engine::general_purpose::STANDARD.encode(json.to_string())
    }

    #[test]
    fn a_solution_holds_until_expiry_and_forgeries_fail() {
        let challenges = Challenges::new(b"0123456789abcdef0123456789abcdef", 1000);
        let c = challenges.issue(1_000).unwrap();
        assert!(c.salt.ends_with(&format!("?expires={}", 1_000 + LIFETIME_SECONDS)));
        let payload = solve(&c);
        let solved = Solved { challenge: c.challenge.clone(), expires: 1_000 + LIFETIME_SECONDS };
        assert_eq!(challenges.verify(Some(&payload), 1_001), Ok(solved));
        assert_eq!(challenges.verify(None, 1_002), Err(ChallengeError::Missing));
        assert_eq!(challenges.verify(Some("%%%"), 1_002), Err(ChallengeError::Malformed));

        let late = challenges.issue(1_000).unwrap();
        assert_eq!(challenges.verify(Some(&solve(&late)), 1_000 + LIFETIME_SECONDS), Err(ChallengeError::Expired));

        let other = Challenges::new(b"another key, another key, another", 1000);
        let foreign = other.issue(1_000).unwrap();
        assert_eq!(challenges.verify(Some(&solve(&foreign)), 1_001), Err(ChallengeError::BadSignature));
    }
}
