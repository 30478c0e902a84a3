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

# A Pigsty home for ansible: the real Pigsty v4.5.0 (../shared/pigsty, untouched) mirrored by
# symlinks, with the ansible.cfg of ../shared/reference/real-pigsty.md for the sandbox. Pigsty's
# own symlinks in templates/ arrived as one-line text files in that copy: they are links again
# in the mirror.
pigsty_home() {
  local h=$work/home sb=$PGITOPS_SANDBOX src
  src=$(cd "$root/../shared/pigsty" && pwd)
  if [ ! -d "$h" ]; then
    mkdir -p "$h/templates"
    for e in "$src"/*; do
      case $(basename "$e") in ansible.cfg|templates) ;; *) ln -s "$e" "$h/" ;; esac
    done
    for f in "$src"/templates/*; do
      local t; t=$(head -c 255 "$f")
      if [ "$(wc -l < "$f")" -le 1 ] && [ -n "$t" ] && [ -e "$src/templates/$t" ]; then
        ln -s "$src/templates/$t" "$h/templates/$(basename "$f")"
      else
        ln -s "$f" "$h/templates/"
      fi
    done
    { grep -v -e '^host_key_checking' -e '^inventory' "$src/ansible.cfg"
      cat <<CFG
host_key_checking = True
inventory = /dev/null
remote_user = root
private_key_file = $sb/ssh/id_ed25519
retry_files_enabled = False
local_tmp = $h/.ansible/tmp
interpreter_python = /usr/bin/env SYSTEMD_OFFLINE=1 /usr/bin/python3
[privilege_escalation]
become_method = su
[ssh_connection]
ssh_args = -F $sb/ssh/config -o UserKnownHostsFile=$sb/ssh/known_hosts -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=$sb/ans-%C
CFG
    } > "$h/ansible.cfg"
  fi
  echo "$h"
}

stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms (min %d, max %d, n=%d)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
