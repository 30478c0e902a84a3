//! A declared password against the verifier `pg_authid` stores (pure).
//!
//! In: the role name, the declared `password` (plaintext, or an md5 / SCRAM-SHA-256 verifier)
//! and the stored `rolpassword`. Out: [`Verdict`]. A declared verifier is compared as text; a
//! plaintext password is checked by recomputing the SCRAM keys from the stored salt and
//! iteration count (RFC 5802, RFC 7677: SaltedPassword = PBKDF2-HMAC-SHA-256, StoredKey =
//! H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key"), with
//! SASLprep as PostgreSQL applies it), or md5(password || name) for an md5 verifier. Neither
//! value ever leaves this module.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Same,
    Differs,
}

fn is_md5(v: &str) -> bool {
    v.len() == 35 && v.starts_with("md5") && v[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `declared` is what `stored` verifies.
pub fn check(name: &str, declared: &str, stored: Option<&str>) -> Verdict {
    let Some(stored) = stored else {
        return Verdict::Differs;
    };
    let same = if is_md5(declared) || declared.starts_with("SCRAM-SHA-256$") {
        declared == stored
    } else if is_md5(stored) {
        postgres_protocol::password::md5(declared.as_bytes(), name) == stored
    } else {
        scram_matches(declared, stored).unwrap_or(false)
    };
    if same {
        Verdict::Same
    } else {
        Verdict::Differs
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key size");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// `Hi(password, salt, i)` of RFC 5802 (PBKDF2 with HMAC-SHA-256, one block). The keyed HMAC
/// state is set up once and cloned per iteration (half the hashing of keying it each time).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(password).expect("any key size");
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// Whether the plaintext `password` yields the keys of the SCRAM verifier `stored`
/// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`).
fn scram_matches(password: &str, stored: &str) -> Option<bool> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (iter_salt, keys) = stored.strip_prefix("SCRAM-SHA-256$")?.split_once('$')?;
    let (iter, salt) = iter_salt.split_once(':')?;
    let (stored_key, server_key) = keys.split_once(':')?;
    let iterations: u32 = iter.parse().ok().filter(|n| *n > 0 && *n <= 10_000_000)?;
    let salt = b64.decode(salt).ok()?;
    // PostgreSQL skips SASLprep for a password it does not accept (as libpq does).
    let prepared = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_string());
    let salted = hi(prepared.as_bytes(), &salt, iterations);
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored_now = Sha256::digest(client_key);
    let server_now = hmac(&salted, &[b"Server Key"]);
    Some(b64.encode(stored_now) == stored_key && b64.encode(server_now) == server_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plaintext_password_is_checked_against_the_stored_salt() {
        let stored = postgres_protocol::password::scram_sha_256(b"Pa$s w0rd");
        assert_eq!(check("app", "Pa$s w0rd", Some(&stored)), Verdict::Same);
        assert_eq!(check("app", "Pa$s w0rd!", Some(&stored)), Verdict::Differs);
        assert_eq!(check("app", "Pa$s w0rd", None), Verdict::Differs);
        assert_eq!(check("app", &stored, Some(&stored)), Verdict::Same);
        let md5 = postgres_protocol::password::md5(b"secret", "app");
        assert_eq!(check("app", "secret", Some(&md5)), Verdict::Same);
        assert_eq!(check("other", "secret", Some(&md5)), Verdict::Differs);
        assert_eq!(check("app", &md5, Some(&md5)), Verdict::Same);
        assert_eq!(
            check("app", "x", Some("SCRAM-SHA-256$garbage")),
            Verdict::Differs
        );
    }
}
