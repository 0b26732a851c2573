//! The fake cluster's storage: `cluster.json` (settings and cluster-scoped
//! objects) and one `namespaces/<name>.json` per namespace, behind a file
//! lock, with an index by kind, namespace and name.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use crate::object::key;

/// The fake cluster. Every method that changes it writes it back at once.
pub struct State {
    pub(crate) dir: PathBuf,
    /// `resourceVersion` counter, objects and simulation settings.
    pub(crate) data: Value,
    /// Whether `data` changed since it was read; only then is it written.
    pub(crate) dirty: bool,
    /// False for invocations that only read (they share the lock).
    pub(crate) writable: bool,
    /// The serialised contents of each namespace file as read, to write
    /// back only the namespaces that changed.
    read_namespaces: std::collections::HashMap<String, Vec<u8>>,
    /// Inside [`State::dry_run`]: nothing is stored, so no resourceVersion
    /// is given out.
    pub(crate) dry_running: bool,
    /// Position of each object by (kind, namespace, name), built on first use.
    pub(crate) index:
        std::cell::OnceCell<std::collections::HashMap<(String, String, String), usize>>,
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

    pub(crate) fn open_with(
        dir: &Path,
        writable: bool,
        namespace: Option<&str>,
    ) -> anyhow::Result<State> {
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
            Err(_) => json!({"resourceVersion": 1000, "objects": [kube_system(dir)],
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
            dry_running: false,
            index: std::cell::OnceCell::new(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` as a server-side dry run: whatever it changes is undone
    /// afterwards, so that each object of a dry run or diff is judged
    /// against the cluster as it is.
    pub(crate) fn dry_run<T>(&mut self, f: impl FnOnce(&mut State) -> T) -> T {
        let data = self.data.clone();
        let dirty = self.dirty;
        self.dry_running = true;
        let out = f(self);
        self.dry_running = false;
        self.data = data;
        self.dirty = dirty;
        self.index = std::cell::OnceCell::new();
        out
    }

    /// Writes the cluster back if anything changed.
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
        self.index()
            .get(&(
                kind.to_owned(),
                namespace.unwrap_or_default().to_owned(),
                name.to_owned(),
            ))
            .copied()
    }

    /// Position of each object by (kind, namespace, name).
    fn index(&self) -> &std::collections::HashMap<(String, String, String), usize> {
        self.index.get_or_init(|| {
            self.objects()
                .iter()
                .enumerate()
                .map(|(i, o)| (key(o), i))
                .collect()
        })
    }

    /// Adds an object (its kind, namespace and name must be new).
    pub(crate) fn push_object(&mut self, object: Value) {
        let k = key(&object);
        let objects = self.objects_mut();
        objects.push(object);
        let position = objects.len() - 1;
        if let Some(index) = self.index.get_mut() {
            index.insert(k, position);
        }
    }

    /// Removes object `i`, keeping the index.
    pub(crate) fn remove_object(&mut self, i: usize) {
        let k = key(&self.objects()[i]);
        self.objects_mut().remove(i);
        if let Some(index) = self.index.get_mut() {
            index.remove(&k);
            for position in index.values_mut() {
                if *position > i {
                    *position -= 1;
                }
            }
        }
    }

    /// The positions of the objects in `namespace`, and of the Namespace
    /// itself, in order.
    pub(crate) fn positions_in(&self, namespace: &str) -> Vec<usize> {
        let mut positions: Vec<usize> = self
            .index()
            .iter()
            .filter(|((kind, ns, name), _)| {
                ns == namespace || (kind == "Namespace" && ns.is_empty() && name == namespace)
            })
            .map(|(_, &i)| i)
            .collect();
        positions.sort_unstable();
        positions
    }

    /// Keeps only the objects `keep` accepts.
    pub(crate) fn retain_objects(&mut self, keep: impl FnMut(&Value) -> bool) {
        self.objects_mut().retain(keep);
        self.index = std::cell::OnceCell::new();
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
