//! A tenant's state, defined once for every command: its lifecycle, which
//! the tool records on the tenant's Namespace (`suspended`, `offboarded`)
//! or the API server shows (`terminating`), and for an active tenant the
//! health of its bot (`running`, `pending`, `stopped`, `error`).
//!
//! `list`, `show`, `usage`, `drift`, `verify`, `provision --all` and the
//! bulk commands all read it from here, so that they agree on what is a
//! failure and what is a tenant that is down on purpose.

use serde::Serialize;
use serde_json::Value;

use crate::kubectl::Kubectl;
use crate::names::{
    DOMAINS_ANNOTATION, OFFBOARDED_ANNOTATION, OFFBOARDED_BACKUP_ANNOTATION,
    OFFBOARDED_BY_ANNOTATION, OFFBOARDED_RESERVED_ANNOTATION, REPLICAS_BEFORE_RESTORE_ANNOTATION,
    SUSPENDED_ANNOTATION, SUSPENDED_BY_ANNOTATION, SUSPENDED_INGRESSES_ANNOTATION,
    SUSPENDED_REPLICAS_ANNOTATION, WHATSAPP_NUMBER_ANNOTATION, WORKBENCH_POD,
};
use crate::object::str_at;
use crate::object::{annotation, applyable};
use crate::output::escape_controls;

/// Every state a tenant can be in; the JSON outputs use these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Applied, and the bot's pods are not (yet) ready.
    Pending,
    Running,
    /// Its bot scaled to 0 by hand (not by `admin suspend`).
    Stopped,
    /// The bot cannot run: crash looping, image pull failure, no Deployment.
    Error,
    /// Taken offline on purpose with `admin suspend`; all data kept.
    Suspended,
    /// Removed with `admin offboard`, its volumes (data) kept.
    Offboarded,
    /// Its namespace is being deleted (`admin offboard --delete-data`).
    Terminating,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Stopped => "stopped",
            State::Error => "error",
            State::Suspended => "suspended",
            State::Offboarded => "offboarded",
            State::Terminating => "terminating",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the tool (or the API server) recorded on the tenant's Namespace:
/// whether the tenant is meant to be serving at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// Meant to serve; how well it does is the bot's health.
    Active,
    Suspended {
        since: String,
        by: Option<String>,
    },
    Offboarded {
        since: String,
        by: Option<String>,
        /// The backup file offboard checked (or `none` with --no-backup).
        last_backup: Option<String>,
        /// Whether its domains and WhatsApp number stay claimed.
        reserved: bool,
    },
    Terminating {
        since: String,
    },
}

impl Lifecycle {
    /// Reads the markers of a tenant's Namespace.
    pub fn of(namespace: &Value) -> Lifecycle {
        let get = |key| annotation(namespace, key).map(str::to_owned);
        if let Some(since) = terminating_since(namespace) {
            return Lifecycle::Terminating {
                since: since.to_owned(),
            };
        }
        if let Some(since) = get(OFFBOARDED_ANNOTATION) {
            return Lifecycle::Offboarded {
                since,
                by: get(OFFBOARDED_BY_ANNOTATION),
                last_backup: get(OFFBOARDED_BACKUP_ANNOTATION),
                reserved: annotation(namespace, OFFBOARDED_RESERVED_ANNOTATION) == Some("true"),
            };
        }
        if let Some(since) = get(SUSPENDED_ANNOTATION) {
            return Lifecycle::Suspended {
                since,
                by: get(SUSPENDED_BY_ANNOTATION),
            };
        }
        Lifecycle::Active
    }

    /// The state this lifecycle is, when it decides the state alone.
    pub fn state(&self) -> Option<State> {
        match self {
            Lifecycle::Active => None,
            Lifecycle::Suspended { .. } => Some(State::Suspended),
            Lifecycle::Offboarded { .. } => Some(State::Offboarded),
            Lifecycle::Terminating { .. } => Some(State::Terminating),
        }
    }

    pub fn since(&self) -> Option<&str> {
        match self {
            Lifecycle::Active => None,
            Lifecycle::Suspended { since, .. }
            | Lifecycle::Offboarded { since, .. }
            | Lifecycle::Terminating { since } => Some(since),
        }
    }

    pub fn by(&self) -> Option<&str> {
        match self {
            Lifecycle::Suspended { by, .. } | Lifecycle::Offboarded { by, .. } => by.as_deref(),
            _ => None,
        }
    }

    /// One line for a command that leaves the tenant alone because of its
    /// lifecycle: `suspended since … by …; …`. None for an active tenant.
    pub fn note(&self, tenant: &str) -> Option<String> {
        let by = self.by().map(|b| format!(" by {b}")).unwrap_or_default();
        Some(match self {
            Lifecycle::Active => return None,
            Lifecycle::Suspended { since, .. } => format!(
                "suspended since {since}{by}; bring it back with `cargo xtask admin resume {tenant}{}`",
                crate::suggest::target_arg()
            ),
            Lifecycle::Offboarded { since, .. } => format!(
                "offboarded since {since}{by}, its volumes kept; `cargo xtask admin offboard {tenant} --delete-data{}{}` removes them{}",
                // Where approvals are required, the plan of it, approved and applied.
                if crate::suggest::gated() {
                    format!(" --plan --save-plan {tenant}-data.plan")
                } else {
                    String::new()
                },
                crate::suggest::target_arg(),
                if crate::suggest::gated() {
                    " once the plan is approved and applied"
                } else {
                    ""
                }
            ),
            Lifecycle::Terminating { since } => {
                format!("being deleted since {since} (offboarded with its data)")
            }
        })
    }
}

/// A tenant's state, and why, as every command shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantState {
    pub state: State,
    /// Why the bot is not running (`crash looping`, `unschedulable`), or
    /// who and what for a suspended or offboarded tenant; null when running.
    pub reason: Option<String>,
    /// Since when it is suspended, offboarded or terminating (RFC 3339).
    pub since: Option<String>,
    /// Who suspended or offboarded it (`git config user.email`, else $USER).
    pub by: Option<String>,
    /// For an offboarded tenant: the backup offboard checked (`none` with
    /// --no-backup).
    pub last_backup: Option<String>,
    /// For an offboarded tenant: whether its domains and number stay
    /// claimed (`offboard --reserve`); null for any other.
    pub reserved: Option<bool>,
    /// Replicas the bot is meant to run now (0 for any tenant not active).
    pub desired: u32,
    /// What a command left unfinished, or is doing now (see [`Unfinished`]).
    pub unfinished: Vec<Unfinished>,
}

/// What a command left on a tenant that is not its state at rest: a lock
/// held (by a command running now, or, once expired, by one killed before it
/// released it), a restore that stopped the bot and did not finish, a
/// workbench pod left behind. `list` and `show` report each, with the way
/// out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Unfinished {
    /// The tenant's Lease in `xtask-locks`.
    Lock {
        holder: String,
        command: String,
        /// `host:pid` of the process that took it.
        process: String,
        since: Option<String>,
        /// Not renewed in time: its command was killed (or lost the cluster).
        expired: bool,
        /// Whether its process still runs, when it was taken on this machine
        /// (null: taken on another machine, which cannot be checked from here).
        holder_alive: Option<bool>,
    },
    /// The bot Deployment still carries `replicas-before-restore`: a restore
    /// stopped the bot and did not finish.
    Restore {
        deployment: String,
        /// The replicas to go back to, as the annotation records them.
        replicas_before: Option<u32>,
    },
    /// The workbench pod of a backup or restore is still in the namespace.
    Workbench,
}

impl TenantState {
    /// The one definition: the namespace's lifecycle first; for an active
    /// tenant, its bot Deployment (None if missing) and the bot's pods.
    pub fn of(namespace: &Value, bot: Option<&Value>, pods: &[&Value]) -> TenantState {
        let lifecycle = Lifecycle::of(namespace);
        let (state, reason, desired) = match lifecycle.state() {
            Some(state) => (state, None, 0),
            None => bot_health(bot, pods),
        };
        let (last_backup, reserved) = match &lifecycle {
            Lifecycle::Offboarded {
                last_backup,
                reserved,
                ..
            } => (last_backup.clone(), Some(*reserved)),
            _ => (None, None),
        };
        let reason = reason.or_else(|| match &lifecycle {
            Lifecycle::Offboarded { reserved: true, .. } => {
                Some("domains and number kept reserved".to_owned())
            }
            _ => None,
        });
        let restore = bot.and_then(|b| {
            let replicas_before = annotation(b, REPLICAS_BEFORE_RESTORE_ANNOTATION)?;
            Some(Unfinished::Restore {
                deployment: crate::object::name(b).to_owned(),
                replicas_before: replicas_before.parse().ok(),
            })
        });
        let reason = match (&restore, state) {
            (Some(_), State::Stopped) => {
                Some("by a restore that did not start it again".to_owned())
            }
            _ => reason,
        };
        TenantState {
            state,
            reason,
            since: lifecycle.since().map(str::to_owned),
            by: lifecycle.by().map(str::to_owned),
            last_backup,
            reserved,
            desired,
            unfinished: restore.into_iter().collect(),
        }
    }

    /// Adds what else a command left: the tenant's lease (if any) and a
    /// workbench among the tenant's pods (all of them, not only the bot's).
    pub fn noting(
        mut self,
        lease: Option<&Value>,
        tenant_pods: &[&Value],
        now: std::time::SystemTime,
    ) -> TenantState {
        if let Some(lease) = lease {
            let holder = crate::lock::Holder::of(lease, now);
            // Known only for a lock taken on this machine (in this boot,
            // for a process that is gone).
            let holder_alive = if crate::lock::still_running_here(&holder).is_some() {
                Some(true)
            } else if holder.gone_here() {
                Some(false)
            } else {
                None
            };
            self.unfinished.insert(
                0,
                Unfinished::Lock {
                    holder_alive,
                    expired: holder.expired(),
                    holder: holder.operator,
                    command: holder.command,
                    process: holder.process,
                    since: holder.acquired,
                },
            );
        }
        if tenant_pods
            .iter()
            .any(|p| crate::object::name(p) == WORKBENCH_POD)
        {
            self.unfinished.push(Unfinished::Workbench);
        }
        let restoring = self
            .unfinished
            .iter()
            .any(|u| matches!(u, Unfinished::Restore { .. }));
        if restoring && self.state == State::Stopped && self.held_by_a_running_command() {
            self.reason = Some("by a restore under way".to_owned());
        }
        self
    }

    /// A command holds the tenant now: its lock lasts, and its process is
    /// not known to be gone.
    fn held_by_a_running_command(&self) -> bool {
        self.unfinished.iter().any(|u| {
            matches!(
                u,
                Unfinished::Lock {
                    expired: false,
                    holder_alive: Some(true) | None,
                    ..
                }
            )
        })
    }

    /// One line per unfinished thing, each with its way out; `context` is
    /// what suggested commands need to reach the same cluster
    /// (` --context X` or empty).
    pub fn unfinished_lines(&self, tenant: &str, namespace: &str, context: &str) -> Vec<String> {
        // A `cargo xtask` command carries the run's --env (or --context).
        let target = crate::suggest::target_arg();
        let running = self.held_by_a_running_command();
        self.unfinished
            .iter()
            .map(|u| match u {
                Unfinished::Lock {
                    holder,
                    command,
                    process,
                    since,
                    ..
                } if running => format!(
                    "locked: {} runs `{}` (process {}) since {}; wait for it to finish \
                     before changing the tenant",
                    escape_controls(holder),
                    escape_controls(command),
                    escape_controls(process),
                    escape_controls(since.as_deref().unwrap_or("an unknown time"))
                ),
                Unfinished::Lock {
                    holder,
                    command,
                    process,
                    since,
                    expired,
                    ..
                } => format!(
                    "a lock left behind: {} ran `{}` (process {}) since {} and it was not \
                     released (the command was killed or lost the cluster, so it may have stopped \
                     halfway). {}`cargo xtask admin unlock {tenant}{target}` breaks it now",
                    escape_controls(holder),
                    escape_controls(command),
                    escape_controls(process),
                    escape_controls(since.as_deref().unwrap_or("an unknown time")),
                    if *expired {
                        "The next command takes it over; "
                    } else {
                        "Its process on this machine is gone. "
                    }
                ),
                Unfinished::Restore { .. } if running => {
                    "a restore has stopped the bot; the command holding the lock brings it back".to_owned()
                }
                Unfinished::Restore {
                    deployment,
                    replicas_before,
                } => {
                    let annotate = format!(
                        "kubectl{context} --namespace {namespace} annotate deployment/{deployment} \
                         {REPLICAS_BEFORE_RESTORE_ANNOTATION}-"
                    );
                    if self.state == State::Stopped {
                        format!(
                            "a restore stopped the bot and did not finish: its volumes may be half \
                             written. Run the same restore again (`cargo xtask admin restore {tenant} \
                             ARCHIVE{target} --yes`); or, to serve from the volumes as they are: \
                             `kubectl{context} --namespace {namespace} scale deployment/{deployment} \
                             --replicas={}` and `{annotate}`",
                            replicas_before.unwrap_or(1)
                        )
                    } else {
                        format!(
                            "deployment/{deployment} still carries {REPLICAS_BEFORE_RESTORE_ANNOTATION} \
                             though the bot runs: a later restore of a stopped bot would start it. \
                             Remove it: `{annotate}`"
                        )
                    }
                }
                Unfinished::Workbench if running => format!(
                    "the workbench pod {WORKBENCH_POD} is in use by the command holding the lock"
                ),
                Unfinished::Workbench => format!(
                    "the workbench pod {WORKBENCH_POD} of a backup or restore that did not finish is \
                     still in {namespace}, mounting the tenant's volumes: `kubectl{context} --namespace \
                     {namespace} delete pod {WORKBENCH_POD}`"
                ),
            })
            .collect()
    }

    /// `running`, `error (crash looping)`, `suspended since … by …`.
    pub fn describe(&self) -> String {
        let mut out = self.state.as_str().to_owned();
        if let Some(since) = &self.since {
            out.push_str(&format!(" since {since}"));
        }
        if let Some(by) = &self.by {
            out.push_str(&format!(" by {by}"));
        }
        if let Some(reason) = &self.reason {
            out.push_str(&format!(" ({reason})"));
        }
        out
    }
}

/// The health of an active tenant's bot: its state, why, and how many
/// replicas it is meant to run.
fn bot_health(bot: Option<&Value>, pods: &[&Value]) -> (State, Option<String>, u32) {
    let Some(bot) = bot else {
        return (
            State::Error,
            Some("bot deployment missing; re-run provision".into()),
            0,
        );
    };
    let desired = bot
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1) as u32;
    if desired == 0 {
        return (State::Stopped, None, 0);
    }
    let waiting: Vec<&str> = pods
        .iter()
        .flat_map(|p| {
            p.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
        .collect();
    let error = |reason: &str| (State::Error, Some(reason.to_owned()), desired);
    if waiting.contains(&"CrashLoopBackOff") {
        return error("crash looping");
    }
    if let Some(r) = waiting.iter().find(|r| {
        matches!(
            **r,
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName"
        )
    }) {
        return error(&format!("image pull failure: {r}"));
    }
    if let Some(r) = waiting
        .iter()
        .find(|r| matches!(**r, "CreateContainerConfigError" | "CreateContainerError"))
    {
        return error(&format!("container cannot start: {r}"));
    }
    let failed_rollout = bot
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["status"] == "False");
    if failed_rollout {
        return error("rollout failed: progress deadline exceeded");
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as u32;
    if ready >= desired {
        return (State::Running, None, desired);
    }
    let unschedulable = pods.iter().any(|p| {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "False")
    });
    let reason = if unschedulable {
        "unschedulable".to_owned()
    } else if let Some(r) = waiting.first() {
        (*r).to_owned()
    } else if pods.is_empty() {
        "no pod yet".to_owned()
    } else {
        "starting".to_owned()
    };
    (State::Pending, Some(reason), desired)
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// When a namespace began to be deleted, if it is Terminating.
pub fn terminating_since(namespace: &Value) -> Option<&str> {
    str_at(namespace, "/metadata/deletionTimestamp")
}

/// What `admin suspend` records on the namespace to come back to.
pub struct Suspension {
    pub replicas: u32,
    pub ingresses: Vec<Value>,
}

impl Suspension {
    /// Records the state to come back to, the time and who, on the
    /// namespace, in one call.
    pub fn record(
        kubectl: &Kubectl,
        namespace: &str,
        replicas: u32,
        ingresses: &[Value],
        since: &str,
        by: &str,
    ) -> anyhow::Result<()> {
        let ingress_json =
            serde_json::to_string(&ingresses.iter().cloned().map(applyable).collect::<Vec<_>>())?;
        let replicas = replicas.to_string();
        kubectl.annotate(
            namespace,
            &format!("namespace/{namespace}"),
            &[
                (SUSPENDED_REPLICAS_ANNOTATION, Some(&replicas)),
                (SUSPENDED_INGRESSES_ANNOTATION, Some(&ingress_json)),
                (SUSPENDED_BY_ANNOTATION, Some(by)),
                (SUSPENDED_ANNOTATION, Some(since)),
            ],
        )
    }

    /// The recorded state of a suspended tenant's namespace.
    pub fn read(namespace: &Value) -> anyhow::Result<Suspension> {
        use anyhow::Context;
        Ok(Suspension {
            replicas: annotation(namespace, SUSPENDED_REPLICAS_ANNOTATION)
                .and_then(|r| r.parse().ok())
                .unwrap_or(1),
            ingresses: serde_json::from_str(
                annotation(namespace, SUSPENDED_INGRESSES_ANNOTATION).unwrap_or("[]"),
            )
            .context("the recorded Ingress of the suspended tenant is unreadable")?,
        })
    }

    /// Removes the markers, in one call: the tenant is no longer suspended.
    pub fn clear(kubectl: &Kubectl, namespace: &str) -> anyhow::Result<()> {
        kubectl.annotate(
            namespace,
            &format!("namespace/{namespace}"),
            &[
                (SUSPENDED_ANNOTATION, None),
                (SUSPENDED_BY_ANNOTATION, None),
                (SUSPENDED_REPLICAS_ANNOTATION, None),
                (SUSPENDED_INGRESSES_ANNOTATION, None),
            ],
        )
    }
}

/// What `admin offboard` records on a namespace it keeps (for the volumes).
pub struct Offboarding<'a> {
    pub since: &'a str,
    pub by: &'a str,
    pub last_backup: Option<&'a str>,
    /// Keep the domains and number claimed (`--reserve`); else they are
    /// released for other tenants.
    pub reserve: bool,
}

impl Offboarding<'_> {
    /// Marks the tenant offboarded and, unless reserved, releases its
    /// domains and number, in one call.
    pub fn record(&self, kubectl: &Kubectl, namespace: &str) -> anyhow::Result<()> {
        let mut changes = vec![
            (OFFBOARDED_BY_ANNOTATION, Some(self.by)),
            (
                OFFBOARDED_BACKUP_ANNOTATION,
                Some(self.last_backup.unwrap_or("none")),
            ),
            (
                OFFBOARDED_RESERVED_ANNOTATION,
                Some(if self.reserve { "true" } else { "false" }),
            ),
            (OFFBOARDED_ANNOTATION, Some(self.since)),
            // Whatever a suspension recorded is moot now.
            (SUSPENDED_ANNOTATION, None),
            (SUSPENDED_BY_ANNOTATION, None),
            (SUSPENDED_REPLICAS_ANNOTATION, None),
            (SUSPENDED_INGRESSES_ANNOTATION, None),
        ];
        if !self.reserve {
            changes.push((DOMAINS_ANNOTATION, None));
            changes.push((WHATSAPP_NUMBER_ANNOTATION, None));
        }
        kubectl.annotate(namespace, &format!("namespace/{namespace}"), &changes)
    }

    /// Releases the domains and number an offboarding reserved.
    pub fn release(kubectl: &Kubectl, namespace: &str) -> anyhow::Result<()> {
        kubectl.annotate(
            namespace,
            &format!("namespace/{namespace}"),
            &[
                (OFFBOARDED_RESERVED_ANNOTATION, Some("false")),
                (DOMAINS_ANNOTATION, None),
                (WHATSAPP_NUMBER_ANNOTATION, None),
            ],
        )
    }

    /// Removes the offboarded markers: the tenant is provisioned again.
    pub fn clear(kubectl: &Kubectl, namespace: &str) -> anyhow::Result<()> {
        kubectl.annotate(
            namespace,
            &format!("namespace/{namespace}"),
            &[
                (OFFBOARDED_ANNOTATION, None),
                (OFFBOARDED_BY_ANNOTATION, None),
                (OFFBOARDED_BACKUP_ANNOTATION, None),
                (OFFBOARDED_RESERVED_ANNOTATION, None),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ns(annotations: Value) -> Value {
        json!({"metadata": {"name": "tenant-a", "annotations": annotations}})
    }

    fn running_bot() -> (Value, Value) {
        (
            json!({"spec": {"replicas": 1}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )
    }

    #[test]
    fn lifecycle_markers_decide_before_the_bot() {
        let (bot, pod) = running_bot();
        let active = TenantState::of(&ns(json!({})), Some(&bot), &[&pod]);
        assert_eq!(active.state, State::Running);
        assert_eq!(active.desired, 1);

        let suspended = TenantState::of(
            &ns(
                json!({SUSPENDED_ANNOTATION: "2026-11-01T00:00:00Z", SUSPENDED_BY_ANNOTATION: "ops@x.in"}),
            ),
            Some(&bot),
            &[],
        );
        assert_eq!(suspended.state, State::Suspended);
        assert_eq!(suspended.since.as_deref(), Some("2026-11-01T00:00:00Z"));
        assert_eq!(suspended.by.as_deref(), Some("ops@x.in"));
        assert_eq!(suspended.desired, 0);

        // Offboarded wins over a stale suspension marker; no bot is no error.
        let offboarded = TenantState::of(
            &ns(json!({
                SUSPENDED_ANNOTATION: "2026-11-01T00:00:00Z",
                OFFBOARDED_ANNOTATION: "2026-11-02T00:00:00Z",
                OFFBOARDED_BACKUP_ANNOTATION: "a-20261102T000000Z.tar.gz",
            })),
            None,
            &[],
        );
        assert_eq!(offboarded.state, State::Offboarded);
        assert_eq!(
            offboarded.last_backup.as_deref(),
            Some("a-20261102T000000Z.tar.gz")
        );
        assert_eq!(offboarded.reason, None);

        let mut deleting = ns(json!({OFFBOARDED_ANNOTATION: "2026-11-02T00:00:00Z"}));
        deleting["metadata"]["deletionTimestamp"] = json!("2026-11-03T00:00:00Z");
        assert_eq!(
            TenantState::of(&deleting, None, &[]).state,
            State::Terminating
        );
    }

    /// Whether a lock's holder still runs is known only for a lock taken on
    /// this machine in this boot: one that records no process, another
    /// machine or another boot, is not declared dead (and so not "left behind" before it expires).
    #[test]
    fn a_holder_is_judged_alive_or_gone_only_on_this_machine() {
        let (bot, pod) = running_bot();
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_500_000);
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let lease = |process: Option<&str>, boot: &str| {
            let mut l = json!({"spec": {"holderIdentity": "a@b",
                "acquireTime": "2026-11-24T06:00:00.000000Z", "leaseDurationSeconds": 900},
                "metadata": {"annotations": {"xtask.mla-platform.io/boot": boot.trim()}}});
            if let Some(p) = process {
                l["metadata"]["annotations"]["xtask.mla-platform.io/process"] = json!(p);
            }
            l
        };
        let alive_in = |process: Option<&str>, boot: &str| {
            let state = TenantState::of(&ns(json!({})), Some(&bot), &[&pod]).noting(
                Some(&lease(process, boot)),
                &[],
                now,
            );
            match &state.unfinished[0] {
                Unfinished::Lock { holder_alive, .. } => *holder_alive,
                other => panic!("{other:?}"),
            }
        };
        let alive = |process: Option<&str>| alive_in(process, &boot);
        assert_eq!(alive(None), None);
        assert_eq!(alive(Some("another-machine.invalid:4242")), None);
        let here = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        // No process has this id (above the kernel's pid_max limit).
        assert_eq!(
            alive(Some(&format!("{}:4194305", here.trim()))),
            Some(false)
        );
        // The same host name in another boot: its process ids mean nothing here.
        assert_eq!(
            alive_in(
                Some(&format!("{}:4194305", here.trim())),
                "00000000-0000-4000-8000-000000000000"
            ),
            None
        );
    }

    #[test]
    fn an_active_tenant_without_a_bot_is_an_error() {
        let s = TenantState::of(&ns(json!({})), None, &[]);
        assert_eq!(s.state, State::Error);
        assert_eq!(
            s.describe(),
            "error (bot deployment missing; re-run provision)"
        );
    }

    #[test]
    fn notes_say_how_to_leave_the_state() {
        let l = Lifecycle::of(&ns(
            json!({SUSPENDED_ANNOTATION: "t", SUSPENDED_BY_ANNOTATION: "me"}),
        ));
        assert_eq!(
            l.note("a").unwrap(),
            "suspended since t by me; bring it back with `cargo xtask admin resume a`"
        );
        assert_eq!(Lifecycle::of(&ns(json!({}))).note("a"), None);
    }
}
