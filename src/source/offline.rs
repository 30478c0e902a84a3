//! Starting libgit2 for a process that makes no network connection through it.
//!
//! libgit2's one-time global initialisation builds its TLS context, and OpenSSL then parses the
//! whole system CA bundle (`/etc/ssl/certs/ca-certificates.crt`: about 17 ms of CPU, a tenth of
//! a large `plan`). Commands that only read the local repository (`plan`, `validate`, `status`,
//! `history`) never use that context, so [`init_without_ca_roots`] initialises libgit2 with the
//! default CA locations pointed at nothing. TLS is not weakened: the context is still created
//! and still verifies certificates, against an empty store, so an HTTPS connection attempted
//! through it by mistake fails closed. The service and `apply` (which push and fetch, and whose
//! forge reporters read `SSL_CERT_FILE`) initialise libgit2 the ordinary way.
//! In: nothing. Out: libgit2 initialised; the environment exactly as it was.

use std::ffi::OsString;

/// The variables OpenSSL (and git2's `openssl-probe`) read for the default CA locations.
const CA_VARS: [(&str, &str); 2] = [
    ("SSL_CERT_FILE", "/dev/null"),
    ("SSL_CERT_DIR", "/nonexistent/pgitops-offline"),
];

/// Initialises libgit2 with an empty CA store (see the module doc). Call it first thing in
/// `main`, before any other thread exists: it sets two environment variables for the duration
/// of the call and then restores them (a later libgit2 call does not initialise again).
pub fn init_without_ca_roots() {
    let saved: Vec<(&str, Option<OsString>)> = CA_VARS
        .iter()
        .map(|(k, _)| (*k, std::env::var_os(k)))
        .collect();
    for (k, v) in CA_VARS {
        std::env::set_var(k, v);
    }
    // Any git2 entry point runs the global initialisation once; an in-memory config is the
    // cheapest. Its failure would only mean libgit2 initialises later, the ordinary way.
    let _ = git2::Config::new();
    for (k, v) in saved {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
}
