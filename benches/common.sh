# Shared by the benchmarks (sourced): the generated inventory, the Pigsty home for ansible, and
# the median/min/max summary. Callers set $root, $work, $CLUSTERS and $PGITOPS_SANDBOX.

# pigsty.yml for $CLUSTERS ("ip1,ip2,ip3 ip4,..."); $1 = extra users in the first cluster,
# $2 = the address of a global HBA rule.
inventory() {
  python3 - "$1" "$2" "$CLUSTERS" <<'PY'
import sys
users, hba_addr, clusters = int(sys.argv[1]), sys.argv[2], sys.argv[3].split()
out = ["all:", "  children:"]
for i, c in enumerate(clusters):
    ips = c.split(",")
    out += [f"    pg-b{i}:", "      hosts:"]
    out += [f"        {ip}: {{ pg_seq: {k + 1}, pg_role: {'primary' if k == 0 else 'replica'} }}" for k, ip in enumerate(ips)]
    out += ["      vars:", f"        pg_cluster: pg-b{i}", "        pg_users:"]
    out += ["          - { name: dbuser_base, password: Base.Pass, roles: [ dbrole_readonly ] }"]
    if i == 0:
        out += [f"          - {{ name: bench_u{u}, password: Bench.Pass.{u}, connlimit: 5 }}" for u in range(users)]
out += ["  vars:", "    admin_ip: 127.0.0.1", "    pg_version: 15", "    pg_bin_dir: /usr/lib/postgresql/15/bin",
        "    node_firewall_intranet: [ 127.0.0.0/8 ]",
        "    pg_default_hba_rules:",
        "      - { user: '${dbsu}', db: all, addr: local, auth: ident, title: 'dbsu', order: 100 }",
        "      - { user: '${repl}', db: replication, addr: intra, auth: pwd, title: 'replication', order: 250 }",
        "      - { user: '+dbrole_readonly', db: all, addr: intra, auth: pwd, title: 'members', order: 600 }",
        "    pg_hba_rules:",
        f"      - {{ user: all, db: all, addr: {hba_addr}, auth: pwd, title: 'bench clients' }}"]
print("\n".join(out))
PY
}

# A Pigsty home for ansible: the test fixture playbooks and an ansible.cfg for the sandbox.
pigsty_home() {
  local h=$work/home sb=$PGITOPS_SANDBOX
  mkdir -p "$h"
  cp "$root"/tests/it/support/pigsty_home/*.yml "$h/"
  cat > "$h/ansible.cfg" <<CFG
[defaults]
host_key_checking = True
forks = 10
remote_user = root
private_key_file = $sb/ssh/id_ed25519
retry_files_enabled = False
interpreter_python = /usr/bin/python3
deprecation_warnings = False
force_valid_group_names = ignore
local_tmp = $h/.ansible/tmp
[ssh_connection]
ssh_args = -F $sb/ssh/config -o UserKnownHostsFile=$sb/ssh/known_hosts -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=$h/cp-%C
pipelining = True
CFG
  echo "$h"
}

stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms (min %d, max %d, n=%d)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
