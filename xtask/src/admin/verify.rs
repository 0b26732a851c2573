//! `admin verify`: prove each tenant's isolation on the live cluster.
//!
//! Checks, each reported per tenant:
//! - `objects`: every object the tenant's committed config renders exists,
//!   and the isolation objects match it field for field;
//! - `rbac`: no service account of the tenant may do any of [`PROBES`] in
//!   another tenant's namespace, nor any of [`CLUSTER_PROBES`]; no other
//!   tenant's may do them in its namespace; no binding outside its
//!   namespace names it. Decided by `rbac.rs` from one read of every role
//!   and binding, and spot-checked against the API server's own answer
//!   (`auth can-i`): a fixed number of questions per tenant, any
//!   disagreement a failure;
//! - `admission`: a privileged pod is refused in the namespace (server-side
//!   dry run, nothing created);
//! - `sharing`: no domain, WhatsApp number, volume or credential is shared
//!   with another tenant.
//!
//! Cost: five cluster-wide reads, then per tenant one namespaced read, one
//! dry run and at most eight `auth can-i`, `--jobs` tenants at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::bail;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::colour::Tone;
use crate::flags;
use crate::kubectl::{Cause, Conflicts, Container, Input, Kubectl, KubectlFailure, Scope};
use crate::live::{Tenants, tenant_of};
use crate::names::{
    APP_LABEL, BOT, DOMAINS_ANNOTATION, MANAGED_BY_LABEL, MANAGER, NETWORK_PROBE_POD,
    PRIVILEGED_PROBE_POD, TENANT_LABEL, WHATSAPP_NUMBER_ANNOTATION,
};
use crate::object::{annotation, kind_and_name, str_at};
use crate::output::{OutputFormat, painted_table, print_structured};
use crate::platform::Platform;
use crate::rbac::{Grant, Name, Policy, Request, User};
use crate::render::{Manifest, SecretValues, Templates};
use crate::repo::{read_values, tenants_dir};
use crate::state::{Lifecycle, State};
use crate::tenant::{self, NAMESPACE_PREFIX, TenantName, TenantSpec};

/// Something a tenant's service account must never be able to do.
#[derive(Debug)]
struct Probe {
    verb: &'static str,
    /// API group; empty for the core group.
    group: &'static str,
    resource: &'static str,
    /// Asked as `--subresource`: `pods/exec` as one word would mean the
    /// pod named `exec`.
    subresource: Option<&'static str>,
    /// Whether the real request names an object (get, patch, delete, exec
    /// into a pod): then a rule that lists resource names allows it for
    /// those objects. A list or a create names none.
    named: bool,
}

const fn probe(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    named: bool,
) -> Probe {
    Probe {
        verb,
        group,
        resource,
        subresource,
        named,
    }
}

/// What another tenant's service account must never be able to do in a
/// tenant's namespace.
const PROBES: [Probe; 6] = [
    probe("get", "", "secrets", None, true),
    probe("list", "", "configmaps", None, false),
    probe("create", "", "pods", None, false),
    probe("create", "", "pods", Some("exec"), true),
    probe("delete", "", "persistentvolumeclaims", None, true),
    probe("patch", "apps", "deployments", None, true),
];
/// And anywhere at all.
const CLUSTER_PROBES: [Probe; 4] = [
    probe("list", "", "namespaces", None, false),
    probe("list", "", "secrets", None, false),
    probe("get", "", "nodes", None, true),
    probe(
        "create",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        None,
        false,
    ),
];

impl Probe {
    fn request<'a>(&'a self, name: Name<'a>, namespace: Option<&'a str>) -> Request<'a> {
        Request {
            verb: self.verb,
            group: self.group,
            resource: self.resource,
            subresource: self.subresource,
            name,
            namespace,
        }
    }

    /// The request about some object: any name for a named request.
    fn any<'a>(&'a self, namespace: Option<&'a str>) -> Request<'a> {
        self.request(
            if self.named { Name::Any } else { Name::Unnamed },
            namespace,
        )
    }

    /// `get secrets`, `create pods/exec`, `get secrets named a, b`.
    fn action(&self, names: &[String]) -> String {
        let sub = self
            .subresource
            .map(|s| format!("/{s}"))
            .unwrap_or_default();
        let named = if self.named && !names.is_empty() {
            format!(" named {}", names.join(", "))
        } else {
            String::new()
        };
        format!("{} {}{sub}{named}", self.verb, self.resource)
    }
}

/// How many other tenants' namespaces each tenant's spot check asks the
/// API server about; with half of [`PROBES`] in each, every probe is asked
/// once per tenant.
const SPOT_NAMESPACES: usize = 2;

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
        let fleet = Fleet::new(&tenants);
        let rbac = RbacFindings::evaluate(&view.policy, &fleet, &selected);
        let sharing = Sharing::index(&view, &tenants);
        if self.network {
            crate::interrupt::install();
        }
        let check_one = |t: TenantName| {
            // After Ctrl-C the probes under way are cleaned up; no other
            // tenant is started.
            if crate::interrupt::interrupted() {
                return None;
            }
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
                return Some(TenantReport {
                    tenant: t.to_string(),
                    state,
                    note: lifecycle
                        .note(t.as_str())
                        .map(|n| format!("not checked: {n}")),
                    checks: Vec::new(),
                });
            }
            let suspended = matches!(lifecycle, Lifecycle::Suspended { .. });
            let mut checks = vec![
                check_objects(
                    kubectl,
                    &templates,
                    &platform,
                    &tenants_dir,
                    &tenants,
                    &t,
                    suspended,
                ),
                check_rbac(kubectl, &view.policy, &fleet, &rbac, &t),
                check_admission(kubectl, &platform, &ns),
                check_sharing(&sharing, &t),
            ];
            if self.network {
                checks.push(check_network(kubectl, &platform, &tenants, &t));
            }
            Some(TenantReport {
                tenant: t.to_string(),
                state,
                note: lifecycle.note(t.as_str()),
                checks,
            })
        };
        // On a terminal: tenants checked / total, and how many failed so far.
        let progress = std::sync::Mutex::new(crate::fleet::Progress::on_terminal(
            "verify",
            selected.len(),
        ));
        let reports = crate::pool::run(selected, self.jobs.into(), |t| {
            let report = check_one(t);
            let failed = report
                .as_ref()
                .is_some_and(|r| r.checks.iter().any(|c| !c.passed));
            progress
                .lock()
                .expect("the progress lock")
                .tenant_done(failed);
            report
        });
        drop(progress);
        crate::interrupt::check()?;
        let reports: Vec<TenantReport> = reports.into_iter().flatten().collect();
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
                print!(
                    "{}",
                    painted_table(
                        &["TENANT", "CHECK", "RESULT", "DETAIL"],
                        &rows,
                        |_, column, cell| match (column, cell) {
                            (2, "pass") => crate::colour::verdict(cell, true),
                            (2, "FAIL") => crate::colour::verdict(cell, false),
                            (2, "skipped") => crate::colour::paint(cell, Tone::Faint),
                            _ => cell.to_owned(),
                        }
                    )
                );
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
    /// Every Role, ClusterRole and binding, in one read.
    policy: Policy,
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
            policy: Policy::read(kubectl)?,
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

/// Every tenant on the cluster, in name order: whose namespaces are
/// probed and whose service accounts probe them.
struct Fleet {
    names: Vec<String>,
    /// Tenant index by namespace.
    by_namespace: HashMap<String, usize>,
}

impl Fleet {
    fn new(tenants: &Tenants) -> Fleet {
        let mut names = tenants.names();
        names.sort();
        names.dedup();
        let by_namespace = names
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("{NAMESPACE_PREFIX}{n}"), i))
            .collect();
        Fleet {
            names,
            by_namespace,
        }
    }

    fn namespace(&self, i: usize) -> String {
        format!("{NAMESPACE_PREFIX}{}", self.names[i])
    }

    fn index(&self, t: &TenantName) -> Option<usize> {
        self.by_namespace.get(&t.namespace()).copied()
    }
}

/// A service account a tenant's pods may run as, judged as a user: its
/// bot's, and any other of its namespace that a binding names (any other
/// gets only what its groups get, which the bot gets too).
struct Identity {
    tenant: usize,
    account: String,
    user: User,
}

/// Where a finding allows its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Place {
    /// In every namespace (a ClusterRoleBinding): every other tenant's.
    Everywhere,
    /// In this tenant's namespace (its RoleBindings).
    In(usize),
    /// A cluster probe, cluster-wide.
    ClusterWide,
}

/// One thing an identity may do that it must not.
struct Finding {
    identity: usize,
    /// Index into [`PROBES`], or [`CLUSTER_PROBES`] for [`Place::ClusterWide`].
    probe: usize,
    place: Place,
    grant: usize,
    /// Allowed only once the aggregation controller catches up.
    pending: bool,
}

impl Finding {
    fn probe(&self) -> &'static Probe {
        match self.place {
            Place::ClusterWide => &CLUSTER_PROBES[self.probe],
            _ => &PROBES[self.probe],
        }
    }
}

/// What the local evaluation found, for every selected tenant: what its
/// service accounts may do elsewhere and what others may do in its namespace.
struct RbacFindings {
    identities: Vec<Identity>,
    /// Identity index by (tenant, service account).
    by_account: HashMap<(usize, String), usize>,
    grants: Vec<Grant>,
    grant_ids: HashMap<Grant, usize>,
    findings: Vec<Finding>,
    /// Aggregated ClusterRoles whose stored rules lag their selectors.
    lagging: Vec<String>,
}

impl RbacFindings {
    fn evaluate(policy: &Policy, fleet: &Fleet, selected: &[TenantName]) -> RbacFindings {
        let mut identities = Vec::new();
        for (i, name) in fleet.names.iter().enumerate() {
            let ns = format!("{NAMESPACE_PREFIX}{name}");
            let mut accounts = policy.service_accounts_named_in(&ns);
            accounts.insert(BOT.to_owned());
            for account in accounts {
                let user = User::service_account(&ns, &account);
                identities.push(Identity {
                    tenant: i,
                    account,
                    user,
                });
            }
        }
        let by_account = identities
            .iter()
            .enumerate()
            .map(|(i, id)| ((id.tenant, id.account.clone()), i))
            .collect();
        let mut wanted = vec![false; fleet.names.len()];
        for t in selected {
            if let Some(i) = fleet.index(t) {
                wanted[i] = true;
            }
        }
        let mut found = RbacFindings {
            identities,
            by_account,
            grants: Vec::new(),
            grant_ids: HashMap::new(),
            findings: Vec::new(),
            lagging: Vec::new(),
        };
        found.collect(policy, fleet, &wanted, false);
        if let Some(caught_up) = policy.aggregated() {
            found.lagging = policy.cluster_roles_differing(&caught_up);
            let known: BTreeSet<(usize, usize, Place)> = found
                .findings
                .iter()
                .map(|f| (f.identity, f.probe, f.place))
                .collect();
            let before = found.findings.len();
            found.collect(&caught_up, fleet, &wanted, true);
            let mut i = before;
            while i < found.findings.len() {
                let f = &found.findings[i];
                if known.contains(&(f.identity, f.probe, f.place)) {
                    found.findings.swap_remove(i);
                } else {
                    i += 1;
                }
            }
        }
        found
    }

    fn push(&mut self, identity: usize, probe: usize, place: Place, grant: Grant, pending: bool) {
        let grant = match self.grant_ids.get(&grant) {
            Some(&i) => i,
            None => {
                self.grant_ids.insert(grant.clone(), self.grants.len());
                self.grants.push(grant);
                self.grants.len() - 1
            }
        };
        self.findings.push(Finding {
            identity,
            probe,
            place,
            grant,
            pending,
        });
    }

    /// Everything `policy` allows that a probe forbids, between tenants of
    /// which at least one is wanted.
    fn collect(&mut self, policy: &Policy, fleet: &Fleet, wanted: &[bool], pending: bool) {
        let mut everywhere = BTreeSet::new();
        for id in 0..self.identities.len() {
            let identity = &self.identities[id];
            let (tenant, user) = (identity.tenant, identity.user.clone());
            // ClusterRoleBindings allow the same in every namespace: once
            // for all the other tenants (if there are any).
            if fleet.names.len() > 1 {
                for (p, probe) in PROBES.iter().enumerate() {
                    if let Some(g) = policy.allows_everywhere(&user, &probe.any(None)) {
                        everywhere.insert((id, p));
                        self.push(id, p, Place::Everywhere, g, pending);
                    }
                }
            }
            if wanted[tenant] {
                for (p, probe) in CLUSTER_PROBES.iter().enumerate() {
                    if let Some(g) = policy.allows(&user, &probe.any(None)) {
                        self.push(id, p, Place::ClusterWide, g, pending);
                    }
                }
            }
        }
        // RoleBindings: only in their namespace, and only for the service
        // accounts their subjects can match.
        let mut namespaces: Vec<(usize, &str, &[crate::rbac::Binding])> = policy
            .role_bindings()
            .filter_map(|(ns, b)| Some((*fleet.by_namespace.get(ns)?, ns, b)))
            .collect();
        namespaces.sort_by_key(|(i, _, _)| *i);
        for (target, ns, bindings) in namespaces {
            let mut candidates = BTreeSet::new();
            for b in bindings {
                let reach = b.reach();
                if reach.all {
                    candidates.extend(0..self.identities.len());
                    break;
                }
                for group in &reach.namespaces {
                    if let Some(&t) = fleet.by_namespace.get(group) {
                        candidates.extend(
                            (0..self.identities.len()).filter(|&i| self.identities[i].tenant == t),
                        );
                    }
                }
                for (account_ns, account) in &reach.accounts {
                    if let Some(&i) = fleet
                        .by_namespace
                        .get(account_ns)
                        .and_then(|t| self.by_account.get(&(*t, account.clone())))
                    {
                        candidates.insert(i);
                    }
                }
            }
            for id in candidates {
                let tenant = self.identities[id].tenant;
                if tenant == target || !(wanted[tenant] || wanted[target]) {
                    continue;
                }
                let user = self.identities[id].user.clone();
                for (p, probe) in PROBES.iter().enumerate() {
                    if everywhere.contains(&(id, p)) {
                        continue;
                    }
                    if let Some(g) = policy.allows_by_role_bindings(&user, &probe.any(Some(ns))) {
                        self.push(id, p, Place::In(target), g, pending);
                    }
                }
            }
        }
    }

    /// The tenant's problems: what its service accounts may do elsewhere,
    /// then what other tenants' may do in its namespace.
    fn problems(&self, fleet: &Fleet, tenant: usize) -> Vec<String> {
        let mut out = Vec::new();
        let others = fleet.names.len() - 1;
        // Outbound, grouped by who, what and why: the places listed once.
        // (pending, cluster-wide, probe, service account, grant): first finding, places.
        type Key<'a> = (bool, bool, usize, &'a str, usize);
        let mut outbound: BTreeMap<Key, (usize, Vec<Place>)> = BTreeMap::new();
        for (i, f) in self.findings.iter().enumerate() {
            let id = &self.identities[f.identity];
            if id.tenant != tenant {
                continue;
            }
            let cluster = f.place == Place::ClusterWide;
            outbound
                .entry((f.pending, cluster, f.probe, id.account.as_str(), f.grant))
                .or_insert((i, Vec::new()))
                .1
                .push(f.place);
        }
        for ((pending, _, _, account, _), (first, places)) in outbound {
            let f = &self.findings[first];
            let who = if account == BOT {
                "the bot".to_owned()
            } else {
                format!("service account {account}")
            };
            let place = match places[0] {
                Place::Everywhere => "in every other tenant's namespace".to_owned(),
                Place::ClusterWide => "cluster-wide".to_owned(),
                Place::In(_) => {
                    let names: Vec<String> = places
                        .iter()
                        .filter_map(|p| match p {
                            Place::In(i) => Some(fleet.namespace(*i)),
                            _ => None,
                        })
                        .collect();
                    format!("in {}", listed(&names, "other tenants' namespaces"))
                }
            };
            out.push(self.line(&who, f, &place, pending));
        }
        // Inbound: by what and why, the grantees listed once.
        let mut inbound: BTreeMap<(bool, usize, usize), Vec<usize>> = BTreeMap::new();
        for (i, f) in self.findings.iter().enumerate() {
            let from = self.identities[f.identity].tenant;
            let here = match f.place {
                Place::Everywhere => from != tenant,
                Place::In(t) => t == tenant,
                Place::ClusterWide => false,
            };
            if here {
                inbound
                    .entry((f.pending, f.probe, f.grant))
                    .or_default()
                    .push(i);
            }
        }
        for ((pending, _, _), found) in inbound {
            let whos: Vec<String> = found
                .iter()
                .map(|&i| {
                    let id = &self.identities[self.findings[i].identity];
                    let name = &fleet.names[id.tenant];
                    if id.account == BOT {
                        format!("tenant {name}'s bot")
                    } else {
                        format!("tenant {name}'s service account {}", id.account)
                    }
                })
                .collect();
            let who = if whos.len() == others && others > 3 {
                "every other tenant's bot".to_owned()
            } else {
                listed(&whos, "other tenants' service accounts")
            };
            let place = format!("in {}", fleet.namespace(tenant));
            out.push(self.line(&who, &self.findings[found[0]], &place, pending));
        }
        out
    }

    fn line(&self, who: &str, f: &Finding, place: &str, pending: bool) -> String {
        let grant = &self.grants[f.grant];
        let action = f.probe().action(&grant.names);
        if pending {
            format!(
                "{who} will be able to {action} {place} once the ClusterRole aggregation controller \
                 updates {} (its stored rules lag its aggregationRule): {grant}",
                self.lagging.join(", ")
            )
        } else {
            format!("{who} may {action} {place}: {grant}")
        }
    }

    /// The first thing the tenant's bot was found to be allowed, for the
    /// spot check to confirm with the API server.
    fn first_of_bot(&self, tenant: usize) -> Option<&Finding> {
        let bot = self.by_account.get(&(tenant, BOT.to_owned()))?;
        self.findings
            .iter()
            .find(|f| f.identity == *bot && !f.pending)
    }
}

/// `a`, `a and b`, `a, b and c`, `a, b, c and 4 more WHAT`.
fn listed(items: &[String], what: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] if items.len() <= 3 => format!("{} and {last}", init.join(", ")),
        _ => format!(
            "{} and {} more {what}",
            items[..3].join(", "),
            items.len() - 3
        ),
    }
}

/// One question for the API server: a probe in a namespace (None:
/// cluster-wide), about an object by name or none.
struct SpotCheck {
    target: Option<usize>,
    probe: &'static Probe,
    name: Option<String>,
}

/// A fixed number of questions per tenant, chosen from its place in the
/// fleet: half of [`PROBES`] in each of the next [`SPOT_NAMESPACES`]
/// tenants' namespaces (alternating halves, so that each namespace is asked
/// both halves by its neighbours), one cluster probe in turn, and the first
/// thing the bot was found to be allowed, if any.
fn spot_checks(fleet: &Fleet, rbac: &RbacFindings, tenant: usize) -> Vec<SpotCheck> {
    let n = fleet.names.len();
    let mut checks = Vec::new();
    let neighbours: Vec<usize> = (1..n)
        .map(|k| (tenant + k) % n)
        .take(SPOT_NAMESPACES)
        .collect();
    let half = PROBES.len() / 2;
    for (j, &target) in neighbours.iter().enumerate() {
        let start = ((tenant + j) % 2) * half;
        for probe in &PROBES[start..start + half] {
            checks.push(SpotCheck {
                target: Some(target),
                probe,
                name: None,
            });
        }
    }
    checks.push(SpotCheck {
        target: None,
        probe: &CLUSTER_PROBES[tenant % CLUSTER_PROBES.len()],
        name: None,
    });
    if let Some(f) = rbac.first_of_bot(tenant) {
        let target = match f.place {
            Place::Everywhere => neighbours.first().copied(),
            Place::In(t) => Some(t),
            Place::ClusterWide => None,
        };
        let name = rbac.grants[f.grant]
            .names
            .first()
            .filter(|_| f.probe().named)
            .cloned();
        let probe = f.probe();
        let asked = checks
            .iter()
            .any(|c| c.target == target && std::ptr::eq(c.probe, probe) && c.name == name);
        if !asked && (target.is_some() || f.place == Place::ClusterWide) {
            checks.push(SpotCheck {
                target,
                probe,
                name,
            });
        }
    }
    checks
}

fn check_rbac(
    kubectl: &Kubectl,
    policy: &Policy,
    fleet: &Fleet,
    rbac: &RbacFindings,
    t: &TenantName,
) -> CheckResult {
    let ns = t.namespace();
    let mut problems = Vec::new();
    // Bindings that name this tenant's service accounts anywhere but home,
    // whatever they grant.
    let naming = |b: &&crate::rbac::Binding| b.names_service_accounts_of(&ns);
    let mut role_bindings: Vec<(&str, &[crate::rbac::Binding])> =
        policy.role_bindings().filter(|(n, _)| *n != ns).collect();
    role_bindings.sort_by_key(|(n, _)| *n);
    for (other, bindings) in role_bindings {
        for b in bindings.iter().filter(naming) {
            problems.push(format!(
                "rolebinding {other}/{} grants {ns}'s service accounts a role in another namespace",
                b.name
            ));
        }
    }
    for b in policy
        .bindings()
        .filter(|b| b.namespace.is_none())
        .filter(naming)
    {
        problems.push(format!(
            "clusterrolebinding {} grants {ns}'s service accounts a cluster-wide role",
            b.name
        ));
    }
    let Some(tenant) = fleet.index(t) else {
        problems.push("the tenant's namespace disappeared during the check".to_owned());
        return result("rbac", problems);
    };
    problems.extend(rbac.problems(fleet, tenant));
    // The API server's own answers to a few of the same questions: the
    // evaluation above is only trusted while they agree.
    let bot = User::service_account(&ns, BOT);
    for check in spot_checks(fleet, rbac, tenant) {
        let target = check.target.map(|i| fleet.namespace(i));
        let name = check.name.as_deref().map_or(Name::Unnamed, Name::Named);
        let local = policy
            .allows(&bot, &check.probe.request(name, target.as_deref()))
            .is_some();
        let resource = match &check.name {
            Some(n) => format!("{}/{n}", check.probe.resource),
            None => check.probe.resource.to_owned(),
        };
        match kubectl.can_i(
            &bot.name,
            check.probe.verb,
            &resource,
            check.probe.subresource,
            target.as_deref(),
        ) {
            Ok(server) if server == local => {}
            Ok(server) => {
                let answer = |yes: bool| if yes { "yes" } else { "no" };
                problems.push(format!(
                    "the API server and verify's own RBAC evaluation disagree: `kubectl auth can-i {} {resource}{} \
                     --as={} {}` answers {}, the cluster's roles and bindings as verify read them say {}; \
                     verify's RBAC results cannot be trusted on this cluster (please report it with both answers)",
                    check.probe.verb,
                    check
                        .probe
                        .subresource
                        .map(|s| format!(" --subresource={s}"))
                        .unwrap_or_default(),
                    bot.name,
                    target.as_deref().map_or_else(
                        || "--all-namespaces".to_owned(),
                        |n| format!("--namespace {n}")
                    ),
                    answer(server),
                    answer(local),
                ));
            }
            Err(e) => problems.push(format!("could not ask `auth can-i`: {e:#}")),
        }
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

/// What tenants could share, indexed once for every tenant's check.
struct Sharing {
    /// Each tenant by name, with its WhatsApp number and domains.
    tenants: Vec<(String, Option<String>, Vec<String>)>,
    /// Every Ingress host: (namespace, name, host).
    hosts: Vec<(String, String, String)>,
    /// Namespaces of the claims bound to each volume.
    volumes: HashMap<String, Vec<String>>,
    /// Claims' volumes per namespace.
    claims: HashMap<String, Vec<String>>,
    /// Secrets holding each credential digest: (namespace, name).
    digests: HashMap<String, Vec<(String, String)>>,
    /// Each namespace's credential digests.
    secrets: HashMap<String, Vec<String>>,
}

impl Sharing {
    fn index(view: &ClusterView, tenants: &Tenants) -> Sharing {
        let tenants = tenants
            .namespaces
            .iter()
            .map(|ns| {
                let domains = annotation(ns, DOMAINS_ANNOTATION)
                    .unwrap_or_default()
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect();
                (
                    tenant_of(ns).unwrap_or_default(),
                    annotation(ns, WHATSAPP_NUMBER_ANNOTATION).map(str::to_owned),
                    domains,
                )
            })
            .collect();
        let place = |o: &Value| {
            (
                str_at(o, "/metadata/namespace")
                    .unwrap_or_default()
                    .to_owned(),
                str_at(o, "/metadata/name").unwrap_or_default().to_owned(),
            )
        };
        let mut hosts = Vec::new();
        for ing in &view.ingresses {
            for host in ing
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r["host"].as_str())
            {
                let (ns, name) = place(ing);
                hosts.push((ns, name, host.to_owned()));
            }
        }
        let mut volumes: HashMap<String, Vec<String>> = HashMap::new();
        let mut claims: HashMap<String, Vec<String>> = HashMap::new();
        for c in &view.claims {
            if let Some(pv) = str_at(c, "/spec/volumeName") {
                let (ns, _) = place(c);
                volumes.entry(pv.to_owned()).or_default().push(ns.clone());
                claims.entry(ns).or_default().push(pv.to_owned());
            }
        }
        // Credentials are compared by digest; their values never leave memory.
        let mut digests: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut secrets: HashMap<String, Vec<String>> = HashMap::new();
        for s in &view.secrets {
            let (ns, name) = place(s);
            for v in s
                .pointer("/data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_str())
            {
                let d = crate::digest::sha256_hex(v.as_bytes());
                digests
                    .entry(d.clone())
                    .or_default()
                    .push((ns.clone(), name.clone()));
                secrets.entry(ns.clone()).or_default().push(d);
            }
        }
        Sharing {
            tenants,
            hosts,
            volumes,
            claims,
            digests,
            secrets,
        }
    }
}

fn check_sharing(sharing: &Sharing, t: &TenantName) -> CheckResult {
    let ns = t.namespace();
    let mut problems = Vec::new();
    let Some((_, my_number, my_domains)) =
        sharing.tenants.iter().find(|(name, ..)| name == t.as_str())
    else {
        return result(
            "sharing",
            vec!["the tenant's namespace disappeared during the check".into()],
        );
    };
    for (name, number, domains) in sharing.tenants.iter().filter(|(n, ..)| n != t.as_str()) {
        if my_number.is_some() && number == my_number {
            problems.push(format!("WhatsApp number is also tenant {name}'s"));
        }
        for d in domains {
            if my_domains.iter().any(|m| tenant::domains_overlap(m, d)) {
                problems.push(format!("domain {d} is also tenant {name}'s"));
            }
        }
    }
    for (ing_ns, ing_name, host) in sharing.hosts.iter().filter(|(n, ..)| *n != ns) {
        if my_domains.iter().any(|m| tenant::domains_overlap(m, host)) {
            problems.push(format!(
                "domain {host} is also served by Ingress {ing_ns}/{ing_name}"
            ));
        }
    }
    for pv in sharing.claims.get(&ns).into_iter().flatten() {
        for other in sharing.volumes[pv].iter().filter(|o| **o != ns) {
            problems.push(format!(
                "volume {pv} is bound to claims of this tenant and of {other}"
            ));
        }
    }
    for d in sharing.secrets.get(&ns).into_iter().flatten() {
        for (other_ns, other) in sharing.digests[d].iter().filter(|(o, _)| *o != ns) {
            problems.push(format!(
                "secret {other_ns}/{other} holds a credential value identical to one of this tenant's"
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
