# Shared by the HA benchmarks (sourced; benches/cluster.sh, benches/failover.sh): the inventory
# of a native etcd + Patroni cluster and helpers that look at it on the HA sandbox nodes
# (scripts/sandbox.sh with PGITOPS_SANDBOX_HA). Callers export PGITOPS_SANDBOX,
# PGITOPS_SANDBOX_HA and PGITOPS_SANDBOX_HA_FROM.

now_ms() { echo $(($(date +%s%N) / 1000000)); }

ha_ips() { # the HA nodes' addresses, in order
  local a b c d i
  IFS=. read -r a b c d <<<"$PGITOPS_SANDBOX_HA_FROM"
  for i in $(seq 0 $((PGITOPS_SANDBOX_HA - 1))); do echo "$a.$b.$c.$((d + i))"; done
}

node_sql() { # ip sql: as the dbsu over the node's own socket dir (its /var/run/postgresql)
  (cd / && runuser -u postgres -- psql -X -q -At -h "$PGITOPS_SANDBOX/$1/run" -d postgres -c "$2")
}

wait_streaming() { # leader-ip n: waits (60 s) until the leader streams to n replicas
  local i
  for i in $(seq 600); do
    [ "$(node_sql "$1" "select count(*) from pg_stat_replication where state = 'streaming'" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

login() { # ip: the business user logs in to its database over TCP
  PGPASSWORD=DBUser.Test psql -X -q -At "host=$1 dbname=test user=dbuser_test connect_timeout=3" -c "select 1" >/dev/null
}

# pigsty.yml for a native HA cluster (sandbox HA nodes, scripts/sandbox.sh): a 3-member etcd on
# $1 (comma-separated addresses), `pg-test` on $2 (the first its primary) with a business user
# and database, plus $3 (extra lines of pg-test's vars, indented by 8, optional). With
# HA_SERVICES=true, pgbouncer and HAProxy's services run on every member (bound to the node's
# address) and the user is in pgbouncer's userlist; the default (false) runs neither.
# HA_PRIMARY=N declares the Nth member of $2 the primary (default 1).
ha_inventory() {
  local etcd pg i=0 ip
  IFS=, read -ra etcd <<<"$1"
  IFS=, read -ra pg <<<"$2"
  echo "all:"
  echo "  vars: { admin_ip: 127.0.0.1 }"
  echo "  children:"
  echo "    etcd:"
  echo "      vars: { etcd_cluster: etcd }"
  echo "      hosts:"
  for ip in "${etcd[@]}"; do i=$((i + 1)); echo "        $ip: { etcd_seq: $i }"; done
  echo "    pg-test:"
  echo "      hosts:"
  i=0
  for ip in "${pg[@]}"; do
    i=$((i + 1))
    echo "        $ip: { pg_seq: $i, pg_role: $([ $i = "${HA_PRIMARY:-1}" ] && echo primary || echo replica) }"
  done
  cat <<YML
      vars:
        pg_cluster: pg-test
        pg_version: 15
        pg_bin_dir: /usr/lib/postgresql/15/bin
        pg_listen: '\${ip}'
        pgbackrest_enabled: false
        pgbouncer_enabled: ${HA_SERVICES:-false}
        pg_shared_buffer_ratio: 0.005
        pgitops_bind_node_ip: true
        haproxy_enabled: ${HA_SERVICES:-false}
        pg_users:
          - { name: dbuser_test, password: DBUser.Test, pgbouncer: ${HA_SERVICES:-false} }
        pg_databases:
          - { name: test, owner: dbuser_test }
        pg_hba_rules:
          - { user: dbuser_test, db: test, addr: '127.0.0.0/8', auth: pwd, title: 'test from loopback' }
YML
  [ "${HA_SERVICES:-false}" != true ] || cat <<YML
          - { user: dbuser_test, db: test, addr: local, auth: pwd, title: 'pgbouncer to postgres' }
        pgb_hba_rules:
          - { user: dbuser_test, db: test, addr: '127.0.0.0/8', auth: pwd, title: 'clients from loopback' }
YML
  [ -z "${3:-}" ] || printf '%s\n' "$3"
}
