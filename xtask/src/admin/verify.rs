//! `admin verify`: prove each tenant's isolation on the live cluster.
//!
//! Checks, each reported per tenant:
//! - `objects`: every object the tenant's committed config renders exists,
//!   and the isolation objects match it field for field;
//! - `rbac`: the bot's service account may do nothing in another tenant's
//!   namespace or cluster-wide (the API server's own answer, `auth can-i`),
//!   and no binding outside its namespace names it;
//! - `admission`: a privileged pod is refused in the namespace (server-side
//!   dry run, nothing created);
//! - `sharing`: no domain, WhatsApp number, volume or credential is shared
//!   with another tenant.
//!
//! Cost: a few cluster-wide reads, then per tenant one namespaced read, one
//! dry run, and `auth can-i` for each check × other selected tenant.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::bail;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::flags;
use crate::kubectl::{Cause, Conflicts, Container, Input, Kubectl, KubectlFailure, Scope};
use crate::live::{Tenants, tenant_of};
use crate::names::{
    APP_LABEL, BOT, DOMAINS_ANNOTATION, MANAGED_BY_LABEL, MANAGER, NETWORK_PROBE_POD,
    PRIVILEGED_PROBE_POD, TENANT_LABEL, WHATSAPP_NUMBER_ANNOTATION,
};
use crate::object::{annotation, kind_and_name, str_at};
use crate::output::{OutputFormat, print_structured, table};
use crate::platform::Platform;
use crate::render::{Manifest, SecretValues, Templates};
use crate::repo::{read_values, tenants_dir};
use crate::state::{Lifecycle, State};
use crate::tenant::{self, TenantName, TenantSpec};

/// What another tenant's bot must never be able to do here: (verb,
/// resource, subresource). A subresource is asked as `--subresource`;
/// `pods/exec` as one word would mean the pod named `exec`.
const NAMESPACED_PROBES: [(&str, &str, Option<&str>); 6] = [
    ("get", "secrets", None),
    ("list", "configmaps", None),
    ("create", "pods", None),
    ("create", "pods", Some("exec")),
    ("delete", "persistentvolumeclaims", None),
    ("patch", "deployments", None),
];
/// And anywhere at all.
const CLUSTER_PROBES: [(&str, &str, Option<&str>); 4] = [
    ("list", "namespaces", None),
    ("list", "secrets", None),
    ("get", "nodes", None),
    ("create", "clusterrolebindings", None),
];

#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub passed: bool,
    /// What failed; empty when the check passed.
    pub problems: Vec<String>,
    /// What the check left out and why (a suspended tenant's Ingress).
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TenantReport {
    pub tenant: String,
    /// Its lifecycle as `state.rs` defines it: running stands for any active tenant.
    pub state: State,
    /// Why checks were left out (an offboarded tenant is not checked).
    pub note: Option<String>,
    pub checks: Vec<CheckResult>,
}

#[derive(Serialize)]
struct VerifyOutput<'a> {
    passed: bool,
    tenants: &'a [TenantReport],
}

impl flags::Verify {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let platform = self.platform.load(root)?;
        let templates = Templates::load(&root.join("templates"))?;
        let tenants_dir = tenants_dir(root, self.tenants_dir.as_deref());
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let tenants = Tenants::discover(kubectl)?;
        let selected: Vec<TenantName> = if self.tenants.is_empty() {
            tenants
                .names()
                .iter()
                .filter_map(|n| TenantName::parse(n).ok())
                .collect()
        } else {
            for t in &self.tenants {
                tenants.require(t)?;
            }
            self.tenants.clone()
        };
        if selected.is_empty() {
            bail!("there are no tenants on {} to verify", cluster.label());
        }
        eprintln!(
            "Verifying {} tenant(s) on {} ...",
            selected.len(),
            cluster.label()
        );
        let view = ClusterView::read(kubectl)?;
        let mut reports = Vec::new();
        for t in &selected {
            // After Ctrl-C the current probe is cleaned up; the rest are skipped.
            crate::interrupt::check()?;
            let ns = t.namespace();
            let lifecycle = tenants
                .find(t.as_str())
                .map_or(Lifecycle::Active, Lifecycle::of);
            let state = lifecycle.state().unwrap_or(State::Running);
            // An offboarded tenant has no bot, config or policies left to
            // prove anything of; a suspended one keeps all of its isolation.
            if matches!(
                lifecycle,
                Lifecycle::Offboarded { .. } | Lifecycle::Terminating { .. }
            ) {
                reports.push(TenantReport {
                    tenant: t.to_string(),
                    state,
                    note: lifecycle
                        .note(t.as_str())
                        .map(|n| format!("not checked: {n}")),
                    checks: Vec::new(),
                });
                continue;
            }
            let suspended = matches!(lifecycle, Lifecycle::Suspended { .. });
            let mut checks = vec![
                check_objects(
                    kubectl,
                    &templates,
                    &platform,
                    &tenants_dir,
                    &tenants,
                    t,
                    suspended,
                ),
                check_rbac(kubectl, &view, &tenants, t),
                check_admission(kubectl, &platform, &ns),
                check_sharing(&view, &tenants, t),
            ];
            if self.network {
                crate::interrupt::install();
                checks.push(check_network(kubectl, &platform, &tenants, t));
            }
            reports.push(TenantReport {
                tenant: t.to_string(),
                state,
                note: lifecycle.note(t.as_str()),
                checks,
            });
        }
        let passed = reports.iter().all(|r| r.checks.iter().all(|c| c.passed));
        match self.output.format {
            OutputFormat::Table => {
                let mut rows = Vec::new();
                for r in &reports {
                    if r.checks.is_empty() {
                        rows.push(vec![
                            r.tenant.clone(),
                            "-".to_owned(),
                            "skipped".to_owned(),
                            r.note.clone().unwrap_or_default(),
                        ]);
                    }
                    for c in &r.checks {
                        let detail = c.problems.first().cloned().unwrap_or_default();
                        rows.push(vec![
                            r.tenant.clone(),
                            c.check.to_owned(),
                            if c.passed { "pass" } else { "FAIL" }.to_owned(),
                            detail,
                        ]);
                        let notes = c.notes.iter().map(|n| format!("note: {n}"));
                        let more: Vec<String> =
                            c.problems.iter().skip(1).cloned().chain(notes).collect();
                        for (i, more) in more.into_iter().enumerate() {
                            if i == 0 && c.problems.is_empty() {
                                rows.last_mut().expect("pushed above")[3] = more;
                                continue;
                            }
                            rows.push(vec![String::new(), String::new(), String::new(), more]);
                        }
                    }
                }
                print!("{}", table(&["TENANT", "CHECK", "RESULT", "DETAIL"], &rows));
            }
            format => print_structured(
                format,
                &VerifyOutput {
                    passed,
                    tenants: &reports,
                },
            )?,
        }
        if !passed {
            let failed: usize = reports
                .iter()
                .map(|r| r.checks.iter().filter(|c| !c.passed).count())
                .sum();
            bail!("{failed} check(s) failed; the tenants above are not proven isolated");
        }
        Ok(())
    }
}

fn result(check: &'static str, problems: Vec<String>) -> CheckResult {
    CheckResult {
        check,
        passed: problems.is_empty(),
        problems,
        notes: Vec::new(),
    }
}

/// Cluster-wide reads shared by every tenant's checks.
struct ClusterView {
    ingresses: Vec<Value>,
    claims: Vec<Value>,
    secrets: Vec<Value>,
    role_bindings: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
}

impl ClusterView {
    fn read(kubectl: &Kubectl) -> anyhow::Result<ClusterView> {
        Ok(ClusterView {
            ingresses: kubectl.get_list("ingresses", Scope::AllNamespaces, None)?,
            claims: kubectl.get_list(
                "persistentvolumeclaims",
                Scope::AllNamespaces,
                Some(TENANT_LABEL),
            )?,
            secrets: kubectl.get_list("secrets", Scope::AllNamespaces, Some(TENANT_LABEL))?,
            role_bindings: kubectl.get_list("rolebindings", Scope::AllNamespaces, None)?,
            cluster_role_bindings: kubectl.get_list("clusterrolebindings", Scope::Cluster, None)?,
        })
    }
}

fn check_objects(
    kubectl: &Kubectl,
    templates: &Templates,
    platform: &Platform,
    tenants_dir: &Path,
    tenants: &Tenants,
    t: &TenantName,
    suspended: bool,
) -> CheckResult {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let path = tenants_dir.join(format!("{t}.yaml"));
    let manifests = match read_values(&path)
        .map_err(|e| format!("{e:#}; the tenant's committed config is needed to compare"))
        .and_then(|values| {
            TenantSpec::resolve(t, &values, &platform.tier_names(), &platform.default_tier)
                .map_err(|p| tenant::format_problems(&format!("{} is invalid", path.display()), &p))
        })
        .and_then(|spec| {
            templates
                .render_tenant(&spec, platform, &SecretValues::Redacted)
                .map_err(|e| format!("{e:#}"))
        }) {
        Ok(m) => m,
        Err(e) => return result("objects", vec![e]),
    };
    let ns = t.namespace();
    let kinds: Vec<String> = {
        let mut k: Vec<String> = manifests
            .iter()
            .filter(|m| m.kind != "Namespace")
            .map(|m| m.kind.to_ascii_lowercase())
            .collect();
        k.dedup();
        k
    };
    let live: BTreeMap<(String, String), Value> =
        match kubectl.get_list(&kinds.join(","), Scope::Namespace(&ns), None) {
            Ok(items) => items
                .into_iter()
                .filter_map(|o| Some((kind_and_name(&o)?, o)))
                .collect(),
            Err(e) => return result("objects", vec![format!("{e:#}")]),
        };
    let live_ns = tenants.find(t.as_str());
    for m in &manifests {
        let object = if m.kind == "Namespace" {
            live_ns
        } else {
            live.get(&(m.kind.clone(), m.name.clone()))
        };
        if suspended && m.kind == "Ingress" && object.is_some() {
            notes.push(format!(
                "{} is on the cluster although the tenant is suspended: its website answers \
                 (`admin drift` reports it)",
                m.reference()
            ));
        }
        let Some(object) = object else {
            if suspended && m.kind == "Ingress" {
                notes.push(format!(
                    "{} is not on the cluster: the tenant is suspended (its Ingress is recorded on the namespace; \
                     `admin drift` compares it)",
                    m.reference()
                ));
            } else {
                problems.push(format!("{} is missing", m.reference()));
            }
            continue;
        };
        problems.extend(compare(m, object));
    }
    CheckResult {
        notes,
        ..result("objects", problems)
    }
}

/// The fields of a live object that isolation depends on, against the render.
fn compare(m: &Manifest, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut same = |pointer: &str| {
        let want = m.object.pointer(pointer).unwrap_or(&Value::Null);
        let have = live.pointer(pointer).unwrap_or(&Value::Null);
        if want != have {
            out.push(format!(
                "{} {} differs from the config: {have} instead of {want}",
                m.reference(),
                pointer.trim_start_matches('/').replace('/', ".")
            ));
        }
    };
    match m.kind.as_str() {
        "ResourceQuota" | "LimitRange" | "NetworkPolicy" => same("/spec"),
        "ServiceAccount" => same("/automountServiceAccountToken"),
        "Namespace" => {
            for mode in ["enforce", "audit", "warn"] {
                same(&format!(
                    "/metadata/labels/pod-security.kubernetes.io~1{mode}"
                ));
            }
        }
        "Deployment" => {
            same("/spec/strategy/type");
            same("/spec/template/spec/automountServiceAccountToken");
            let spec = live
                .pointer("/spec/template/spec")
                .cloned()
                .unwrap_or(Value::Null);
            // Replicas are not the config's (suspend, restore and operators
            // scale); more than one would run one WhatsApp session twice.
            let replicas = live
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if replicas > 1 {
                out.push(format!(
                    "{} runs {replicas} replicas: one WhatsApp session must never run twice; scale it to 1",
                    m.reference()
                ));
            }
            out.extend(
                crate::pss::restricted_violations(&spec)
                    .into_iter()
                    .map(|v| format!("deployment/bot: {v}")),
            );
        }
        _ => {}
    }
    out
}

fn check_rbac(
    kubectl: &Kubectl,
    cluster: &ClusterView,
    tenants: &Tenants,
    t: &TenantName,
) -> CheckResult {
    let ns = t.namespace();
    let subject = format!("system:serviceaccount:{ns}:{BOT}");
    let mut problems = Vec::new();
    // Bindings that name this tenant's service accounts anywhere but home.
    let names_us = |b: &Value| {
        b.pointer("/subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|s| {
                let kind = s["kind"].as_str();
                (kind == Some("ServiceAccount") && s["namespace"] == ns.as_str())
                    || (kind == Some("Group")
                        && s["name"] == format!("system:serviceaccounts:{ns}").as_str())
            })
    };
    for b in cluster
        .role_bindings
        .iter()
        .filter(|b| str_at(b, "/metadata/namespace") != Some(&ns))
        .filter(|b| names_us(b))
    {
        problems.push(format!(
            "rolebinding {}/{} grants {ns}'s service accounts a role in another namespace",
            str_at(b, "/metadata/namespace").unwrap_or_default(),
            str_at(b, "/metadata/name").unwrap_or_default()
        ));
    }
    for b in cluster.cluster_role_bindings.iter().filter(|b| names_us(b)) {
        problems.push(format!(
            "clusterrolebinding {} grants {ns}'s service accounts a cluster-wide role",
            str_at(b, "/metadata/name").unwrap_or_default()
        ));
    }
    // The API server's own answers.
    let mut ask =
        |(verb, resource, sub): (&str, &str, Option<&str>), target: Option<&str>| match kubectl
            .can_i(&subject, verb, resource, sub, target)
        {
            Ok(false) => {}
            Ok(true) => problems.push(format!(
                "the bot may {verb} {resource}{} {}",
                sub.map(|s| format!("/{s}")).unwrap_or_default(),
                target.map_or_else(|| "cluster-wide".to_owned(), |n| format!("in {n}"))
            )),
            Err(e) => problems.push(format!("could not ask `auth can-i`: {e:#}")),
        };
    for other in tenants.names().iter().filter(|n| n.as_str() != t.as_str()) {
        let other_ns = format!("{}{other}", tenant::NAMESPACE_PREFIX);
        for probe in NAMESPACED_PROBES {
            ask(probe, Some(&other_ns));
        }
    }
    for probe in CLUSTER_PROBES {
        ask(probe, None);
    }
    problems.dedup();
    result("rbac", problems)
}

fn check_admission(kubectl: &Kubectl, platform: &Platform, ns: &str) -> CheckResult {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PRIVILEGED_PROBE_POD, "namespace": ns},
        "spec": {"containers": [{
            "name": "probe",
            "image": platform.bot.image,
            "securityContext": {"privileged": true, "allowPrivilegeEscalation": true},
        }]},
    });
    // Only Pod Security's own refusal proves it: RBAC, a quota or a
    // LimitRange say Forbidden too, and would hide a namespace without it.
    let problems = match kubectl.apply_dry_run(&pod, MANAGER) {
        Ok(()) => vec![format!(
            "a privileged pod was admitted in {ns} (server-side dry run): Pod Security enforcement is off for this namespace"
        )],
        Err(e) => match e.downcast_ref::<KubectlFailure>().map(|f| f.cause) {
            Some(Cause::PodSecurity) => Vec::new(),
            _ => vec![format!(
                "not proven: the privileged pod's dry run was refused, but not by Pod Security, so enforcement is unknown: {e:#}"
            )],
        },
    };
    result("admission", problems)
}

/// The probe pod: restricted, no token, and the bot's network role, so that
/// the bot's own NetworkPolicies are what it tests. It does not match the
/// bot's Deployment or Service selector (its app name is its own): the
/// bot's ReplicaSet never adopts it and its Service never routes to it.
pub fn probe_pod(platform: &Platform, t: &TenantName) -> Value {
    let mut labels =
        json!({TENANT_LABEL: t.as_str(), APP_LABEL: NETWORK_PROBE_POD, MANAGED_BY_LABEL: MANAGER});
    for (k, v) in crate::names::bot_network_role() {
        labels[k] = json!(v);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": NETWORK_PROBE_POD,
            "namespace": t.namespace(),
            "labels": labels,
        },
        "spec": {
            "automountServiceAccountToken": false,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe",
                "image": platform.admin.probe_image,
                "command": ["sleep", "600"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    })
}

fn check_network(
    kubectl: &Kubectl,
    platform: &Platform,
    tenants: &Tenants,
    t: &TenantName,
) -> CheckResult {
    let ns = t.namespace();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let timeout = &platform.admin.pod_timeout;
    let started = kubectl
        .delete(Some(&ns), "pod", NETWORK_PROBE_POD, Some(timeout))
        .and_then(|()| kubectl.apply_object(&probe_pod(platform, t), MANAGER, Conflicts::Refuse))
        .and_then(|()| kubectl.wait_for_condition(&ns, NETWORK_PROBE_POD, "Ready", timeout));
    if let Err(e) = started {
        problems.push(format!("the probe pod did not start: {e:#}"));
    } else {
        // Only an active tenant's bot answers: failing to reach a stopped
        // one would prove nothing.
        let other = tenants
            .namespaces
            .iter()
            .filter(|n| Lifecycle::of(n) == Lifecycle::Active)
            .filter_map(tenant_of)
            .find(|n| n.as_str() != t.as_str());
        let mut must_fail = vec![
            (
                "the cloud metadata address".to_owned(),
                vec!["nc", "-z", "-w", "3", "169.254.169.254", "80"],
            ),
            (
                "the API server".to_owned(),
                vec![
                    "nc",
                    "-z",
                    "-w",
                    "3",
                    "kubernetes.default.svc.cluster.local",
                    "443",
                ],
            ),
        ];
        let other_host = other
            .as_ref()
            .map(|o| format!("{BOT}.{}{o}.svc.cluster.local", tenant::NAMESPACE_PREFIX));
        if other.is_none() {
            notes.push(
                "no other active tenant's bot to try to reach (suspended and offboarded bots do not answer)"
                    .to_owned(),
            );
        }
        if let (Some(o), Some(host)) = (&other, &other_host) {
            must_fail.insert(
                0,
                (
                    format!("tenant {o}'s bot"),
                    vec!["nc", "-z", "-w", "3", host.as_str(), "80"],
                ),
            );
        }
        for (what, command) in must_fail {
            match run_probe(kubectl, &ns, &command) {
                Ok(true) => problems.push(format!(
                    "the probe reached {what}: NetworkPolicy is not enforced for {ns}"
                )),
                Ok(false) => {}
                Err(e) => problems.push(format!("could not probe {what}: {e:#}")),
            }
        }
        match run_probe(
            kubectl,
            &ns,
            &["nslookup", "kubernetes.default.svc.cluster.local"],
        ) {
            Ok(true) => {}
            Ok(false) => {
                problems.push("the probe could not resolve names: DNS egress is blocked".to_owned())
            }
            Err(e) => problems.push(format!("could not probe DNS: {e:#}")),
        }
    }
    // Whatever happened, the probe goes.
    if let Err(e) = kubectl.delete(Some(&ns), "pod", NETWORK_PROBE_POD, Some(timeout)) {
        problems.push(format!(
            "the probe pod {NETWORK_PROBE_POD} could not be deleted; delete it by hand: {e:#}"
        ));
    }
    CheckResult {
        notes,
        ..result("network", problems)
    }
}

/// Runs a probe command; Ok(true) when it succeeded, Ok(false) when the
/// command itself ran and failed (kubectl says `command terminated with
/// exit code N`), Err when kubectl could not run it: whatever else is on
/// stderr (discovery warnings, a missing pod) is never read as "blocked".
fn run_probe(kubectl: &Kubectl, ns: &str, command: &[&str]) -> anyhow::Result<bool> {
    let probe = Container {
        namespace: ns.to_owned(),
        pod: NETWORK_PROBE_POD.to_owned(),
        name: "probe".to_owned(),
    };
    match kubectl.exec(&probe, command, Input::None).run() {
        Ok(_) => Ok(true),
        Err(e) => match e.downcast_ref::<KubectlFailure>().map(|f| f.cause) {
            Some(Cause::CommandExited(_)) => Ok(false),
            _ => Err(e),
        },
    }
}

fn check_sharing(cluster: &ClusterView, tenants: &Tenants, t: &TenantName) -> CheckResult {
    let ns = t.namespace();
    let mut problems = Vec::new();
    let annotation = |o: &Value, key: &str| annotation(o, key).map(str::to_owned);
    let Some(mine) = tenants.find(t.as_str()) else {
        return result(
            "sharing",
            vec!["the tenant's namespace disappeared during the check".into()],
        );
    };
    let my_domains: Vec<String> = annotation(mine, DOMAINS_ANNOTATION)
        .unwrap_or_default()
        .split(',')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    let my_number = annotation(mine, WHATSAPP_NUMBER_ANNOTATION);
    for other in tenants
        .namespaces
        .iter()
        .filter(|n| tenant_of(n).as_deref() != Some(t.as_str()))
    {
        let name = tenant_of(other).unwrap_or_default();
        if my_number.is_some() && annotation(other, WHATSAPP_NUMBER_ANNOTATION) == my_number {
            problems.push(format!("WhatsApp number is also tenant {name}'s"));
        }
        for d in annotation(other, DOMAINS_ANNOTATION)
            .unwrap_or_default()
            .split(',')
            .filter(|d| !d.is_empty())
        {
            if my_domains.iter().any(|m| tenant::domains_overlap(m, d)) {
                problems.push(format!("domain {d} is also tenant {name}'s"));
            }
        }
    }
    for ing in cluster
        .ingresses
        .iter()
        .filter(|i| str_at(i, "/metadata/namespace") != Some(&ns))
    {
        for host in ing
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r["host"].as_str())
        {
            if my_domains.iter().any(|m| tenant::domains_overlap(m, host)) {
                problems.push(format!(
                    "domain {host} is also served by Ingress {}/{}",
                    str_at(ing, "/metadata/namespace").unwrap_or_default(),
                    str_at(ing, "/metadata/name").unwrap_or_default()
                ));
            }
        }
    }
    let volume = |c: &Value| str_at(c, "/spec/volumeName").map(str::to_owned);
    for c in cluster
        .claims
        .iter()
        .filter(|c| str_at(c, "/metadata/namespace") == Some(&ns))
    {
        let Some(pv) = volume(c) else { continue };
        for other in cluster
            .claims
            .iter()
            .filter(|o| str_at(o, "/metadata/namespace") != Some(&ns))
        {
            if volume(other).as_deref() == Some(pv.as_str()) {
                problems.push(format!(
                    "volume {pv} is bound to claims of this tenant and of {}",
                    str_at(other, "/metadata/namespace").unwrap_or_default()
                ));
            }
        }
    }
    // Credentials are compared by digest; their values never leave memory.
    let digests = |s: &Value| -> Vec<String> {
        s.pointer("/data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| v.as_str())
            .map(|v| crate::digest::sha256_hex(v.as_bytes()))
            .collect()
    };
    let mine_secrets: Vec<String> = cluster
        .secrets
        .iter()
        .filter(|s| str_at(s, "/metadata/namespace") == Some(&ns))
        .flat_map(digests)
        .collect();
    for other in cluster
        .secrets
        .iter()
        .filter(|s| str_at(s, "/metadata/namespace") != Some(&ns))
    {
        if digests(other).iter().any(|d| mine_secrets.contains(d)) {
            problems.push(format!(
                "secret {}/{} holds a credential value identical to one of this tenant's",
                str_at(other, "/metadata/namespace").unwrap_or_default(),
                str_at(other, "/metadata/name").unwrap_or_default()
            ));
        }
    }
    problems.sort();
    problems.dedup();
    result("sharing", problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantValues;

    /// The probe must obey the bot's NetworkPolicies but never match the
    /// bot's Deployment selector (its ReplicaSet would adopt it and delete
    /// a pod) nor its Service's (traffic would go to it).
    #[test]
    fn the_probe_has_the_bots_network_role_and_is_never_taken_for_the_bot() {
        let root = crate::repo::project_root();
        let platform = Platform::load(&root.join("platform.yaml").display().to_string()).unwrap();
        let templates = Templates::load(&root.join("templates")).unwrap();
        let t = TenantName::parse("demo").unwrap();
        let values = TenantValues::from_yaml(
            "demo.yaml",
            &std::fs::read_to_string(root.join("tenants/demo.yaml")).unwrap(),
        )
        .unwrap();
        let spec = TenantSpec::resolve(&t, &values, &platform.tier_names(), "small").unwrap();
        let manifests = templates
            .render_tenant(&spec, &platform, &SecretValues::Redacted)
            .unwrap();
        let probe = probe_pod(&platform, &t);
        let labels = probe["metadata"]["labels"].as_object().unwrap();
        let matches = |selector: &Value| {
            selector
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        };
        let object = |kind: &str, name: &str| {
            &manifests
                .iter()
                .find(|m| m.kind == kind && m.name == name)
                .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
                .object
        };
        assert!(!matches(
            &object("Deployment", crate::names::BOT)["spec"]["selector"]["matchLabels"]
        ));
        assert!(!matches(
            &object("Service", crate::names::BOT)["spec"]["selector"]
        ));
        // Every policy for the bot's pods holds the probe too.
        let bot_policies: Vec<&str> = manifests
            .iter()
            .filter(|m| m.kind == "NetworkPolicy")
            .filter(|m| {
                m.object["spec"]["podSelector"]["matchLabels"]
                    .as_object()
                    .is_some_and(|l| l.contains_key(crate::names::NETWORK_ROLE_LABEL))
            })
            .map(|m| m.name.as_str())
            .collect();
        assert!(
            bot_policies.contains(&"allow-https-egress")
                && bot_policies.contains(&"allow-ingress-controller"),
            "{bot_policies:?}"
        );
        for name in bot_policies {
            assert!(
                matches(&object("NetworkPolicy", name)["spec"]["podSelector"]["matchLabels"]),
                "{name}"
            );
        }
        assert_eq!(
            crate::pss::restricted_violations(&probe["spec"]),
            Vec::<String>::new()
        );
    }
}
