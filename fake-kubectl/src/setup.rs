//! What tests do to the fake cluster directly, as another tool or a hand
//! edit would: store objects, delete them, choose how pods behave.

use serde_json::{Value, json};

use crate::object::key;
use crate::state::State;
use crate::{apply, controllers, fields};

impl State {
    /// Stores an object as a hand edit would (`kubectl edit`, or `kubectl
    /// create` for a new one): an `Update` that owns every field it changed.
    pub fn put(&mut self, object: Value) -> anyhow::Result<()> {
        self.put_many(vec![object])
    }

    /// [`State::put`] for many objects: one reconcile and one write.
    pub fn put_many(&mut self, objects: Vec<Value>) -> anyhow::Result<()> {
        for mut object in objects {
            let (kind, ns, name) = key(&object);
            let ns = (!ns.is_empty()).then_some(ns);
            let before = self.get(&kind, ns.as_deref(), &name).cloned();
            let manager = if before.is_some() {
                "kubectl-edit"
            } else {
                "kubectl-create"
            };
            if let Some(b) = &before
                && let Some(m) = b.pointer("/metadata/managedFields")
            {
                object["metadata"]["managedFields"] = m.clone();
            }
            let now = self.now();
            fields::record_update(&kind, before.as_ref(), &mut object, manager, None, &now);
            apply::store(self, object).map_err(anyhow::Error::msg)?;
        }
        controllers::reconcile(self);
        self.save()
    }

    /// Server-side applies objects as `manager` would (seeding a cluster
    /// as a tool made it): one reconcile and one write.
    pub fn apply_as(&mut self, manager: &str, objects: Vec<Value>) -> anyhow::Result<()> {
        for object in objects {
            let (kind, ns, name) = key(&object);
            let ns = (!ns.is_empty()).then_some(ns);
            let live = self.get(&kind, ns.as_deref(), &name).cloned();
            let now = self.now();
            let merged = fields::apply(&kind, live.as_ref(), &object, manager, false, &now)
                .map_err(|c| anyhow::anyhow!(fields::conflict_message(&c)))?;
            apply::store(self, merged).map_err(anyhow::Error::msg)?;
        }
        controllers::reconcile(self);
        self.save()
    }

    /// A hand edit of a stored object by `manager` (`kubectl-edit`): an
    /// `Update` that owns every field `change` changes.
    pub fn edit(
        &mut self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        manager: &str,
        change: impl FnOnce(&mut Value),
    ) -> anyhow::Result<()> {
        let before = self
            .get(kind, namespace, name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("fake-kubectl: no {kind} {name} to edit"))?;
        let mut after = before.clone();
        change(&mut after);
        let now = self.now();
        fields::record_update(kind, Some(&before), &mut after, manager, None, &now);
        apply::store(self, after).map_err(anyhow::Error::msg)?;
        controllers::reconcile(self);
        self.save()
    }

    /// A controller's status write to an object: a condition's time is
    /// refreshed, so the resourceVersion changes and nothing else.
    pub fn write_status(&mut self, kind: &str, namespace: &str, name: &str) -> anyhow::Result<()> {
        let ns = (!namespace.is_empty()).then_some(namespace);
        let i = self.index_of(kind, ns, name).ok_or_else(|| {
            anyhow::anyhow!("fake-kubectl: no {kind} {name} to write the status of")
        })?;
        let rv = self.next_resource_version();
        let now = self.now();
        let o = &mut self.objects_mut()[i];
        let mut conditions = o["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if conditions.is_empty() {
            conditions.push(json!({"type": "Progressing", "status": "True"}));
        }
        for c in &mut conditions {
            c["lastUpdateTime"] = json!(now);
        }
        o["status"]["conditions"] = json!(conditions);
        o["metadata"]["resourceVersion"] = json!(rv);
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
            self.forget_positions();
            controllers::reconcile(self);
            self.save()?;
        }
        Ok(found.is_some())
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
}
