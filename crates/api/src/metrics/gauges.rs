//! The gauges counted from the store at scrape time (leases by mount, role and credential
//! type; irrevocable leases; the revocation pause) and the build info, as data that both
//! `sys/metrics` formats are written from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use keymint_store::leases;

use crate::AppState;
use crate::error::ApiError;

/// One gauge and its samples, each a set of labels and a value.
pub(crate) struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Leases by mount, role and credential type, irrevocable leases by mount, whether revocation
/// is paused, and the running version.
pub(crate) async fn store_gauges(state: &AppState) -> Result<Vec<Family>, ApiError> {
    let census = leases::census(state.store().pool()).await?;
    let mounts = state.mounts().await?;
    let mount_path = |id: &str| {
        mounts
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.path.clone())
            .unwrap_or_else(|| format!("{id} (disabled)"))
    };
    let mut active = Vec::new();
    let mut irrevocable: BTreeMap<String, i64> = BTreeMap::new();
    for group in &census {
        let mount = mount_path(&group.mount_id);
        active.push((
            vec![
                ("mount", mount.clone()),
                ("role", group.role_name.clone()),
                ("credential_type", group.credential_type.clone()),
            ],
            group.leases as f64,
        ));
        *irrevocable.entry(mount).or_default() += group.irrevocable;
    }
    let paused = keymint_store::revocation::paused(state.store().pool()).await?.is_some();
    Ok(vec![
        Family {
            name: "keymint_leases_active",
            help: "Leases not yet revoked, by mount, role and credential type",
            samples: active,
        },
        Family {
            name: "keymint_leases_irrevocable",
            help: "Leases flagged irrevocable (revocation kept failing), by mount",
            samples: irrevocable.into_iter().map(|(mount, n)| (vec![("mount", mount)], n as f64)).collect(),
        },
        Family {
            name: "keymint_revocation_paused",
            help: "1 while automatic revocation is paused (after a restore)",
            samples: vec![(Vec::new(), f64::from(u8::from(paused)))],
        },
        Family {
            name: "keymint_build_info",
            help: "The running keymint version",
            samples: vec![(vec![("version", crate::VERSION.to_owned())], 1.0)],
        },
    ])
}

/// Appends the families in Prometheus' text format.
pub(crate) fn write_text(families: &[Family], text: &mut String) {
    for family in families {
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} gauge", family.name);
        for (labels, value) in &family.samples {
            let _ = write!(text, "{}", family.name);
            if !labels.is_empty() {
                let pairs: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let _ = write!(text, "{{{}}}", pairs.join(","));
            }
            let _ = writeln!(text, " {value}");
        }
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_written_in_the_text_format() {
        let families = [
            Family {
                name: "g",
                help: "a gauge",
                samples: vec![(vec![("mount", "a\"b\\c\n".into()), ("role", "r".into())], 3.0)],
            },
            Family { name: "empty", help: "none yet", samples: Vec::new() },
            Family { name: "flag", help: "on or off", samples: vec![(Vec::new(), 0.0)] },
        ];
        let mut text = String::new();
        write_text(&families, &mut text);
        assert_eq!(
            text,
            "# HELP g a gauge\n# TYPE g gauge\ng{mount=\"a\\\"b\\\\c\\n\",role=\"r\"} 3\n\
             # HELP empty none yet\n# TYPE empty gauge\n\
             # HELP flag on or off\n# TYPE flag gauge\nflag 0\n"
        );
    }
}
