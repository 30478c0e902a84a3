//! Signed commits for the verification tests: SSH signing keys made with `ssh-keygen`, an
//! allowed-signers file, GPG keys in a private GNUPGHOME (when gpg and gpgv are installed),
//! commits made with the real `git commit -S`, and a tampered copy of a signed commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An ed25519 SSH signing key in its own directory.
pub struct SshKey {
    pub dir: tempfile::TempDir,
    pub principal: String,
}

impl SshKey {
    pub fn new(principal: &str) -> SshKey {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", principal, "-f"])
            .arg(&key));
        SshKey {
            dir,
            principal: principal.to_string(),
        }
    }

    pub fn private(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// `principal key-type base64` for an allowed-signers file.
    pub fn allowed_line(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("id_ed25519.pub")).unwrap();
        format!("{} {}", self.principal, public.trim())
    }

    /// The key's SHA256 fingerprint.
    pub fn fingerprint(&self) -> String {
        let out = run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("id_ed25519.pub")));
        out.split_whitespace().nth(1).unwrap().to_string()
    }
}

/// Writes an allowed-signers file listing `keys` into `dir`.
pub fn allowed_signers(dir: &Path, keys: &[&SshKey]) -> PathBuf {
    let path = dir.join("allowed_signers");
    let text: Vec<String> = keys.iter().map(|k| k.allowed_line()).collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
    path
}

/// How a test commit is signed.
pub enum Sign<'a> {
    No,
    Ssh(&'a SshKey),
    Gpg(&'a GpgKey),
}

/// `git` with no user or system configuration and a fixed identity.
fn git(repo: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@127.0.0.1",
            "-c",
            "commit.gpgsign=false",
        ]);
    cmd
}

/// Commits the whole work tree of `repo` with the real `git commit` (empty commits allowed),
/// signed as `sign` says; returns the commit id.
pub fn commit(repo: &Path, message: &str, sign: Sign) -> String {
    run(git(repo).args(["add", "-A"]));
    let mut cmd = git(repo);
    match sign {
        Sign::No => {}
        Sign::Ssh(k) => {
            cmd.args(["-c", "gpg.format=ssh", "-c"])
                .arg(format!("user.signingkey={}", k.private().display()));
        }
        Sign::Gpg(k) => {
            cmd.env("GNUPGHOME", k.home.path())
                .args(["-c", "gpg.format=openpgp", "-c"])
                .arg(format!("user.signingkey={}", k.fingerprint));
        }
    }
    cmd.args(["commit", "-q", "--allow-empty", "-m", message]);
    if !matches!(sign, Sign::No) {
        cmd.arg("-S");
    }
    run(&mut cmd);
    run(git(repo).args(["rev-parse", "HEAD"]))
        .trim()
        .to_string()
}

/// Moves the branch (and the work tree) back to `commit`, as before a rewrite of history.
pub fn reset_hard(repo: &Path, commit: &str) {
    run(git(repo).args(["reset", "-q", "--hard", commit]));
}

/// A copy of the signed `commit` with its message changed and its signature kept (the
/// signature no longer matches), made the branch's head; returns its id.
pub fn tamper(repo: &Path, commit: &str) -> String {
    let git = git2::Repository::open(repo).unwrap();
    let oid = git2::Oid::from_str(commit).unwrap();
    let (signature, payload) = git.extract_signature(&oid, None).unwrap();
    let payload = String::from_utf8(payload.to_vec()).unwrap() + "tampered\n";
    let forged = git
        .commit_signed(&payload, signature.as_str().unwrap(), None)
        .unwrap();
    let head = git.head().unwrap();
    let name = head.name().unwrap().to_string();
    git.reference(&name, forged, true, "tamper").unwrap();
    forged.to_string()
}

/// A GPG signing key in a private GNUPGHOME, exported to a keyring file for gpgv.
pub struct GpgKey {
    pub home: tempfile::TempDir,
    pub fingerprint: String,
    pub keyring: PathBuf,
}

impl GpgKey {
    /// None (with the reason printed) when gpg or gpgv is not installed.
    pub fn new(uid: &str) -> Option<GpgKey> {
        for tool in ["gpg", "gpgv"] {
            if Command::new(tool).arg("--version").output().is_err() {
                println!(
                    "skipped: {tool} is not installed (scripts/setup.sh installs gnupg and gpgv)"
                );
                return None;
            }
        }
        // Short: gpg-agent's socket lives in the home directory.
        let home = tempfile::Builder::new()
            .prefix("pgg")
            .tempdir_in("/tmp")
            .unwrap();
        let gpg = |args: &[&str]| {
            run(Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(args))
        };
        gpg(&["--quick-gen-key", uid, "ed25519", "sign", "never"]);
        let listing = gpg(&["--with-colons", "--list-keys", uid]);
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_string())
            .unwrap();
        let keyring = home.path().join("trusted.gpg");
        let exported = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--export", &fingerprint])
            .output()
            .unwrap();
        assert!(exported.status.success() && !exported.stdout.is_empty());
        std::fs::write(&keyring, exported.stdout).unwrap();
        Some(GpgKey {
            home,
            fingerprint,
            keyring,
        })
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        // The agent gpg started for this home directory.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
