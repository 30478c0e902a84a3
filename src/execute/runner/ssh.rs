//! SSH master connections: opened on first use per target (strict host-key checking, a private
//! control directory), resumed from the CLI's registry when `reuse` is on, and the reasons a
//! connection failed in ssh's own words.

use std::path::PathBuf;
use std::sync::Arc;

use openssh::{KnownHosts, Session, SessionBuilder};

use super::{Sessions, SshOptions, Target};
use crate::execute::ExecError;

/// Where a reusable master of `target` is recorded. The key covers everything the connection
/// was checked with (address, port, user, identity, ssh configuration, and the known_hosts
/// *content*), so a changed host-key policy never resumes an old master.
pub(super) fn registry(options: &SshOptions, target: &Target) -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let user = target
        .user
        .clone()
        .or_else(|| options.user.clone())
        .unwrap_or_default();
    let paths = [
        &options.identity,
        &options.config_file,
        &options.known_hosts,
    ]
    .map(|p| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    });
    for part in [
        target.address.clone(),
        target.port.unwrap_or(22).to_string(),
        user,
    ]
    .iter()
    .chain(paths.iter())
    {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    if let Some(k) = &options.known_hosts {
        h.update(std::fs::read(k).unwrap_or_default());
    }
    options
        .control_dir
        .join("masters")
        .join(&hex::encode(h.finalize())[..32])
}

/// The master connection to `target`, opened once; different hosts connect concurrently.
pub(super) async fn session(
    options: &SshOptions,
    sessions: &Sessions,
    target: &Target,
) -> Result<Arc<Session>, ExecError> {
    let cell = sessions
        .lock()
        .await
        .entry(target.clone())
        .or_default()
        .clone();
    cell.get_or_try_init(|| connect(options, target))
        .await
        .cloned()
}

async fn connect(options: &SshOptions, target: &Target) -> Result<Arc<Session>, ExecError> {
    if options.reuse {
        let reg = registry(options, target);
        if let Ok(ctl) = std::fs::read_to_string(&reg) {
            let s = Session::resume_mux(PathBuf::from(ctl).into_boxed_path(), None);
            if s.check().await.is_ok() {
                return Ok(Arc::new(s));
            }
            let _ = std::fs::remove_file(&reg);
        }
    }
    let mut b = SessionBuilder::default();
    // The CLI's masters stay a minute for the next run; a service closes its own at shutdown,
    // and a master it leaves behind (kill -9) ends after ten idle minutes. A service whose master
    // idled out reconnects on its next command (see `Runner::run`).
    let idle = if options.reuse { 60 } else { 600 };
    b.control_persist(openssh::ControlPersist::IdleFor(
        std::num::NonZeroUsize::new(idle).expect("non-zero"),
    ));
    b.known_hosts_check(KnownHosts::Strict)
        .control_directory(&options.control_dir)
        .connect_timeout(options.connect_timeout);
    if let Some(f) = &options.config_file {
        b.config_file(f);
    }
    if let Some(k) = &options.identity {
        b.keyfile(k);
    }
    if let Some(k) = &options.known_hosts {
        b.user_known_hosts_file(k);
    }
    if let Some(u) = target.user.clone().or_else(|| options.user.clone()) {
        b.user(u);
    }
    if let Some(p) = target.port {
        b.port(p);
    }
    create_private_dir(&options.control_dir).map_err(|e| ExecError::Connect {
        host: target.host.clone(),
        reason: format!("control directory {}: {e}", options.control_dir.display()),
    })?;
    let s = b
        .connect_mux(&target.address)
        .await
        .map_err(|e| ExecError::Connect {
            host: target.host.clone(),
            reason: connect_reason(&e),
        })?;
    Ok(Arc::new(s))
}

/// The control directory holds live SSH masters: only its owner may enter it.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// ssh's own words for a failed connection, with the host-key case spelled out.
fn connect_reason(e: &openssh::Error) -> String {
    let text = format!(
        "{e}: {}",
        std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    if text.contains("Host key verification failed") || text.contains("IDENTIFICATION HAS CHANGED")
    {
        format!("{text} (refused: the host key is unknown or changed; add the host's key to the known_hosts file after checking it)")
    } else {
        text
    }
}
