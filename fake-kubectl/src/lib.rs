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
mod apply;
mod cli;
mod controllers;
mod faults;
mod invocation;
mod network;
mod object;
mod pod_exec;
mod raw;
mod rbac;
mod resources;
mod setup;
mod state;
mod verbs;

pub use cli::{STATE_ENV, main_with, run};
pub use faults::Fault;
pub use state::State;
