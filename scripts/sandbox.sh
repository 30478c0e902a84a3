#!/usr/bin/env bash
# Sandbox nodes for examples-repo/: one sshd and one PostgreSQL 15 per loopback address
# (127.0.10.10 = pg-meta, 127.0.10.11 = pg-test primary, .12 and .13 its streaming replicas;
# PGITOPS_SANDBOX_CLUSTERS="ip1,ip2,... ip4,..." lays out other clusters, e.g. for benchmarks).
# Each node's sshd runs in a private mount namespace where the node's dirs sit at Pigsty's
# standard paths: $B/IP/pg at /pg (bin/ = Pigsty's files/postgres/*, tmp/, log/pgbouncer/), the
# data dir at /pg/data, the socket dir at /var/run/postgresql, $B/IP/pgbouncer at /etc/pgbouncer
# (Pigsty's pgbouncer.ini minus what Debian's pgbouncer 1.18 refuses). So pgitops reaches them
# exactly as it reaches real Pigsty nodes: ssh with strict host keys, then psql as the dbsu.
# Each node also runs Debian's pgbouncer (as postgres, in the node's namespace) on IP:6432.
# HA nodes: PGITOPS_SANDBOX_HA=N adds N empty nodes for native etcd + Patroni clusters, at
# PGITOPS_SANDBOX_HA_FROM (default 127.0.10.21) and the addresses after it: an sshd each, no
# PostgreSQL, a private runsvdir over the node's service/ (at /etc/service), and the node's own
# /pg, /etc/patroni, /var/lib/pgsql (the dbsu's home), /var/run/postgresql, /tmp and Pigsty's
# etcd paths (as tests/it/support/nodes/ha.rs lays them out). PGITOPS_SANDBOX_CLUSTERS= (empty)
# lays out HA nodes only. The sandbox dir must not be under /tmp (HA nodes mount their own).
#   bash scripts/sandbox.sh up      # (re)create the nodes; prints the pgitops SSH options
#   bash scripts/sandbox.sh down    # stop everything and remove it
#   bash scripts/sandbox.sh args    # print the pgitops SSH options again
#   bash scripts/sandbox.sh hup IP  # reload IP's pgbouncer (what `systemctl reload pgbouncer` does)
#   bash scripts/sandbox.sh config REMOTE STATE_DIR LISTEN [POLL]   # a pgitops.toml for serve
# Only loopback addresses are used. Runs as root (it starts sshd and uses runuser).
set -euo pipefail
B=${PGITOPS_SANDBOX:-/dev/shm/pgitops-sandbox}
PGBIN=/usr/lib/postgresql/15/bin
# Clusters, space separated; each a comma-separated list of addresses, the primary first.
CLUSTERS=${PGITOPS_SANDBOX_CLUSTERS-127.0.10.10 127.0.10.11,127.0.10.12,127.0.10.13}
HA=${PGITOPS_SANDBOX_HA:-0}
HA_FROM=${PGITOPS_SANDBOX_HA_FROM:-127.0.10.21}
# Another Patroni for the HA nodes (e.g. a newer one in a virtualenv): bind-mounted over
# /usr/bin/patroni inside each HA node's namespace only; the machine's own stays as it is.
HA_PATRONI=${PGITOPS_SANDBOX_PATRONI:-}
REPL_PASSWORD=DBUser.Replicator   # pg_replication_password in examples-repo/pigsty.yml
# Pigsty v4.5.0 (its files/postgres/* go to each node's /pg/bin): ../shared/pigsty from the crate root.
PIGSTY=$(cd "$(dirname "$0")/.." && pwd)/../shared/pigsty
as_pg() { (cd / && runuser -u postgres -- "$@"); }

config() { # remote state-dir listen [poll-seconds]: a pgitops.toml for `pgitops serve` on these nodes
  cat <<CFG
[repository]
remote = "$1"
branch = "main"
poll_seconds = ${4:-15}
[state]
dir = "$2"
[executor]
ssh_user = "root"
identity = "$B/ssh/id_ed25519"
known_hosts = "$B/ssh/known_hosts"
ssh_config = "$B/ssh/config"
control_dir = "$B/ctl"
[http]
listen = "$3"
CFG
}

args() {
  echo "--ssh-user root --ssh-config $B/ssh/config --identity $B/ssh/id_ed25519 --known-hosts $B/ssh/known_hosts --control-dir $B/ctl"
}

ha_ips() { # the HA nodes' addresses, one a line
  local a b c d i
  IFS=. read -r a b c d <<<"$HA_FROM"
  for i in $(seq 0 $((HA - 1))); do
    [ $((d + i)) -le 254 ] || { echo "sandbox: $HA HA nodes from $HA_FROM overflow the /24" >&2; exit 2; }
    echo "$a.$b.$c.$((d + i))"
  done
}

ns_pids() { # the processes in the nodes' mount namespaces (recorded at start), one a line
  local f ns p
  for f in "$B"/*/mntns; do
    [ -f "$f" ] || continue
    ns=$(cat "$f")
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
    done
  done
  return 0
}

down() {
  # Patroni first, every node at once (it stops its PostgreSQL and needs etcd for that).
  for svc in "$B"/*/service/patroni/; do
    [ -d "$svc" ] && { sv -w 30 down "$svc" >/dev/null 2>&1 || true; } &
  done
  wait
  # Services pgitops installed under a node's runit (etcd): down, then runsvdir and the rest.
  for svc in "$B"/*/service/*/; do
    [ -d "$svc" ] && sv -w 10 down "$svc" >/dev/null 2>&1 || true
  done
  for pidf in "$B"/*/runsvdir.pid; do
    [ -f "$pidf" ] && kill -HUP "$(cat "$pidf")" 2>/dev/null || true
  done
  for pidf in "$B"/*/run/pgbouncer.pid; do
    [ -f "$pidf" ] && kill -TERM "$(head -1 "$pidf")" 2>/dev/null || true
  done
  for pidf in "$B"/*/pgdata/postmaster.pid "$B"/*/pg/data/postmaster.pid; do
    [ -f "$pidf" ] && kill -INT "$(head -1 "$pidf")" 2>/dev/null || true
  done
  for pidf in "$B"/*/sshd.pid; do
    [ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null || true
  done
  for _ in $(seq 50); do pgrep -f "$B/" >/dev/null || [ -n "$(ns_pids)" ] || break; sleep 0.1; done
  # Whatever still runs in a node's namespace (a postmaster Patroni left, an ssh session): KILL,
  # by pid. The namespaces, and their mounts, end with their last process.
  local left; left=$(ns_pids)
  if [ -n "$left" ]; then
    kill -KILL $left 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(ns_pids)" ] && break; sleep 0.1; done
  fi
  left=$(ns_pids)
  [ -z "$left" ] || echo "sandbox: still running in the nodes' namespaces: $left" >&2
  rm -rf "$B"
}

start_pg() { # node-ip
  local ip=$1 n=$B/$1
  as_pg "$PGBIN/pg_ctl" -D "$n/pgdata" -l "$n/pg.log" -w -s start -o \
    "-c listen_addresses=$ip -c port=5432 -c unix_socket_directories=$n/run -c fsync=off -c ssl=on -c ssl_cert_file=$B/ssl/server.crt -c ssl_key_file=$B/ssl/server.key"
}

layout() { # node-ip: Pigsty's /pg and /etc/pgbouncer for the node (see the header)
  local ip=$1 n=$B/$1
  install -d -o postgres -g postgres -m 0755 "$n/pg" "$n/pg/bin" "$n/pg/tmp" "$n/pg/log" "$n/pg/log/pgbouncer" "$n/pg/data"
  install -o postgres -g postgres -m 0755 "$PIGSTY"/files/postgres/* "$n/pg/bin/"
  install -d -o postgres -g postgres -m 0750 "$n/pgbouncer"
  # Pigsty's pgbouncer.ini (see the file), shared with the test harness; $IP: the node.
  sed "s/\$IP/$ip/" "$(dirname "$0")/node/pgbouncer.ini" > "$n/pgbouncer/pgbouncer.ini"
  # Starters until pgitops writes the real ones: the postgres database, the dbsu by peer only.
  printf '%s\n' '# pgbouncer database list' 'postgres                    = host=/var/run/postgresql' > "$n/pgbouncer/database.txt"
  printf '%s\n' '# pgbouncer user options' > "$n/pgbouncer/useropts.txt"
  printf '%s\n' '"postgres" ""' > "$n/pgbouncer/userlist.txt"
  printf '%s\n' 'local    all                postgres                              peer' > "$n/pgbouncer/pgb_hba.conf"
  chown postgres:postgres "$n/pgbouncer"/*
  chmod 0640 "$n/pgbouncer/pgbouncer.ini"
  chmod 0600 "$n/pgbouncer"/*.txt "$n/pgbouncer/pgb_hba.conf"
}

start_pgbouncer() { # node-ip: as postgres inside the node's namespace (that of its sshd)
  local ip=$1 n=$B/$1
  nsenter -m -t "$(cat "$n/sshd.pid")" runuser -u postgres -- /usr/sbin/pgbouncer -d -q /etc/pgbouncer/pgbouncer.ini
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/$ip/6432") 2>/dev/null && return 0; sleep 0.05; done
  echo "sandbox: pgbouncer on $ip did not start; see $n/pg/log/pgbouncer/pgbouncer.log" >&2; return 1
}

hup() { # node-ip
  kill -HUP "$(head -1 "$B/$1/run/pgbouncer.pid")"
}

start_sshd() { # node-ip [ha]
  local ip=$1 n=$B/$1 ha=${2:-}
  ssh-keygen -q -t ed25519 -N '' -f "$n/ssh_host_ed25519_key"
  echo "$ip $(cut -d' ' -f1,2 "$n/ssh_host_ed25519_key.pub")" >> "$B/ssh/known_hosts"
  cat > "$n/sshd_config" <<CFG
ListenAddress $ip:22
HostKey $n/ssh_host_ed25519_key
PidFile $n/sshd.pid
AuthorizedKeysFile $B/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxSessions 64
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
  /usr/sbin/sshd -t -f "$n/sshd_config"
  # Pigsty's etcd paths are the node's own, and a private runsvdir supervises the node's
  # service/ over /etc/service (the node's "init"; the system's /etc/service never runs).
  install -d -m 0755 "$n/etcd/conf" "$n/etcd/lib" "$n/etcd/data" "$n/service"
  local mounts="mount --bind $n/pg /pg && mount --bind $n/pgdata /pg/data && mount --bind $n/run /var/run/postgresql && mount --bind $n/pgbouncer /etc/pgbouncer"
  [ -z "$ha" ] || mounts="mount --bind $n/pg /pg && mount --bind $n/patroni /etc/patroni && mount --bind $n/home /var/lib/pgsql && mount --bind $n/run /var/run/postgresql && mount --bind $n/tmp /tmp && mount --bind $n/pgbouncer /etc/pgbouncer && mount --bind $n/haproxy/etc /etc/haproxy && mount --bind $n/haproxy/run /run/haproxy"
  [ -z "$ha" ] || [ -z "$HA_PATRONI" ] || mounts="$mounts && mount --bind $HA_PATRONI /usr/bin/patroni"
  setsid unshare -m --propagation private sh -c "mount --bind $B/empty_bashrc /root/.bashrc && $mounts && mount --bind $n/etcd/conf /etc/etcd && mount --bind $n/etcd/lib /var/lib/etcd && mount --bind $n/etcd/data /data/etcd && mount --bind $n/service /etc/service && { setsid runsvdir -P $n/service 'log: ........................................' </dev/null >/dev/null 2>&1 & echo \$! > $n/runsvdir.pid; } && exec /usr/sbin/sshd -D -f $n/sshd_config -E $n/sshd.log" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 100); do
    if [ -s "$n/sshd.pid" ] && (exec 3<>"/dev/tcp/$ip/22") 2>/dev/null; then
      readlink "/proc/$(cat "$n/sshd.pid")/ns/mnt" > "$n/mntns"; return 0
    fi
    sleep 0.05
  done
  echo "sandbox: sshd on $ip did not start; see $n/sshd.log" >&2; return 1
}

ha_layout() { # node-ip: an empty HA node's dirs (see the header); pgitops creates the rest
  local n=$B/$1
  install -d -o postgres -g postgres -m 0750 "$n/pg" "$n/home"
  install -d -o postgres -g postgres -m 2775 "$n/run"
  install -d -m 0755 "$n/patroni"
  install -d -m 1777 "$n/tmp"
  install -d -o postgres -g postgres -m 0750 "$n/pgbouncer"
  install -d -m 0755 "$n/haproxy/etc" "$n/haproxy/run"
}

up() {
  if [ "$HA" -gt 0 ]; then
    case $B/ in /tmp/*) echo "sandbox: HA nodes mount their own /tmp: PGITOPS_SANDBOX must be elsewhere (/dev/shm)" >&2; exit 2 ;; esac
  fi
  down
  bash "$(dirname "$0")/setup.sh" >/dev/null
  [ -d "$PIGSTY/files/postgres" ] || { echo "sandbox: $PIGSTY/files/postgres missing (real Pigsty v4.5.0 at ../shared/pigsty from the crate root)" >&2; exit 1; }
  install -d -m 0755 "$B" "$B/ssh" "$B/ctl"
  : > "$B/empty_bashrc"
  ssh-keygen -q -t ed25519 -N '' -C pgitops-sandbox -f "$B/ssh/id_ed25519"
  cp "$B/ssh/id_ed25519.pub" "$B/ssh/authorized_keys"
  : > "$B/ssh/known_hosts"
  printf '%s\n' "Host *" "  IdentitiesOnly yes" "  GlobalKnownHostsFile /dev/null" "  StrictHostKeyChecking yes" \
    "  CheckHostIP no" "  BatchMode yes" "  ConnectTimeout 5" "  LogLevel ERROR" > "$B/ssh/config"
  install -d -o postgres -g postgres "$B/ssl"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=pgitops-sandbox \
    -keyout "$B/ssl/server.key" -out "$B/ssl/server.crt" 2>/dev/null
  chown postgres:postgres "$B/ssl/server.key" "$B/ssl/server.crt"; chmod 600 "$B/ssl/server.key"
  if [ -n "$CLUSTERS" ]; then
    install -d -o postgres -g postgres "$B/template"
    as_pg "$PGBIN/initdb" -D "$B/template/pgdata" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions >/dev/null
    # Until pgitops writes the inventory's rules: the dbsu locally, replication and clients by password.
    printf '%s\n' "local all postgres peer" "host replication replicator 127.0.0.0/8 scram-sha-256" \
      "host all all 127.0.0.0/8 scram-sha-256" > "$B/template/pgdata/pg_hba.conf"
  fi
  local all=()
  for cluster in $CLUSTERS; do
    IFS=, read -ra members <<<"$cluster"
    local ip=${members[0]}
    all+=("${members[@]}")
    install -d -o postgres -g postgres "$B/$ip" "$B/$ip/run"
    cp -a "$B/template/pgdata" "$B/$ip/pgdata"
    start_pg "$ip"
    # What Pigsty's bootstrap (pg_init) creates before any business user: the default roles.
    as_pg "$PGBIN/psql" -X -q -h "$B/$ip/run" -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE dbrole_readonly NOLOGIN;
CREATE ROLE dbrole_offline NOLOGIN;
CREATE ROLE dbrole_readwrite NOLOGIN IN ROLE dbrole_readonly;
CREATE ROLE dbrole_admin NOLOGIN IN ROLE pg_monitor, dbrole_readwrite;
CREATE ROLE replicator REPLICATION LOGIN PASSWORD '$REPL_PASSWORD' IN ROLE pg_monitor, dbrole_readonly;
SQL
    for replica in "${members[@]:1}"; do
      install -d -o postgres -g postgres "$B/$replica" "$B/$replica/run"
      as_pg "$PGBIN/pg_basebackup" -d "host=$ip user=replicator password=$REPL_PASSWORD application_name=$replica" \
        -D "$B/$replica/pgdata" -R -X stream -c fast --no-sync
      start_pg "$replica"
    done
  done
  for ip in "${all[@]}"; do layout "$ip"; start_sshd "$ip"; done
  for ip in "${all[@]}"; do start_pgbouncer "$ip"; done
  local ha=()
  if [ "$HA" -gt 0 ]; then
    # Mount points on the host (empty dirs; the mounts stay in the nodes' namespaces).
    install -d -m 0755 /pg /etc/patroni /var/lib/pgsql /var/run/postgresql /etc/pgbouncer /etc/haproxy /run/haproxy
    mapfile -t ha < <(ha_ips)
    for ip in "${ha[@]}"; do
      install -d -m 0755 "$B/$ip"; ha_layout "$ip"; start_sshd "$ip" ha
    done
  fi
  echo "sandbox: $((${#all[@]} + ${#ha[@]})) nodes up under $B (clusters: ${CLUSTERS:-none}; HA nodes: ${ha[*]:-none})"
  echo "sandbox: pgitops apply $(args)"
}

case "${1:-}" in
  up) up ;;
  down) down; echo "sandbox: removed" ;;
  args) args ;;
  hup) hup "$2" ;;
  config) shift; config "$@" ;;
  *) echo "usage: $0 up|down|args|hup IP|config REMOTE STATE_DIR LISTEN [POLL_SECONDS]" >&2; exit 2 ;;
esac
