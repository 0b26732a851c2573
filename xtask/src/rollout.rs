//! Waiting for many bots' rollouts at once. `kubectl rollout status` takes
//! one Deployment per process, so a fleet command that changed a thousand
//! bots would start a thousand of them. Instead every tenant Deployment is
//! listed with one `kubectl get` per poll, and each is judged as
//! `rollout status` judges it ([`status`]): the processes grow with the
//! time the rollouts take, never with the number of tenants.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clock::KubeDuration;
use crate::kubectl::{Kubectl, Scope};
use crate::names::TENANT_LABEL;
use crate::object::{name, namespace};

/// Where a Deployment's rollout is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every replica runs the latest template and is available.
    Done,
    /// Still under way: what it waits for, in kubectl's words.
    Waiting(String),
    /// It will not finish by waiting (its progress deadline passed).
    Failed(String),
}

/// A Deployment's rollout as kubectl's `rollout status` sees it (its
/// `DeploymentStatusViewer`): until the controller has seen the latest
/// generation nothing is known; then it fails once the Progressing
/// condition says the progress deadline passed, waits while replicas are
/// not updated, old ones still run or updated ones are not available, and
/// is done after that.
pub fn status(deployment: &Value) -> Status {
    let int = |path: &str| deployment.pointer(path).and_then(Value::as_i64);
    let deployment_name = name(deployment);
    let generation = int("/metadata/generation").unwrap_or(0);
    let observed = int("/status/observedGeneration").unwrap_or(0);
    if generation > observed {
        return Status::Waiting("Waiting for deployment spec update to be observed...".to_owned());
    }
    let deadline_passed = deployment
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        });
    if deadline_passed {
        return Status::Failed(format!(
            "deployment \"{deployment_name}\" exceeded its progress deadline"
        ));
    }
    let updated = int("/status/updatedReplicas").unwrap_or(0);
    let replicas = int("/status/replicas").unwrap_or(0);
    let available = int("/status/availableReplicas").unwrap_or(0);
    if let Some(wanted) = int("/spec/replicas")
        && updated < wanted
    {
        return Status::Waiting(format!(
            "Waiting for deployment \"{deployment_name}\" rollout to finish: {updated} out of {wanted} new \
             replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Status::Waiting(format!(
            "Waiting for deployment \"{deployment_name}\" rollout to finish: {} old replicas are pending \
             termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Status::Waiting(format!(
            "Waiting for deployment \"{deployment_name}\" rollout to finish: {available} of {updated} updated \
             replicas are available..."
        ));
    }
    Status::Done
}

/// The pause before the next read: one second, doubled after each read
/// up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(8);

/// How many reads in a row may fail before the wait gives up.
const READ_TRIES: u32 = 3;

/// Waits until every Deployment of `targets` (namespace, name) has rolled
/// out, or `timeout` passes (zero: no limit, as for kubectl), reading every tenant Deployment with one
/// `kubectl get` per poll: the first at once, then after a pause that
/// grows from one second to eight. `done` is called as each target
/// finishes, well or not. Gives, in `targets`' order, each one's outcome:
/// a timeout says what it was still waiting for (and why its pod cannot
/// be created, when the Deployment says so); a read that fails three
/// times in a row fails every target not yet done; an interrupt (Ctrl-C)
/// stops the wait.
pub fn wait_all(
    kubectl: &Kubectl,
    targets: &[(String, String)],
    timeout: &KubeDuration,
    mut done: impl FnMut(bool),
) -> Vec<anyhow::Result<()>> {
    let mut outcome: Vec<Option<anyhow::Result<()>>> = targets.iter().map(|_| None).collect();
    let mut last_seen: Vec<Option<Value>> = targets.iter().map(|_| None).collect();
    // As kubectl's --timeout: zero waits without a limit.
    let deadline = (!timeout.length().is_zero()).then(|| Instant::now() + timeout.length());
    let mut pause = FIRST_PAUSE;
    let mut failed_reads = 0;
    loop {
        let listed = kubectl.get_list("deployments", Scope::AllNamespaces, Some(TENANT_LABEL));
        let deployments = match listed {
            Ok(list) => {
                failed_reads = 0;
                list
            }
            // A read that fails once (the API server busy, a dropped
            // connection) is tried again after the pause, while time is left.
            Err(_)
                if failed_reads < READ_TRIES - 1
                    && !crate::interrupt::interrupted()
                    && deadline.is_none_or(|d| Instant::now() + pause < d) =>
            {
                failed_reads += 1;
                pause_unless_interrupted(pause);
                pause = (pause * 2).min(LONGEST_PAUSE);
                continue;
            }
            Err(e) => {
                let why = format!("{e:#}");
                for slot in outcome.iter_mut().filter(|o| o.is_none()) {
                    *slot = Some(Err(anyhow::Error::new(NotRolledOut::Unseen(format!(
                        "could not read the Deployments to see whether the bot rolled out: {why}"
                    )))));
                    done(true);
                }
                break;
            }
        };
        let by_key: BTreeMap<(&str, &str), &Value> = deployments
            .iter()
            .map(|d| ((namespace(d), name(d)), d))
            .collect();
        for (i, (ns, deployment)) in targets.iter().enumerate() {
            if outcome[i].is_some() {
                continue;
            }
            let Some(found) = by_key.get(&(ns.as_str(), deployment.as_str())) else {
                outcome[i] = Some(Err(anyhow::Error::new(NotRolledOut::Unseen(format!(
                    "Error from server (NotFound): deployments.apps \"{deployment}\" not found"
                )))));
                done(true);
                continue;
            };
            match status(found) {
                Status::Done => {
                    outcome[i] = Some(Ok(()));
                    done(false);
                }
                Status::Failed(why) => {
                    outcome[i] = Some(Err(anyhow::Error::new(NotRolledOut::Failed(format!(
                        "error: {why}"
                    )))));
                    done(true);
                }
                Status::Waiting(_) => last_seen[i] = Some((*found).clone()),
            }
        }
        if outcome.iter().all(Option::is_some) {
            break;
        }
        let now = Instant::now();
        let stopped = if deadline.is_some_and(|d| now >= d) {
            Some(Stopped::TimedOut)
        } else if pause_unless_interrupted(deadline.map_or(pause, |d| pause.min(d - now))) {
            None
        } else {
            Some(Stopped::Interrupted)
        };
        if let Some(stopped) = stopped {
            for (slot, seen) in outcome.iter_mut().zip(&last_seen) {
                if slot.is_none() {
                    *slot = Some(Err(stopped.error(seen.as_ref())));
                    done(true);
                }
            }
            break;
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
    outcome.into_iter().map(|o| o.unwrap_or(Ok(()))).collect()
}

/// How a target of [`wait_all`] did not roll out, with kubectl's words
/// for it (its Display).
#[derive(Debug)]
pub enum NotRolledOut {
    /// The wait ran out while it was still under way.
    TimedOut(String),
    /// Its rollout will not finish (its progress deadline passed).
    Failed(String),
    /// The operator stopped the wait (Ctrl-C or a termination signal).
    Interrupted(String),
    /// Not known: the Deployments could not be read, or it is gone.
    Unseen(String),
}

impl std::fmt::Display for NotRolledOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRolledOut::TimedOut(t)
            | NotRolledOut::Failed(t)
            | NotRolledOut::Interrupted(t)
            | NotRolledOut::Unseen(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for NotRolledOut {}

/// Why the wait ended before a target rolled out.
enum Stopped {
    TimedOut,
    Interrupted,
}

impl Stopped {
    /// The error of a target last `seen` still waiting.
    fn error(&self, seen: Option<&Value>) -> anyhow::Error {
        let waiting = seen
            .map(status)
            .and_then(|s| match s {
                Status::Waiting(what) => Some(what),
                _ => None,
            })
            .unwrap_or_default();
        match self {
            Stopped::Interrupted => anyhow::Error::new(NotRolledOut::Interrupted(format!(
                "stopped waiting for the rollout: interrupted (Ctrl-C or a termination signal). {waiting}"
            ))),
            Stopped::TimedOut => {
                // A pod that admission refused never appears; the
                // Deployment's ReplicaFailure condition says why.
                let refused = seen.and_then(|d| {
                    d.pointer("/status/conditions")?
                        .as_array()?
                        .iter()
                        .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")?
                        .get("message")?
                        .as_str()
                        .map(str::to_owned)
                });
                let e = anyhow::Error::new(NotRolledOut::TimedOut(format!(
                    "{waiting}\nerror: timed out waiting for the condition"
                )));
                match (refused, seen) {
                    (Some(why), Some(d)) => e.context(format!(
                        "deployment/{} cannot create its pod: {why}",
                        name(d)
                    )),
                    _ => e,
                }
            }
        }
    }
}

/// Sleeps `length`, waking early on an interrupt: false if one came.
fn pause_unless_interrupted(length: Duration) -> bool {
    let until = Instant::now() + length;
    while Instant::now() < until {
        if crate::interrupt::interrupted() {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
    }
    !crate::interrupt::interrupted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, spec: i64, status: Value) -> Value {
        json!({
            "kind": "Deployment",
            "metadata": {"name": "bot", "namespace": "tenant-a", "generation": generation},
            "spec": {"replicas": spec},
            "status": status,
        })
    }

    #[test]
    fn a_rollout_is_judged_as_kubectl_rollout_status_judges_it() {
        let waiting = |d: &Value| matches!(status(d), Status::Waiting(_));
        // The controller has not seen the new template yet, whatever the counts say.
        let unseen = deployment(
            3,
            1,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(
            status(&unseen),
            Status::Waiting("Waiting for deployment spec update to be observed...".to_owned())
        );
        // Not every replica updated; an old one still running; updated but not available.
        for s in [
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 0, "availableReplicas": 1}),
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}),
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}),
        ] {
            assert!(waiting(&deployment(3, 1, s.clone())), "{s}");
        }
        assert_eq!(
            status(&deployment(
                3,
                1,
                json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1})
            )),
            Status::Waiting(
                "Waiting for deployment \"bot\" rollout to finish: 1 old replicas are pending termination..."
                    .to_owned()
            )
        );
        // The deadline passed: waiting longer does not help.
        let stuck = deployment(
            3,
            1,
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0,
                   "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            status(&stuck),
            Status::Failed("deployment \"bot\" exceeded its progress deadline".to_owned())
        );
        // Done, and done when scaled to zero (nothing to wait for).
        let rolled = deployment(
            3,
            1,
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(status(&rolled), Status::Done);
        assert_eq!(
            status(&deployment(4, 0, json!({"observedGeneration": 4}))),
            Status::Done
        );
    }
}
