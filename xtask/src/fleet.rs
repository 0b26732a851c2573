//! Every tenant read from the cluster at once, for the commands that act on
//! the whole fleet (`admin drift`; `provision --all` is meant to follow):
//! the tenant namespaces, every tenant object by the tenant label (one
//! `kubectl get` of all the tenants' kinds across all namespaces) and every
//! Ingress in the cluster (the claims), all with their managed fields:
//! three kubectl calls whatever the number of tenants. Each tenant is then
//! prepared from that read alone, as [`crate::plan::prepare`] would read
//! it for one tenant, and compared locally ([`crate::plan::local_plan`]).
//! Also the one-line progress of a fleet command on a terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kubectl::{Kubectl, Scope};
use crate::live::Tenants;
use crate::names::TENANT_LABEL;
use crate::object::{kind_and_name, namespace};
use crate::plan::{Claims, Live, LiveObjects, Prepared, prepare_from};
use crate::platform::Platform;
use crate::render::{Manifest, Templates};
use crate::tenant::TenantSpec;

/// The cluster as every tenant's plan needs it, read once.
pub struct Fleet {
    tenants: Tenants,
    /// Each namespace's tenant objects (and every Ingress in it), by kind and name.
    objects: BTreeMap<String, LiveObjects>,
    /// Every Ingress in the cluster, whoever it belongs to.
    ingresses: Vec<Value>,
}

impl Fleet {
    /// Reads the fleet: `kinds` are the lowercase kinds of the tenants'
    /// namespaced objects (as [`crate::plan::unique_kinds`] lists them
    /// from the renders). Namespaces and Ingresses are read whatever
    /// `kinds` says. A Secret is kept without its data: only whether it
    /// exists matters, and its values never leave the cluster.
    pub fn read(kubectl: &Kubectl, kinds: &[String]) -> anyhow::Result<Fleet> {
        let namespaces =
            kubectl.get_list_with_owners("namespaces", Scope::Cluster, Some(TENANT_LABEL))?;
        let labelled: Vec<&str> = kinds
            .iter()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "namespace" | "ingress"))
            .collect();
        let objects = if labelled.is_empty() {
            Vec::new()
        } else {
            kubectl.get_list_with_owners(
                &labelled.join(","),
                Scope::AllNamespaces,
                Some(TENANT_LABEL),
            )?
        };
        let ingresses = kubectl.get_list_with_owners("ingresses", Scope::AllNamespaces, None)?;
        Ok(Fleet::from_lists(namespaces, objects, ingresses))
    }

    /// The fleet from what the three reads returned.
    fn from_lists(namespaces: Vec<Value>, objects: Vec<Value>, ingresses: Vec<Value>) -> Fleet {
        let mut by_namespace: BTreeMap<String, LiveObjects> = BTreeMap::new();
        for mut object in objects.into_iter().chain(ingresses.iter().cloned()) {
            if object["kind"] == "Secret"
                && let Some(o) = object.as_object_mut()
            {
                o.remove("data");
                o.remove("stringData");
            }
            let Some(key) = kind_and_name(&object) else {
                continue;
            };
            by_namespace
                .entry(namespace(&object).to_owned())
                .or_default()
                .insert(key, object);
        }
        Fleet {
            tenants: Tenants::from_namespaces(namespaces),
            objects: by_namespace,
            ingresses,
        }
    }

    /// The tenants on the cluster (namespaces with the tenant label).
    pub fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    /// What every tenant and Ingress claims, for clash checks.
    pub fn claims(&self) -> Claims<'_> {
        Claims {
            tenants: &self.tenants.namespaces,
            ingresses: &self.ingresses,
        }
    }

    /// The namespace `ns` (if it is a tenant's) and the objects in it.
    pub fn live(&self, ns: &str) -> Live {
        Live {
            own_namespace: self.own_namespace(ns),
            existing: self.objects.get(ns).cloned().unwrap_or_default(),
        }
    }

    /// The tenant Namespace object named `ns`, if the read found it.
    fn own_namespace(&self, ns: &str) -> Option<Value> {
        self.tenants
            .namespaces
            .iter()
            .find(|n| crate::object::name(n) == ns)
            .cloned()
    }

    /// [`Fleet::live`] for a command that reads each namespace once: the
    /// objects are moved out of the read, not copied (at a thousand
    /// tenants they are hundreds of MB). A second take of `ns` finds none.
    pub fn take_live(&mut self, ns: &str) -> Live {
        Live {
            own_namespace: self.own_namespace(ns),
            existing: self.objects.remove(ns).unwrap_or_default(),
        }
    }

    /// What an apply of `spec` would send, from this read alone: as
    /// [`crate::plan::prepare`] decides it after reading the cluster for
    /// one tenant. `rendered` is the tenant's render with redacted secrets.
    pub fn prepare(
        &self,
        platform: &Platform,
        templates: &Templates,
        spec: &TenantSpec,
        rendered: Vec<Manifest>,
        generate_secrets: bool,
    ) -> anyhow::Result<Prepared> {
        prepare_from(
            self.live(&spec.namespace),
            self.claims(),
            platform,
            templates,
            spec,
            rendered,
            generate_secrets,
        )
    }
}

/// A fleet command's progress on one line of a terminal, redrawn in place
/// (`drift: 12/1000 tenants, 1 failed`); nothing at all when stderr is not
/// a terminal, or in CI (`transfer::progress_shown`). The line is ended when the progress is dropped.
pub struct Progress<W: Write> {
    label: &'static str,
    total: usize,
    done: usize,
    failed: usize,
    out: Option<W>,
    drawn: Option<Instant>,
}

impl Progress<std::io::Stderr> {
    /// Progress of `total` tenants on stderr, if it is a terminal.
    pub fn on_terminal(label: &'static str, total: usize) -> Self {
        let out = crate::transfer::progress_shown().then(std::io::stderr);
        Progress::to(label, total, out)
    }
}

impl<W: Write> Progress<W> {
    /// Progress written to `out` (None: shown nowhere).
    pub fn to(label: &'static str, total: usize, out: Option<W>) -> Self {
        Progress {
            label,
            total,
            done: 0,
            failed: 0,
            out,
            drawn: None,
        }
    }

    /// One more tenant done, failed or not. Redrawn at most ten times a
    /// second, and always for the last one.
    pub fn tenant_done(&mut self, failed: bool) {
        self.done += 1;
        self.failed += usize::from(failed);
        let due = self
            .drawn
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(100));
        if !(due || self.done == self.total) {
            return;
        }
        self.draw();
    }

    /// Prints `line` on stdout without running it into the progress line:
    /// the progress is erased first and drawn again after it.
    pub fn println(&mut self, line: &str) {
        let shown = self.drawn.is_some();
        if shown && let Some(out) = &mut self.out {
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
        println!("{line}");
        if shown {
            self.draw();
        }
    }

    fn draw(&mut self) {
        if let Some(out) = &mut self.out {
            // Carriage return and erase to the end of the line: redrawn in place.
            let _ = write!(
                out,
                "\r{}: {}/{} tenants, {} failed\x1b[K",
                self.label, self.done, self.total, self.failed
            );
            let _ = out.flush();
            self.drawn = Some(Instant::now());
        }
    }

    /// Erases the drawn line, so that a line printed next (on stdout, to
    /// the same terminal) starts clean; the next [`Progress::tenant_done`]
    /// draws it again below.
    pub fn clear(&mut self) {
        if self.drawn.is_some()
            && let Some(out) = &mut self.out
        {
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }

    /// What was written (tests).
    pub fn output(&self) -> Option<&W> {
        self.out.as_ref()
    }
}

impl<W: Write> Drop for Progress<W> {
    fn drop(&mut self) {
        if self.drawn.is_some()
            && let Some(out) = &mut self.out
        {
            let _ = writeln!(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_read_is_indexed_by_namespace_without_secret_values() {
        let ns = |name: &str, tenant: &str| json!({"kind": "Namespace", "metadata": {"name": name, "labels": {TENANT_LABEL: tenant}}});
        let fleet = Fleet::from_lists(
            vec![ns("tenant-b", "b"), ns("tenant-a", "a")],
            vec![
                json!({"kind": "ConfigMap", "metadata": {"name": "bot-config", "namespace": "tenant-a"}}),
                json!({"kind": "Secret", "metadata": {"name": "bot-credentials", "namespace": "tenant-a"},
                    "data": {"KEY": "c2VjcmV0"}}),
                json!({"kind": "ConfigMap", "metadata": {"name": "bot-config", "namespace": "tenant-b"}}),
            ],
            vec![
                json!({"kind": "Ingress", "metadata": {"name": "bot", "namespace": "tenant-a"}}),
                json!({"kind": "Ingress", "metadata": {"name": "web", "namespace": "marketing"}}),
            ],
        );
        assert_eq!(fleet.tenants().names(), ["a", "b"]);
        let live = fleet.live("tenant-a");
        assert_eq!(
            live.own_namespace.as_ref().map(crate::object::name),
            Some("tenant-a")
        );
        let keys: Vec<String> = live
            .existing
            .keys()
            .map(|(k, n)| format!("{k}/{n}"))
            .collect();
        assert_eq!(
            keys,
            [
                "ConfigMap/bot-config",
                "Ingress/bot",
                "Secret/bot-credentials"
            ]
        );
        let secret = &live.existing[&("Secret".to_owned(), "bot-credentials".to_owned())];
        assert!(secret.get("data").is_none(), "{secret}");
        assert_eq!(fleet.claims().ingresses.len(), 2);
        assert!(fleet.live("tenant-c").own_namespace.is_none());
    }

    #[test]
    fn progress_is_one_line_redrawn_and_ended() {
        let mut progress = Progress::to("drift", 3, Some(Vec::new()));
        progress.tenant_done(false);
        progress.tenant_done(true);
        progress.tenant_done(false);
        let text = String::from_utf8(progress.output().unwrap().clone()).unwrap();
        assert!(
            text.starts_with("\rdrift: 1/3 tenants, 0 failed\x1b[K"),
            "{text:?}"
        );
        assert!(
            text.ends_with("\rdrift: 3/3 tenants, 1 failed\x1b[K"),
            "{text:?}"
        );
        assert!(!text.contains('\n'), "{text:?}");
        // A line printed among the tenants: the progress is erased before
        // it and drawn again after it.
        let mut progress = Progress::to("provision", 2, Some(Vec::new()));
        progress.tenant_done(false);
        progress.println("Tenant a is up to date");
        let text = String::from_utf8(progress.output().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "\rprovision: 1/2 tenants, 0 failed\x1b[K\r\x1b[K\rprovision: 1/2 tenants, 0 failed\x1b[K"
        );
        // Nowhere to show it: nothing is drawn.
        let mut hidden: Progress<Vec<u8>> = Progress::to("drift", 1, None);
        hidden.tenant_done(false);
        assert!(hidden.output().is_none());
    }

    #[test]
    fn clearing_erases_only_a_drawn_line() {
        let mut progress = Progress::to("restart", 2, Some(Vec::new()));
        progress.clear();
        assert!(progress.output().unwrap().is_empty(), "nothing drawn yet");
        progress.tenant_done(false);
        progress.clear();
        let text = String::from_utf8(progress.output().unwrap().clone()).unwrap();
        assert!(text.ends_with("0 failed\x1b[K\r\x1b[K"), "{text:?}");
    }
}
