"""Render Pigsty's Patroni templates with ansible, for the `patroni_pigsty` integration test.

Usage: <ansible's python> render.py SPEC.json   (JSON on stdout)

SPEC: {"pigsty": PIGSTY_DIR, "jobs": [{"inventory": path, "facts": {...}, "ours": dir}, ...]}.
For each job this does what `pgsql.yml -t pg_conf` does up to the point where
`roles/pgsql/tasks/config.yml` would copy `/pg/conf/<pg_instance>.yml` to the node, in one
process and without connecting anywhere:
  * ansible's InventoryManager/VariableManager load the inventory; a Play with the role list
    of Pigsty's `pgsql.yml` (node_id, pg_id, pgsql, pg_monitor) supplies role defaults and
    precedence; the variables are asked for with a `template` task of role `pgsql`;
  * the facts `node_id` sets (node_cpu, node_mem_mb, node_mem_gb, os_package, os_version) and
    `config.yml`'s node_fs_bytes come from the job's fixed facts, as the strings set_fact leaves;
    the facts `pg_id` sets (pg_instance, pg_shard, pg_group, pg_cluster_members, pg_primary_*)
    are computed with the expressions of roles/pg_id/tasks/main.yml;
  * the template named by `pg_conf` (roles/pgsql/templates/<pg_conf>) is rendered by the same
    calls as ansible's `template` action (trim_blocks, newline '\\n', the template_* vars).
Both Pigsty's text and pgitops' file (<ours>/<host>.yml, or <host>.err with its error) are
read with yaml.safe_load, the loader Patroni reads its configuration with.
Output: [{host: {"pigsty": {"ok": obj, "text": text} | {"error": msg},
                 "ours": {"ok": obj} | {"error": msg}}}] per job, for every host with pg_cluster.
Nothing is written anywhere.
"""

import json
import os
import sys

SPEC = json.load(open(sys.argv[1], encoding="utf-8"))
PIGSTY = os.path.abspath(SPEC["pigsty"])
os.environ["ANSIBLE_ROLES_PATH"] = os.path.join(PIGSTY, "roles")
os.environ.setdefault("ANSIBLE_LOCAL_TEMP", os.environ.get("TMPDIR", "/tmp"))

import yaml  # noqa: E402
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.inventory.manager import InventoryManager  # noqa: E402
from ansible.vars.manager import VariableManager  # noqa: E402
from ansible.playbook.play import Play  # noqa: E402
from ansible.playbook.task import Task  # noqa: E402
from ansible.template import (  # noqa: E402
    AnsibleEnvironment,
    Templar,
    generate_ansible_template_vars,
)

TEMPLATES = os.path.join(PIGSTY, "roles", "pgsql", "templates")


def pg_id(v, hvars):
    """The facts roles/pg_id/tasks/main.yml sets, from every host's variables."""
    cls = v["pg_cluster"]
    meta = [(n, hv) for n, hv in hvars.items() if hv.get("pg_cluster") == cls]
    primaries = [(n, hv) for n, hv in meta if hv.get("pg_role") == "primary"]
    plist = sorted({n for n, _ in primaries})
    pseq = sorted({hv.get("pg_seq") for _, hv in primaries}, key=str)
    return {
        "pg_shard": str(v["pg_shard"]) if "pg_shard" in v else str(cls),
        "pg_group": str(int(v["pg_group"])) if "pg_group" in v else "0",
        "pg_instance": "%s-%s" % (cls, v["pg_seq"]),
        "pg_service": "%s-%s" % (cls, v["pg_role"]),
        "pg_is_primary": v["pg_role"] == "primary",
        "pg_cluster_members": sorted({n for n, _ in meta}),
        "pg_cluster_size": len({n for n, _ in meta}),
        "pg_cluster_replicas": sorted({n for n, hv in meta if hv.get("pg_role") != "primary"}),
        "pg_primary_list": plist,
        "pg_primary_ip": plist[0] if len(plist) == 1 else "unknown",
        "pg_primary_seq": pseq[0] if len(pseq) == 1 else "unknown",
        "pg_primary_ins": "%s-%s" % (cls, pseq[0]) if len(pseq) == 1 else "unknown",
    }


def load_ours(base):
    if os.path.exists(base + ".yml"):
        with open(base + ".yml", encoding="utf-8") as f:
            try:
                return {"ok": yaml.safe_load(f)}
            except yaml.YAMLError as e:
                return {"error": "pgitops' file is not YAML: %s" % e}
    with open(base + ".err", encoding="utf-8") as f:
        return {"error": f.read()}


def render_job(job):
    loader = DataLoader()
    inv = InventoryManager(loader=loader, sources=[job["inventory"]])
    vm = VariableManager(loader=loader, inventory=inv)
    play = Play().load(
        {"name": "PGSQL", "hosts": "all", "gather_facts": False,
         "roles": ["node_id", "pg_id", "pgsql", "pg_monitor"]},
        variable_manager=vm,
        loader=loader,
    )
    pgsql = next(r for r in play.get_roles() if r.get_name() == "pgsql")
    task = Task()
    task._role = pgsql
    task.action = "template"
    hosts = inv.get_hosts()
    hvars = {h.name: vm.get_vars(play=play, host=h, task=task, include_hostvars=False) for h in hosts}
    f = job["facts"]
    out = {}
    for h in hosts:
        v = hvars[h.name]
        if "pg_cluster" not in v:
            continue
        tvars = dict(v)
        tvars.update(pg_id(v, hvars))
        # set_fact leaves strings: node_id's `"{{ ...|int }}"`, config.yml's node_fs_bytes
        tvars.update({
            "node_cpu": str(f["cpu"]), "node_mem_mb": str(f["mem_mb"]),
            "node_mem_gb": str(f["mem_gb"]), "node_fs_bytes": str(f["fs_bytes"]),
            "os_package": f["os_package"], "os_version": str(f["os_version"]),
        })
        entry = {"ours": load_ours(os.path.join(job["ours"], h.name))}
        try:
            src = str(v["pg_conf"])
            full = os.path.join(TEMPLATES, src)
            with open(full, encoding="utf-8") as fh:
                data = fh.read()
            tvars.update(generate_ansible_template_vars(src, full, "/pg/conf/%s.yml" % tvars["pg_instance"]))
            templar = Templar(loader=loader, variables=tvars).copy_with_new_env(
                environment_class=AnsibleEnvironment,
                searchpath=[TEMPLATES],
                newline_sequence="\n",
                trim_blocks=True,
                lstrip_blocks=False,
                available_variables=tvars,
            )
            text = templar.do_template(data, preserve_trailing_newlines=True, escape_backslashes=False)
            entry["pigsty"] = {"ok": yaml.safe_load(text), "text": text}
        except Exception as e:  # template errors, a missing template, unparsable output
            entry["pigsty"] = {"error": "%s: %s" % (type(e).__name__, e)}
        out[h.name] = entry
    return out


def main():
    json.dump([render_job(j) for j in SPEC["jobs"]], sys.stdout, default=str)


if __name__ == "__main__":
    main()
