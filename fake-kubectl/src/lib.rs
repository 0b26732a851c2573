//! A stateful stand-in for `kubectl`, for tests: no Kubernetes API server can
//! run on the machines this project is built on.
//!
//! It keeps a whole cluster in JSON files under the directory named by
//! `FAKE_KUBECTL_STATE`, and implements exactly the verbs and flags that
//! `cargo xtask` uses, with kubectl's argument syntax, output shapes (`-o
//! json` lists are `kind: List` with `items`), exit codes and error texts.
//! Anything else fails loudly with exit code 2 and `fake-kubectl: not
//! implemented`, so the product can never come to depend on a quirk of it.
//!
//! What it simulates, and how far:
//! - objects are stored as applied; server-side apply replaces the whole
//!   object with the applied one (one field manager owns everything), keeps
//!   `uid` and `creationTimestamp`, and bumps `resourceVersion` only when
//!   something changed, as a real API server does for a no-op apply;
//! - the API server's own writes: a Namespace gets its
//!   `kubernetes.io/metadata.name` label, a Secret's `stringData` moves into
//!   base64 `data`, immutable fields (a Deployment's selector, a PVC's spec
//!   other than a larger size) are refused;
//! - controllers: each Deployment gets its pods (Recreate: old pods go when
//!   the template changes) in the state tests choose with
//!   [`State::set_pod_state`], and a status that `rollout status` reads;
//!   PVCs are Bound, Namespaces Active. `rollout status` answers at once
//!   instead of waiting;
//! - pods: `logs` prints what a test set with [`State::set_logs`]; `exec`
//!   runs the few commands the tool uses in a container (see `pod_exec.rs`)
//!   on directories that stand for the pod's volumes
//!   ([`State::volume_dir`]); `scale`, `rollout restart`, `wait
//!   --for=condition=Ready`, `delete pod` and `annotate` do what they say;
//! - `get --raw` serves the metrics API (switched off with
//!   [`State::set_metrics_available`]) and each node's kubelet stats summary,
//!   with used bytes measured from the volume directories;
//! - network: `nc -z` and `nslookup` in a pod are answered by evaluating the
//!   NetworkPolicies (see `network.rs`); [`State::set_network_policy_enforced`]
//!   plays a CNI that ignores them;
//! - faults: [`State::add_fault`] makes a verb fail, print garbage or hang,
//!   optionally after letting some calls through;
//! - every invocation is appended to `calls.jsonl`, for tests that count calls.
//!
//! The cluster lives in `cluster.json` (settings and cluster-scoped objects)
//! and one `namespaces/<name>.json` per namespace. A read confined to one
//! namespace (`get -n`, `exec`, `logs`, ...) reads only that file; readers
//! share the lock; a change rewrites only the namespaces it changed.
//!
//! - RBAC: Roles, ClusterRoles and their bindings are stored, and `auth
//!   can-i --as` answers from them (allow rules, verbs and resources);
//! - admission: Pods that break the `restricted` profile are refused in a
//!   namespace that enforces it; `apply --dry-run=server` stores nothing;
//! - `diff --server-side`: a unified diff per object of what an apply would
//!   change (exit 1 when anything would), nothing stored;
//! - `delete` of any kind (a namespace takes its objects along); claims get
//!   PersistentVolumes whose reclaim policy ([`State::set_reclaim_policy`])
//!   decides whether they are deleted or left Released.
//!
//! Not simulated: quota admission, other admission plugins, API groups and
//! resource names in RBAC rules, real packets (only the policy decision),
//! field ownership conflicts, garbage collection.

mod admission;
mod base64;
mod cli;
mod controllers;
mod network;
mod pod_exec;
mod raw;
mod rbac;
mod resources;
mod verbs;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

pub use cli::{main_with, run};

/// The name of the environment variable that points at the state directory.
pub const STATE_ENV: &str = "FAKE_KUBECTL_STATE";

/// A way for an invocation to fail, chosen by a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The kubectl verb it applies to (`get`, `apply`, `rollout`, ...), or `*`.
    pub verb: String,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Sleep this long first (a hanging kubectl).
    pub sleep_ms: u64,
    /// How many invocations it applies to; None for all.
    pub times: Option<u32>,
    /// How many matching invocations to let through first (to fail mid-way).
    pub skip: u32,
}

impl Fault {
    /// kubectl's error when the API server cannot be reached.
    pub fn unreachable(verb: &str) -> Fault {
        Fault {
            verb: verb.to_owned(),
            exit_code: 1,
            stdout: String::new(),
            stderr: "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n".to_owned(),
            sleep_ms: 0,
            times: None,
            skip: 0,
        }
    }

    pub fn fail(verb: &str, exit_code: i32, stderr: &str) -> Fault {
        Fault {
            verb: verb.to_owned(),
            exit_code,
            stdout: String::new(),
            stderr: stderr.to_owned(),
            sleep_ms: 0,
            times: None,
            skip: 0,
        }
    }

    fn to_json(&self) -> Value {
        json!({"verb": self.verb, "exit_code": self.exit_code, "stdout": self.stdout,
               "stderr": self.stderr, "sleep_ms": self.sleep_ms, "times": self.times, "skip": self.skip})
    }

    fn from_json(v: &Value) -> Fault {
        Fault {
            verb: v["verb"].as_str().unwrap_or("*").to_owned(),
            exit_code: v["exit_code"].as_i64().unwrap_or(1) as i32,
            stdout: v["stdout"].as_str().unwrap_or_default().to_owned(),
            stderr: v["stderr"].as_str().unwrap_or_default().to_owned(),
            sleep_ms: v["sleep_ms"].as_u64().unwrap_or(0),
            times: v["times"].as_u64().map(|t| t as u32),
            skip: v["skip"].as_u64().unwrap_or(0) as u32,
        }
    }
}

/// The fake cluster. Every method that changes it writes it back at once.
pub struct State {
    dir: PathBuf,
    /// `resourceVersion` counter, objects and simulation settings.
    data: Value,
    /// Whether `data` changed since it was read; only then is it written.
    dirty: bool,
    /// False for invocations that only read (they share the lock).
    writable: bool,
    /// The serialised contents of each namespace file as read, to write
    /// back only the namespaces that changed.
    read_namespaces: std::collections::HashMap<String, Vec<u8>>,
    /// Position of each object by (kind, namespace, name), built on first use.
    index: std::cell::OnceCell<std::collections::HashMap<(String, String, String), usize>>,
    _lock: File,
}

impl State {
    /// Opens (creating if needed) the cluster in `dir`, holding an exclusive
    /// lock until dropped so that concurrent changes queue up.
    pub fn open(dir: &Path) -> anyhow::Result<State> {
        State::open_with(dir, true, None)
    }

    /// Opens the cluster for reading only; readers share the lock. With
    /// `namespace`, only that namespace's objects (and cluster-scoped ones)
    /// are read: the cost of a call then does not grow with the cluster.
    pub fn open_read_only(dir: &Path, namespace: Option<&str>) -> anyhow::Result<State> {
        State::open_with(dir, false, namespace)
    }

    fn open_with(dir: &Path, writable: bool, namespace: Option<&str>) -> anyhow::Result<State> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("fake-kubectl: cannot create state dir {}", dir.display()))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        if writable {
            lock.lock()?;
        } else {
            lock.lock_shared()?;
        }
        // cluster.json holds settings and cluster-scoped objects;
        // namespaces/<name>.json holds each namespace's objects.
        let path = dir.join("cluster.json");
        let mut data: Value = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).context("fake-kubectl: cluster.json is corrupt")?
            }
            Err(_) => json!({"resourceVersion": 1000, "objects": [],
                             "podStates": {}, "contexts": [], "clock": null,
                             "nodes": ["node-1"], "metrics": true, "logs": {}}),
        };
        let ns_dir = dir.join("namespaces");
        let files: Vec<PathBuf> = match namespace {
            Some(ns) => vec![ns_dir.join(format!("{ns}.json"))],
            None => std::fs::read_dir(&ns_dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
        };
        let mut read_namespaces = std::collections::HashMap::new();
        for file in files {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let objects: Vec<Value> = serde_json::from_slice(&bytes)
                .with_context(|| format!("fake-kubectl: {} is corrupt", file.display()))?;
            let name = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            data["objects"]
                .as_array_mut()
                .expect("objects is a list")
                .extend(objects);
            read_namespaces.insert(name, bytes);
        }
        Ok(State {
            dir: dir.to_path_buf(),
            data,
            dirty: false,
            writable,
            read_namespaces,
            index: std::cell::OnceCell::new(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Forgets every change this invocation made (a server-side dry run).
    fn discard_changes(&mut self) {
        self.dirty = false;
        self.writable = false;
    }

    /// Writes the cluster back if anything changed.
    fn save(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        anyhow::ensure!(
            self.writable,
            "fake-kubectl: a read-only invocation tried to change the cluster"
        );
        self.dirty = false;
        let write = |path: PathBuf, bytes: &[u8]| -> anyhow::Result<()> {
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        };
        let mut by_namespace: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        let mut cluster_scoped = Vec::new();
        for o in self.objects() {
            match o["metadata"]["namespace"].as_str() {
                Some(ns) => by_namespace.entry(ns.to_owned()).or_default().push(o),
                None => cluster_scoped.push(o),
            }
        }
        let ns_dir = self.dir.join("namespaces");
        std::fs::create_dir_all(&ns_dir)?;
        for (ns, objects) in &by_namespace {
            let bytes = serde_json::to_vec(objects)?;
            if self.read_namespaces.get(ns) != Some(&bytes) {
                write(ns_dir.join(format!("{ns}.json")), &bytes)?;
            }
        }
        for gone in self
            .read_namespaces
            .keys()
            .filter(|ns| !by_namespace.contains_key(*ns))
        {
            std::fs::remove_file(ns_dir.join(format!("{gone}.json")))?;
        }
        let read_now = by_namespace
            .iter()
            .map(|(ns, objects)| Ok((ns.clone(), serde_json::to_vec(objects)?)))
            .collect::<anyhow::Result<_>>()?;
        let mut settings = self.data.clone();
        settings["objects"] = json!(cluster_scoped);
        write(
            self.dir.join("cluster.json"),
            &serde_json::to_vec(&settings)?,
        )?;
        self.read_namespaces = read_now;
        Ok(())
    }

    pub fn objects(&self) -> &Vec<Value> {
        self.data["objects"].as_array().expect("objects is a list")
    }

    fn objects_mut(&mut self) -> &mut Vec<Value> {
        self.dirty = true;
        self.data["objects"]
            .as_array_mut()
            .expect("objects is a list")
    }

    /// The stored object of `kind` named `name` in `namespace` (None for
    /// cluster-scoped kinds).
    pub fn get(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.index_of(kind, namespace, name)
            .map(|i| &self.objects()[i])
    }

    fn index_of(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<usize> {
        let index = self.index.get_or_init(|| {
            self.objects()
                .iter()
                .enumerate()
                .map(|(i, o)| (key(o), i))
                .collect()
        });
        index
            .get(&(
                kind.to_owned(),
                namespace.unwrap_or_default().to_owned(),
                name.to_owned(),
            ))
            .copied()
    }

    /// Adds an object (its kind, namespace and name must be new).
    fn push_object(&mut self, object: Value) {
        let k = key(&object);
        let objects = self.objects_mut();
        objects.push(object);
        let position = objects.len() - 1;
        if let Some(index) = self.index.get_mut() {
            index.insert(k, position);
        }
    }

    /// Keeps only the objects `keep` accepts.
    fn retain_objects(&mut self, keep: impl FnMut(&Value) -> bool) {
        self.objects_mut().retain(keep);
        self.index = std::cell::OnceCell::new();
    }

    fn next_resource_version(&mut self) -> String {
        self.dirty = true;
        let rv = self.data["resourceVersion"].as_u64().unwrap_or(1000) + 1;
        self.data["resourceVersion"] = json!(rv);
        rv.to_string()
    }

    fn now(&self) -> String {
        match self.data["clock"].as_str() {
            Some(t) => t.to_owned(),
            None => humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    /// Stores an object as a hand edit or another tool would (test set-up).
    pub fn put(&mut self, object: Value) -> anyhow::Result<()> {
        verbs::store(self, object).map_err(anyhow::Error::msg)?;
        controllers::reconcile(self);
        self.save()
    }

    /// Stores many objects at once (seeding a large cluster): one reconcile
    /// and one write instead of one per object.
    pub fn put_many(&mut self, objects: Vec<Value>) -> anyhow::Result<()> {
        for object in objects {
            verbs::store(self, object).map_err(anyhow::Error::msg)?;
        }
        controllers::reconcile(self);
        self.save()
    }

    /// The directory that holds the contents of PersistentVolumeClaim
    /// `claim` in `namespace`; `exec` into a pod that mounts the claim reads
    /// and writes here.
    pub fn volume_dir(&self, namespace: &str, claim: &str) -> PathBuf {
        self.dir.join("volumes").join(namespace).join(claim)
    }

    /// Sets what `kubectl logs` prints for the pods of `deployment`: the
    /// current container's log and the previous (crashed) one's.
    pub fn set_logs(
        &mut self,
        namespace: &str,
        deployment: &str,
        current: &str,
        previous: &str,
    ) -> anyhow::Result<()> {
        self.data["logs"][format!("{namespace}/{deployment}")] =
            json!({"current": current, "previous": previous});
        self.dirty = true;
        self.save()
    }

    /// Whether the metrics API (metrics-server) answers.
    pub fn set_metrics_available(&mut self, available: bool) -> anyhow::Result<()> {
        self.data["metrics"] = json!(available);
        self.dirty = true;
        self.save()
    }

    /// Whether NetworkPolicies are enforced (true by default); false plays a
    /// CNI that ignores them.
    pub fn set_network_policy_enforced(&mut self, enforced: bool) -> anyhow::Result<()> {
        self.data["networkPolicy"] = json!(enforced);
        self.dirty = true;
        self.save()
    }

    fn network_policy_enforced(&self) -> bool {
        self.data["networkPolicy"].as_bool().unwrap_or(true)
    }

    /// The reclaim policy of volumes provisioned from now on: `Retain` (the
    /// default) keeps a Released volume after its claim is deleted, `Delete`
    /// removes it.
    pub fn set_reclaim_policy(&mut self, policy: &str) -> anyhow::Result<()> {
        self.data["reclaimPolicy"] = json!(policy);
        self.dirty = true;
        self.save()
    }

    /// The cluster's nodes; pods are spread over them by a hash of their name.
    pub fn set_nodes(&mut self, nodes: &[&str]) -> anyhow::Result<()> {
        anyhow::ensure!(!nodes.is_empty(), "a cluster needs a node");
        self.data["nodes"] = json!(nodes);
        self.dirty = true;
        controllers::reconcile(self);
        self.save()
    }

    fn nodes(&self) -> Vec<String> {
        self.data["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Deletes an object as someone else would (test set-up).
    pub fn remove(
        &mut self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<bool> {
        let found = self.index_of(kind, namespace, name);
        if let Some(i) = found {
            self.objects_mut().remove(i);
            self.index = std::cell::OnceCell::new();
            controllers::reconcile(self);
            self.save()?;
        }
        Ok(found.is_some())
    }

    /// Makes matching invocations fail (see [`Fault`]).
    pub fn add_fault(&mut self, fault: Fault) -> anyhow::Result<()> {
        with_faults(&self.dir, |faults| faults.push(fault.to_json()))
    }

    pub fn clear_faults(&mut self) -> anyhow::Result<()> {
        with_faults(&self.dir, Vec::clear)
    }

    /// What the pods of `deployment` in `namespace` do: `Running` (the
    /// default), `CrashLoopBackOff`, `ImagePullBackOff` or `Pending`.
    pub fn set_pod_state(
        &mut self,
        namespace: &str,
        deployment: &str,
        state: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            controllers::POD_STATES.contains(&state),
            "fake-kubectl: unknown pod state {state}; use one of {:?}",
            controllers::POD_STATES
        );
        self.data["podStates"][format!("{namespace}/{deployment}")] = json!(state);
        self.dirty = true;
        controllers::reconcile(self);
        self.save()
    }

    /// Restricts `--context` to these names (any name is accepted otherwise).
    pub fn set_contexts(&mut self, contexts: &[&str]) -> anyhow::Result<()> {
        self.data["contexts"] = json!(contexts);
        self.dirty = true;
        self.save()
    }

    /// Fixes the clock used for timestamps (RFC 3339), for stable output.
    pub fn set_clock(&mut self, rfc3339: &str) -> anyhow::Result<()> {
        self.data["clock"] = json!(rfc3339);
        self.dirty = true;
        self.save()
    }

    /// Every recorded invocation's arguments, oldest first.
    pub fn calls(dir: &Path) -> Vec<Vec<String>> {
        std::fs::read_to_string(dir.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn pod_state(&self, namespace: &str, deployment: &str) -> String {
        self.data["podStates"][format!("{namespace}/{deployment}")]
            .as_str()
            .unwrap_or("Running")
            .to_owned()
    }

    fn contexts(&self) -> Vec<String> {
        self.data["contexts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Appends one invocation to `calls.jsonl` (one short append per line).
fn record_call(dir: &Path, args: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("calls.jsonl"))?;
    log.write_all(format!("{}\n", serde_json::to_string(args)?).as_bytes())?;
    Ok(())
}

/// Reads, changes and writes `faults.json` under its own lock, so that
/// faults can be counted down by invocations that otherwise only read.
fn with_faults<T>(dir: &Path, change: impl FnOnce(&mut Vec<Value>) -> T) -> anyhow::Result<T> {
    std::fs::create_dir_all(dir)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("faults.lock"))?;
    lock.lock()?;
    let path = dir.join("faults.json");
    let mut faults: Vec<Value> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).context("fake-kubectl: faults.json is corrupt")?,
        Err(_) => Vec::new(),
    };
    let before = faults.clone();
    let out = change(&mut faults);
    if faults != before {
        std::fs::write(&path, serde_json::to_vec(&faults)?)?;
    }
    Ok(out)
}

/// The first fault for `verb`, counting it down.
fn take_fault(dir: &Path, verb: &str) -> anyhow::Result<Option<Fault>> {
    if !dir.join("faults.json").exists() {
        return Ok(None);
    }
    with_faults(dir, |faults| {
        let i = faults
            .iter()
            .position(|f| f["verb"] == verb || f["verb"] == "*")?;
        let fault = Fault::from_json(&faults[i]);
        if fault.skip > 0 {
            faults[i]["skip"] = json!(fault.skip - 1);
            return None;
        }
        match fault.times {
            Some(1) => {
                faults.remove(i);
            }
            Some(n) => faults[i]["times"] = json!(n - 1),
            None => {}
        }
        Some(fault)
    })
}

/// The identity of an object: kind, namespace (empty when cluster-scoped), name.
pub(crate) fn key(o: &Value) -> (String, String, String) {
    let (ns, name) = namespace_and_name(o);
    (o["kind"].as_str().unwrap_or_default().to_owned(), ns, name)
}

/// FNV-1a: stable hashes for pod names, node placement, addresses and metrics.
pub(crate) fn fnv(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An object's namespace (empty when cluster-scoped) and name.
fn namespace_and_name(o: &Value) -> (String, String) {
    let field = |k: &str| o["metadata"][k].as_str().unwrap_or_default().to_owned();
    (field("namespace"), field("name"))
}

/// Labels of an object as a map.
fn labels(o: &Value) -> BTreeMap<String, String> {
    o["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
