//! `admin show`: everything about one tenant in one view: its state, who it
//! is, its tier's quota against what the API server counts, what its bot
//! uses, its volumes, its last backup and its latest audited changes.
//!
//! Cost: a fixed handful of kubectl calls (the tenant namespaces; the
//! tenant's objects in one `get`; its lock; the metrics API; one stats
//! summary for the bot's node), whatever the number of tenants.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::archive::{archives_of, created_from_name};
use crate::audit::Entry;
use crate::clock::{age_seconds, format_age, now, rfc3339};
use crate::cluster::Cluster;
use crate::flags;
use crate::kubectl::Scope;
use crate::live::{Tenants, is_bot, pod_ready, pod_restarts};
use crate::measure::{QuotaUse, percent, pod_metrics, quota_use, volume_use};
use crate::names::{
    CONFIG_MAP, DOMAINS_ANNOTATION, MLA_NAME_ANNOTATION, QUOTA, TENANT_LABEL, TIER_ANNOTATION,
    VOLUME_PURPOSE_ANNOTATION, WHATSAPP_NUMBER_ANNOTATION,
};
use crate::object::{annotation, name, str_at};
use crate::output::{OutputFormat, format_bytes, print_structured, table};
use crate::platform::{QuantityKind, usage_quantity};
use crate::state::{State, TenantState};

/// `admin show -o json|yaml`; documented in the README.
#[derive(Debug, Serialize)]
struct TenantView {
    /// When this was read (RFC 3339).
    time: String,
    name: String,
    namespace: String,
    /// state, reason, since, by, last_backup, desired, as in `admin list`.
    #[serde(flatten)]
    state: TenantState,
    mla_name: Option<String>,
    /// Null once an offboarded tenant's number is released.
    whatsapp_number: Option<String>,
    domains: Vec<String>,
    tier: Option<String>,
    /// The bot's image (with its digest); null without a bot Deployment.
    image: Option<String>,
    ready: u32,
    restarts: u64,
    /// The rate limits the bot enforces, from its ConfigMap.
    rate_limits: RateLimits,
    /// Every limit of the tier's ResourceQuota, with the API server's count.
    quota: Vec<QuotaUse>,
    /// CPU and memory in use now; null without a metrics API.
    in_use: Option<InUse>,
    volumes: Vec<VolumeView>,
    /// The newest archive of the tenant in the backups directory (`--backups`).
    newest_backup: Option<BackupView>,
    /// The tenant's latest audit entries on this context, oldest first.
    audit: Vec<Entry>,
}

#[derive(Debug, Default, Serialize)]
struct RateLimits {
    messages_per_minute_per_user: Option<u64>,
    messages_per_day: Option<u64>,
}

#[derive(Debug, Serialize)]
struct InUse {
    cpu_millicores: u64,
    /// Of the quota's `limits.cpu`.
    cpu_percent: Option<f64>,
    memory_bytes: u64,
    /// Of the quota's `limits.memory`.
    memory_percent: Option<f64>,
}

#[derive(Debug, Serialize)]
struct VolumeView {
    name: String,
    purpose: Option<String>,
    requested_bytes: u64,
    /// Null when no running pod mounts it (the kubelet reports only those).
    used_bytes: Option<u64>,
    percent: Option<f64>,
}

#[derive(Debug, Serialize)]
struct BackupView {
    file: String,
    created: Option<String>,
    age_seconds: Option<u64>,
}

impl flags::Show {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let now = now()?;
        let tenants = Tenants::discover(kubectl)?;
        let ns_object = tenants.require(&self.tenant)?;
        let ns = name(ns_object).to_owned();
        let objects = kubectl.get_list(
            "deployments,pods,persistentvolumeclaims,resourcequotas,configmaps",
            Scope::Namespace(&ns),
            Some(TENANT_LABEL),
        )?;
        let of_kind = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == kind);
        let bot = of_kind("Deployment").find(|d| is_bot(d));
        let pods: Vec<&Value> = of_kind("Pod").filter(|p| is_bot(p)).collect();
        let quota = of_kind("ResourceQuota")
            .find(|q| name(q) == QUOTA)
            .map(quota_use)
            .unwrap_or_default();
        let selector = TENANT_LABEL.replace('/', "%2F");
        let metrics = kubectl.get_raw_optional(&format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector={selector}"
        ))?;
        let all_pods: Vec<&Value> = of_kind("Pod").collect();
        // Not being allowed to read the locks must not hide the rest.
        let lease = crate::lock::read(kubectl, &crate::lock::Subject::tenant(&self.tenant))
            .unwrap_or_else(|e| {
                eprintln!(
                    "warning: {}; this view does not say whether a command holds the tenant",
                    format!("{e:#}").lines().next().unwrap_or_default()
                );
                None
            });
        let used = volume_use(kubectl, &all_pods)?;

        let hard = |resource: &str, kind| {
            quota
                .iter()
                .find(|q| q.resource == resource)
                .and_then(|q| usage_quantity(&q.hard, kind))
        };
        let in_use = metrics.as_ref().map(|m| {
            let (cpu, memory) = pod_metrics(m, &ns);
            let (cpu, memory) = (cpu.unwrap_or(0), memory.unwrap_or(0));
            InUse {
                cpu_millicores: cpu,
                cpu_percent: hard("limits.cpu", QuantityKind::Cpu)
                    .filter(|h| *h > 0)
                    .map(|h| percent(cpu.into(), h)),
                memory_bytes: memory,
                memory_percent: hard("limits.memory", QuantityKind::Bytes)
                    .filter(|h| *h > 0)
                    .map(|h| percent(memory.into(), h)),
            }
        });
        let volumes = of_kind("PersistentVolumeClaim")
            .map(|c| {
                let requested = str_at(c, "/spec/resources/requests/storage")
                    .and_then(|q| usage_quantity(q, QuantityKind::Bytes))
                    .unwrap_or(0) as u64;
                let used_bytes = used.get(&(ns.clone(), name(c).to_owned())).copied();
                VolumeView {
                    name: name(c).to_owned(),
                    purpose: annotation(c, VOLUME_PURPOSE_ANNOTATION).map(str::to_owned),
                    requested_bytes: requested,
                    percent: used_bytes
                        .filter(|_| requested > 0)
                        .map(|u| percent(u.into(), requested.into())),
                    used_bytes,
                }
            })
            .collect();
        let config = of_kind("ConfigMap").find(|c| name(c) == CONFIG_MAP);
        let limit = |key: &str| {
            config
                .and_then(|c| c.pointer(&format!("/data/{key}")))
                .and_then(Value::as_str)
                .and_then(|v| v.parse().ok())
        };
        let backups_dir = self.backups.clone().unwrap_or_else(|| root.join("backups"));
        let backup = archives_of(&backups_dir, self.tenant.as_str())
            .pop()
            .map(|path| backup_view(&path, self.tenant.as_str(), now));
        let mut audit: Vec<Entry> = cluster
            .target()
            .audit()
            .read()?
            .into_iter()
            // This cluster's changes: the log is shared by every context.
            .filter(|e| {
                e.tenant == self.tenant.as_str() && e.context == cluster.target().audit_context()
            })
            .collect();
        audit.drain(..audit.len().saturating_sub(self.audit_entries));

        let view = TenantView {
            time: rfc3339(now),
            name: self.tenant.to_string(),
            namespace: ns.clone(),
            state: TenantState::of(ns_object, bot, &pods).noting(lease.as_ref(), &all_pods, now),
            mla_name: annotation(ns_object, MLA_NAME_ANNOTATION).map(str::to_owned),
            whatsapp_number: annotation(ns_object, WHATSAPP_NUMBER_ANNOTATION).map(str::to_owned),
            domains: annotation(ns_object, DOMAINS_ANNOTATION)
                .unwrap_or_default()
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
            tier: annotation(ns_object, TIER_ANNOTATION).map(str::to_owned),
            image: bot
                .and_then(|b| str_at(b, "/spec/template/spec/containers/0/image"))
                .map(str::to_owned),
            ready: pods.iter().filter(|p| pod_ready(p)).count() as u32,
            restarts: pods.iter().map(|p| pod_restarts(p)).sum(),
            rate_limits: RateLimits {
                messages_per_minute_per_user: limit("RATE_LIMIT_MESSAGES_PER_MINUTE_PER_USER"),
                messages_per_day: limit("RATE_LIMIT_MESSAGES_PER_DAY"),
            },
            quota,
            in_use,
            volumes,
            newest_backup: backup,
            audit,
        };
        match self.output.format {
            OutputFormat::Table => print!(
                "{}",
                render_table(&view, &backups_dir, &kubectl.context_arg())
            ),
            format => print_structured(format, &view)?,
        }
        Ok(())
    }
}

fn backup_view(path: &Path, tenant: &str, now: std::time::SystemTime) -> BackupView {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let created = created_from_name(&file, tenant);
    BackupView {
        age_seconds: age_seconds(created.as_deref(), now),
        created,
        file,
    }
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn share(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"))
}

fn render_table(v: &TenantView, backups_dir: &Path, context: &str) -> String {
    let mut out = String::new();
    let mut field = |key: &str, value: String| out.push_str(&format!("{key:<13}{value}\n"));
    field("Tenant", format!("{} (namespace {})", v.name, v.namespace));
    field(
        "State",
        crate::colour::state(&v.state.describe(), v.state.state),
    );
    for line in v.state.unfinished_lines(&v.name, &v.namespace, context) {
        field("Unfinished", line);
    }
    if let Some(backup) = &v.state.last_backup {
        field("Offboarded", format!("with backup {backup} checked"));
    }
    field("MLA", or_dash(v.mla_name.as_ref()));
    field(
        "Number",
        v.whatsapp_number
            .clone()
            .unwrap_or_else(|| "- (released)".to_owned()),
    );
    field(
        "Domains",
        match v.state.state {
            _ if v.domains.is_empty() => "- (released)".to_owned(),
            State::Suspended => format!("{} (not served while suspended)", v.domains.join(", ")),
            State::Offboarded => format!("{} (reserved, not served)", v.domains.join(", ")),
            _ => v.domains.join(", "),
        },
    );
    field("Tier", or_dash(v.tier.as_ref()));
    field("Image", or_dash(v.image.as_ref()));
    field(
        "Bot",
        match v.state.state {
            State::Offboarded | State::Terminating => "- (none: offboarded)".to_owned(),
            _ => format!(
                "{}/{} ready, {} restarts",
                v.ready, v.state.desired, v.restarts
            ),
        },
    );
    field(
        "Rate limits",
        match (
            v.rate_limits.messages_per_minute_per_user,
            v.rate_limits.messages_per_day,
        ) {
            (None, None) => "- (no bot ConfigMap)".to_owned(),
            (minute, day) => format!(
                "{} messages per minute per user, {} per day",
                or_dash(minute),
                or_dash(day)
            ),
        },
    );
    field(
        "In use",
        match &v.in_use {
            None => "unavailable (the cluster serves no metrics API)".to_owned(),
            Some(u) if v.quota.is_empty() => format!(
                "CPU {}m, memory {} (no quota to compare with)",
                u.cpu_millicores,
                format_bytes(u.memory_bytes.into())
            ),
            Some(u) => format!(
                "CPU {}m ({} of limits.cpu), memory {} ({} of limits.memory)",
                u.cpu_millicores,
                share(u.cpu_percent),
                format_bytes(u.memory_bytes.into()),
                share(u.memory_percent)
            ),
        },
    );
    field(
        "Last backup",
        match &v.newest_backup {
            Some(b) => format!(
                "{} ({} old) in {}",
                b.file,
                format_age(b.age_seconds),
                backups_dir.display()
            ),
            None => format!(
                "none in {} (take one with `cargo xtask admin backup {}{}`)",
                backups_dir.display(),
                v.name,
                crate::suggest::target_arg()
            ),
        },
    );
    if !v.quota.is_empty() {
        let rows: Vec<Vec<String>> = v
            .quota
            .iter()
            .map(|q| {
                vec![
                    q.resource.clone(),
                    or_dash(q.used.as_ref()),
                    q.hard.clone(),
                    share(q.percent),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["QUOTA", "USED", "LIMIT", "USE"], &rows));
    }
    if !v.volumes.is_empty() {
        let rows: Vec<Vec<String>> = v
            .volumes
            .iter()
            .map(|vol| {
                vec![
                    vol.name.clone(),
                    or_dash(vol.purpose.as_ref()),
                    format_bytes(vol.requested_bytes.into()),
                    vol.used_bytes
                        .map_or_else(|| "-".to_owned(), |u| format_bytes(u.into())),
                    share(vol.percent),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["VOLUME", "PURPOSE", "SIZE", "USED", "USE"], &rows));
    }
    out.push('\n');
    if v.audit.is_empty() {
        out.push_str("No audited changes of this tenant.\n");
    } else {
        let rows: Vec<Vec<String>> = v
            .audit
            .iter()
            .map(|e| {
                vec![
                    e.time.clone(),
                    e.operator.clone(),
                    e.command.clone(),
                    e.result.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["CHANGED", "BY", "COMMAND", "RESULT"], &rows));
    }
    out
}
