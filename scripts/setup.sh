#!/usr/bin/env bash
# Installs what pgitops needs to build, test and run its demo on a fresh Debian 12 machine.
# Idempotent. Run as root (or with sudo available). The integration tests (tests/it/support/nodes.rs) run one
# sshd and one PostgreSQL 15 per loopback "node": they need openssh-server, PostgreSQL 15, the
# privsep dir /run/sshd and the mount points /pg/data and /var/run/postgresql. Starts no service.
set -euo pipefail

# ansible-core + ansible (its collections) + python3-jmespath: the Pigsty executor's tests run
# the real Pigsty playbooks (../shared/pigsty) through ansible-playbook, and the benchmarks use
# ansible-inventory as the baseline; pgbouncer: one per test node; etcd-server, etcd-client,
# runit, patroni, curl and haproxy: the native ETCD, PGSQL cluster and service tests (each HA test
# node runs a private runsvdir; the system's /etc/service is never started; Debian's patroni and
# haproxy units are never started); libssl-dev for git2's https; openssh-client (ssh-keygen),
# gpgv and gnupg: signed-commit verification and its tests; protobuf-compiler and
# libprotobuf-dev (protoc and its well-known .proto files) for the etcd-client crate's build;
# openssl: the certificates of the TLS etcd test.
need=(git ca-certificates gcc make pkg-config libssl-dev openssh-server postgresql-15 postgresql-client-15 ansible-core ansible python3-jmespath pgbouncer etcd-server etcd-client runit patroni curl haproxy openssh-client gpgv gnupg protobuf-compiler libprotobuf-dev openssl)

sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt=($sudo env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get)
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's sshd hard-codes its privsep dir; /run is not a tmpfs here, but may be elsewhere.
[ -d /run/sshd ] || $sudo install -d -m 0755 /run/sshd
# Mount points the test nodes bind their own data and socket dirs over (private mount namespaces).
for d in /pg/data /var/run/postgresql /etc/etcd /data/etcd /var/lib/etcd /etc/service /etc/pgbouncer /etc/haproxy /run/haproxy; do [ -d "$d" ] || $sudo mkdir -p "$d"; done
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  echo "setup: /usr/lib/postgresql/15/bin/postgres is missing; the integration tests need PostgreSQL 15" >&2
  exit 2
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo (Rust 1.85 or newer) is required; install the Rust toolchain first" >&2
  exit 2
fi
echo "setup: ready ($(cargo --version))"
