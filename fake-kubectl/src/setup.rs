//! What tests do to the fake cluster directly, as another tool or a hand
//! edit would: store objects, delete them, choose how pods behave.

use serde_json::{Value, json};

use crate::state::State;
use crate::{apply, controllers};

impl State {
    /// Stores an object as a hand edit or another tool would (test set-up).
    pub fn put(&mut self, object: Value) -> anyhow::Result<()> {
        apply::store(self, object).map_err(anyhow::Error::msg)?;
        controllers::reconcile(self);
        self.save()
    }

    /// Stores many objects at once (seeding a large cluster): one reconcile
    /// and one write instead of one per object.
    pub fn put_many(&mut self, objects: Vec<Value>) -> anyhow::Result<()> {
        for object in objects {
            apply::store(self, object).map_err(anyhow::Error::msg)?;
        }
        controllers::reconcile(self);
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
            self.index = std::cell::OnceCell::new();
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
