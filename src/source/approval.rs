//! Signed `pgitops approve` notes. Git does not sign notes, so with `[repository] verify` on an
//! approval note counts only when it carries a signature by an allowed key over
//! [`payload`]: the commit and the action id. SSH signs in the namespace `pgitops-approve`
//! (so a commit signature can never stand in for an approval, nor the reverse); GPG signs the
//! same payload detached (its first line names the purpose).
//!
//! In: a commit id, an action id, a signing key (to sign) or the verification settings (to
//! check). Out: the armored signature, or an [`Outcome`]. Tools run with fixed argv; the
//! payload goes on stdin.

use std::path::PathBuf;
use std::process::Command;

use super::verify::{gpg, run, ssh, Mode, Outcome, Reason, Settings};

/// The SSH signature namespace of approvals.
pub const NAMESPACE: &str = "pgitops-approve";

/// The signed text of an approval of `action` on `commit`.
pub fn payload(commit: &str, action: &str) -> String {
    format!("{NAMESPACE}\ncommit {commit}\naction {action}\n")
}

/// A key to sign approvals with.
#[derive(Debug, Clone)]
pub enum Signer {
    /// A private SSH key file (`ssh-keygen -Y sign -f`).
    Ssh(PathBuf),
    /// A GPG key id or fingerprint in the user's keyring (`gpg --local-user`).
    Gpg(String),
}

/// Signs the approval of `action` on `commit`; returns the armored signature.
pub fn sign(signer: &Signer, commit: &str, action: &str) -> Result<String, String> {
    let mut cmd;
    match signer {
        Signer::Ssh(key) => {
            cmd = Command::new("ssh-keygen");
            cmd.args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
                .arg(key);
        }
        Signer::Gpg(id) => {
            cmd = Command::new("gpg");
            cmd.args(["--batch", "--armor", "--detach-sign", "--local-user"])
                .arg(id);
        }
    }
    let tool = if matches!(signer, Signer::Ssh(_)) {
        "ssh-keygen"
    } else {
        "gpg"
    };
    match run(cmd, payload(commit, action).as_bytes()) {
        Ok((true, signature, _)) if signature.contains("-----BEGIN ") => Ok(signature + "\n"),
        Ok((_, _, err)) => Err(format!("{tool} could not sign the approval: {err}")),
        Err(e) => Err(format!("running {tool}: {e}")),
    }
}

/// Checks the signature of an approval note (None: the note is unsigned). With verification
/// off every approval counts.
pub fn verify(settings: &Settings, commit: &str, action: &str, signature: Option<&str>) -> Outcome {
    if !settings.is_on() {
        return Outcome::Verified {
            signer: String::new(),
        };
    }
    let Some(signature) = signature else {
        return Outcome::Unverified {
            reason: Reason::Unsigned,
        };
    };
    let payload = payload(commit, action);
    let is_ssh = signature.starts_with("-----BEGIN SSH SIGNATURE-----");
    let other = |what: &str| Outcome::Unverified {
        reason: Reason::UnknownKey(format!("{what} signature; verify = {:?}", settings.mode)),
    };
    match (settings.mode, is_ssh) {
        (Mode::Off, _) => Outcome::Verified {
            signer: String::new(),
        },
        (Mode::Ssh, true) => ssh(
            &settings.trust,
            NAMESPACE,
            signature.as_bytes(),
            payload.as_bytes(),
        ),
        (Mode::Gpg, false) => gpg(&settings.trust, signature.as_bytes(), payload.as_bytes()),
        (Mode::Ssh, false) => other("an OpenPGP"),
        (Mode::Gpg, true) => other("an SSH"),
    }
}
