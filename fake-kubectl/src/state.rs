//! The fake cluster's storage, laid out as the API server's etcd keys are
//! (`/registry/<resource>/<namespace>/<name>`), so that a call reads only
//! the part of the cluster it asks about: `cluster.json` holds the
//! simulation's settings and the resourceVersion counter,
//! `objects/<plural>.json` each cluster-scoped resource's objects, and
//! `objects/<plural>/<namespace>.json` each namespaced resource's objects
//! in one namespace. All of it sits behind one file lock (shared by
//! readers); each invocation reads the files its [`Scope`] names, and a
//! change rewrites only the files whose contents changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use crate::object::key;

/// The part of the cluster an invocation reads: objects of these
/// resources in these namespaces (and the cluster-scoped ones of these
/// resources). A call that changes the cluster reads every cluster-scoped
/// object and every resource of its namespaces, so that the controllers
/// see a namespace whole; it may change nothing outside them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    /// None: every namespace.
    pub(crate) namespaces: Option<BTreeSet<String>>,
    /// Resources by plural name (`pods`); None: every resource.
    pub(crate) resources: Option<BTreeSet<String>>,
}

impl Scope {
    /// The whole cluster.
    pub(crate) fn everything() -> Scope {
        Scope::default()
    }

    /// Every resource in these namespaces, and every cluster-scoped object.
    pub(crate) fn namespaces<I, S>(namespaces: I) -> Scope
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Scope {
            namespaces: Some(namespaces.into_iter().map(Into::into).collect()),
            resources: None,
        }
    }

    /// Only these resources (plural names), within the namespaces already chosen.
    pub(crate) fn only<I, S>(self, resources: I) -> Scope
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Scope {
            resources: Some(resources.into_iter().map(Into::into).collect()),
            ..self
        }
    }

    fn has_resource(&self, plural: &str) -> bool {
        self.resources.as_ref().is_none_or(|r| r.contains(plural))
    }

    fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|n| n.contains(ns))
    }
}

/// Each object file's bytes as read, by its name relative to `objects/`.
type FileContents = HashMap<String, Vec<u8>>;

/// The file that holds `object` (relative to `objects/`, without `.json`):
/// its resource's plural, then its namespace if it has one.
fn file_of(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let plural = crate::resources::by_kind(kind)
        .map(|r| r.plural.to_owned())
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{plural}/{ns}"),
        None => plural,
    }
}

/// The fake cluster. Every method that changes it writes it back at once.
pub struct State {
    pub(crate) dir: PathBuf,
    /// `resourceVersion` counter, objects and simulation settings.
    pub(crate) data: Value,
    /// Whether `data` changed since it was read; only then is it written.
    pub(crate) dirty: bool,
    /// False for invocations that only read (they share the lock).
    pub(crate) writable: bool,
    /// What was read; a change outside it is refused as a bug of the fake.
    scope: Scope,
    /// The serialised contents of each object file as read (by its name
    /// relative to `objects/`), to write back only the files that changed.
    read_files: FileContents,
    /// Inside [`State::dry_run`]: nothing is stored, so no resourceVersion
    /// is given out.
    pub(crate) dry_running: bool,
    /// In a dry run: each object replaced, with its position, to put back.
    replaced: Vec<(usize, Value)>,
    /// Position of each object by (kind, namespace, name), built on first use.
    index: std::cell::OnceCell<HashMap<(String, String, String), usize>>,
    /// Positions of each namespace's objects and of the Namespace itself,
    /// built on first use.
    by_namespace: std::cell::OnceCell<HashMap<String, Vec<usize>>>,
    _lock: File,
}

impl State {
    /// Opens (creating if needed) the whole cluster in `dir`, holding an
    /// exclusive lock until dropped so that concurrent changes queue up.
    pub fn open(dir: &Path) -> anyhow::Result<State> {
        State::open_with(dir, true, Scope::everything())
    }

    /// Opens the part of the cluster in `scope` for reading only; readers
    /// share the lock. The cost of a call then grows with what it reads,
    /// not with the cluster.
    pub(crate) fn open_read_only(dir: &Path, scope: Scope) -> anyhow::Result<State> {
        State::open_with(dir, false, scope)
    }

    /// Opens the namespaces in `scope` (and every cluster-scoped object) to
    /// change them, holding the exclusive lock.
    pub(crate) fn open_scoped(dir: &Path, scope: Scope) -> anyhow::Result<State> {
        anyhow::ensure!(
            scope.resources.is_none(),
            "fake-kubectl: a change must read every resource of its namespaces"
        );
        State::open_with(dir, true, scope)
    }

    fn open_with(dir: &Path, writable: bool, scope: Scope) -> anyhow::Result<State> {
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
        let path = dir.join("cluster.json");
        let (mut data, fresh): (Value, bool) = match std::fs::read(&path) {
            Ok(bytes) => (
                serde_json::from_slice(&bytes).context("fake-kubectl: cluster.json is corrupt")?,
                false,
            ),
            Err(_) => (
                json!({"resourceVersion": 1000, "podStates": {}, "contexts": [], "clock": null,
                       "nodes": ["node-1"], "metrics": true, "logs": {}}),
                true,
            ),
        };
        anyhow::ensure!(
            data.get("objects").is_none(),
            "fake-kubectl: {} was written by an older fake-kubectl (objects in cluster.json); remove the directory and seed it again",
            dir.display()
        );
        // A new cluster has kube-system from its creation; it is written
        // with the first change.
        let (objects, read_files) = if fresh {
            let created = scope.has_resource("namespaces").then(|| kube_system(dir));
            (created.into_iter().collect(), HashMap::new())
        } else {
            read_objects(&dir.join("objects"), &scope)?
        };
        data["objects"] = Value::Array(objects);
        Ok(State {
            dir: dir.to_path_buf(),
            data,
            dirty: false,
            writable,
            scope,
            read_files,
            dry_running: false,
            replaced: Vec::new(),
            index: std::cell::OnceCell::new(),
            by_namespace: std::cell::OnceCell::new(),
            _lock: lock,
        })
    }

    /// Ends a call whose process exits next: releases the lock without
    /// freeing the objects one by one, which took a tenth of a cluster-wide
    /// read at a thousand namespaces (the exit frees them at once).
    pub(crate) fn close(self) {
        let State {
            data,
            index,
            by_namespace,
            _lock,
            ..
        } = self;
        std::mem::forget(data);
        std::mem::forget(index);
        std::mem::forget(by_namespace);
        drop(_lock);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` as a server-side dry run: whatever it stores is undone
    /// afterwards, so that each object of a dry run or diff is judged
    /// against the cluster as it is. A dry run changes objects only through
    /// [`State::replace_object`] and [`State::push_object`] (its
    /// controllers do not run), so undoing those undoes everything; debug
    /// builds, which the tests run, check that against a copy.
    pub(crate) fn dry_run<T>(&mut self, f: impl FnOnce(&mut State) -> T) -> T {
        #[cfg(debug_assertions)]
        let before = self.data.clone();
        let len = self.objects().len();
        let resource_version = self.data["resourceVersion"].clone();
        let dirty = self.dirty;
        self.dry_running = true;
        let out = f(self);
        self.dry_running = false;
        let replaced = std::mem::take(&mut self.replaced);
        let objects = self.data["objects"]
            .as_array_mut()
            .expect("objects is a list");
        for (i, old) in replaced.into_iter().rev() {
            objects[i] = old;
        }
        objects.truncate(len);
        self.data["resourceVersion"] = resource_version;
        self.dirty = dirty;
        self.forget_positions();
        #[cfg(debug_assertions)]
        assert!(
            self.data == before,
            "fake-kubectl: a dry run changed the cluster other than through replace_object or push_object"
        );
        out
    }

    /// Replaces object `i` (its kind, namespace and name stay), kept to be
    /// put back in a dry run.
    pub(crate) fn replace_object(&mut self, i: usize, object: Value) {
        let old = std::mem::replace(&mut self.objects_mut()[i], object);
        if self.dry_running {
            self.replaced.push((i, old));
        }
    }

    /// Writes the cluster back if anything changed: the settings, and each
    /// object file whose contents changed.
    pub(crate) fn save(&mut self) -> anyhow::Result<()> {
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
        let mut by_file: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for o in self.objects() {
            by_file.entry(file_of(o)).or_default().push(o);
        }
        // A namespace not read may hold objects this call never saw:
        // nothing is written if the call changed one.
        for file in by_file.keys() {
            if let Some((_, ns)) = file.split_once('/') {
                anyhow::ensure!(
                    self.scope.has_namespace(ns),
                    "fake-kubectl: a change to namespace {ns}, which this call did not read (a bug of the fake's scoping in cli.rs)"
                );
            }
        }
        let objects_dir = self.dir.join("objects");
        let mut now_read = HashMap::new();
        for (file, objects) in &by_file {
            let bytes = serde_json::to_vec(objects)?;
            if self.read_files.get(file) != Some(&bytes) {
                let path = objects_dir.join(format!("{file}.json"));
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                write(path, &bytes)?;
            }
            now_read.insert(file.clone(), bytes);
        }
        for gone in self.read_files.keys().filter(|f| !by_file.contains_key(*f)) {
            std::fs::remove_file(objects_dir.join(format!("{gone}.json")))?;
        }
        // The settings are written without the objects (not copied: at a
        // thousand namespaces a copy cost more than the rest of a change).
        let data = self
            .data
            .as_object_mut()
            .expect("the state is a JSON object");
        let objects = data.remove("objects").unwrap_or_default();
        let settings = serde_json::to_vec(&data);
        data.insert("objects".to_owned(), objects);
        write(self.dir.join("cluster.json"), &settings?)?;
        self.read_files = now_read;
        Ok(())
    }

    pub fn objects(&self) -> &Vec<Value> {
        self.data["objects"].as_array().expect("objects is a list")
    }

    /// The objects, handed over by a call that only reads and needs them
    /// no more (a copy for a call that may still write).
    pub(crate) fn take_objects(&mut self) -> Vec<Value> {
        if self.writable {
            return self.objects().clone();
        }
        self.forget_positions();
        std::mem::take(
            self.data["objects"]
                .as_array_mut()
                .expect("objects is a list"),
        )
    }

    pub(crate) fn objects_mut(&mut self) -> &mut Vec<Value> {
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

    pub(crate) fn index_of(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<usize> {
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

    /// The positions of the objects in namespace `ns` and of the Namespace
    /// `ns` itself, in order.
    pub(crate) fn positions_in(&self, ns: &str) -> Vec<usize> {
        let by_namespace = self.by_namespace.get_or_init(|| {
            let mut m: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, o) in self.objects().iter().enumerate() {
                if let Some(ns) = namespace_unit(o) {
                    m.entry(ns.to_owned()).or_default().push(i);
                }
            }
            m
        });
        by_namespace.get(ns).cloned().unwrap_or_default()
    }

    /// Drops what the indexes know, after objects moved.
    pub(crate) fn forget_positions(&mut self) {
        self.index = std::cell::OnceCell::new();
        self.by_namespace = std::cell::OnceCell::new();
    }

    /// Adds an object (its kind, namespace and name must be new).
    pub(crate) fn push_object(&mut self, object: Value) {
        let k = key(&object);
        let unit = namespace_unit(&object).map(str::to_owned);
        let objects = self.objects_mut();
        objects.push(object);
        let position = objects.len() - 1;
        if let Some(index) = self.index.get_mut() {
            index.insert(k, position);
        }
        if let (Some(m), Some(unit)) = (self.by_namespace.get_mut(), unit) {
            m.entry(unit).or_default().push(position);
        }
    }

    /// Keeps only the objects `keep` accepts.
    pub(crate) fn retain_objects(&mut self, keep: impl FnMut(&Value) -> bool) {
        let before = self.objects().len();
        self.objects_mut().retain(keep);
        // Positions move only when something went.
        if self.objects().len() != before {
            self.forget_positions();
        }
    }

    /// Sets `status` on object `i` as a controller does, bumping its
    /// resourceVersion only if it changed.
    pub(crate) fn set_status(&mut self, i: usize, status: Value) {
        if self.objects()[i].get("status") != Some(&status) {
            let rv = self.next_resource_version();
            let o = &mut self.objects_mut()[i];
            o["status"] = status;
            o["metadata"]["resourceVersion"] = serde_json::json!(rv);
        }
    }

    pub(crate) fn next_resource_version(&mut self) -> String {
        self.dirty = true;
        let rv = self.data["resourceVersion"].as_u64().unwrap_or(1000) + 1;
        self.data["resourceVersion"] = json!(rv);
        rv.to_string()
    }

    pub(crate) fn now(&self) -> String {
        match self.data["clock"].as_str() {
            Some(t) => t.to_owned(),
            None => humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
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

    /// How many calls a deleted namespace stays Terminating before the
    /// API server has removed it and its contents (3 unless a test says).
    pub fn set_namespace_termination_calls(&mut self, calls: u32) -> anyhow::Result<()> {
        self.data["terminationCalls"] = json!(calls);
        self.dirty = true;
        self.save()
    }

    pub(crate) fn namespace_termination_calls(&self) -> u32 {
        self.data["terminationCalls"].as_u64().unwrap_or(3) as u32
    }

    /// Where pods send DNS queries when the cluster runs NodeLocal
    /// DNSCache (e.g. 169.254.20.10); cluster DNS pods otherwise.
    pub fn set_node_local_dns(&mut self, address: Option<&str>) -> anyhow::Result<()> {
        self.data["nodeLocalDns"] = json!(address);
        self.dirty = true;
        self.save()
    }

    pub(crate) fn node_local_dns(&self) -> Option<std::net::Ipv4Addr> {
        self.data["nodeLocalDns"].as_str()?.parse().ok()
    }

    pub(crate) fn network_policy_enforced(&self) -> bool {
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

    pub(crate) fn nodes(&self) -> Vec<String> {
        self.data["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
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

    pub(crate) fn pod_state(&self, namespace: &str, deployment: &str) -> String {
        self.data["podStates"][format!("{namespace}/{deployment}")]
            .as_str()
            .unwrap_or("Running")
            .to_owned()
    }

    pub(crate) fn contexts(&self) -> Vec<String> {
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

/// The namespace an object belongs to for its controllers: its own, or
/// for a Namespace, the namespace it is.
fn namespace_unit(o: &Value) -> Option<&str> {
    match o["metadata"]["namespace"].as_str() {
        Some(ns) => Some(ns),
        None if o["kind"] == "Namespace" => o["metadata"]["name"].as_str(),
        None => None,
    }
}

/// Reads the object files of `scope` under `objects` (sorted by name, so
/// that objects come in the same order on every call); returns the
/// objects and each file's bytes.
fn read_objects(objects: &Path, scope: &Scope) -> anyhow::Result<(Vec<Value>, FileContents)> {
    let sorted = |dir: &Path| -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        entries
    };
    let stem = |p: &Path| {
        p.file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let is_json = |p: &Path| p.extension().is_some_and(|e| e == "json");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in sorted(objects) {
        let plural = stem(&entry);
        if !scope.has_resource(&plural) {
            continue;
        }
        if entry.is_dir() {
            match &scope.namespaces {
                None => files.extend(
                    sorted(&entry)
                        .into_iter()
                        .filter(|p| is_json(p))
                        .map(|p| (format!("{plural}/{}", stem(&p)), p)),
                ),
                Some(namespaces) => files.extend(
                    namespaces
                        .iter()
                        .map(|ns| (format!("{plural}/{ns}"), entry.join(format!("{ns}.json")))),
                ),
            }
        } else if is_json(&entry) {
            files.push((plural, entry));
        }
    }
    let mut out = Vec::new();
    let mut read = HashMap::new();
    for (name, path) in files {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("fake-kubectl: reading {}", path.display()));
            }
        };
        let objects: Vec<Value> = serde_json::from_slice(&bytes)
            .with_context(|| format!("fake-kubectl: {} is corrupt", path.display()))?;
        out.extend(objects);
        read.insert(name, bytes);
    }
    Ok((out, read))
}

/// The `kube-system` namespace every cluster has from its creation. Its UID
/// is the cluster's identity (what tools record to tell clusters apart);
/// here it is derived from the state directory, so each fake cluster has
/// its own, stable for its life, as a real cluster's random one is.
fn kube_system(dir: &Path) -> Value {
    use std::hash::{Hash, Hasher};
    let half = |seed: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        dir.hash(&mut h);
        h.finish()
    };
    let (a, b) = (half(1), half(2));
    // A version-4 UUID's shape, as the API server's are.
    let uid = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    );
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "kube-system",
            "uid": uid,
            "resourceVersion": "4",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kubernetes.io/metadata.name": "kube-system"},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change to a namespace the call did not read would overwrite
    /// objects it never saw: it is refused, and nothing is written.
    #[test]
    fn a_change_outside_what_was_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = |ns: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c", "namespace": ns}})
        };
        {
            let mut state = State::open(dir.path()).unwrap();
            state.push_object(config("b"));
            state.save().unwrap();
        }
        let mut state = State::open_scoped(dir.path(), Scope::namespaces(["a"])).unwrap();
        assert!(
            state.get("ConfigMap", Some("b"), "c").is_none(),
            "b was not read"
        );
        state.push_object(config("a"));
        state.push_object(config("b"));
        let e = state.save().unwrap_err().to_string();
        assert!(
            e.contains("namespace b, which this call did not read"),
            "{e}"
        );
        drop(state);
        let state = State::open(dir.path()).unwrap();
        assert!(state.get("ConfigMap", Some("a"), "c").is_none());
        assert!(state.get("ConfigMap", Some("b"), "c").is_some());
    }
}
