//! Kubernetes RBAC decided here, as the API server's RBAC authorizer
//! decides it, from one read of every Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding: `admin verify` proves what each tenant's service
//! accounts may do in every other tenant's namespace without one `kubectl
//! auth can-i` per question (at 1,000 tenants that was six million).
//!
//! The rules, from Kubernetes' source (`plugin/pkg/auth/authorizer/rbac`,
//! `pkg/registry/rbac/validation/rule.go`,
//! `pkg/apis/rbac/v1/evaluation_helpers.go`):
//! - ClusterRoleBindings apply to every request, in any namespace or none;
//!   RoleBindings only to requests in their own namespace, whether they
//!   refer to a Role of that namespace or to a ClusterRole (whose rules then
//!   count in that namespace only). A binding whose role is missing grants
//!   nothing. RBAC only allows: there is no deny.
//! - A subject `User` matches the user's name, `Group` one of the user's
//!   groups, `ServiceAccount` the user `system:serviceaccount:NS:NAME`, its
//!   namespace defaulting to the RoleBinding's when it names none (a
//!   ClusterRoleBinding's must name one); any other kind matches no one.
//! - A rule allows a request when its verbs (or `*`), its API groups (or
//!   `*`), its resources (`*`, the resource, `resource/subresource`, or
//!   `*/subresource` for any resource's subresource) and its resource names
//!   (none listed, or the request's name) all match. A request without a
//!   name (`list`, `create`) is not allowed by a rule that lists names.
//!
//! Aggregated ClusterRoles: the authorizer reads a ClusterRole's stored
//! `rules`; the ClusterRole aggregation controller writes into them the
//! rules of every ClusterRole its `aggregationRule.clusterRoleSelectors`
//! select (`pkg/controller/clusterroleaggregation`). Decisions here use the
//! stored rules, as the server does, so that they agree with `auth can-i`:
//! recomputing them from labels would grant what the server does not grant
//! yet (or no longer). [`Policy::aggregated`] does recompute them, for
//! verify to report what the controller is about to grant, apart.
//!
//! Who asks: `--as system:serviceaccount:NS:NAME` is that user with the
//! groups `system:serviceaccounts`, `system:serviceaccounts:NS` and
//! `system:authenticated`, which the API server's impersonation filter
//! adds; [`User::service_account`] is that user.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde_json::Value;

use crate::kubectl::{Kubectl, Scope};
use crate::object::str_at;

/// The four kinds, read in one `kubectl get`.
pub const KINDS: &str = "roles,clusterroles,rolebindings,clusterrolebindings";

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// The name of the object a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name<'a> {
    /// No name: `list`, `create`, a collection.
    Unnamed,
    Named(&'a str),
    /// Some object, whichever: allowed when any name is (a rule that lists
    /// names allows those).
    Any,
}

/// A resource request, as the authorizer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub verb: &'a str,
    /// API group; empty for the core group.
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub name: Name<'a>,
    /// None for a cluster-scoped request (or `--all-namespaces`).
    pub namespace: Option<&'a str>,
}

impl Rule {
    fn from_json(v: &Value) -> Rule {
        let strings = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        Rule {
            verbs: strings("verbs"),
            api_groups: strings("apiGroups"),
            resources: strings("resources"),
            resource_names: strings("resourceNames"),
            non_resource_urls: strings("nonResourceURLs"),
        }
    }

    /// Whether this rule allows `request` (`RuleAllows` for a resource request).
    pub fn allows(&self, request: &Request) -> bool {
        let any = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
        any(&self.verbs, request.verb)
            && any(&self.api_groups, request.group)
            && self.resource_matches(request)
            && match request.name {
                _ if self.resource_names.is_empty() => true,
                Name::Unnamed => false,
                Name::Named(n) => self.resource_names.iter().any(|x| x == n),
                Name::Any => true,
            }
    }

    fn resource_matches(&self, request: &Request) -> bool {
        let combined = match request.subresource {
            Some(sub) => format!("{}/{sub}", request.resource),
            None => request.resource.to_owned(),
        };
        self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || request
                    .subresource
                    .is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
        })
    }
}

/// A subject of a binding.
#[derive(Debug, Clone)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    /// Empty when the subject names none.
    pub namespace: String,
}

/// A RoleBinding (in `namespace`) or a ClusterRoleBinding (namespace None).
#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    pub namespace: Option<String>,
    pub role_kind: String,
    pub role_name: String,
    pub subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(v: &Value) -> Binding {
        Binding {
            name: str_at(v, "/metadata/name").unwrap_or_default().to_owned(),
            namespace: str_at(v, "/metadata/namespace").map(str::to_owned),
            role_kind: str_at(v, "/roleRef/kind").unwrap_or_default().to_owned(),
            role_name: str_at(v, "/roleRef/name").unwrap_or_default().to_owned(),
            subjects: v
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|s| Subject {
                    kind: s["kind"].as_str().unwrap_or_default().to_owned(),
                    name: s["name"].as_str().unwrap_or_default().to_owned(),
                    namespace: s["namespace"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
        }
    }

    /// A service account subject's namespace: its own, else the
    /// RoleBinding's; None (it matches no one) in a ClusterRoleBinding.
    fn service_account_namespace<'a>(&'a self, s: &'a Subject) -> Option<&'a str> {
        if s.namespace.is_empty() {
            self.namespace.as_deref()
        } else {
            Some(&s.namespace)
        }
    }

    /// The first subject that is `user` (`appliesTo`).
    fn subject_for(&self, user: &User) -> Option<&Subject> {
        self.subjects.iter().find(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => self.service_account_namespace(s).is_some_and(|ns| {
                user.name
                    .strip_prefix(SERVICE_ACCOUNT_PREFIX)
                    .and_then(|rest| rest.split_once(':'))
                    == Some((ns, s.name.as_str()))
            }),
            _ => false,
        })
    }

    /// Whether a subject is a service account of `namespace`, or the group
    /// of all of them: the binding names that namespace's identity itself
    /// (not a group every authenticated user is in).
    pub fn names_service_accounts_of(&self, namespace: &str) -> bool {
        self.subjects.iter().any(|s| match s.kind.as_str() {
            "ServiceAccount" => self.service_account_namespace(s) == Some(namespace),
            "Group" => s.name == format!("system:serviceaccounts:{namespace}"),
            "User" => s
                .name
                .strip_prefix(SERVICE_ACCOUNT_PREFIX)
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(ns, _)| ns == namespace),
            _ => false,
        })
    }

    /// The service accounts the subjects can match: all of them (a group
    /// every service account is in), those of some namespaces (their
    /// group), and single ones (`(namespace, name)`).
    pub fn reach(&self) -> Reach {
        let mut reach = Reach::default();
        for s in &self.subjects {
            match s.kind.as_str() {
                "ServiceAccount" => {
                    if let Some(ns) = self.service_account_namespace(s) {
                        reach.accounts.push((ns.to_owned(), s.name.clone()));
                    }
                }
                "Group"
                    if s.name == "system:serviceaccounts" || s.name == "system:authenticated" =>
                {
                    reach.all = true;
                }
                "Group" => {
                    if let Some(ns) = s.name.strip_prefix("system:serviceaccounts:") {
                        reach.namespaces.push(ns.to_owned());
                    }
                }
                "User" => {
                    if let Some((ns, name)) = s
                        .name
                        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
                        .and_then(|rest| rest.split_once(':'))
                    {
                        reach.accounts.push((ns.to_owned(), name.to_owned()));
                    }
                }
                _ => {}
            }
        }
        reach
    }

    /// `rolebinding NS/NAME` or `clusterrolebinding NAME`.
    pub fn reference(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("rolebinding {ns}/{}", self.name),
            None => format!("clusterrolebinding {}", self.name),
        }
    }
}

/// Which service accounts a binding's subjects can match ([`Binding::reach`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reach {
    pub all: bool,
    pub namespaces: Vec<String>,
    pub accounts: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct ClusterRole {
    labels: BTreeMap<String, String>,
    /// `aggregationRule.clusterRoleSelectors`, when it has one.
    selectors: Option<Vec<Value>>,
    rules: Vec<Rule>,
}

/// Who asks: a user name and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    /// A service account, as `--as system:serviceaccount:NS:NAME` makes the
    /// API server see it.
    pub fn service_account(namespace: &str, name: &str) -> User {
        User {
            name: format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_owned(),
            ],
        }
    }
}

/// Why a request is allowed: the binding, its role and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// `rolebinding NS/NAME` or `clusterrolebinding NAME`.
    pub binding: String,
    /// `role NAME` or `clusterrole NAME`.
    pub role: String,
    /// The subject that matched: `serviceaccount NS/NAME`, `group G`, `user U`.
    pub subject: String,
    /// The rule's resource names: only those objects, when not empty.
    pub names: Vec<String>,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} gives {} to {}",
            self.binding, self.role, self.subject
        )
    }
}

/// Every Role, ClusterRole, RoleBinding and ClusterRoleBinding of a cluster.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<Rule>>,
    cluster_roles: BTreeMap<String, ClusterRole>,
    role_bindings: HashMap<String, Vec<Binding>>,
    cluster_role_bindings: Vec<Binding>,
}

impl Policy {
    /// One `kubectl get` of the four kinds in every namespace.
    pub fn read(kubectl: &Kubectl) -> anyhow::Result<Policy> {
        Ok(Policy::from_objects(&kubectl.get_list(
            KINDS,
            Scope::AllNamespaces,
            None,
        )?))
    }

    /// From the objects of a list; other kinds are left out.
    pub fn from_objects(objects: &[Value]) -> Policy {
        let mut p = Policy::default();
        let rules = |o: &Value| -> Vec<Rule> {
            o.get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Rule::from_json)
                .collect()
        };
        for o in objects {
            let name = str_at(o, "/metadata/name").unwrap_or_default().to_owned();
            match str_at(o, "/kind") {
                Some("Role") => {
                    let ns = str_at(o, "/metadata/namespace").unwrap_or_default();
                    p.roles.insert((ns.to_owned(), name), rules(o));
                }
                Some("ClusterRole") => {
                    let labels = o
                        .pointer("/metadata/labels")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect();
                    let selectors = o.get("aggregationRule").map(|a| {
                        a.get("clusterRoleSelectors")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                    });
                    p.cluster_roles.insert(
                        name,
                        ClusterRole {
                            labels,
                            selectors,
                            rules: rules(o),
                        },
                    );
                }
                Some("RoleBinding") => {
                    let b = Binding::from_json(o);
                    let ns = b.namespace.clone().unwrap_or_default();
                    p.role_bindings.entry(ns).or_default().push(b);
                }
                Some("ClusterRoleBinding") => {
                    let mut b = Binding::from_json(o);
                    b.namespace = None;
                    p.cluster_role_bindings.push(b);
                }
                _ => {}
            }
        }
        p
    }

    /// Every binding: ClusterRoleBindings, then RoleBindings by namespace.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        let mut namespaces: Vec<&String> = self.role_bindings.keys().collect();
        namespaces.sort();
        self.cluster_role_bindings.iter().chain(
            namespaces
                .into_iter()
                .flat_map(|ns| &self.role_bindings[ns]),
        )
    }

    /// The rules a binding refers to, read in its namespace; None when its
    /// role does not exist (it then grants nothing).
    fn rules_of(&self, b: &Binding) -> Option<(String, &[Rule])> {
        match b.role_kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&b.role_name)
                .map(|r| (format!("clusterrole {}", b.role_name), r.rules.as_slice())),
            "Role" => {
                let ns = b.namespace.clone()?;
                self.roles
                    .get(&(ns, b.role_name.clone()))
                    .map(|r| (format!("role {}", b.role_name), r.as_slice()))
            }
            _ => None,
        }
    }

    fn grant(&self, b: &Binding, user: &User, request: &Request) -> Option<Grant> {
        let subject = b.subject_for(user)?;
        let (role, rules) = self.rules_of(b)?;
        let rule = rules.iter().find(|r| r.allows(request))?;
        let subject = match subject.kind.as_str() {
            "ServiceAccount" => format!(
                "serviceaccount {}/{}",
                b.service_account_namespace(subject).unwrap_or_default(),
                subject.name
            ),
            kind => format!("{} {}", kind.to_ascii_lowercase(), subject.name),
        };
        Some(Grant {
            binding: b.reference(),
            role,
            subject,
            names: rule.resource_names.clone(),
        })
    }

    /// Whether `user` may make `request`, and by which binding: the
    /// ClusterRoleBindings first, then the RoleBindings of the request's
    /// namespace, as the authorizer visits them.
    pub fn allows(&self, user: &User, request: &Request) -> Option<Grant> {
        self.allows_everywhere(user, request)
            .or_else(|| self.allows_by_role_bindings(user, request))
    }

    /// What ClusterRoleBindings alone allow: the same in every namespace.
    pub fn allows_everywhere(&self, user: &User, request: &Request) -> Option<Grant> {
        self.cluster_role_bindings
            .iter()
            .find_map(|b| self.grant(b, user, request))
    }

    /// What the RoleBindings of the request's namespace alone allow.
    pub fn allows_by_role_bindings(&self, user: &User, request: &Request) -> Option<Grant> {
        let ns = request.namespace?;
        self.role_bindings
            .get(ns)
            .into_iter()
            .flatten()
            .find_map(|b| self.grant(b, user, request))
    }

    /// Namespaces with RoleBindings (the only ones where a request can be
    /// allowed beyond what ClusterRoleBindings allow everywhere), and theirs.
    pub fn role_bindings(&self) -> impl Iterator<Item = (&str, &[Binding])> {
        self.role_bindings
            .iter()
            .map(|(ns, b)| (ns.as_str(), b.as_slice()))
    }

    /// The service accounts of `namespace` that some binding names (by
    /// subject ServiceAccount, or as a User by their full name). Any other
    /// service account of the namespace gets only what its groups get.
    pub fn service_accounts_named_in(&self, namespace: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for b in self.bindings() {
            for s in &b.subjects {
                match s.kind.as_str() {
                    "ServiceAccount" if b.service_account_namespace(s) == Some(namespace) => {
                        out.insert(s.name.clone());
                    }
                    "User" => {
                        if let Some((ns, name)) = s
                            .name
                            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
                            .and_then(|rest| rest.split_once(':'))
                            && ns == namespace
                        {
                            out.insert(name.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// The policy once the aggregation controller has caught up: each
    /// aggregated ClusterRole's rules recomputed from the ClusterRoles its
    /// selectors select, until nothing changes. None when the stored rules
    /// are already those (the usual case).
    pub fn aggregated(&self) -> Option<Policy> {
        let mut p = self.clone();
        let aggregated: Vec<String> = p
            .cluster_roles
            .iter()
            .filter(|(_, r)| r.selectors.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        if aggregated.is_empty() {
            return None;
        }
        let mut changed_any = false;
        // Each round can only pass rules one level further down a chain of
        // aggregations; a cycle that keeps changing is cut off.
        for _ in 0..=aggregated.len() {
            let mut changed = false;
            for name in &aggregated {
                let selectors = p.cluster_roles[name].selectors.clone().unwrap_or_default();
                let mut rules: Vec<Rule> = Vec::new();
                for selector in &selectors {
                    // BTreeMap: by name, as the controller sorts them.
                    for (other, role) in &p.cluster_roles {
                        if other == name || !selects(selector, &role.labels) {
                            continue;
                        }
                        for r in &role.rules {
                            if !rules.contains(r) {
                                rules.push(r.clone());
                            }
                        }
                    }
                }
                let role = p.cluster_roles.get_mut(name).expect("listed above");
                if role.rules != rules {
                    role.rules = rules;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
            changed_any = true;
        }
        changed_any.then_some(p)
    }

    /// The aggregated ClusterRoles whose stored rules differ from `other`'s.
    pub fn cluster_roles_differing(&self, other: &Policy) -> Vec<String> {
        self.cluster_roles
            .iter()
            .filter(|(n, r)| other.cluster_roles.get(*n).map(|o| &o.rules) != Some(&r.rules))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Whether a label selector (`matchLabels`, `matchExpressions`) selects
/// `labels`. An empty selector selects everything; an operator other than
/// In, NotIn, Exists and DoesNotExist makes the selector invalid, and the
/// controller then aggregates nothing from it.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let value = labels.get(key).map(String::as_str);
            match e["operator"].as_str() {
                Some("In") => value.is_some_and(|v| values.contains(&v)),
                Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => false,
            }
        });
    match_labels && expressions
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn role(ns: &str, name: &str, rules: Value) -> Value {
        json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
    }

    fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
        json!({"kind": "ClusterRole", "metadata": {"name": name, "labels": labels}, "rules": rules})
    }

    fn binding(ns: Option<&str>, name: &str, role: (&str, &str), subjects: Value) -> Value {
        let mut b = json!({"kind": if ns.is_some() {"RoleBinding"} else {"ClusterRoleBinding"},
                           "metadata": {"name": name},
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
                           "subjects": subjects});
        if let Some(ns) = ns {
            b["metadata"]["namespace"] = json!(ns);
        }
        b
    }

    fn request<'a>(verb: &'a str, resource: &'a str, namespace: Option<&'a str>) -> Request<'a> {
        Request {
            verb,
            group: "",
            resource,
            subresource: None,
            name: Name::Unnamed,
            namespace,
        }
    }

    fn bot(ns: &str) -> User {
        User::service_account(ns, "bot")
    }

    #[test]
    fn rules_match_as_the_authorizer_matches_them() {
        let rule = |v: Value| Rule::from_json(&v);
        let get_secrets = request("get", "secrets", Some("b"));
        assert!(
            rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}))
                .allows(&get_secrets)
        );
        // Each wildcard stands for any value of its own field only.
        assert!(
            rule(json!({"verbs": ["*"], "apiGroups": [""], "resources": ["secrets"]}))
                .allows(&get_secrets)
        );
        assert!(
            rule(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["secrets"]}))
                .allows(&get_secrets)
        );
        assert!(
            rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}))
                .allows(&get_secrets)
        );
        assert!(
            !rule(json!({"verbs": ["list"], "apiGroups": ["*"], "resources": ["*"]}))
                .allows(&get_secrets)
        );
        assert!(
            !rule(json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["secrets"]}))
                .allows(&get_secrets)
        );
        assert!(
            !rule(json!({"verbs": ["get"], "resources": ["secrets"]})).allows(&get_secrets),
            "no apiGroups: none"
        );
        // Subresources: exactly, or `*/exec` for any resource's; never by the parent alone.
        let exec = Request {
            subresource: Some("exec"),
            ..request("create", "pods", Some("b"))
        };
        assert!(
            rule(json!({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]}))
                .allows(&exec)
        );
        assert!(
            rule(json!({"verbs": ["create"], "apiGroups": [""], "resources": ["*/exec"]}))
                .allows(&exec)
        );
        assert!(
            rule(json!({"verbs": ["create"], "apiGroups": [""], "resources": ["*"]})).allows(&exec)
        );
        assert!(
            !rule(json!({"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}))
                .allows(&exec)
        );
        assert!(
            !rule(json!({"verbs": ["create"], "apiGroups": [""], "resources": ["*/log"]}))
                .allows(&exec)
        );
        assert!(
            !rule(json!({"verbs": ["create"], "apiGroups": [""], "resources": ["*/exec"]}))
                .allows(&request("create", "pods", Some("b")))
        );
        // Resource names: only those objects; never a request without a name.
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"],
                                "resourceNames": ["bot-credentials"]}),
        );
        assert!(!named.allows(&get_secrets));
        assert!(named.allows(&Request {
            name: Name::Named("bot-credentials"),
            ..get_secrets
        }));
        assert!(!named.allows(&Request {
            name: Name::Named("other"),
            ..get_secrets
        }));
        assert!(named.allows(&Request {
            name: Name::Any,
            ..get_secrets
        }));
    }

    #[test]
    fn bindings_apply_where_and_to_whom_the_authorizer_applies_them() {
        let read = json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]);
        let policy = Policy::from_objects(&[
            role("tenant-b", "read", read.clone()),
            cluster_role("read-all", json!({}), read.clone()),
            // A service account subject without a namespace is the binding's own.
            binding(
                Some("tenant-b"),
                "local-sa",
                ("Role", "read"),
                json!([{"kind": "ServiceAccount", "name": "bot"}]),
            ),
            binding(
                Some("tenant-c"),
                "a-reads-c",
                ("ClusterRole", "read-all"),
                json!([{"kind": "ServiceAccount", "name": "bot", "namespace": "tenant-a"}]),
            ),
            binding(
                Some("tenant-d"),
                "all-sa-read-d",
                ("ClusterRole", "read-all"),
                json!([{"kind": "Group", "name": "system:serviceaccounts"}]),
            ),
            binding(
                Some("tenant-e"),
                "missing-role",
                ("Role", "nope"),
                json!([{"kind": "Group", "name": "system:authenticated"}]),
            ),
            binding(
                Some("tenant-f"),
                "user",
                ("ClusterRole", "read-all"),
                json!([{"kind": "User", "name": "system:serviceaccount:tenant-a:bot"}]),
            ),
            // A ClusterRoleBinding's service account must name its namespace.
            binding(
                None,
                "no-namespace",
                ("ClusterRole", "read-all"),
                json!([{"kind": "ServiceAccount", "name": "bot"}]),
            ),
        ]);
        let a = bot("tenant-a");
        let get = |ns| request("get", "secrets", Some(ns));
        assert_eq!(policy.allows(&a, &get("tenant-b")), None);
        assert!(policy.allows(&bot("tenant-b"), &get("tenant-b")).is_some());
        let grant = policy.allows(&a, &get("tenant-c")).unwrap();
        assert_eq!(
            grant.to_string(),
            "rolebinding tenant-c/a-reads-c gives clusterrole read-all to serviceaccount tenant-a/bot"
        );
        // A RoleBinding's ClusterRole counts in its namespace only.
        assert_eq!(policy.allows(&a, &get("tenant-g")), None);
        assert_eq!(policy.allows(&a, &request("get", "secrets", None)), None);
        assert_eq!(
            policy.allows(&a, &get("tenant-d")).unwrap().subject,
            "group system:serviceaccounts"
        );
        assert_eq!(policy.allows(&a, &get("tenant-e")), None);
        assert_eq!(
            policy.allows(&a, &get("tenant-f")).unwrap().subject,
            "user system:serviceaccount:tenant-a:bot"
        );
        assert_eq!(
            policy.service_accounts_named_in("tenant-a"),
            BTreeSet::from(["bot".to_owned()])
        );
        assert_eq!(
            policy.service_accounts_named_in("tenant-b"),
            BTreeSet::from(["bot".to_owned()])
        );
    }

    #[test]
    fn a_cluster_role_binding_applies_everywhere_and_cluster_wide() {
        let policy = Policy::from_objects(&[
            cluster_role(
                "lister",
                json!({}),
                json!([{"verbs": ["list"], "apiGroups": ["*"], "resources": ["*"]}]),
            ),
            binding(
                None,
                "everyone-lists",
                ("ClusterRole", "lister"),
                json!([{"kind": "Group", "name": "system:authenticated"}]),
            ),
        ]);
        let a = bot("tenant-a");
        for ns in [Some("tenant-b"), Some("kube-system"), None] {
            assert!(policy.allows(&a, &request("list", "secrets", ns)).is_some());
        }
        assert!(
            policy
                .allows(&a, &request("get", "secrets", None))
                .is_none()
        );
    }

    #[test]
    fn aggregation_is_recomputed_apart_from_the_stored_rules() {
        let aggregate = |rules: Value| {
            json!({"kind": "ClusterRole", "metadata": {"name": "tenant-reader"},
                   "aggregationRule": {"clusterRoleSelectors": [
                       {"matchLabels": {"example.com/aggregate-to-reader": "true"}},
                       {"matchExpressions": [{"key": "example.com/tier", "operator": "In", "values": ["gold"]}]}]},
                   "rules": rules})
        };
        let source = cluster_role(
            "secrets-reader",
            json!({"example.com/aggregate-to-reader": "true"}),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]),
        );
        let gold = cluster_role(
            "gold",
            json!({"example.com/tier": "gold"}),
            json!([{"verbs": ["delete"], "apiGroups": [""], "resources": ["persistentvolumeclaims"]}]),
        );
        let silver = cluster_role(
            "silver",
            json!({"example.com/tier": "silver"}),
            json!([{"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments"]}]),
        );
        let bound = binding(
            None,
            "a-reads",
            ("ClusterRole", "tenant-reader"),
            json!([{"kind": "ServiceAccount", "name": "bot", "namespace": "tenant-a"}]),
        );
        let a = bot("tenant-a");
        let get = request("get", "secrets", Some("tenant-b"));
        // Not aggregated yet: the server does not allow it, and neither do we...
        let stale = Policy::from_objects(&[
            aggregate(json!([])),
            source.clone(),
            gold.clone(),
            silver.clone(),
            bound.clone(),
        ]);
        assert_eq!(stale.allows(&a, &get), None);
        // ... but the recomputed policy does, and says which role lags.
        let caught_up = stale.aggregated().expect("the stored rules lag");
        assert!(caught_up.allows(&a, &get).is_some());
        assert!(
            caught_up
                .allows(&a, &request("delete", "persistentvolumeclaims", Some("x")))
                .is_some()
        );
        assert!(
            caught_up
                .allows(
                    &a,
                    &Request {
                        group: "apps",
                        ..request("patch", "deployments", Some("x"))
                    }
                )
                .is_none()
        );
        assert_eq!(stale.cluster_roles_differing(&caught_up), ["tenant-reader"]);
        // Once the controller wrote them, they are stored, and nothing is pending.
        let rules = json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]},
                           {"verbs": ["delete"], "apiGroups": [""], "resources": ["persistentvolumeclaims"]}]);
        let stored = Policy::from_objects(&[aggregate(rules), source, gold, silver, bound]);
        assert!(stored.allows(&a, &get).is_some());
        assert!(stored.aggregated().is_none());
    }

    #[test]
    fn selectors_follow_the_label_selector_rules() {
        let labels = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        assert!(selects(&json!({}), &labels), "empty selects everything");
        assert!(selects(&json!({"matchLabels": {"a": "1"}}), &labels));
        assert!(!selects(&json!({"matchLabels": {"a": "2"}}), &labels));
        let op = |op: &str, values: Value| json!({"matchExpressions": [{"key": "a", "operator": op, "values": values}]});
        assert!(selects(&op("In", json!(["1", "2"])), &labels));
        assert!(!selects(&op("NotIn", json!(["1"])), &labels));
        assert!(selects(
            &json!({"matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["1"]}]}),
            &labels
        ));
        assert!(selects(&op("Exists", json!([])), &labels));
        assert!(!selects(&op("DoesNotExist", json!([])), &labels));
        assert!(!selects(&op("Gt", json!(["0"])), &labels));
    }
}
