//! Patroni's configuration refreshed on a PGSQL cluster's running members after the etcd
//! endpoints changed (the `patroni/refresh` action; Pigsty: `pgsql.yml -t pg_conf,patroni_reload`).
//!
//! In: the action's hosts (members on both sides of the change) and the new inventory. Out: per
//! member whether its file changed and Patroni was reloaded. On each member where Patroni
//! answers and pgitops wrote the file (its first line), the configuration is rendered again by
//! the renderer the creation uses ([`crate::render::patroni`], from the node's facts and the new
//! inventory), written only where it differs, and then Patroni reloads it (`POST /reload`,
//! credentials on stdin); it must still answer afterwards. Nothing is restarted. A file pgitops
//! did not write, or a member where Patroni does not run, is left alone and reported.

use std::time::Duration;

use super::patroni::dcs;
use super::patroni_api as api;
use super::patroni_node::{self as node, Now, MARK};
use super::root_sh::sh;
use super::{on_host, Component, Ctx, Outcome};
use crate::execute::ExecError;
use crate::plan::Action;
use crate::render::patroni::{patroni_yml_for, placement, Dcs};

/// `$1` the configuration's path, `$2` its owner; the new text on stdin. Rewrites the file only
/// when pgitops wrote the one there and it differs. Prints `changed`, `unchanged`, `foreign` or
/// `absent`.
const REFRESH: &str = r#"set -e
f=$1
[ -f "$f" ] || { echo absent; exit 0; }
head -n 1 "$f" | grep -q '^# written by pgitops' || { echo foreign; exit 0; }
(umask 077; cat > "$f.pgitops-new")
if cmp -s "$f.pgitops-new" "$f"; then rm -f "$f.pgitops-new"; echo unchanged; exit 0; fi
chown "$2:postgres" "$f.pgitops-new"; chmod 0640 "$f.pgitops-new"; mv -f "$f.pgitops-new" "$f"; echo changed"#;

pub(crate) struct PatroniRefresh;

impl Component for PatroniRefresh {
    /// The new `etcd3.hosts` (shown in the preview; the file is rendered whole).
    type Step = String;
    type Observed = Vec<(String, Now)>;

    async fn observe(ctx: &Ctx<'_>, a: &Action, _: &String) -> Result<Self::Observed, ExecError> {
        let asks = a
            .hosts
            .iter()
            .map(|h| async move { node::observe(ctx, h).await.map(|now| (h.clone(), now)) });
        futures::future::join_all(asks).await.into_iter().collect()
    }

    async fn execute(ctx: &Ctx<'_>, _: &Action, _: &String, now: Self::Observed) -> Outcome {
        let running = now.iter().any(|(_, n)| matches!(n, Now::Patroni { .. }));
        // The DCS the creation chose; asked only when some member runs Patroni.
        let dcs = match running {
            true => Some(dcs(ctx).await?),
            false => None,
        };
        let hosts = futures::future::join_all(now.iter().map(|(h, n)| {
            on_host(ctx, h, move || async move {
                match (n, dcs) {
                    (Now::Patroni { .. }, Some(dcs)) => refresh(ctx, h, dcs).await,
                    _ => Ok(format!(
                        "Patroni does not run here ({n:?}): nothing to refresh"
                    )),
                }
            })
        }))
        .await;
        Ok((String::new(), hosts))
    }
}

async fn refresh(ctx: &Ctx<'_>, host: &str, dcs: Dcs) -> Result<String, ExecError> {
    let refused = |e| ExecError::Refused(format!("{host}: {e}"));
    let facts = node::facts(ctx, host).await?;
    let text = patroni_yml_for(ctx.new, host, &facts, dcs).map_err(refused)?;
    let place = placement(ctx.new, host).map_err(refused)?;
    let file = format!("{MARK}{text}");
    let target = ctx.target(host);
    let what = "refreshing Patroni's configuration";
    let args = [place.path.as_str(), place.owner.as_str()];
    let out = sh(ctx, &target, what, REFRESH, &args, Some(file.as_bytes())).await?;
    match out.as_str() {
        "changed" => {}
        "unchanged" => return Ok(format!("{} unchanged; not reloaded", place.path)),
        "foreign" => {
            return Ok(format!(
                "{} was not written by pgitops; left alone",
                place.path
            ))
        }
        _ => return Ok(format!("{} does not exist; left alone", place.path)),
    }
    let (code, body) = api::request(ctx, host, "POST", "/reload", None, 10).await?;
    if !(200..300).contains(&code) {
        return Err(ExecError::Failed {
            host: host.into(),
            what: "POST /reload on Patroni's REST API".into(),
            stderr: format!(
                "HTTP {code}: {}",
                body.chars().take(200).collect::<String>()
            ),
        });
    }
    // Patroni reloads in its own loop: it must keep answering.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = api::status(ctx, host).await?;
    Ok(format!(
        "{} changed; Patroni reloaded (HTTP {code}), answering as {} ({}); not restarted",
        place.path, s.role, s.state
    ))
}
