//! The fake must answer like kubectl does for every verb and flag the tool
//! uses, and refuse loudly everything else.

use fake_kubectl::{Fault, State};
use serde_json::{Value, json};

struct Fake(tempfile::TempDir);

/// (exit code, stdout, stderr)
type Outcome = (i32, String, String);

impl Fake {
    fn new() -> Fake {
        Fake(tempfile::tempdir().unwrap())
    }
    fn run_with(&self, args: &str, stdin: &str) -> Outcome {
        self.run_args(args.split_whitespace().map(str::to_owned).collect(), stdin)
    }
    fn run_args(&self, args: Vec<String>, stdin: &str) -> Outcome {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = fake_kubectl::run(
            self.0.path(),
            args,
            &mut stdin.as_bytes(),
            &mut out,
            &mut err,
        );
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }
    fn run(&self, args: &str) -> Outcome {
        self.run_with(args, "")
    }
    fn json(&self, args: &str) -> Value {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "{args}: {err}");
        serde_json::from_str(&out).unwrap()
    }
    fn state(&self) -> State {
        State::open(self.0.path()).unwrap()
    }
}

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: t\n";
const CONFIG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: t\n  labels: {app: bot, tier: a}\ndata: {k: v}\n";

fn apply(fake: &Fake, docs: &str) -> Outcome {
    fake.run_with(
        "apply --server-side --field-manager=test -f - -o json",
        docs,
    )
}

#[test]
fn get_answers_like_kubectl() {
    let fake = Fake::new();
    assert_eq!(apply(&fake, &format!("{NAMESPACE}---\n{CONFIG}")).0, 0);
    let list = fake.json("get configmaps -n t -o json");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "c");
    // Every spelling of the same request.
    for args in [
        "get cm --namespace=t --output=json",
        "get configmap -nt -ojson",
        "--context x get configmaps.v1 -n t -o json",
    ] {
        let (code, _, err) = fake.run(args);
        if args.contains("configmaps.v1") {
            assert_eq!(code, 1, "{err}");
            assert!(err.contains("doesn't have a resource type"));
        } else {
            assert_eq!(code, 0, "{args}: {err}");
        }
    }
    assert_eq!(
        fake.json("get configmaps -n other -o json")["items"],
        json!([])
    );
    assert_eq!(
        fake.json("get configmaps -A -o json")["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        fake.json("get configmaps -A -l app=bot,tier!=b -o json")["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        fake.json("get configmaps -A -l app,!tier -o json")["items"],
        json!([])
    );
    let (code, out, err) = fake.run("get secret s -n t -o json");
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): secrets \"s\" not found"
    );
    assert_eq!(
        fake.run("get secret s -n t --ignore-not-found -o json"),
        (0, String::new(), String::new())
    );
    let (code, _, err) = fake.run("get deployment bot -n t -o json");
    assert_eq!(code, 1);
    assert!(err.contains("deployments.apps \"bot\" not found"));
    let ns = fake.json("get namespace t -o json");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "t");
    assert_eq!(ns["status"]["phase"], "Active");
}

#[test]
fn anything_unimplemented_fails_loudly() {
    let fake = Fake::new();
    for (args, code, text) in [
        ("patch deployment bot", 2, "not implemented"),
        ("get cm -o yaml", 2, "not implemented"),
        ("get cm", 2, "not implemented"),
        ("apply -f -", 2, "client-side"),
        (
            "get cm --watch -o json",
            1,
            "Error: unknown flag: --watch\nSee 'kubectl get --help' for usage.",
        ),
        (
            "get cm -x -o json",
            1,
            "Error: unknown shorthand flag: 'x' in -x",
        ),
        // A boolean flag set to false is off; any other word is refused.
        (
            "get cm gone --ignore-not-found=false -o json",
            1,
            "Error from server (NotFound): configmaps \"gone\" not found",
        ),
        (
            "get cm gone --ignore-not-found=maybe -o json",
            1,
            "Error: invalid argument \"maybe\" for \"--ignore-not-found\" flag: strconv.ParseBool",
        ),
        (
            "rollout status deployment/bot --timeout=1s -o json",
            2,
            "not implemented: flag --output",
        ),
    ] {
        let (got, _, err) = fake.run(args);
        assert_eq!(got, code, "{args}: {err}");
        assert!(err.contains(text), "{args}: {err}");
    }
    let args = ["get", "cm", "-l", "env in (a,b)", "-o", "json"]
        .map(String::from)
        .to_vec();
    let (code, _, err) = fake.run_args(args, "");
    assert_eq!(code, 2);
    assert!(err.contains("set-based label selectors"), "{err}");
}

#[test]
fn server_side_apply_keeps_versions_of_unchanged_objects() {
    let fake = Fake::new();
    let (code, out, _) = apply(&fake, &format!("{NAMESPACE}---\n{CONFIG}"));
    assert_eq!(code, 0);
    let first: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["kind"], "List");
    let rv = |v: &Value, i: usize| v["items"][i]["metadata"]["resourceVersion"].clone();
    let again: Value =
        serde_json::from_str(&apply(&fake, &format!("{NAMESPACE}---\n{CONFIG}")).1).unwrap();
    assert_eq!(
        rv(&first, 1),
        rv(&again, 1),
        "a no-op apply bumped resourceVersion"
    );
    let changed: Value =
        serde_json::from_str(&apply(&fake, &CONFIG.replace("{k: v}", "{k: w}")).1).unwrap();
    assert_ne!(changed["metadata"]["resourceVersion"], rv(&first, 1));
    assert_eq!(
        changed["metadata"]["uid"],
        first["items"][1]["metadata"]["uid"]
    );
    assert_eq!(changed["data"]["k"], "w");
}

#[test]
fn apply_validates_like_the_api_server_and_reports_partial_success() {
    let fake = Fake::new();
    let (code, out, err) = apply(&fake, &format!("{CONFIG}---\n{NAMESPACE}"));
    assert_eq!(code, 1, "a ConfigMap before its namespace must fail");
    assert!(err.contains("namespaces \"t\" not found"), "{err}");
    // The namespace itself was applied, but with -o json kubectl prints
    // nothing after an error (apply.go prints the objects at the end).
    assert_eq!(out, "");
    assert!(fake.state().get("Namespace", None, "t").is_some());
    // Without -o, each applied object has its line, the kind with its group.
    let (code, out, _) = fake.run_with(
        "apply --server-side --field-manager=test -f -",
        &format!("{CONFIG}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: nowhere}}\nspec: {{selector: {{matchLabels: {{a: b}}}}, template: {{metadata: {{labels: {{a: b}}}}, spec: {{containers: [{{name: c, image: i}}]}}}}}}\n"),
    );
    assert_eq!(
        (code, out.as_str()),
        (1, "configmap/c serverside-applied\n")
    );
    // Only some kinds have a generation.
    let stored = fake
        .state()
        .get("ConfigMap", Some("t"), "c")
        .cloned()
        .unwrap();
    assert!(stored["metadata"].get("generation").is_none(), "{stored}");
    let bad_label = CONFIG.replace("app: bot", "app: \"श्री\"");
    let (code, _, err) = apply(&fake, &bad_label);
    assert_eq!(code, 1);
    assert!(err.contains("Invalid value: \"श्री\""), "{err}");
    let wrong_version = CONFIG.replace("apiVersion: v1", "apiVersion: apps/v1");
    assert!(
        apply(&fake, &wrong_version)
            .2
            .contains("no matches for kind \"ConfigMap\" in version \"apps/v1\"")
    );
    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: d, namespace: t}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";
    assert_eq!(apply(&fake, pvc).0, 0);
    assert_eq!(
        apply(&fake, &pvc.replace("1Gi", "2Gi")).0,
        0,
        "growing a claim is allowed"
    );
    let (code, _, err) = apply(&fake, &pvc.replace("ReadWriteOnce", "ReadWriteMany"));
    assert_eq!(code, 1);
    assert!(err.contains("spec is immutable after creation"), "{err}");
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: t}\nstringData: {token: foo}\n";
    assert_eq!(apply(&fake, secret).0, 0);
    let stored = fake.state().get("Secret", Some("t"), "s").cloned().unwrap();
    assert_eq!(stored["data"]["token"], "Zm9v");
    assert!(stored.get("stringData").is_none());
}

#[test]
fn deployments_get_pods_and_rollout_status_reads_them() {
    let fake = Fake::new();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bot, namespace: t}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: bot}}\n  template:\n    metadata: {labels: {app: bot}}\n    spec: {containers: [{name: bot, image: bot:1}]}\n";
    assert_eq!(apply(&fake, &format!("{NAMESPACE}---\n{deployment}")).0, 0);
    // A server-side dry run is answered before any controller acts: the
    // new generation, with the status the controller last wrote.
    let (code, out, err) = fake.run_with(
        "apply --server-side --field-manager=test --dry-run=server -f - -o json",
        &deployment.replace("bot:1", "bot:9"),
    );
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["metadata"]["generation"], 2);
    assert_eq!(answer["status"]["observedGeneration"], 1);
    // ... and with the stored resourceVersion: a dry run stores nothing.
    let live = fake
        .state()
        .get("Deployment", Some("t"), "bot")
        .cloned()
        .unwrap();
    assert_eq!(
        answer["metadata"]["resourceVersion"],
        live["metadata"]["resourceVersion"]
    );
    // An annotation is a new generation of a Deployment (its strategy).
    assert_eq!(
        fake.run("annotate deployment/bot -n t note=x").1,
        "deployment.apps/bot annotated\n"
    );
    let annotated = fake
        .state()
        .get("Deployment", Some("t"), "bot")
        .cloned()
        .unwrap();
    assert_eq!(annotated["metadata"]["generation"], 2);
    let pods = fake.json("get pods -n t -l app=bot -o json");
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
    let first_pod = pods["items"][0]["metadata"]["name"].clone();
    assert_eq!(
        fake.run("rollout status deployment/bot -n t --timeout=5m")
            .1,
        "deployment \"bot\" successfully rolled out\n"
    );
    // A new template replaces the pod (Recreate).
    assert_eq!(apply(&fake, &deployment.replace("bot:1", "bot:2")).0, 0);
    let pods = fake.json("get pods -n t -o json");
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
    assert_ne!(pods["items"][0]["metadata"]["name"], first_pod);
    fake.state()
        .set_pod_state("t", "bot", "CrashLoopBackOff")
        .unwrap();
    let (code, out, err) = fake.run("rollout status deploy/bot -n t --timeout=1s");
    assert_eq!(code, 1);
    assert!(out.contains("0 of 1 updated replicas are available"));
    assert_eq!(err.trim(), "error: timed out waiting for the condition");
    let pod = &fake.json("get pods -n t -o json")["items"][0];
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    let (code, _, err) = apply(
        &fake,
        &deployment.replace("{app: bot}}\n  template", "{app: other}}\n  template"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("spec.selector: field is immutable"), "{err}");
}

#[test]
fn faults_calls_and_contexts() {
    let fake = Fake::new();
    fake.state()
        .add_fault(Fault {
            times: Some(1),
            ..Fault::unreachable("get")
        })
        .unwrap();
    let (code, _, err) = fake.run("get ns -o json");
    assert_eq!(code, 1);
    assert!(err.contains("was refused"));
    assert_eq!(
        fake.run("get ns -o json").0,
        0,
        "the fault was for one call only"
    );
    fake.state().set_contexts(&["prod"]).unwrap();
    assert_eq!(fake.run("--context prod get ns -o json").0, 0);
    let (code, _, err) = fake.run("--context dev get ns -o json");
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "Error in configuration: context was not found for specified context: dev"
        )
    );
    let calls = State::calls(fake.0.path());
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[3], ["--context", "dev", "get", "ns", "-o", "json"]);
}

/// LimitRanger: defaults from the range (its default from its max), then
/// its min and max, with the plugin's own texts.
#[test]
fn limit_ranges_default_and_bound_containers() {
    let fake = Fake::new();
    let range = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: l, namespace: t}\nspec: {limits: [{type: Container, max: {cpu: '1'}, min: {memory: 64Mi}}]}\n";
    assert_eq!(apply(&fake, &format!("{NAMESPACE}---\n{range}")).0, 0);
    let pod = |resources: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: t}}\nspec: {{containers: [{{name: c, image: i, resources: {resources}}}]}}\n"
        )
    };
    let dry = |doc: &str| {
        fake.run_with(
            "apply --server-side --field-manager=test --dry-run=server -f - -o json",
            doc,
        )
    };
    // Nothing set: the limit defaults to the max, the request to the min.
    let (code, out, err) = dry(&pod("{}"));
    assert_eq!(code, 0, "{err}");
    let admitted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        admitted["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "1"}, "requests": {"cpu": "1", "memory": "64Mi"}})
    );
    let (code, _, err) = dry(&pod("{limits: {cpu: '2'}, requests: {memory: 32Mi}}"));
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): pods \"p\" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 1, but limit is 2]"
    );
}

/// A Deployment's pods are admitted like any pod: a refusal leaves the
/// Deployment without them, says why in a ReplicaFailure condition, and
/// its rollout never completes.
#[test]
fn a_deployments_pods_go_through_admission() {
    let fake = Fake::new();
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: t}\nspec: {hard: {limits.cpu: 500m, requests.cpu: 500m}}\n";
    assert_eq!(apply(&fake, &format!("{NAMESPACE}---\n{quota}")).0, 0);
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bot, namespace: t}\nspec:\n  selector: {matchLabels: {app: bot}}\n  template:\n    metadata: {labels: {app: bot}}\n    spec: {containers: [{name: bot, image: bot:1, resources: {limits: {cpu: '1'}}}]}\n";
    assert_eq!(apply(&fake, deployment).0, 0);
    assert!(
        fake.json("get pods -n t -o json")["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let d = fake.json("get deployment bot -n t -o json");
    let failure = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ReplicaFailure")
        .cloned()
        .unwrap_or_else(|| panic!("{d:#}"));
    // The request defaulted to the limit before the quota counted it.
    let message = failure["message"].as_str().unwrap();
    let (pod, why) = message.split_once("\" is forbidden: ").unwrap();
    assert!(pod.starts_with("pods \"bot-"), "{message}");
    assert_eq!(
        why,
        "exceeded quota: q, requested: limits.cpu=1,requests.cpu=1, used: limits.cpu=0,requests.cpu=0, limited: limits.cpu=500m,requests.cpu=500m"
    );
    let (code, _, err) = fake.run("rollout status deployment/bot -n t --timeout=1s");
    assert_eq!(
        (code, err.trim()),
        (1, "error: timed out waiting for the condition")
    );
    // Room in the quota: the next reconcile creates the pod.
    assert_eq!(apply(&fake, &quota.replace("500m", "2")).0, 0);
    assert_eq!(
        fake.json("get pods -n t -o json")["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn auth_can_i_follows_bindings_and_admission_refuses_privileged_pods() {
    let fake = Fake::new();
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: t\n  labels: {pod-security.kubernetes.io/enforce: restricted}\n";
    assert_eq!(apply(&fake, ns).0, 0);
    let ask = |ns: &str| {
        fake.run(&format!(
            "auth can-i get secrets --as=system:serviceaccount:a:bot --namespace {ns}"
        ))
    };
    assert_eq!(ask("t"), (1, "no\n".to_owned(), String::new()));
    let grant = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: t}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: t}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects: [{kind: ServiceAccount, name: bot, namespace: a}]\n";
    assert_eq!(apply(&fake, grant).0, 0);
    assert_eq!(ask("t").1, "yes\n");
    assert_eq!(
        fake.run("auth can-i get secrets --as=system:serviceaccount:a:bot --all-namespaces")
            .0,
        1
    );
    assert_eq!(
        fake.run("auth can-i delete secrets --as=system:serviceaccount:a:bot -n t")
            .0,
        1
    );

    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: t}\nspec: {containers: [{name: c, image: i, securityContext: {privileged: true}}]}\n";
    let (code, _, err) = fake.run_with("apply --server-side --dry-run=server -f - -o json", pod);
    assert_eq!(code, 1);
    assert!(
        err.contains("violates PodSecurity \"restricted:latest\": privileged"),
        "{err}"
    );
    let fine = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: t}\nspec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: c, image: i, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n";
    assert_eq!(
        fake.run_with("apply --server-side --dry-run=server -f - -o json", fine)
            .0,
        0
    );
    assert!(
        fake.state().get("Pod", Some("t"), "ok").is_none(),
        "a dry run stored the pod"
    );

    // Authorization comes before the lookup: no right to delete is a
    // refusal even for an object that does not exist.
    fake.state()
        .deny("delete", "configmaps", Some("t"))
        .unwrap();
    let (code, _, err) = fake.run("delete configmap gone -n t --ignore-not-found");
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error from server (Forbidden): configmaps \"gone\" is forbidden:"),
        "{err}"
    );
    // Reads are authorized too: rollout status reads the Deployment.
    fake.state().deny("get", "deployments", Some("t")).unwrap();
    let (code, _, err) = fake.run("rollout status deployment/bot -n t --timeout=1s");
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "Error from server (Forbidden): deployments.apps \"bot\" is forbidden: User \""
        ) && err.contains(
            "cannot get resource \"deployments\" in API group \"apps\" in the namespace \"t\""
        ),
        "{err}"
    );
    // A namespace being deleted cannot be deleted again.
    fake.state().set_namespace_termination_calls(100).unwrap();
    assert_eq!(fake.run("delete namespace t --wait=false").0, 0);
    assert_eq!(
        fake.run("delete namespace t --wait=false --ignore-not-found"),
        (
            1,
            String::new(),
            "Error from server (Conflict): Operation cannot be fulfilled on namespaces \"t\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.\n".to_owned()
        )
    );
}

#[test]
fn network_probes_follow_network_policies() {
    let fake = Fake::new();
    let setup = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: a, labels: {role: client}}\nspec: {containers: [{name: c, image: i}]}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: server, namespace: b, labels: {app: web}}\nspec: {containers: [{name: s, image: i, ports: [{name: http, containerPort: 8080}]}]}\n---\n\
apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: b}\nspec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}\n";
    assert_eq!(apply(&fake, setup).0, 0);
    let nc = |host: &str, port: &str| {
        fake.run(&format!("exec pod/client -n a -- nc -z -w 3 {host} {port}"))
            .0
    };
    assert_eq!(nc("web.b.svc.cluster.local", "80"), 0, "no policy: open");
    assert_eq!(
        nc("nothing.b.svc.cluster.local", "80"),
        1,
        "no such service"
    );
    let deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: a}\nspec: {podSelector: {}, policyTypes: [Egress]}\n";
    assert_eq!(apply(&fake, deny).0, 0);
    assert_eq!(nc("web.b.svc.cluster.local", "80"), 1, "egress denied");
    assert_eq!(
        nc("169.254.169.254", "80"),
        1,
        "egress denied to any address"
    );
    let allow = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: to-b, namespace: a}\nspec:\n  podSelector: {matchLabels: {role: client}}\n  policyTypes: [Egress]\n  egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: b}}}], ports: [{port: 8080}]}]\n";
    assert_eq!(apply(&fake, allow).0, 0);
    assert_eq!(
        nc("web.b.svc.cluster.local", "80"),
        0,
        "egress allowed to b on the target port"
    );
    let ingress = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-in, namespace: b}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";
    assert_eq!(apply(&fake, ingress).0, 0);
    assert_eq!(
        nc("web.b.svc.cluster.local", "80"),
        1,
        "ingress denied at b"
    );
    fake.state().set_network_policy_enforced(false).unwrap();
    assert_eq!(
        nc("web.b.svc.cluster.local", "80"),
        0,
        "a CNI without enforcement lets it through"
    );
    let (code, out, _) = fake.run("exec pod/client -n a -- nslookup web.b.svc.cluster.local");
    assert_eq!(code, 0);
    assert!(out.contains("Name:\tweb.b.svc.cluster.local"));
}

/// Each call reads only the files of what it asks about (so its cost does
/// not grow with the cluster): a damaged file of one namespace or resource
/// fails the calls that read it, and no other.
#[test]
fn a_call_reads_only_the_namespaces_and_resources_it_asks_about() {
    let fake = Fake::new();
    for ns in ["a", "b"] {
        let docs = format!("{NAMESPACE}---\n{CONFIG}").replace(": t\n", &format!(": {ns}\n"));
        assert_eq!(apply(&fake, &docs).0, 0);
    }
    let damaged = fake.0.path().join("objects/configmaps/b.json");
    assert!(damaged.exists(), "the layout lib.rs describes");
    std::fs::write(&damaged, "{").unwrap();
    let corrupt = |(code, _, err): Outcome| {
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("configmaps/b.json is corrupt"), "{err}");
    };
    assert_eq!(
        fake.json("get configmaps -n a -o json")["items"][0]["metadata"]["namespace"],
        "a"
    );
    assert_eq!(
        fake.json("get namespaces -o json")["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(fake.json("get secrets -A -o json")["items"], json!([]));
    assert_eq!(
        fake.run("auth can-i get pods --as system:serviceaccount:b:bot -n b")
            .0,
        1
    );
    corrupt(fake.run("get configmaps -A -o json"));
    corrupt(fake.run("get configmaps -n b -o json"));
    // A change reads its namespaces whole: one in b cannot go ahead.
    let changed = CONFIG.replace("{k: v}", "{k: w}");
    assert_eq!(apply(&fake, &changed.replace(": t\n", ": a\n")).0, 0);
    corrupt(apply(&fake, &changed.replace(": t\n", ": b\n")));
    corrupt(fake.run("delete namespace b"));
    assert_eq!(
        fake.json("get configmaps -n a -o json")["items"][0]["data"]["k"],
        "w"
    );
}

/// An apply of many objects reconciles, after each, only that object's
/// namespace (everything else was reconciled already): the cluster ends
/// exactly as if each object had been applied on its own, resource
/// versions and the pods a quota refused included.
#[test]
fn one_apply_across_namespaces_ends_as_separate_applies_do() {
    let deployment = |ns: &str, replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: bot, namespace: {ns}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: bot}}}}\n  template:\n    metadata: {{labels: {{app: bot}}}}\n    spec: {{containers: [{{name: bot, image: bot:1, resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}}}]}}\n"
        )
    };
    let quota = |ns: &str| {
        format!(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: q, namespace: {ns}}}\nspec: {{hard: {{pods: \"2\"}}}}\n"
        )
    };
    let claim = |ns: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data, namespace: {ns}}}\nspec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n"
        )
    };
    let ns = |n: &str| NAMESPACE.replace("name: t", &format!("name: {n}"));
    let docs = [
        ns("a"),
        ns("b"),
        quota("a"),
        deployment("a", 3),
        claim("b"),
        deployment("b", 1),
        claim("a"),
        quota("b"),
        CONFIG.replace(": t\n", ": a\n"),
    ];
    let (together, apart) = (Fake::new(), Fake::new());
    for fake in [&together, &apart] {
        fake.state().set_clock("2026-11-24T06:00:00Z").unwrap();
    }
    let (code, _, err) = apply(&together, &docs.join("---\n"));
    assert_eq!(code, 0, "{err}");
    for doc in &docs {
        let (code, _, err) = apply(&apart, doc);
        assert_eq!(code, 0, "{err}");
    }
    // All but kube-system, whose UID is each cluster's own.
    let objects = |fake: &Fake| {
        let mut objects: Vec<Value> = fake
            .state()
            .objects()
            .iter()
            .filter(|o| o["metadata"]["name"] != "kube-system")
            .cloned()
            .collect();
        objects.sort_by_key(|o| o.to_string());
        objects
    };
    let together = objects(&together);
    assert_eq!(together, objects(&apart));
    // What the controllers did is in it: two of a's three pods (the quota),
    // the claims bound.
    let pods_in_a = together
        .iter()
        .filter(|o| o["kind"] == "Pod" && o["metadata"]["namespace"] == "a")
        .count();
    assert_eq!(pods_in_a, 2);
    assert_eq!(
        together
            .iter()
            .filter(|o| o["kind"] == "PersistentVolume")
            .count(),
        2
    );
}

/// `auth can-i` as the RBAC authorizer answers: `*/exec` is any resource's
/// exec, a service account subject without a namespace is the
/// RoleBinding's own, and an aggregated ClusterRole's rules are those the
/// aggregation controller writes, once it has written them.
#[test]
fn auth_can_i_follows_subresource_wildcards_default_namespaces_and_aggregation() {
    let fake = Fake::new();
    let ns = |n: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n");
    assert_eq!(apply(&fake, &format!("{}---\n{}", ns("a"), ns("t"))).0, 0);
    let ask = |what: &str, sa: &str| {
        fake.run(&format!(
            "auth can-i {what} --as=system:serviceaccount:{sa} --namespace t"
        ))
        .1
    };
    let rbac = "apiVersion: rbac.authorization.k8s.io/v1";
    let exec = format!(
        "{rbac}\nkind: Role\nmetadata: {{name: exec, namespace: t}}\nrules: [{{apiGroups: [''], resources: ['*/exec'], verbs: [create]}}]\n---\n\
         {rbac}\nkind: RoleBinding\nmetadata: {{name: local, namespace: t}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: exec}}\nsubjects: [{{kind: ServiceAccount, name: bot}}]\n"
    );
    assert_eq!(apply(&fake, &exec).0, 0);
    assert_eq!(ask("create pods --subresource=exec", "t:bot"), "yes\n");
    assert_eq!(
        ask("create pods", "t:bot"),
        "no\n",
        "*/exec is no right to the pods"
    );
    // The subject without a namespace is t's bot, not a's.
    assert_eq!(ask("create pods --subresource=exec", "a:bot"), "no\n");

    let aggregate = format!(
        "{rbac}\nkind: ClusterRole\nmetadata: {{name: reader}}\naggregationRule:\n  clusterRoleSelectors: [{{matchLabels: {{example.com/to-reader: 'true'}}}}]\nrules: []\n---\n\
         {rbac}\nkind: RoleBinding\nmetadata: {{name: a-reads, namespace: t}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}}\nsubjects: [{{kind: Group, name: 'system:serviceaccounts:a'}}]\n"
    );
    assert_eq!(apply(&fake, &aggregate).0, 0);
    assert_eq!(ask("get secrets", "a:bot"), "no\n");
    let source = format!(
        "{rbac}\nkind: ClusterRole\nmetadata: {{name: secrets, labels: {{example.com/to-reader: 'true'}}}}\nrules: [{{apiGroups: [''], resources: [secrets], verbs: [get]}}]\n"
    );
    assert_eq!(apply(&fake, &source).0, 0);
    assert_eq!(ask("get secrets", "a:bot"), "yes\n");
    assert_eq!(ask("list secrets", "a:bot"), "no\n");
    let reader = fake.json("get clusterrole reader -o json --show-managed-fields");
    assert_eq!(
        reader["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])
    );
    assert!(
        reader["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "clusterrole-aggregation-controller"
                && m["operation"] == "Apply"),
        "{reader:#}"
    );
    // The label removed: the controller takes the rule back out.
    assert_eq!(apply(&fake, &source.replace("'true'", "'false'")).0, 0);
    assert_eq!(ask("get secrets", "a:bot"), "no\n");

    // A binding that applies but names a missing role: the review's reason
    // follows the no; one that does not apply adds nothing.
    let dangling = format!(
        "{rbac}\nkind: RoleBinding\nmetadata: {{name: gone, namespace: t}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: nope}}\nsubjects: [{{kind: Group, name: 'system:serviceaccounts:a'}}]\n---\n\
         {rbac}\nkind: RoleBinding\nmetadata: {{name: gone-too, namespace: t}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nope}}\nsubjects: [{{kind: Group, name: 'system:authenticated'}}]\n"
    );
    assert_eq!(apply(&fake, &dangling).0, 0);
    assert_eq!(
        fake.run("auth can-i get secrets --as=system:serviceaccount:a:bot --namespace t"),
        (
            1,
            "no - RBAC: [role.rbac.authorization.k8s.io \"nope\" not found, clusterrole.rbac.authorization.k8s.io \"nope\" not found]\n".to_owned(),
            String::new()
        )
    );
    assert_eq!(
        ask("get secrets", "x:bot"),
        "no - RBAC: clusterrole.rbac.authorization.k8s.io \"nope\" not found\n"
    );
    // An allowed request says yes whatever else fails to resolve.
    assert_eq!(ask("create pods --subresource=exec", "t:bot"), "yes\n");
}

fn lease(name: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": name, "namespace": "locks"}, "spec": {"holderIdentity": "me"}})
}

/// JSON documents one after another, as kubectl's JSON printer prints
/// each object a create or replace did.
fn documents(out: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

/// create.go and replace.go visit every object of a List and go on past
/// one that fails: each object done is printed as it is done, the errors
/// (naming their source, STDIN) come at the end; delete of several names
/// likewise.
#[test]
fn create_replace_and_delete_act_on_each_object_and_go_on() {
    let fake = Fake::new();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "locks"}});
    assert_eq!(fake.run_with("create -f - -o json", &ns.to_string()).0, 0);
    let list =
        |items: Vec<Value>| json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let create = "create --namespace locks -f - -o json";
    let (code, out, err) = fake.run_with(create, &list(vec![lease("a")]));
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(documents(&out)[0]["metadata"]["name"], "a");
    // a exists: b and c are created all the same, a's error comes last.
    let (code, out, err) = fake.run_with(create, &list(vec![lease("b"), lease("a"), lease("c")]));
    assert_eq!(code, 1);
    let names: Vec<Value> = documents(&out)
        .iter()
        .map(|d| d["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(
        err,
        "Error from server (AlreadyExists): error when creating \"STDIN\": leases.coordination.k8s.io \"a\" already exists\n"
    );
    // Two errors: one line each, each in its standard form.
    let (code, out, err) = fake.run_with(create, &list(vec![lease("a"), lease("b")]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.lines()
            .all(|l| l
                .starts_with("Error from server (AlreadyExists): error when creating \"STDIN\": ")),
        "{err}"
    );

    // Replace at a stale resourceVersion: a Conflict naming its source; the
    // others are replaced.
    let stored = documents(
        &fake
            .run_with(
                "replace --namespace locks -f - -o json",
                &list(vec![lease("a"), lease("b")]),
            )
            .1,
    );
    assert_eq!(stored.len(), 2);
    let mut stale = stored[0].clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, out, err) = fake.run_with(
        "replace --namespace locks -f - -o json",
        &list(vec![stale, stored[1].clone()]),
    );
    assert_eq!(code, 1);
    assert_eq!(documents(&out).len(), 1);
    assert_eq!(
        err,
        "Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on leases.coordination.k8s.io \"a\": the object has been modified; please apply your changes to the latest version and try again\n"
    );

    let (code, out, err) =
        fake.run("delete lease a nope c --namespace locks --ignore-not-found --wait=false");
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "lease.coordination.k8s.io \"a\" deleted\nlease.coordination.k8s.io \"c\" deleted\n"
    );
    let (code, out, err) = fake.run("delete lease b nope --namespace locks --wait=false");
    assert_eq!(code, 1);
    assert_eq!(out, "lease.coordination.k8s.io \"b\" deleted\n");
    assert_eq!(
        err,
        "Error from server (NotFound): leases.coordination.k8s.io \"nope\" not found\n"
    );
    assert!(fake.state().get("Lease", Some("locks"), "b").is_none());
}

/// apply.go applies every object and returns the errors at the end: one as
/// it is, several as an aggregate, one line each in its standard form
/// (a conflict without its `error: `); nothing on stdout with -o json.
#[test]
fn apply_prints_several_errors_as_kubectl_aggregates_them() {
    let fake = Fake::new();
    let other = format!(
        "{}---\n{}",
        NAMESPACE.replace("name: t", "name: u"),
        CONFIG.replace("namespace: t", "namespace: u")
    );
    assert_eq!(
        apply(&fake, &format!("{NAMESPACE}---\n{CONFIG}---\n{other}")).0,
        0
    );
    let mut state = fake.state();
    state
        .edit("ConfigMap", Some("t"), "c", "kubectl-edit", |c| {
            c["data"]["k"] = json!("hand")
        })
        .unwrap();
    state.deny("patch", "configmaps", Some("u")).unwrap();
    drop(state);
    let both = format!(
        "{CONFIG}---\n{}",
        CONFIG.replace("namespace: t", "namespace: u")
    );
    let (code, out, err) = apply(&fake, &both);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with(
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.k\nPlease review the fields above"
        ),
        "{err}"
    );
    assert!(
        err.ends_with("\nError from server (Forbidden): configmaps \"c\" is forbidden: User \"kubernetes-admin\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"u\"\n"),
        "{err}"
    );
    // One error alone keeps kubectl's `error: `.
    let (code, _, err) = apply(&fake, CONFIG);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: Apply failed with 1 conflict"),
        "{err}"
    );
}
