//! The binaries a native component needs on a node, and the distribution packages that bring
//! them. Before etcd or Patroni is provisioned on a host, [`ensure`] checks each binary; when
//! some are missing it installs their packages (`apt-get` on Debian/Ubuntu, `dnf` or `yum` on
//! EL) if the host's `pgitops_install_packages` is `true`, and otherwise refuses, naming the
//! binaries and the packages, so that nothing of that member is written.
//!
//! In: the component's [`Need`]s and the host. Out: what was found or installed, or an error.
//! Package names come from the fixed tables here (a PostgreSQL major version only when it is a
//! number); the script receives them as arguments.

use super::root_sh::sh;
use super::Ctx;
use crate::execute::ExecError;

/// One binary and the packages that provide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub binary: String,
    pub deb: String,
    pub rpm: String,
}

impl Need {
    fn new(binary: &str, deb: &str, rpm: &str) -> Need {
        Need {
            binary: binary.into(),
            deb: deb.into(),
            rpm: rpm.into(),
        }
    }
}

/// The host variable that lets pgitops install missing packages.
pub const ALLOW: &str = "pgitops_install_packages";

/// etcd's server and client (Debian splits them; EL ships one package).
pub fn etcd() -> Vec<Need> {
    vec![
        Need::new("/usr/bin/etcd", "etcd-server", "etcd"),
        Need::new("/usr/bin/etcdctl", "etcd-client", "etcd"),
    ]
}

/// Patroni with its etcd support, the PostgreSQL server of `pg_version` in `bin_dir`, and the
/// tools pgitops' own steps call on the node (curl for Patroni's REST API, openssl for the
/// server certificate when Pigsty's CA has not issued one).
pub fn patroni(bin_dir: &str, pg_version: &str) -> Vec<Need> {
    let mut needs = vec![
        Need::new("/usr/bin/patroni", "patroni", "patroni-etcd"),
        Need::new("/usr/bin/curl", "curl", "curl"),
        Need::new("/usr/bin/openssl", "openssl", "openssl"),
    ];
    if !pg_version.is_empty() && pg_version.bytes().all(|b| b.is_ascii_digit()) {
        let postgres = format!("{}/postgres", bin_dir.trim_end_matches('/'));
        let deb = format!("postgresql-{pg_version}");
        let rpm = format!("postgresql{pg_version}-server");
        needs.push(Need::new(&postgres, &deb, &rpm));
    }
    needs
}

/// `$1` `install` or `check`, then triples: binary, Debian package, EL package. Prints
/// `present` or `installed: <packages>`; exits 3 naming what is missing when not allowed to
/// install, or when a binary is still missing after the install.
const ENSURE: &str = r#"check() {
  missing=""; pkgs=""
  while [ $# -ge 3 ]; do
    if [ ! -x "$1" ]; then
      missing="$missing $1"
      if [ $kind = deb ]; then p=$2; else p=$3; fi
      case " $pkgs " in *" $p "*) ;; *) pkgs="$pkgs $p" ;; esac
    fi
    shift 3
  done
}
mode=$1; shift
if [ -x /usr/bin/dpkg ]; then kind=deb; else kind=rpm; fi
check "$@"
[ -z "$missing" ] && { echo present; exit 0; }
if [ "$mode" != install ]; then
  echo "missing:$missing; the distribution's package(s) providing them:$pkgs" >&2; exit 3
fi
log=$(mktemp)
fail() { tail -n 5 "$log" >&2; rm -f "$log"; echo "$1 install$pkgs failed" >&2; exit 3; }
if [ $kind = deb ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends $pkgs >"$log" 2>&1 ||
    { apt-get update -q >>"$log" 2>&1 && apt-get install -y -q --no-install-recommends $pkgs >>"$log" 2>&1; } ||
    fail apt-get
elif command -v dnf >/dev/null; then
  dnf install -y -q $pkgs >"$log" 2>&1 || fail dnf
else
  yum install -y -q $pkgs >"$log" 2>&1 || fail yum
fi
rm -f "$log"
wanted=$pkgs
check "$@"
[ -z "$missing" ] || { echo "installed$wanted, yet still missing:$missing" >&2; exit 3; }
echo "installed:$wanted""#;

/// Whether `host` lets pgitops install packages (`pgitops_install_packages: true`).
fn allowed(ctx: &Ctx<'_>, host: &str) -> bool {
    let h = ctx.new.tree.hosts.get(host);
    h.and_then(|h| h.vars.get(ALLOW))
        .and_then(|v| v.value.as_bool())
        .unwrap_or(false)
}

/// Checks (and where allowed installs) `needs` on `host`. `Ok("present")` or
/// `Ok("installed: ...")`; a refusal names what is missing and the packages.
pub async fn ensure(ctx: &Ctx<'_>, host: &str, needs: &[Need]) -> Result<String, ExecError> {
    let mode = match allowed(ctx, host) {
        true => "install",
        false => "check",
    };
    let mut args: Vec<&str> = vec![mode];
    for n in needs {
        args.extend([n.binary.as_str(), &n.deb, &n.rpm]);
    }
    let target = ctx.target(host);
    match sh(ctx, &target, "checking packages", ENSURE, &args, None).await {
        Ok(out) => Ok(out),
        Err(ExecError::Failed { stderr, .. }) if mode == "check" => {
            Err(ExecError::Refused(format!(
                "{host}: {stderr}; install them, or set `{ALLOW}: true` to let pgitops install them"
            )))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_package_follows_the_major_version_only_when_it_is_a_number() {
        let needs = patroni("/usr/lib/postgresql/15/bin/", "15");
        let pg = needs.last().unwrap();
        assert_eq!(pg.binary, "/usr/lib/postgresql/15/bin/postgres");
        assert_eq!(
            (pg.deb.as_str(), pg.rpm.as_str()),
            ("postgresql-15", "postgresql15-server")
        );
        let odd = patroni("/usr/pgsql/bin", "15; rm -rf /");
        assert!(odd.iter().all(|n| !n.binary.ends_with("/postgres")));
    }
}
