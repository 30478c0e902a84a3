"""Render Pigsty's own HBA templates with ansible, for the `hba_pigsty` integration test.

Usage: <ansible's python> render.py PIGSTY_DIR INVENTORY...   (JSON on stdout)

For each inventory this does what `pgsql.yml -t pg_hba,pgbouncer_hba` does up to the point
where the file would be copied to the node, in one process and without connecting anywhere:
  * ansible's own InventoryManager/VariableManager load the inventory, and a Play loaded from
    the same role list as Pigsty's `pgsql.yml` (node_id, pg_id, pgsql, pg_monitor, from
    PIGSTY_DIR/roles) supplies the role defaults and role vars, so variable precedence is
    ansible's. The template task runs inside role `pgsql`, whose defaults ansible puts above
    the other roles' defaults: we ask for the variables with a task of that role.
  * the facts `pg_id` sets (pg_instance, pg_cluster_members) are computed with the same
    expressions as roles/pg_id/tasks/main.yml, from every host's variables;
  * the template text is rendered by the same calls as ansible's `template` action
    (AnsibleEnvironment, trim_blocks=True, lstrip_blocks=False, newline '\\n',
    preserve_trailing_newlines, the ansible_managed/template_* variables).
Output: {inventory: {host: {"pg_hba.conf": {"ok": text} | {"error": msg}, "pgb_hba.conf": ...}}}
for every host that defines pg_cluster. Nothing is written anywhere.
"""

import json
import os
import sys

PIGSTY = os.path.abspath(sys.argv[1])
os.environ["ANSIBLE_ROLES_PATH"] = os.path.join(PIGSTY, "roles")
os.environ.setdefault("ANSIBLE_LOCAL_TEMP", os.environ.get("TMPDIR", "/tmp"))

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

TEMPLATES = {
    "pg_hba.conf": ("pg_hba.conf", "/pg/data/pg_hba.conf"),
    "pgb_hba.conf": ("pgbouncer.hba", "/etc/pgbouncer/pgb_hba.conf"),
}


def render_inventory(path):
    loader = DataLoader()
    inv = InventoryManager(loader=loader, sources=[path])
    vm = VariableManager(loader=loader, inventory=inv)
    play = Play().load(
        {
            "name": "PGSQL",
            "hosts": "all",
            "gather_facts": False,
            "roles": ["node_id", "pg_id", "pgsql", "pg_monitor"],
        },
        variable_manager=vm,
        loader=loader,
    )
    pgsql = next(r for r in play.get_roles() if r.get_name() == "pgsql")
    task = Task()
    task._role = pgsql
    task.action = "template"
    hosts = inv.get_hosts()
    hvars = {h.name: vm.get_vars(play=play, host=h, task=task, include_hostvars=False) for h in hosts}
    out = {}
    for h in hosts:
        v = hvars[h.name]
        if "pg_cluster" not in v:
            continue
        # roles/pg_id/tasks/main.yml: hostvars|json_query("[@.*][0][?pg_cluster=='<cls>']")
        # then json_query("[].inventory_hostname") | unique | sort
        members = sorted({n for n, hv in hvars.items() if hv.get("pg_cluster") == v["pg_cluster"]})
        facts = dict(v)
        facts["pg_cluster_members"] = members
        facts["pg_instance"] = "%s-%s" % (v["pg_cluster"], v["pg_seq"])
        files = {}
        for name, (src, dest) in TEMPLATES.items():
            full = os.path.join(PIGSTY, "roles", "pgsql", "templates", src)
            with open(full, encoding="utf-8") as f:
                data = f.read()
            tvars = dict(facts)
            tvars.update(generate_ansible_template_vars(src, full, dest))
            templar = Templar(loader=loader, variables=tvars).copy_with_new_env(
                environment_class=AnsibleEnvironment,
                searchpath=[os.path.dirname(full)],
                newline_sequence="\n",
                trim_blocks=True,
                lstrip_blocks=False,
                available_variables=tvars,
            )
            try:
                text = templar.do_template(data, preserve_trailing_newlines=True, escape_backslashes=False)
                files[name] = {"ok": text}
            except Exception as e:  # Pigsty's abort() and template errors
                files[name] = {"error": "%s: %s" % (type(e).__name__, e)}
        out[h.name] = files
    return out


def main():
    result = {}
    for path in sys.argv[2:]:
        result[path] = render_inventory(path)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
