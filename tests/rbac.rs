//! `admin verify` of many tenants: RBAC from one read, evaluated locally.
//! Each kind of grant planted in a three-tenant cluster fails the tenants
//! it exposes, naming the namespace, the grantee and the binding; the local
//! evaluation agrees with the fake's `auth can-i` on every question about
//! it; and the kubectl calls stay within 10 + 10 per tenant at 3 and 300.

mod common;

use std::collections::BTreeSet;

use common::{Cluster, seed_committed_tenants, stderr, stdout};
use serde_json::{Value, json};
use xtask::rbac::{Name, Policy, Request, User};

const TENANTS: [&str; 3] = ["alpha", "beta", "gamma"];

fn seeded(names: &[&str]) -> Cluster {
    let cluster = Cluster::new();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    seed_committed_tenants(&cluster, &names);
    cluster
}

/// `admin verify -o json EXTRA`: exit code, the report, and stderr.
fn verify(cluster: &Cluster, extra: &[&str]) -> (i32, Value, String) {
    let out = cluster
        .admin(&["verify", "-o", "json", "--tenants-dir"])
        .arg(cluster.tenants.path())
        .args(extra)
        .output()
        .unwrap();
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap(), report, stderr(&out))
}

/// The problems of each tenant's failed checks, as (tenant, check, problems).
fn failed(report: &Value) -> Vec<(String, String, Vec<String>)> {
    common::failed_checks(report)
}

fn rbac_object(kind: &str, ns: Option<&str>, name: &str, body: Value) -> Value {
    let mut o = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                       "metadata": {"name": name}});
    if let Some(ns) = ns {
        o["metadata"]["namespace"] = json!(ns);
    }
    for (k, v) in body.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

fn role(ns: &str, name: &str, rules: Value) -> Value {
    rbac_object("Role", Some(ns), name, json!({"rules": rules}))
}

fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
    let mut o = rbac_object("ClusterRole", None, name, json!({"rules": rules}));
    o["metadata"]["labels"] = labels;
    o
}

fn role_binding(ns: &str, name: &str, role: (&str, &str), subjects: Value) -> Value {
    rbac_object(
        "RoleBinding",
        Some(ns),
        name,
        json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
               "subjects": subjects}),
    )
}

fn cluster_role_binding(name: &str, role: &str, subjects: Value) -> Value {
    rbac_object(
        "ClusterRoleBinding",
        None,
        name,
        json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": subjects}),
    )
}

fn bot_of(tenant: &str) -> Value {
    json!([{"kind": "ServiceAccount", "name": "bot", "namespace": format!("tenant-{tenant}")}])
}

/// A question for both the local evaluation and `kubectl auth can-i`.
struct Question {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    name: Option<&'static str>,
    /// Asked only cluster-wide (a cluster-scoped resource).
    cluster: bool,
}

const fn q(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    name: Option<&'static str>,
    cluster: bool,
) -> Question {
    Question {
        verb,
        group,
        resource,
        subresource,
        name,
        cluster,
    }
}

/// Everything verify asks, and a named secret (for resource names).
const QUESTIONS: [Question; 11] = [
    q("get", "", "secrets", None, None, false),
    q("get", "", "secrets", None, Some("bot-credentials"), false),
    q("list", "", "configmaps", None, None, false),
    q("create", "", "pods", None, None, false),
    q("create", "", "pods", Some("exec"), None, false),
    q("delete", "", "persistentvolumeclaims", None, None, false),
    q("patch", "apps", "deployments", None, None, false),
    q("list", "", "namespaces", None, None, true),
    q("list", "", "secrets", None, None, true),
    q("get", "", "nodes", None, None, true),
    q(
        "create",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        None,
        None,
        true,
    ),
];

/// Asks every question of `accounts` (namespace, service account) in each
/// tenant's namespace and cluster-wide, locally and of the fake's `auth
/// can-i`; fails on any difference. Returns the questions allowed.
fn agree_with_can_i(cluster: &Cluster, accounts: &[(&str, &str)]) -> BTreeSet<String> {
    let listed = cluster.kubectl(&["get", xtask::rbac::KINDS, "--all-namespaces", "-o", "json"]);
    let items: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let policy = Policy::from_objects(items["items"].as_array().unwrap());
    let namespaces: Vec<Option<String>> = TENANTS
        .iter()
        .map(|t| Some(format!("tenant-{t}")))
        .chain([None])
        .collect();
    let mut allowed = BTreeSet::new();
    let mut differ = Vec::new();
    for (account_ns, account) in accounts {
        let user = User::service_account(account_ns, account);
        for ns in &namespaces {
            for question in QUESTIONS.iter().filter(|q| !q.cluster || ns.is_none()) {
                let request = Request {
                    verb: question.verb,
                    group: question.group,
                    resource: question.resource,
                    subresource: question.subresource,
                    name: question.name.map_or(Name::Unnamed, Name::Named),
                    namespace: ns.as_deref(),
                };
                let local = policy.allows(&user, &request).is_some();
                let resource = match question.name {
                    Some(n) => format!("{}/{n}", question.resource),
                    None => question.resource.to_owned(),
                };
                let mut args = vec![
                    "auth".to_owned(),
                    "can-i".to_owned(),
                    question.verb.to_owned(),
                    resource.clone(),
                    format!("--as={}", user.name),
                ];
                if let Some(sub) = question.subresource {
                    args.push(format!("--subresource={sub}"));
                }
                match ns {
                    Some(ns) => args.extend(["--namespace".to_owned(), ns.clone()]),
                    None => args.push("--all-namespaces".to_owned()),
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = cluster.kubectl_output(&args);
                let server = stdout(&out).starts_with("yes");
                let asked = format!("{} {}", user.name, args[2..4].join(" "))
                    + &question
                        .subresource
                        .map(|s| format!(" --subresource={s}"))
                        .unwrap_or_default()
                    + &format!(" in {}", ns.as_deref().unwrap_or("*"));
                if local != server {
                    differ.push(format!("{asked}: local {local}, can-i {server}"));
                }
                if server {
                    allowed.insert(asked);
                }
            }
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
    allowed
}

/// Plants `objects` into a fresh three-tenant cluster; verify fails, with
/// each `(tenant, line)` among the tenant's rbac problems, no other tenant
/// failing and no spot check disagreeing; the evaluation agrees with can-i
/// and finds `allowed` among the questions it allows.
fn planted(objects: Vec<Value>, expect: &[(&str, &str)], allowed: &[&str]) {
    let cluster = seeded(&TENANTS);
    cluster.open().put_many(objects).unwrap();
    let (code, report, err) = verify(&cluster, &[]);
    assert_eq!(code, 1, "{report:#}\n{err}");
    let failures = failed(&report);
    let failing: BTreeSet<(&str, &str)> = failures
        .iter()
        .map(|(t, c, _)| (t.as_str(), c.as_str()))
        .collect();
    let expected: BTreeSet<(&str, &str)> = expect.iter().map(|(t, _)| (*t, "rbac")).collect();
    assert_eq!(failing, expected, "{failures:#?}");
    for (tenant, line) in expect {
        let problems = &failures.iter().find(|(t, ..)| t == tenant).unwrap().2;
        assert!(
            problems.iter().any(|p| p == line),
            "{tenant} lacks {line:?}:\n{problems:#?}"
        );
    }
    assert!(
        !err.contains("disagree") && !format!("{report}").contains("disagree"),
        "{report:#}"
    );
    let accounts: Vec<(String, &str)> = TENANTS
        .iter()
        .map(|t| (format!("tenant-{t}"), "bot"))
        .chain([("tenant-alpha".to_owned(), "ci")])
        .collect();
    let accounts: Vec<(&str, &str)> = accounts.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let found = agree_with_can_i(&cluster, &accounts);
    for a in allowed {
        assert!(found.contains(*a), "{a} not allowed: {found:#?}");
    }
}

const ALPHA: &str = "system:serviceaccount:tenant-alpha:bot";
const GAMMA: &str = "system:serviceaccount:tenant-gamma:bot";

#[test]
fn a_direct_role_binding_of_a_service_account() {
    let grant = "rolebinding tenant-beta/alpha-reads gives role read-secrets to serviceaccount tenant-alpha/bot";
    planted(
        vec![
            role(
                "tenant-beta",
                "read-secrets",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            ),
            role_binding(
                "tenant-beta",
                "alpha-reads",
                ("Role", "read-secrets"),
                bot_of("alpha"),
            ),
        ],
        &[
            (
                "alpha",
                &format!("the bot may get secrets in tenant-beta: {grant}"),
            ),
            (
                "alpha",
                "rolebinding tenant-beta/alpha-reads grants tenant-alpha's service accounts a role in another namespace",
            ),
            (
                "beta",
                &format!("tenant alpha's bot may get secrets in tenant-beta: {grant}"),
            ),
        ],
        &[&format!("{ALPHA} get secrets in tenant-beta")],
    );
}

#[test]
fn a_role_binding_to_every_service_account() {
    let grant = "rolebinding tenant-beta/open gives clusterrole config-reader to group system:serviceaccounts";
    planted(
        vec![
            cluster_role(
                "config-reader",
                json!({}),
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]}]),
            ),
            role_binding(
                "tenant-beta",
                "open",
                ("ClusterRole", "config-reader"),
                json!([{"kind": "Group", "name": "system:serviceaccounts"}]),
            ),
        ],
        &[
            (
                "alpha",
                &format!("the bot may list configmaps in tenant-beta: {grant}"),
            ),
            (
                "gamma",
                &format!("the bot may list configmaps in tenant-beta: {grant}"),
            ),
            (
                "beta",
                &format!(
                    "tenant alpha's bot and tenant gamma's bot may list configmaps in tenant-beta: {grant}"
                ),
            ),
        ],
        &[
            &format!("{ALPHA} list configmaps in tenant-beta"),
            &format!("{GAMMA} list configmaps in tenant-beta"),
        ],
    );
}

#[test]
fn a_role_binding_to_every_authenticated_user() {
    let grant =
        "rolebinding tenant-gamma/anyone gives role pod-maker to group system:authenticated";
    planted(
        vec![
            role(
                "tenant-gamma",
                "pod-maker",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]),
            ),
            role_binding(
                "tenant-gamma",
                "anyone",
                ("Role", "pod-maker"),
                json!([{"kind": "Group", "name": "system:authenticated"}]),
            ),
        ],
        &[
            (
                "alpha",
                &format!("the bot may create pods in tenant-gamma: {grant}"),
            ),
            (
                "beta",
                &format!("the bot may create pods in tenant-gamma: {grant}"),
            ),
            (
                "gamma",
                &format!(
                    "tenant alpha's bot and tenant beta's bot may create pods in tenant-gamma: {grant}"
                ),
            ),
        ],
        &[&format!("{ALPHA} create pods in tenant-gamma")],
    );
}

/// An aggregated ClusterRole that selects by label the role that grants
/// deleting claims, bound in tenant-beta to tenant-alpha's bot.
fn editor_grant() -> Vec<Value> {
    vec![
        rbac_object(
            "ClusterRole",
            None,
            "tenant-editor",
            json!({"aggregationRule": {"clusterRoleSelectors": [
                {"matchExpressions": [{"key": "example.com/aggregate-to-editor", "operator": "Exists"}]}]},
                   "rules": []}),
        ),
        cluster_role(
            "claim-deleter",
            json!({"example.com/aggregate-to-editor": "true"}),
            json!([{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["delete"]}]),
        ),
        role_binding(
            "tenant-beta",
            "alpha-edits",
            ("ClusterRole", "tenant-editor"),
            bot_of("alpha"),
        ),
    ]
}

#[test]
fn an_aggregated_cluster_role() {
    // The aggregate itself grants nothing; the role it selects by label does.
    let grant = "rolebinding tenant-beta/alpha-edits gives clusterrole tenant-editor to serviceaccount tenant-alpha/bot";
    planted(
        editor_grant(),
        &[
            (
                "alpha",
                &format!("the bot may delete persistentvolumeclaims in tenant-beta: {grant}"),
            ),
            (
                "beta",
                &format!(
                    "tenant alpha's bot may delete persistentvolumeclaims in tenant-beta: {grant}"
                ),
            ),
        ],
        &[&format!(
            "{ALPHA} delete persistentvolumeclaims in tenant-beta"
        )],
    );
}

/// With the aggregation controller down, the aggregated role's stored
/// rules grant nothing yet: the API server says no and so does verify's
/// evaluation, but what the controller will add is reported all the same.
#[test]
fn an_aggregated_cluster_role_the_controller_has_not_filled_yet() {
    let cluster = seeded(&TENANTS);
    cluster.open().set_aggregation_controller(false).unwrap();
    cluster.open().put_many(editor_grant()).unwrap();
    let (code, report, _) = verify(&cluster, &[]);
    assert_eq!(code, 1);
    let grant = "rolebinding tenant-beta/alpha-edits gives clusterrole tenant-editor to serviceaccount tenant-alpha/bot";
    let lag = "once the ClusterRole aggregation controller updates tenant-editor (its stored rules lag its aggregationRule)";
    assert_eq!(
        failed(&report)
            .into_iter()
            .map(|(t, c, p)| (
                t,
                c,
                p.into_iter()
                    .filter(|p| !p.starts_with("rolebinding"))
                    .collect()
            ))
            .collect::<Vec<(String, String, Vec<String>)>>(),
        [
            (
                "alpha".to_owned(),
                "rbac".to_owned(),
                vec![format!(
                    "the bot will be able to delete persistentvolumeclaims in tenant-beta {lag}: {grant}"
                )]
            ),
            (
                "beta".to_owned(),
                "rbac".to_owned(),
                vec![format!(
                    "tenant alpha's bot will be able to delete persistentvolumeclaims in tenant-beta {lag}: {grant}"
                )]
            ),
        ]
    );
    let found = agree_with_can_i(&cluster, &[("tenant-alpha", "bot")]);
    assert!(found.is_empty(), "{found:#?}");
    // The controller runs: the grant is real now, and said so.
    cluster.open().set_aggregation_controller(true).unwrap();
    let (_, report, _) = verify(&cluster, &[]);
    let alpha = &failed(&report)[0].2;
    assert!(
        alpha.contains(&format!(
            "the bot may delete persistentvolumeclaims in tenant-beta: {grant}"
        )),
        "{alpha:#?}"
    );
    assert!(
        !alpha.iter().any(|p| p.contains("will be able")),
        "{alpha:#?}"
    );
}

#[test]
fn wildcard_verbs_resources_and_groups() {
    let grant = |name: &str| {
        format!(
            "rolebinding tenant-beta/{name} gives role {name} to serviceaccount tenant-alpha/bot"
        )
    };
    let mut objects = Vec::new();
    for (name, rule) in [
        (
            "any-verb",
            json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}),
        ),
        (
            "any-resource",
            json!({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}),
        ),
        (
            "any-group",
            json!({"apiGroups": ["*"], "resources": ["pods/exec"], "verbs": ["create"]}),
        ),
    ] {
        objects.push(role("tenant-beta", name, json!([rule])));
        objects.push(role_binding(
            "tenant-beta",
            name,
            ("Role", name),
            bot_of("alpha"),
        ));
    }
    planted(
        objects,
        &[
            (
                "alpha",
                &format!(
                    "the bot may patch deployments in tenant-beta: {}",
                    grant("any-verb")
                ),
            ),
            (
                "alpha",
                &format!(
                    "the bot may get secrets in tenant-beta: {}",
                    grant("any-resource")
                ),
            ),
            (
                "alpha",
                &format!(
                    "the bot may create pods/exec in tenant-beta: {}",
                    grant("any-group")
                ),
            ),
            (
                "beta",
                &format!(
                    "tenant alpha's bot may patch deployments in tenant-beta: {}",
                    grant("any-verb")
                ),
            ),
        ],
        &[
            &format!("{ALPHA} patch deployments in tenant-beta"),
            &format!("{ALPHA} get secrets in tenant-beta"),
            &format!("{ALPHA} create pods --subresource=exec in tenant-beta"),
        ],
    );
}

#[test]
fn a_grant_of_named_objects_only() {
    // No `get secrets` without a name: can-i says no to that, and yes for
    // the named secret; verify still finds it.
    let grant = "rolebinding tenant-beta/one-secret gives role one-secret to serviceaccount tenant-alpha/bot";
    planted(
        vec![
            role(
                "tenant-beta",
                "one-secret",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                        "resourceNames": ["bot-credentials"]}]),
            ),
            role_binding(
                "tenant-beta",
                "one-secret",
                ("Role", "one-secret"),
                bot_of("alpha"),
            ),
        ],
        &[
            (
                "alpha",
                &format!("the bot may get secrets named bot-credentials in tenant-beta: {grant}"),
            ),
            (
                "beta",
                &format!(
                    "tenant alpha's bot may get secrets named bot-credentials in tenant-beta: {grant}"
                ),
            ),
        ],
        &[&format!(
            "{ALPHA} get secrets/bot-credentials in tenant-beta"
        )],
    );
}

#[test]
fn a_cluster_role_binding() {
    let grant = "clusterrolebinding alpha-execs gives clusterrole exec-anything to serviceaccount tenant-alpha/bot";
    planted(
        vec![
            cluster_role(
                "exec-anything",
                json!({}),
                json!([{"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]},
                       {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]),
            ),
            cluster_role_binding("alpha-execs", "exec-anything", bot_of("alpha")),
        ],
        &[
            (
                "alpha",
                &format!("the bot may create pods/exec in every other tenant's namespace: {grant}"),
            ),
            (
                "alpha",
                &format!("the bot may get nodes cluster-wide: {grant}"),
            ),
            (
                "beta",
                &format!("tenant alpha's bot may create pods/exec in tenant-beta: {grant}"),
            ),
            (
                "gamma",
                &format!("tenant alpha's bot may create pods/exec in tenant-gamma: {grant}"),
            ),
        ],
        &[
            &format!("{ALPHA} create pods --subresource=exec in tenant-gamma"),
            &format!("{ALPHA} get nodes in *"),
        ],
    );
}

#[test]
fn another_service_account_of_the_tenant() {
    let grant = "rolebinding tenant-gamma/ci gives role read-secrets to user system:serviceaccount:tenant-alpha:ci";
    planted(
        vec![
            role(
                "tenant-gamma",
                "read-secrets",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            ),
            role_binding(
                "tenant-gamma",
                "ci",
                ("Role", "read-secrets"),
                json!([{"kind": "User", "name": "system:serviceaccount:tenant-alpha:ci"}]),
            ),
        ],
        &[
            (
                "alpha",
                &format!("service account ci may get secrets in tenant-gamma: {grant}"),
            ),
            (
                "gamma",
                &format!(
                    "tenant alpha's service account ci may get secrets in tenant-gamma: {grant}"
                ),
            ),
        ],
        &["system:serviceaccount:tenant-alpha:ci get secrets in tenant-gamma"],
    );
}

/// What only looks like a grant across tenants is none: a service account
/// subject without a namespace is the RoleBinding's own, and a binding to
/// a missing role grants nothing (can-i then says why it says no).
#[test]
fn a_tenants_own_grants_and_a_dangling_binding_fail_no_one() {
    let cluster = seeded(&TENANTS);
    cluster
        .open()
        .put_many(vec![
            role(
                "tenant-beta",
                "read-secrets",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            ),
            role_binding(
                "tenant-beta",
                "own-bot",
                ("Role", "read-secrets"),
                json!([{"kind": "ServiceAccount", "name": "bot"}]),
            ),
            role_binding(
                "tenant-beta",
                "dangling",
                ("Role", "gone"),
                json!([{"kind": "Group", "name": "system:serviceaccounts"}]),
            ),
        ])
        .unwrap();
    let (code, report, err) = verify(&cluster, &[]);
    assert_eq!(code, 0, "{report:#}\n{err}");
    let found = agree_with_can_i(&cluster, &[("tenant-alpha", "bot"), ("tenant-beta", "bot")]);
    assert!(found.contains("system:serviceaccount:tenant-beta:bot get secrets in tenant-beta"));
    assert!(
        !found.iter().any(|q| q.contains("tenant-alpha:bot")),
        "{found:#?}"
    );
    // The spot checks met the dangling binding's reason and read it as no.
    let out = cluster.kubectl_output(&[
        "auth",
        "can-i",
        "get",
        "secrets",
        &format!("--as={ALPHA}"),
        "--namespace",
        "tenant-beta",
    ]);
    assert_eq!(
        stdout(&out),
        "no - RBAC: role.rbac.authorization.k8s.io \"gone\" not found\n"
    );
}

/// An API server that answers otherwise than the evaluation fails the
/// tenant loudly, saying what it asked.
#[test]
fn a_spot_check_that_disagrees_fails_the_tenant() {
    let cluster = seeded(&TENANTS);
    let mut yes = fake_kubectl::Fault::fail("auth", 0, "");
    yes.stdout = "yes\n".to_owned();
    yes.times = Some(1);
    cluster.fault(yes);
    let (code, report, _) = verify(&cluster, &["--jobs", "1"]);
    assert_eq!(code, 1);
    let failures = failed(&report);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let (tenant, check, problems) = &failures[0];
    assert_eq!((tenant.as_str(), check.as_str()), ("alpha", "rbac"));
    assert_eq!(
        problems,
        &[format!(
            "the API server and verify's own RBAC evaluation disagree: `kubectl auth can-i get secrets \
             --as={ALPHA} --namespace tenant-beta` answers yes, the cluster's roles and bindings as verify \
             read them say no; verify's RBAC results cannot be trusted on this cluster (please report it \
             with both answers)"
        )]
    );
}

/// kubectl processes of `verify` of all `n` tenants: at most 10 + 10·n,
/// the cluster-wide reads the same at any size, and the spot checks a
/// fixed number per tenant that still reach every tenant's namespace.
fn calls_of_verify(n: usize) -> usize {
    let names: Vec<String> = (0..n).map(|i| format!("t{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let cluster = seeded(&refs);
    let before = cluster.calls().len();
    let (code, report, err) = verify(&cluster, &["--jobs", "4"]);
    assert_eq!(code, 0, "{:#?}\n{err}", failed(&report));
    let calls: Vec<Vec<String>> = cluster.calls().into_iter().skip(before).collect();
    assert!(
        calls.len() <= 10 + 10 * n,
        "{} kubectl calls for {n} tenants",
        calls.len()
    );
    let wide: Vec<&Vec<String>> = calls
        .iter()
        .filter(|c| c[0] == "get" && !c.contains(&"--namespace".to_owned()))
        .collect();
    assert_eq!(wide.len(), 5, "{wide:#?}");
    let can_i: Vec<&Vec<String>> = calls.iter().filter(|c| c[0] == "auth").collect();
    assert_eq!(
        can_i.len(),
        7 * n,
        "six namespaced and one cluster-wide question each"
    );
    let asked: BTreeSet<&str> = can_i
        .iter()
        .filter_map(|c| {
            let i = c.iter().position(|a| a == "--namespace")?;
            Some(c[i + 1].as_str())
        })
        .collect();
    assert_eq!(asked.len(), n, "every namespace is spot-checked");
    calls.len()
}

#[test]
fn verify_of_three_tenants_stays_within_its_calls() {
    let calls = calls_of_verify(3);
    // 5 cluster-wide reads, then per tenant a read, a dry run and 7 can-i.
    assert_eq!(calls, 5 + 3 * 9);
}

#[test]
fn verify_of_three_hundred_tenants_stays_within_its_calls() {
    let started = std::time::Instant::now();
    let calls = calls_of_verify(300);
    assert_eq!(calls, 5 + 300 * 9);
    eprintln!(
        "verify of 300 tenants: {calls} kubectl calls in {:.1?}",
        started.elapsed()
    );
}
