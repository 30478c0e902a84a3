//! Commit signatures: is one commit signed by an allowed key?
//!
//! In: a repository, a commit id and the [`Settings`] (`[repository] verify`, with an
//! allowed-signers file for SSH in the format of git's `gpg.ssh.allowedSignersFile`, or a
//! keyring file for GPG). Out: [`Outcome::Verified`] with the signer, or
//! [`Outcome::Unverified`] with a [`Reason`] (unsigned, unknown key, bad signature, the tool
//! failed).
//!
//! No crypto is done here: git2 splits the commit into its signature and the signed payload
//! (`Repository::extract_signature`), both are written to private temporary files, and the
//! real tools check them with fixed argument vectors (no shell): SSH with `ssh-keygen -Y
//! find-principals` then `ssh-keygen -Y verify -n git` (the namespace git signs with), GPG with
//! `gpgv --status-fd` against the keyring only. Signatures are checked as of now: the
//! allowed-signers options `valid-after`/`valid-before` apply to the present time, not to the
//! commit's date.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{Oid, Repository};
use serde::Deserialize;

/// `[repository] verify`: which signatures commits must carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No verification (the default).
    #[default]
    Off,
    /// SSH signatures (`gpg.format = ssh`), checked against `allowed_signers`.
    Ssh,
    /// OpenPGP signatures, checked against `keyring` with `gpgv`.
    Gpg,
}

/// `[repository] unverified`: what an unverified commit in the range to apply does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnverified {
    /// Nothing of a range that contains an unverified commit is applied (the default).
    #[default]
    Block,
    /// Apply up to the last verified commit before the first unverified one.
    Stop,
}

/// The verification settings (off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    /// The allowed-signers file (SSH) or the keyring file (GPG).
    pub trust: PathBuf,
    pub on_unverified: OnUnverified,
}

impl Settings {
    /// Settings from the configuration's parts; a missing or unreadable file is an error that
    /// names the setting.
    pub fn new(
        mode: Mode,
        allowed_signers: Option<&Path>,
        keyring: Option<&Path>,
        on_unverified: OnUnverified,
    ) -> Result<Settings, String> {
        let (key, path) = match mode {
            Mode::Off => return Ok(Settings::default()),
            Mode::Ssh => ("allowed_signers", allowed_signers),
            Mode::Gpg => ("keyring", keyring),
        };
        let name = if mode == Mode::Ssh { "ssh" } else { "gpg" };
        let Some(path) = path else {
            return Err(format!(
                "`repository.verify = \"{name}\"` needs `repository.{key}`"
            ));
        };
        if let Err(e) = std::fs::metadata(path) {
            return Err(format!(
                "`repository.{key}`: cannot read {}: {e}",
                path.display()
            ));
        }
        Ok(Settings {
            mode,
            trust: path.to_path_buf(),
            on_unverified,
        })
    }

    pub fn is_on(&self) -> bool {
        self.mode != Mode::Off
    }
}

/// Why a commit is not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Unsigned,
    /// Signed, but by a key that is not allowed (or of the other kind: GPG under `ssh`).
    UnknownKey(String),
    /// The signature does not match the commit (tampered, or a revoked/expired key).
    BadSignature(String),
    /// The tool could not be run or answered something unexpected.
    ToolFailed(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Unsigned => write!(f, "unsigned"),
            Reason::UnknownKey(d) => write!(f, "unknown key ({d})"),
            Reason::BadSignature(d) => write!(f, "bad signature ({d})"),
            Reason::ToolFailed(d) => write!(f, "verification failed to run ({d})"),
        }
    }
}

impl Reason {
    /// One word for notes and JSON: `unsigned`, `unknown-key`, `bad-signature`, `tool-failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Unsigned => "unsigned",
            Reason::UnknownKey(_) => "unknown-key",
            Reason::BadSignature(_) => "bad-signature",
            Reason::ToolFailed(_) => "tool-failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Signed by an allowed key: `signer` is the SSH principal and key fingerprint, or the GPG
    /// key's fingerprint and user id.
    Verified {
        signer: String,
    },
    Unverified {
        reason: Reason,
    },
}

/// A commit that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub commit: String,
    pub reason: Reason,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = &self.commit[..self.commit.len().min(12)];
        write!(f, "commit {short} is not verified: {}", self.reason)
    }
}

/// The namespace git signs commits in (`ssh-keygen -Y sign -n git`).
const GIT_NAMESPACE: &str = "git";

/// Verifies one commit. Never fails: a tool that cannot run is [`Reason::ToolFailed`].
pub fn verify_commit(repo: &Repository, settings: &Settings, commit: Oid) -> Outcome {
    check(settings, signed_parts(repo, commit))
}

/// What [`check`] needs of a commit: its signature and the signed payload, or why there are
/// none. Reading needs the repository; checking does not, so checks can run on other threads.
pub type SignedParts = Result<(Vec<u8>, Vec<u8>), Reason>;

/// The signature and the signed payload of `commit`.
pub fn signed_parts(repo: &Repository, commit: Oid) -> SignedParts {
    match repo.extract_signature(&commit, None) {
        Ok((s, p)) => Ok((s.to_vec(), p.to_vec())),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Err(Reason::Unsigned),
        Err(e) => Err(Reason::ToolFailed(format!("reading the commit: {e}"))),
    }
}

/// Checks a commit's signature with the tool of `settings.mode`.
pub fn check(settings: &Settings, parts: SignedParts) -> Outcome {
    let unverified = |reason| Outcome::Unverified { reason };
    let (signature, payload) = match parts {
        Ok(p) => p,
        Err(reason) => return unverified(reason),
    };
    let is_ssh = signature.starts_with(b"-----BEGIN SSH SIGNATURE-----");
    match (settings.mode, is_ssh) {
        (Mode::Off, _) => Outcome::Verified {
            signer: String::new(),
        },
        (Mode::Ssh, false) => unverified(Reason::UnknownKey(
            "not an SSH signature; verify = \"ssh\"".into(),
        )),
        (Mode::Gpg, true) => unverified(Reason::UnknownKey(
            "an SSH signature; verify = \"gpg\"".into(),
        )),
        (Mode::Ssh, true) => ssh(&settings.trust, GIT_NAMESPACE, &signature, &payload),
        (Mode::Gpg, false) => gpg(&settings.trust, &signature, &payload),
    }
}

/// A private scratch directory holding the signature (and for gpgv the payload).
fn scratch(signature: &[u8], payload: Option<&[u8]>) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("pgitops-sig").tempdir()?;
    std::fs::write(dir.path().join("sig"), signature)?;
    if let Some(p) = payload {
        std::fs::write(dir.path().join("payload"), p)?;
    }
    Ok(dir)
}

/// Runs `cmd` with `stdin` fed in; returns (success, stdout, stderr).
pub(crate) fn run(mut cmd: Command, stdin: &[u8]) -> std::io::Result<(bool, String, String)> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().expect("piped stdin");
    // A tool that exits early closes its stdin: that is its answer, not an error here.
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

fn tool_failed(what: &str, e: impl std::fmt::Display) -> Outcome {
    Outcome::Unverified {
        reason: Reason::ToolFailed(format!("{what}: {e}")),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Checks an SSH signature made in `namespace` against the allowed signers.
pub(crate) fn ssh(allowed: &Path, namespace: &str, signature: &[u8], payload: &[u8]) -> Outcome {
    if let Err(e) = std::fs::File::open(allowed) {
        return tool_failed(&format!("reading {}", allowed.display()), e);
    }
    let dir = match scratch(signature, None) {
        Ok(d) => d,
        Err(e) => return tool_failed("a temporary file", e),
    };
    let sig = dir.path().join("sig");
    let mut find = Command::new("ssh-keygen");
    find.args(["-Y", "find-principals", "-f"])
        .arg(allowed)
        .arg("-s")
        .arg(&sig);
    let principal = match run(find, b"") {
        Err(e) => return tool_failed("ssh-keygen", e),
        Ok((true, out, _)) if !out.is_empty() => first_line(&out),
        Ok((_, _, err)) => {
            // No principal of the allowed-signers file has the signing key.
            let fingerprint = key_of(&sig, namespace, payload).unwrap_or_default();
            let detail = if fingerprint.is_empty() {
                first_line(&err)
            } else {
                format!("{fingerprint} is not in the allowed signers")
            };
            return Outcome::Unverified {
                reason: Reason::UnknownKey(detail),
            };
        }
    };
    let mut verify = Command::new("ssh-keygen");
    verify
        .args(["-Y", "verify", "-n", namespace, "-f"])
        .arg(allowed)
        .arg("-I")
        .arg(&principal)
        .arg("-s")
        .arg(&sig);
    match run(verify, payload) {
        Err(e) => tool_failed("ssh-keygen", e),
        Ok((true, out, _)) => {
            // `Good "git" signature for alice@example with ED25519 key SHA256:...`
            let key = out.rsplit(" key ").next().unwrap_or("").to_string();
            Outcome::Verified {
                signer: format!("{principal} ({key})"),
            }
        }
        Ok((false, out, err)) => {
            let said = if err.is_empty() { out } else { err };
            Outcome::Unverified {
                reason: Reason::BadSignature(first_line(&said)),
            }
        }
    }
}

/// The fingerprint of the key that made an SSH signature, for the message of an unknown key:
/// `ssh-keygen -Y check-novalidate` checks the signature against its own key and names it.
fn key_of(sig: &Path, namespace: &str, payload: &[u8]) -> Option<String> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-Y", "check-novalidate", "-n", namespace, "-s"])
        .arg(sig);
    let (_, out, err) = run(cmd, payload).ok()?;
    format!("{out}\n{err}")
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .map(str::to_string)
}

/// Checks a detached OpenPGP signature against the keyring only.
pub(crate) fn gpg(keyring: &Path, signature: &[u8], payload: &[u8]) -> Outcome {
    if let Err(e) = std::fs::File::open(keyring) {
        return tool_failed(&format!("reading {}", keyring.display()), e);
    }
    let dir = match scratch(signature, Some(payload)) {
        Ok(d) => d,
        Err(e) => return tool_failed("a temporary file", e),
    };
    // gpgv reads a keyring name without a slash from its home directory: make it absolute.
    let keyring = std::path::absolute(keyring).unwrap_or_else(|_| keyring.to_path_buf());
    let mut cmd = Command::new("gpgv");
    cmd.arg("--homedir")
        .arg(dir.path())
        .arg("--keyring")
        .arg(&keyring)
        .args(["--status-fd", "1"])
        .arg(dir.path().join("sig"))
        .arg(dir.path().join("payload"));
    let (_, status, err) = match run(cmd, b"") {
        Ok(r) => r,
        Err(e) => return tool_failed("gpgv", e),
    };
    let field = |tag: &str| {
        status.lines().find_map(|l| {
            l.strip_prefix("[GNUPG:] ")
                .and_then(|l| l.strip_prefix(tag))
                .map(|rest| rest.trim().to_string())
        })
    };
    let unverified = |reason| Outcome::Unverified { reason };
    if let (Some(good), Some(valid)) = (field("GOODSIG "), field("VALIDSIG ")) {
        let uid = good.split_once(' ').map(|(_, u)| u).unwrap_or("");
        let fingerprint = valid.split_whitespace().next().unwrap_or("");
        return Outcome::Verified {
            signer: format!("{uid} ({fingerprint})"),
        };
    }
    if let Some(bad) = field("BADSIG ") {
        return unverified(Reason::BadSignature(format!("BADSIG {bad}")));
    }
    for tag in ["EXPKEYSIG ", "REVKEYSIG ", "EXPSIG "] {
        if let Some(rest) = field(tag) {
            return unverified(Reason::BadSignature(format!("{}{rest}", tag)));
        }
    }
    if let Some(keyid) = field("NO_PUBKEY ").or_else(|| field("ERRSIG ")) {
        let keyid = keyid.split_whitespace().next().unwrap_or("").to_string();
        return unverified(Reason::UnknownKey(format!(
            "key {keyid} is not in the keyring"
        )));
    }
    unverified(Reason::ToolFailed(format!("gpgv: {}", first_line(&err))))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
