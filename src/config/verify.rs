//! `[repository] verify`, `allowed_signers`, `keyring` and `unverified` as the settings of
//! [`crate::source::verify`].

use super::Repository;
use crate::source::verify::Settings;

impl Repository {
    /// The commit verification settings; an error names the missing or unreadable setting.
    pub fn verification(&self) -> Result<Settings, String> {
        Settings::new(
            self.verify,
            self.allowed_signers.as_deref(),
            self.keyring.as_deref(),
            self.unverified,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::source::verify::{Mode, OnUnverified};

    #[test]
    fn verify_settings_and_their_errors() {
        let c = parse("[repository]\nremote = 'x'\n").unwrap();
        assert!(!c.repository.verification().unwrap().is_on());
        let e = parse("[repository]\nremote = 'x'\nverify = 'ssh'\n").unwrap_err();
        assert!(e.contains("needs `repository.allowed_signers`"), "{e}");
        let e =
            parse("[repository]\nremote = 'x'\nverify = 'gpg'\nkeyring = '/nonexistent/k.gpg'\n")
                .unwrap_err();
        assert!(
            e.contains("`repository.keyring`: cannot read /nonexistent/k.gpg"),
            "{e}"
        );
        let e = parse("[repository]\nremote = 'x'\nverify = 'x509'\n").unwrap_err();
        assert!(
            e.contains("unknown variant `x509`, expected one of `off`, `ssh`, `gpg`"),
            "{e}"
        );
        let e = parse("[repository]\nremote = 'x'\nunverified = 'skip'\n").unwrap_err();
        assert!(e.contains("expected `block` or `stop`"), "{e}");
        let f = tempfile::NamedTempFile::new().unwrap();
        let text = format!(
            "[repository]\nremote = 'x'\nverify = 'ssh'\nallowed_signers = {:?}\nunverified = 'stop'\n",
            f.path()
        );
        let s = parse(&text).unwrap().repository.verification().unwrap();
        assert_eq!((s.mode, s.on_unverified), (Mode::Ssh, OnUnverified::Stop));
        assert_eq!(s.trust, f.path());
    }
}
