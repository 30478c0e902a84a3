//! Actions for plain variable changes of one cluster, any module: variables applied by the same
//! Pigsty tags become one action (`<cluster>/config/<tag>/apply`); a variable with no safe
//! automatic action becomes a `manual` action of its own (`<cluster>/var/<name>/manual`).

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{module_var, VarRule};
use super::modules::playbook;
use super::{Action, Builder, Class, Delegated, Manual, Order, Phase, Playbook, Step};
use crate::diff::{Change, Entity};
use crate::inventory::module::Module;

/// `limit` is the Ansible limit for the cluster; `None` targets the changed hosts themselves.
pub(super) fn plan(
    b: &mut Builder,
    module: Module,
    cluster: &str,
    limit: Option<&str>,
    changes: &[&Change],
) {
    let mut by_tags: BTreeMap<&'static str, (Class, Vec<&str>, BTreeSet<String>)> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.entity == Entity::Var) {
        if module == Module::Node && super::services::covers(b, cluster, &c.name) {
            continue; // the cluster's service/refresh action (plan::services)
        }
        match module_var(module, &c.name) {
            VarRule::Covered => {}
            VarRule::Tag { class, tags } => {
                let e = by_tags
                    .entry(tags)
                    .or_insert_with(|| (class, vec![], BTreeSet::new()));
                e.1.push(&c.name);
                e.2.extend(c.hosts.iter().cloned());
            }
            VarRule::Manual(why) => {
                let step = Step::Manual(Manual::Var {
                    name: c.name.clone(),
                });
                let a = Action::new(
                    module,
                    cluster,
                    step,
                    Class::Manual,
                    Order::Create(Phase::Var),
                );
                b.push(
                    a.hosts(c.hosts.clone())
                        .reason(format!("`{}` changed: {why}", c.name)),
                );
            }
        }
    }
    for (tags, (class, keys, hosts)) in by_tags {
        let hosts: Vec<String> = hosts.into_iter().collect();
        let target = limit.map(str::to_string).unwrap_or_else(|| hosts.join(","));
        let first = tags.split(',').next().unwrap_or(tags);
        let p = Playbook::new(playbook(module), &target, &["-t", tags]);
        let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
        let why = format!("changed: {}", keys.join(", "));
        let step = Step::Delegated(Delegated::ConfigApply {
            tag: first.to_string(),
            keys,
        });
        let a = Action::new(module, cluster, step, class, Order::Create(Phase::Var));
        b.push(a.hosts(hosts).pigsty(p).reason(why));
    }
}
