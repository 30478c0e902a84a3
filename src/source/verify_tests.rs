use super::*;

#[test]
fn settings_name_the_missing_or_unreadable_file() {
    let e = Settings::new(Mode::Ssh, None, None, OnUnverified::Block).unwrap_err();
    assert_eq!(
        e,
        "`repository.verify = \"ssh\"` needs `repository.allowed_signers`"
    );
    let e = Settings::new(Mode::Gpg, Some(Path::new("/x")), None, OnUnverified::Block).unwrap_err();
    assert_eq!(
        e,
        "`repository.verify = \"gpg\"` needs `repository.keyring`"
    );
    let e = Settings::new(
        Mode::Gpg,
        None,
        Some(Path::new("/nonexistent/keyring.gpg")),
        OnUnverified::Block,
    )
    .unwrap_err();
    assert!(
        e.starts_with("`repository.keyring`: cannot read /nonexistent/keyring.gpg:"),
        "{e}"
    );
    let off = Settings::new(Mode::Off, None, None, OnUnverified::Stop).unwrap();
    assert!(!off.is_on());
    let file = tempfile::NamedTempFile::new().unwrap();
    let on = Settings::new(Mode::Ssh, Some(file.path()), None, OnUnverified::Stop).unwrap();
    assert!(on.is_on());
    assert_eq!(
        (on.trust.as_path(), on.on_unverified),
        (file.path(), OnUnverified::Stop)
    );
}
