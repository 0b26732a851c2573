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
//! What it simulates, and how far (each behaviour taken from kubectl 1.32's
//! or the API server's source and documentation, with their exact texts;
//! it is never kinder than a real server where the tool depends on it):
//! - server-side apply with field ownership (`fields.rs`): `managedFields`
//!   per manager, conflicts (`Apply failed with 1 conflict: conflict with
//!   "kubectl-edit" using v1: .data.X`, 409) unless `--force-conflicts`,
//!   which moves the fields; fields of other managers survive an apply;
//!   `scale` (manager `kubectl`, subresource `scale`), `rollout restart`
//!   (`kubectl-rollout`), `annotate` (`kubectl-annotate`), `patch --type
//!   merge` (`kubectl-patch`) take over what they change; an apply or write
//!   that changes nothing keeps the resourceVersion; `get` and `apply -o
//!   json` hide `managedFields` unless `--show-managed-fields`;
//! - dry runs (`apply --dry-run=server`, each object of `diff
//!   --server-side`) judge each object against the cluster as it is: an
//!   object in a namespace that does not exist yet fails with `Error from
//!   server (NotFound): namespaces "x" not found`, and `diff` then exits 2
//!   with no diff; a conflict in `diff` is kubectl's `Error from server
//!   (Conflict)` after its "keeps changing" warning;
//! - the namespace `kube-system`, there from the cluster's creation as on
//!   every real cluster, with a UID of its own per fake cluster (derived
//!   from its state directory, stable for its life): the cluster's identity
//!   that backups record;
//! - the API server's own writes: a Namespace's `kubernetes.io/metadata.name`
//!   label, a Secret's `stringData` moved into base64 `data`, a Deployment's
//!   default of one replica; immutable fields (a Deployment's selector, a
//!   PVC's spec other than a larger size) are refused;
//! - the quota controller (`quota.rs`): each ResourceQuota's `status.hard`
//!   and `status.used`, recounted after every write (a real controller may
//!   lag a resync behind; the tool only shows these figures);
//! - namespace deletion is asynchronous (`terminating.rs`): Terminating for
//!   a number of calls ([`State::set_namespace_termination_calls`], 3 by
//!   default), creating inside refused (`... because it is being
//!   terminated`), `delete --wait` waiting until its `--timeout`;
//! - admission of new Pods (`admission.rs`), whether applied or made by a
//!   Deployment, in the API server's order: the pod's own defaults
//!   (requests from limits), LimitRange defaults and bounds, Pod Security
//!   `restricted` where the namespace enforces it, ResourceQuota (pods,
//!   CPU, memory; `exceeded quota: ...`, `failed quota: ...`); a
//!   Deployment's refused pod is missing and its ReplicaFailure condition
//!   says why;
//! - RBAC: `auth can-i --as` from stored Roles and bindings as the RBAC
//!   authorizer decides (verbs, API groups, resources with subresources and
//!   `*/subresource`, resource names; a service account subject without a
//!   namespace is the RoleBinding's; `pods/exec` as one word is the pod named
//!   `exec`); the ClusterRole aggregation controller fills aggregated
//!   ClusterRoles' rules after every write (a real one lags moments behind);
//!   the operator's own requests are allowed unless a test denies them
//!   ([`State::deny`]), with the API server's text;
//! - controllers: each Deployment gets its pods (Recreate: old pods go when
//!   the template changes) in the state tests choose with
//!   [`State::set_pod_state`], and a status that `rollout status` reads;
//!   Ready and ContainersReady conditions (a readiness gate keeps a pod out
//!   of Ready and out of Service endpoints); PVCs are Bound. `rollout
//!   status` answers at once instead of waiting;
//! - pods: `logs` prints what a test set with [`State::set_logs`]; `exec`
//!   runs the few commands the tool uses in a container (see `pod_exec.rs`)
//!   on directories that stand for the pod's volumes ([`State::volume_dir`]),
//!   and a failing command ends with kubectl's `command terminated with exit
//!   code N`; `wait --for=condition=Ready|ContainersReady` and `annotate` do
//!   what they say; `rollout restart` stamps kubectl's clock to the second
//!   and refuses a second restart within it, as kubectl does;
//! - `get --raw` serves the metrics API (switched off with
//!   [`State::set_metrics_available`]) and each node's kubelet stats summary,
//!   with used bytes measured from the volume directories;
//! - network: `nc -z` and `nslookup` in a pod are answered by evaluating the
//!   NetworkPolicies (see `network.rs`), DNS at cluster DNS or at NodeLocal
//!   DNSCache's address ([`State::set_node_local_dns`]);
//!   [`State::set_network_policy_enforced`] plays a CNI that ignores them;
//! - kubectl's own texts: `Error in configuration: context was not found for
//!   specified context: X` for an unknown `--context`;
//! - faults: [`State::add_fault`] makes a verb fail, print garbage or hang,
//!   optionally after letting some calls through; pass-through faults add
//!   kubectl 1.32's discovery warnings ([`Fault::discovery_warnings`]), a
//!   delay ([`Fault::slow`]) or a controller's status write
//!   ([`Fault::status_write_before`]) and let the call run;
//! - `create -f -` (atomic: `Error from server (AlreadyExists): error when
//!   creating "STDIN": leases.coordination.k8s.io "x" already exists`) and
//!   `replace -f -` (a stale resourceVersion is `Error from server
//!   (Conflict): error when replacing "STDIN": Operation cannot be fulfilled
//!   on ...`) of a JSON Lease or Namespace, or a `List` of them, each object
//!   on its own, printed as it is stored (`create.rs`), the tool's locks;
//!   `delete` of several names;
//! - a command on several objects goes on past one that fails and prints
//!   the errors at the end as kubectl does: one alone, several one per line
//!   in their standard form (`errors.rs`);
//! - every invocation is appended to `calls.jsonl`, for tests that count calls.
//!
//! The cluster lives in `cluster.json` (settings) and one file per resource
//! and namespace, as etcd keys them: `objects/<plural>.json` for
//! cluster-scoped objects, `objects/<plural>/<namespace>.json` for the
//! rest (`state.rs`). A call reads only what it asks about (`cli.rs`,
//! `scope_of`): `get pods -A` every namespace's pods and nothing else, a
//! call confined to one namespace (`get -n`, `exec`, `logs`, `auth can-i`)
//! that namespace's files, a change (`apply`, `delete`, `patch`, ...) the
//! namespaces it names, whole, and every cluster-scoped object; it then
//! rewrites only the files that changed. The controllers after each object
//! of an apply reconcile only that object's namespace once the first has
//! reconciled everything read (`controllers.rs`). So a call costs what it
//! reads, not the size of the cluster: at 1,000 tenants a single-namespace
//! read is a millisecond and a cluster-wide list of one resource about a
//! tenth of a second. Readers share the lock, writers take it alone.
//!
//! Not simulated (anything else the tool might ask fails loudly, exit 2,
//! `fake-kubectl: not implemented`): admission of objects other than Pods
//! (e.g. a NodePort Service against the quota); a Deployment's progress
//! deadline; other admission plugins and webhooks; a ReplicaSet adopting
//! orphan pods that match its selector (the tool's own pods never match
//! one, which a unit test checks); pods' termination grace periods (a
//! deleted pod goes at once); time (deadlines count calls, not seconds);
//! lists other than those `fields.rs` names are atomic; real packets (only
//! the policy decision); garbage collection of owned objects.

mod admission;
mod apply;
mod cli;
mod controllers;
mod create;
mod errors;
mod faults;
mod fields;
mod invocation;
mod network;
mod object;
mod pod_exec;
mod quota;
mod raw;
mod rbac;
mod resources;
mod setup;
mod sidecar;
mod state;
mod terminating;
mod verbs;

pub use cli::{STATE_ENV, main_with, run};
pub use faults::Fault;
pub use state::State;
