//! `admin usage`: what each tenant uses, against its tier's limits, what it
//! costs (platform.yaml's cost model), its messages and bot runs per day,
//! and the total; as a table, JSON, YAML, CSV or Prometheus metrics.
//!
//! Cluster-wide reads, a fixed number whatever the number of tenants: the
//! tenant namespaces, their pods, their volume claims, their ConfigMaps (for
//! the messages-per-day limit each bot enforces), the metrics API (if
//! served), and one kubelet stats summary per node that runs tenant pods.
//! The only per-tenant calls are the read-only queries inside each bot's
//! pod (the counts and the daily series, in one sqlite3 call), run `--jobs`
//! at a time.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::clock::{now, rfc3339};
use crate::cluster::Cluster;
use crate::flags;
use crate::kubectl::{Container, Input, Kubectl, KubectlFailure, Scope};
use crate::live::{Tenants, is_bot, pod_ready, pod_restarts, tenant_of};
use crate::measure::{pod_metrics, volume_use};
use crate::names::{
    CONFIG_MAP, DATABASE_PURPOSE, SESSION_PURPOSE, TENANT_LABEL, TIER_ANNOTATION,
    VOLUME_PURPOSE_ANNOTATION,
};
use crate::object::{annotation, str_at};
use crate::output::{
    Exposition, MetricType, OutputFormat, ReportFormat, csv_text, format_bytes, print_structured,
    table,
};
use crate::platform::{Cost, Money, Platform, QuantityKind, Tier, usage_quantity};

use crate::state::{State, TenantState};

/// The key of the bot's ConfigMap that holds the messages-per-day limit the
/// bot enforces (written by templates/configmap.yaml; a test renders it).
const MESSAGES_PER_DAY_KEY: &str = "RATE_LIMIT_MESSAGES_PER_DAY";

#[derive(Debug, Clone, Serialize)]
pub struct VolumeUsage {
    pub name: String,
    /// `sqlite-database` or `whatsapp-auth-session`.
    pub purpose: Option<String>,
    pub requested_bytes: u64,
    /// Null when no running pod mounts the volume (the kubelet reports
    /// usage only for mounted volumes).
    pub used_bytes: Option<u64>,
}

/// CPU in use against the tier's quota.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuQuota {
    pub used_millicores: Option<u64>,
    pub limit_millicores: Option<u64>,
    pub percent: Option<f64>,
}

/// Bytes in use against a limit: memory against the tier's quota, a volume
/// against its requested size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BytesQuota {
    pub used_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub percent: Option<f64>,
}

/// The period's messages, as an average per day, against the daily limit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MessagesQuota {
    /// Messages of the period divided by its length in days.
    pub per_day_average: Option<f64>,
    pub limit_per_day: Option<u64>,
    /// `config_map` (what the bot enforces) or `tier` (platform.yaml).
    pub limit_source: Option<&'static str>,
    pub percent: Option<f64>,
}

/// Each use against its limit; every percentage is null when its use or
/// its limit is unknown.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuotaUsage {
    pub cpu: CpuQuota,
    pub memory: BytesQuota,
    pub database: BytesQuota,
    pub whatsapp_auth: BytesQuota,
    pub messages: MessagesQuota,
}

impl QuotaUsage {
    /// Each limit's name (the key in JSON) and its percentage, if known.
    fn percents(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("cpu", self.cpu.percent),
            ("memory", self.memory.percent),
            ("database", self.database.percent),
            ("whatsapp_auth", self.whatsapp_auth.percent),
            ("messages", self.messages.percent),
        ]
    }

    /// The limits whose known percentage is at or above `threshold`.
    fn at_or_above(&self, threshold: u16) -> Vec<(&'static str, f64)> {
        self.percents()
            .into_iter()
            .filter_map(|(name, p)| p.filter(|p| *p >= f64::from(threshold)).map(|p| (name, p)))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantUsage {
    pub name: String,
    pub namespace: String,
    /// As `admin list` shows it (`state.rs`).
    pub state: State,
    /// The namespace's tier annotation; null when it has none.
    pub tier: Option<String>,
    pub pods: u32,
    pub restarts: u64,
    /// Null when the cluster serves no metrics API.
    pub cpu_millicores: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub volumes: Vec<VolumeUsage>,
    /// Null when the database could not be read (bot stopped, or an error).
    pub messages: Option<u64>,
    pub bot_runs: Option<u64>,
    pub quota: QuotaUsage,
    /// The period's cost by platform.yaml's cost model; null when the
    /// tenant's tier is unknown to platform.yaml.
    pub cost: Option<Cost>,
    /// Messages and bot runs per UTC day of the period, oldest first, days
    /// without either left out; empty when the database was not read.
    pub daily: Vec<DayUsage>,
    /// The limits (keys of `quota`) at or above `--warn-at`.
    pub warnings: Vec<&'static str>,
    /// Why a value is zero or null, when it is not simply no usage.
    pub note: Option<String>,
}

/// One UTC day of a tenant's use (`admin.usage_daily_query`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayUsage {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub messages: u64,
    pub bot_runs: u64,
}

impl TenantUsage {
    fn add_note(&mut self, note: impl Into<String>) {
        let note = note.into();
        self.note = Some(match self.note.take() {
            Some(before) => format!("{before}; {note}"),
            None => note,
        });
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub tenants: u32,
    pub pods: u32,
    pub restarts: u64,
    pub cpu_millicores: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub requested_bytes: u64,
    pub used_bytes: Option<u64>,
    pub messages: Option<u64>,
    pub bot_runs: Option<u64>,
    /// The exact sum of the tenants' `cost.total`; null when no tenant's
    /// cost is known.
    pub cost: Option<Money>,
}

#[derive(Serialize)]
struct UsageOutput {
    /// The cost model's currency (platform.yaml `cost.currency`).
    currency: String,
    /// The environment (`--env`) and kubectl context of the run; null when
    /// not given (kubectl's current context).
    environment: Option<String>,
    context: Option<String>,
    time: String,
    /// Start of the period for messages and bot runs (RFC 3339); `time` is its end.
    since: String,
    /// The period's length in days (messages per day are averaged over it).
    period_days: f64,
    metrics_available: bool,
    warn_at: u16,
    fail_at: Option<u16>,
    tenants: Vec<TenantUsage>,
    total: Totals,
    /// Tenants whose database read failed, with the reason.
    errors: Vec<String>,
}

impl flags::Usage {
    pub(crate) fn run(self, root: &std::path::Path) -> anyhow::Result<()> {
        if let Some(path) = &self.report {
            crate::report::check_path(path)?;
        }
        let platform = self.platform.load(root)?;
        let cluster = Cluster::connect(&self.cluster, root)?;
        let kubectl = cluster.kubectl();
        let now = now()?;
        let since = rfc3339(now - Duration::from_secs(self.since.seconds));
        let period_days = self.since.seconds as f64 / 86_400.0;
        let tenants = Tenants::discover(kubectl)?;
        let only_ns = match &self.tenant {
            Some(t) => Some(
                str_at(tenants.require(t)?, "/metadata/name")
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => None,
        };
        let scope = || match &only_ns {
            Some(ns) => Scope::Namespace(ns),
            None => Scope::AllNamespaces,
        };
        let pods = kubectl.get_list("pods", scope(), Some(TENANT_LABEL))?;
        let claims = kubectl.get_list("persistentvolumeclaims", scope(), Some(TENANT_LABEL))?;
        let config_maps = kubectl.get_list("configmaps", scope(), Some(TENANT_LABEL))?;
        let selector = TENANT_LABEL.replace('/', "%2F");
        let metrics_path = match &only_ns {
            Some(ns) => format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector={selector}"
            ),
            None => format!("/apis/metrics.k8s.io/v1beta1/pods?labelSelector={selector}"),
        };
        let metrics = kubectl.get_raw_optional(&metrics_path)?;
        let used = volume_use(kubectl, &pods.iter().collect::<Vec<_>>())?;
        let deployments = kubectl.get_list("deployments", scope(), Some(TENANT_LABEL))?;

        let mut rows = Vec::new();
        for ns in &tenants.namespaces {
            let (Some(name), Some(namespace)) = (tenant_of(ns), str_at(ns, "/metadata/name"))
            else {
                continue;
            };
            if only_ns.as_deref().is_some_and(|o| o != namespace) {
                continue;
            }
            let in_ns = |o: &&Value| str_at(o, "/metadata/namespace") == Some(namespace);
            let tenant_pods: Vec<&Value> = pods.iter().filter(in_ns).collect();
            let bot = deployments.iter().filter(in_ns).find(|d| is_bot(d));
            let bot_pods: Vec<&Value> = tenant_pods.iter().copied().filter(|p| is_bot(p)).collect();
            let (cpu, memory) = match &metrics {
                None => (None, None),
                Some(m) => pod_metrics(m, namespace),
            };
            let volumes = claims
                .iter()
                .filter(in_ns)
                .map(|c| {
                    let claim = str_at(c, "/metadata/name").unwrap_or_default().to_owned();
                    VolumeUsage {
                        purpose: annotation(c, VOLUME_PURPOSE_ANNOTATION).map(str::to_owned),
                        requested_bytes: str_at(c, "/spec/resources/requests/storage")
                            .and_then(|q| usage_quantity(q, QuantityKind::Bytes))
                            .unwrap_or(0) as u64,
                        used_bytes: used.get(&(namespace.to_owned(), claim.clone())).copied(),
                        name: claim,
                    }
                })
                .collect();
            let config_limit = config_maps
                .iter()
                .filter(in_ns)
                .find(|c| str_at(c, "/metadata/name") == Some(CONFIG_MAP))
                .and_then(|c| str_at(c, &format!("/data/{MESSAGES_PER_DAY_KEY}")))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0);
            let mut row = TenantUsage {
                name,
                namespace: namespace.to_owned(),
                state: TenantState::of(ns, bot, &bot_pods).state,
                tier: annotation(ns, TIER_ANNOTATION).map(str::to_owned),
                pods: tenant_pods.len() as u32,
                restarts: tenant_pods.iter().map(|p| pod_restarts(p)).sum(),
                cpu_millicores: cpu,
                memory_bytes: memory,
                volumes,
                messages: None,
                bot_runs: None,
                quota: QuotaUsage::default(),
                cost: None,
                daily: Vec::new(),
                warnings: Vec::new(),
                note: None,
            };
            match &row.tier {
                None => row.add_note(format!(
                    "the namespace has no {TIER_ANNOTATION} annotation, so the CPU and memory \
                     limits are unknown; provision the tenant again to set it"
                )),
                Some(t) if !platform.tiers.contains_key(t) => row.add_note(format!(
                    "tier `{t}` is not in platform.yaml (it has {}), so the CPU and memory limits \
                     are unknown",
                    platform.tier_names().join(", ")
                )),
                Some(_) => {}
            }
            row.quota.messages.limit_per_day = config_limit;
            row.quota.messages.limit_source = config_limit.map(|_| "config_map");
            rows.push(row);
        }

        let errors = read_databases(
            kubectl,
            &platform,
            &since,
            &pods,
            &mut rows,
            self.jobs.into(),
        );
        for row in &mut rows {
            let tier = row.tier.as_ref().and_then(|t| platform.tiers.get(t));
            row.quota = quota(row, tier, period_days);
            row.cost = cost(&platform, row, self.since.seconds);
            // Messages not read are not charged: the cost says so, rather
            // than passing for the whole of it.
            if row.cost.is_some() && row.messages.is_none() {
                row.add_note("its cost is without messages");
            }
            row.warnings = row
                .quota
                .at_or_above(self.warn_at)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
        }
        let total = totals(&rows);
        let failing: Vec<String> = match self.fail_at {
            None => Vec::new(),
            Some(pct) => rows
                .iter()
                .flat_map(|r| {
                    r.quota
                        .at_or_above(pct)
                        .into_iter()
                        .map(move |(limit, p)| format!("{}: {limit} at {p:.1}%", r.name))
                })
                .collect(),
        };
        let target = cluster.target();
        let report = UsageOutput {
            currency: platform.cost.currency.clone(),
            environment: target.environment().map(|e| e.name.clone()),
            context: target.context().map(str::to_owned),
            time: rfc3339(now),
            since,
            period_days,
            metrics_available: metrics.is_some(),
            warn_at: self.warn_at,
            fail_at: self.fail_at,
            tenants: rows,
            total,
            errors: errors.clone(),
        };
        match self.output {
            ReportFormat::Table => print_table(&report),
            ReportFormat::Json => print_structured(OutputFormat::Json, &report)?,
            ReportFormat::Yaml => print_structured(OutputFormat::Yaml, &report)?,
            ReportFormat::Csv => print!("{}", csv_report(&report)?),
            ReportFormat::Prometheus => {
                let unix = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                print!(
                    "{}",
                    exposition(&report, &platform, self.since.seconds, unix)
                )
            }
        }
        // The page is made from exactly what -o json prints.
        if let Some(path) = &self.report {
            let size = crate::report::write(path, &serde_json::to_value(&report)?)?;
            eprintln!("Report written to {} ({size} bytes).", path.display());
        }
        if let (Some(pct), false) = (self.fail_at, failing.is_empty()) {
            eprintln!(
                "{}",
                crate::tenant::format_problems(
                    &format!("tenants at or above --fail-at {pct}% of a limit"),
                    &failing
                )
            );
        }
        if !errors.is_empty() {
            anyhow::bail!(crate::tenant::format_problems(
                "some tenant databases could not be read; their messages and bot runs are shown as n/a",
                &errors
            ));
        }
        if !failing.is_empty() {
            return Err(crate::outcome::Exit(1).into());
        }
        Ok(())
    }
}

/// A percentage with one decimal, as every output shows it (so that what is
/// shown is what is compared with the thresholds); None when either side
/// is unknown or the limit is 0.
fn percent(used: Option<f64>, limit: Option<u64>) -> Option<f64> {
    let (used, limit) = (used?, limit.filter(|l| *l > 0)?);
    Some(crate::measure::share(used, limit as f64))
}

/// The row's uses against its limits: CPU and memory against the tier's
/// quota, each volume against its requested size, and messages per day on
/// average over the period against the limit the bot enforces (the
/// ConfigMap's, already on the row, or else the tier's).
fn quota(row: &TenantUsage, tier: Option<&Tier>, period_days: f64) -> QuotaUsage {
    let limit =
        |raw: Option<&String>, kind| raw.and_then(|q| usage_quantity(q, kind)).map(|v| v as u64);
    let cpu_limit = limit(tier.map(|t| &t.quota.cpu), QuantityKind::Cpu);
    let memory_limit = limit(tier.map(|t| &t.quota.memory), QuantityKind::Bytes);
    let volume = |purpose: &str| {
        let v = row
            .volumes
            .iter()
            .find(|v| v.purpose.as_deref() == Some(purpose));
        let limit_bytes = v.map(|v| v.requested_bytes);
        let used_bytes = v.and_then(|v| v.used_bytes);
        BytesQuota {
            used_bytes,
            limit_bytes,
            percent: percent(used_bytes.map(|u| u as f64), limit_bytes),
        }
    };
    let mut messages = row.quota.messages.clone();
    if messages.limit_per_day.is_none()
        && let Some(t) = tier
    {
        messages.limit_per_day = Some(u64::from(t.rate_limits.messages_per_day));
        messages.limit_source = Some("tier");
    }
    let average = row
        .messages
        .map(|m| (m as f64 / period_days * 10.0).round() / 10.0);
    messages.per_day_average = average;
    messages.percent = percent(
        row.messages.map(|m| m as f64 / period_days),
        messages.limit_per_day,
    );
    QuotaUsage {
        cpu: CpuQuota {
            used_millicores: row.cpu_millicores,
            limit_millicores: cpu_limit,
            percent: percent(row.cpu_millicores.map(|c| c as f64), cpu_limit),
        },
        memory: BytesQuota {
            used_bytes: row.memory_bytes,
            limit_bytes: memory_limit,
            percent: percent(row.memory_bytes.map(|b| b as f64), memory_limit),
        },
        database: volume(DATABASE_PURPOSE),
        whatsapp_auth: volume(SESSION_PURPOSE),
        messages,
    }
}

/// Runs the usage query and the daily query in every running bot, both in
/// one sqlite3 call, `jobs` at a time; fills in the rows and returns the
/// failures.
fn read_databases(
    kubectl: &Kubectl,
    platform: &Platform,
    since: &str,
    pods: &[Value],
    rows: &mut [TenantUsage],
    jobs: usize,
) -> Vec<String> {
    // The sqlite3 shell runs the statements in turn and prints each one's
    // rows as a JSON array (none for no rows): `parse_results` tells them
    // apart by their columns.
    let sql = format!(
        "{};\n{}",
        platform.admin.usage_query.trim().trim_end_matches(';'),
        platform
            .admin
            .usage_daily_query
            .trim()
            .trim_end_matches(';')
    )
    .replace(":since", &format!("'{since}'"));
    let db = platform.bot.database_path();
    let mut queue = Vec::new();
    for (i, row) in rows.iter_mut().enumerate() {
        let pod = pods.iter().find(|p| {
            str_at(p, "/metadata/namespace") == Some(row.namespace.as_str())
                && is_bot(p)
                && pod_ready(p)
        });
        let name = pod.and_then(|p| str_at(p, "/metadata/name"));
        let container = pod.and_then(|p| str_at(p, "/spec/containers/0/name"));
        match name.zip(container) {
            Some((pod, container)) => queue.push((
                i,
                Container {
                    namespace: row.namespace.clone(),
                    pod: pod.to_owned(),
                    name: container.to_owned(),
                },
            )),
            None => {
                let why = match row.state {
                    State::Running | State::Pending | State::Error => "bot not running",
                    state => state.as_str(),
                };
                row.add_note(format!("{why}; database not read"));
            }
        }
    }
    if queue.is_empty() {
        return Vec::new();
    }
    eprintln!(
        "Reading {} tenant database{}, {} at a time ...",
        queue.len(),
        if queue.len() == 1 { "" } else { "s" },
        jobs.min(queue.len())
    );
    let command = [
        platform.admin.sqlite3.as_str(),
        "-readonly",
        "-json",
        db.as_str(),
        sql.as_str(),
    ];
    // On a terminal, databases read / total and failures so far, in place.
    let progress = std::sync::Mutex::new(crate::fleet::Progress::on_terminal("usage", queue.len()));
    let results = crate::pool::run(queue, jobs, |(i, container)| {
        let out = kubectl.exec(&container, &command, Input::None).run();
        progress
            .lock()
            .expect("the progress lock")
            // A tenant with no database yet is a note, not a failure.
            .tenant_done(out.as_ref().is_err_and(|e| classify(e).is_none()));
        (i, out)
    });
    drop(progress);
    let mut errors = Vec::new();
    for (i, out) in results {
        let row = &mut rows[i];
        match out {
            Ok(bytes) => match parse_results(&bytes) {
                Ok((messages, runs, daily)) => {
                    row.messages = Some(messages);
                    row.bot_runs = Some(runs);
                    row.daily = daily;
                }
                Err(e) => errors.push(format!("{}: {e}", row.name)),
            },
            Err(e) => match classify(&e) {
                Some(note) => {
                    row.messages = Some(0);
                    row.bot_runs = Some(0);
                    row.add_note(note);
                }
                None => errors.push(format!(
                    "{}: the usage query failed: {}",
                    row.name,
                    format!("{e:#}").lines().next().unwrap_or_default()
                )),
            },
        }
    }
    errors.sort();
    errors
}

/// A query failure that just means no usage yet, as a note; None otherwise.
fn classify(e: &anyhow::Error) -> Option<String> {
    let f = e.downcast_ref::<KubectlFailure>()?;
    if f.stderr.contains("unable to open database") {
        Some("no database yet".into())
    } else if f.stderr.contains("no such table") {
        Some("database has no message tables yet".into())
    } else {
        None
    }
}

/// The output of the usage and daily queries (`sqlite3 -json`, one array
/// per statement that returned rows): the counts row has `messages` and
/// `bot_runs`, the daily rows also `date`. No output is no use.
fn parse_results(out: &[u8]) -> Result<(u64, u64, Vec<DayUsage>), String> {
    let text = String::from_utf8_lossy(out);
    let mut counts = None;
    let mut daily = None;
    for value in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let rows = value
            .ok()
            .and_then(|v| v.as_array().cloned())
            .ok_or_else(|| {
                "the usage queries did not print JSON rows; check admin.sqlite3 in platform.yaml"
                    .to_owned()
            })?;
        let is_daily = rows.first().is_some_and(|r| r.get("date").is_some());
        let slot = if is_daily { &mut daily } else { &mut counts };
        if slot.replace(rows).is_some() {
            return Err(format!(
                "the usage queries printed two results with{} a `date` column; \
                 admin.usage_query must return one row without it, admin.usage_daily_query rows with it",
                if is_daily { "" } else { "out" }
            ));
        }
    }
    let count = |row: &Value, key: &str, query: &str| match row.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| format!("column `{key}` of {query} is not a count: {v}")),
    };
    let first = counts
        .and_then(|rows| rows.into_iter().next())
        .unwrap_or(Value::Null);
    let (messages, runs) = (
        count(&first, "messages", "the usage query")?,
        count(&first, "bot_runs", "the usage query")?,
    );
    let mut days = Vec::new();
    for row in daily.unwrap_or_default() {
        let date = row
            .get("date")
            .and_then(Value::as_str)
            .filter(|d| is_iso_date(d))
            .ok_or_else(|| {
                format!(
                    "column `date` of admin.usage_daily_query is not a date such as 2026-11-20: {}",
                    row.get("date").unwrap_or(&Value::Null)
                )
            })?;
        let day = DayUsage {
            date: date.to_owned(),
            messages: count(&row, "messages", "admin.usage_daily_query")?,
            bot_runs: count(&row, "bot_runs", "admin.usage_daily_query")?,
        };
        if day.messages > 0 || day.bot_runs > 0 {
            days.push(day);
        }
    }
    days.sort_by(|a, b| a.date.cmp(&b.date));
    Ok((messages, runs, days))
}

/// `YYYY-MM-DD`, digits where digits belong.
fn is_iso_date(d: &str) -> bool {
    d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

fn sum_known(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.fold(None, |acc, v| match (acc, v) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    })
}

/// Totals are exact sums of the rows; a column no row knows stays unknown.
pub fn totals(rows: &[TenantUsage]) -> Totals {
    Totals {
        tenants: rows.len() as u32,
        pods: rows.iter().map(|r| r.pods).sum(),
        restarts: rows.iter().map(|r| r.restarts).sum(),
        cpu_millicores: sum_known(rows.iter().map(|r| r.cpu_millicores)),
        memory_bytes: sum_known(rows.iter().map(|r| r.memory_bytes)),
        requested_bytes: rows
            .iter()
            .flat_map(|r| &r.volumes)
            .map(|v| v.requested_bytes)
            .sum(),
        used_bytes: sum_known(rows.iter().flat_map(|r| &r.volumes).map(|v| v.used_bytes)),
        messages: sum_known(rows.iter().map(|r| r.messages)),
        bot_runs: sum_known(rows.iter().map(|r| r.bot_runs)),
        cost: sum_known(rows.iter().map(|r| r.cost.map(|c| c.total.0))).map(Money),
    }
}

/// The row's cost over the period by platform.yaml's cost model; None when
/// its tier is unknown. Messages not read (bot stopped) count as none.
fn cost(platform: &Platform, row: &TenantUsage, period_seconds: u64) -> Option<Cost> {
    let name = row.tier.as_deref()?;
    let tier = platform.tiers.get(name)?;
    let storage = row.volumes.iter().map(|v| v.requested_bytes).sum();
    platform.cost.cost(
        name,
        tier,
        storage,
        row.messages.unwrap_or(0),
        period_seconds,
    )
}

/// `3.8%`, or `?%` when unknown.
fn show_percent(p: Option<f64>) -> String {
    p.map_or_else(|| "?%".to_owned(), |p| format!("{p:.1}%"))
}

fn print_table(report: &UsageOutput) {
    let (rows, total) = (&report.tenants, &report.total);
    let opt = |v: Option<u64>, f: &dyn Fn(u64) -> String| v.map_or_else(|| "n/a".to_owned(), f);
    let cpu = |m: u64| format!("{m}m");
    let bytes = |b: u64| format_bytes(u128::from(b));
    // A use and its percentage; n/a alone when the use itself is unknown.
    let with_percent = |used: String, p: Option<f64>| {
        if used == "n/a" {
            used
        } else {
            format!("{used} {}", show_percent(p))
        }
    };
    let volume = |r: &TenantUsage, purpose: &str, q: &BytesQuota| {
        r.volumes
            .iter()
            .find(|v| v.purpose.as_deref() == Some(purpose))
            .map_or_else(
                || "-".to_owned(),
                |v| {
                    format!(
                        "{}/{} {}",
                        v.used_bytes.map_or_else(|| "?".to_owned(), bytes),
                        bytes(v.requested_bytes),
                        show_percent(q.percent)
                    )
                },
            )
    };
    let mut cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let q = &r.quota;
            vec![
                r.name.clone(),
                r.state.to_string(),
                r.tier.clone().unwrap_or_else(|| "?".to_owned()),
                r.pods.to_string(),
                r.restarts.to_string(),
                with_percent(opt(r.cpu_millicores, &cpu), q.cpu.percent),
                with_percent(opt(r.memory_bytes, &bytes), q.memory.percent),
                volume(r, DATABASE_PURPOSE, &q.database),
                volume(r, SESSION_PURPOSE, &q.whatsapp_auth),
                opt(r.messages, &|n| n.to_string()),
                with_percent(
                    q.messages
                        .per_day_average
                        .map_or_else(|| "n/a".to_owned(), |a| format!("{a:.1}")),
                    q.messages.percent,
                ),
                opt(r.bot_runs, &|n| n.to_string()),
                r.cost
                    .map_or_else(|| "?".to_owned(), |c| c.total.to_string()),
                r.warnings.join(","),
            ]
        })
        .collect();
    cells.push(vec![
        format!("TOTAL ({})", total.tenants),
        String::new(),
        String::new(),
        total.pods.to_string(),
        total.restarts.to_string(),
        opt(total.cpu_millicores, &cpu),
        opt(total.memory_bytes, &bytes),
        format!(
            "{}/{}",
            total.used_bytes.map_or_else(|| "?".to_owned(), bytes),
            bytes(total.requested_bytes)
        ),
        String::new(),
        opt(total.messages, &|n| n.to_string()),
        String::new(),
        opt(total.bot_runs, &|n| n.to_string()),
        total.cost.map_or_else(|| "?".to_owned(), |c| c.to_string()),
        String::new(),
    ]);
    let warn = format!("WARN (>={}%)", report.warn_at);
    let cost = format!("COST ({})", report.currency);
    print!(
        "{}",
        table(
            &[
                "TENANT",
                "STATE",
                "TIER",
                "PODS",
                "RESTARTS",
                "CPU",
                "MEMORY",
                "DATABASE USED/REQ",
                "WHATSAPP USED/REQ",
                "MESSAGES",
                "AVG PER DAY",
                "BOT RUNS",
                &cost,
                &warn,
            ],
            &cells
        )
    );
    println!(
        "Messages, bot runs and cost since {}. The TOTAL storage column covers both volumes.",
        report.since
    );
    println!(
        "Percentages: CPU and memory of the tier's quota; each volume of its requested size; AVG PER DAY,\n\
         the period's messages per day on average (a busier single day is not visible), of the tenant's\n\
         messages-per-day limit. ?% is unknown, and never counts as reached.\n\
         COST: platform.yaml's monthly prices (tier, storage requested, the tier's CPU and memory\n\
         requests) times the period's days / 30, plus its messages; ? for a tier it does not price."
    );
    // A total that leaves tenants out says so.
    let unpriced = rows.iter().filter(|r| r.cost.is_none()).count();
    if unpriced > 0 {
        println!(
            "The TOTAL cost leaves out {unpriced} tenant{} whose tier platform.yaml does not price (cost ?).",
            if unpriced == 1 { "" } else { "s" }
        );
    }
    if !report.metrics_available {
        println!(
            "CPU and memory: n/a, the cluster serves no metrics API (metrics-server is not installed)."
        );
    }
    for r in rows {
        if let Some(note) = &r.note {
            println!("{}: {note}", r.name);
        }
    }
}

type Samples<'a> = Vec<(Vec<(&'static str, &'a str)>, f64)>;

/// The report as Prometheus metrics (text format 0.0.4): one family per
/// figure, each tenant's samples labelled `tenant` and `tier` (empty for a
/// namespace without a tier). An unknown value has no sample rather than a
/// made-up 0. Counts over the period are gauges: the period slides, so they
/// are not monotonic counters (and carry no `_total` suffix).
fn exposition(
    report: &UsageOutput,
    platform: &Platform,
    period_seconds: u64,
    unix_time: u64,
) -> String {
    let mut e = Exposition::default();
    let gauge = MetricType::Gauge;
    let tenants = &report.tenants;
    let per_tenant = |value: &dyn Fn(&TenantUsage) -> Option<f64>| -> Samples<'_> {
        tenants
            .iter()
            .filter_map(|r| value(r).map(|v| (labels(r), v)))
            .collect()
    };
    let tier_request = |r: &TenantUsage, kind: QuantityKind| {
        let tier = platform.tiers.get(r.tier.as_deref()?)?;
        let raw = match kind {
            QuantityKind::Cpu => &tier.bot.cpu_request,
            QuantityKind::Bytes => &tier.bot.memory_request,
        };
        usage_quantity(raw, kind)
    };
    let currency = report.currency.as_str();
    let one = |v: f64| -> Samples<'_> { vec![(Vec::new(), v)] };

    e.family(
        "mla_usage_period_seconds",
        gauge,
        "Length of the period (admin usage --since) that messages, bot runs and costs cover.",
        &one(period_seconds as f64),
    );
    e.family(
        "mla_usage_timestamp_seconds",
        gauge,
        "When admin usage read the cluster, in seconds since the Unix epoch.",
        &one(unix_time as f64),
    );
    e.family(
        "mla_usage_database_errors",
        gauge,
        "Tenants whose database could not be read in this run (their messages and bot runs are missing).",
        &one(report.errors.len() as f64),
    );
    e.family(
        "mla_fleet_tenants",
        gauge,
        "Tenants on the cluster.",
        &one(tenants.len() as f64),
    );
    if let Some(total) = report.total.cost {
        e.family(
            "mla_fleet_cost",
            gauge,
            "Cost of all tenants over the period, in the currency label: the exact sum of mla_tenant_cost.",
            &[(vec![("currency", currency)], money(total))],
        );
    }
    let info: Samples<'_> = tenants
        .iter()
        .map(|r| {
            let mut l = labels(r);
            l.push(("state", r.state.as_str()));
            (l, 1.0)
        })
        .collect();
    e.family(
        "mla_tenant_info",
        gauge,
        "1 for each tenant; its state (as admin list shows it) is the state label.",
        &info,
    );
    e.family(
        "mla_tenant_up",
        gauge,
        "1 when the tenant's bot is running, else 0.",
        &per_tenant(&|r| Some(if r.state == State::Running { 1.0 } else { 0.0 })),
    );
    e.family(
        "mla_tenant_pods",
        gauge,
        "Pods in the tenant's namespace.",
        &per_tenant(&|r| Some(f64::from(r.pods))),
    );
    e.family(
        "mla_tenant_restarts",
        gauge,
        "Container restarts of the tenant's current pods.",
        &per_tenant(&|r| Some(r.restarts as f64)),
    );
    e.family(
        "mla_tenant_messages",
        gauge,
        "Messages in the period (mla_usage_period_seconds); absent when the database was not read.",
        &per_tenant(&|r| r.messages.map(|m| m as f64)),
    );
    e.family(
        "mla_tenant_bot_runs",
        gauge,
        "Bot runs in the period (mla_usage_period_seconds); absent when the database was not read.",
        &per_tenant(&|r| r.bot_runs.map(|m| m as f64)),
    );
    e.family(
        "mla_tenant_cpu_usage_cores",
        gauge,
        "CPU in use by the tenant's pods (metrics API); absent without one.",
        &per_tenant(&|r| r.cpu_millicores.map(|m| m as f64 / 1000.0)),
    );
    e.family(
        "mla_tenant_cpu_requests_cores",
        gauge,
        "CPU the tenant's tier requests for its bot (what the cost charges).",
        &per_tenant(&|r| tier_request(r, QuantityKind::Cpu).map(|m| m as f64 / 1000.0)),
    );
    e.family(
        "mla_tenant_cpu_quota_cores",
        gauge,
        "CPU quota of the tenant's namespace (its tier's).",
        &per_tenant(&|r| r.quota.cpu.limit_millicores.map(|m| m as f64 / 1000.0)),
    );
    e.family(
        "mla_tenant_memory_usage_bytes",
        gauge,
        "Memory in use by the tenant's pods (metrics API); absent without one.",
        &per_tenant(&|r| r.memory_bytes.map(|b| b as f64)),
    );
    e.family(
        "mla_tenant_memory_requests_bytes",
        gauge,
        "Memory the tenant's tier requests for its bot (what the cost charges).",
        &per_tenant(&|r| tier_request(r, QuantityKind::Bytes).map(|b| b as f64)),
    );
    e.family(
        "mla_tenant_memory_quota_bytes",
        gauge,
        "Memory quota of the tenant's namespace (its tier's).",
        &per_tenant(&|r| r.quota.memory.limit_bytes.map(|b| b as f64)),
    );
    e.family(
        "mla_tenant_storage_requested_bytes",
        gauge,
        "Storage the tenant's volume claims request (database and WhatsApp session).",
        &per_tenant(&|r| Some(r.volumes.iter().map(|v| v.requested_bytes).sum::<u64>() as f64)),
    );
    e.family(
        "mla_tenant_storage_used_bytes",
        gauge,
        "Storage used on the tenant's volumes (kubelet); absent when no running pod mounts them.",
        &per_tenant(&|r| sum_known(r.volumes.iter().map(|v| v.used_bytes)).map(|b| b as f64)),
    );
    e.family(
        "mla_tenant_quota_use_ratio",
        gauge,
        "Highest use of any of the tenant's limits (CPU, memory, each volume, messages per day on average); 1 is at the limit.",
        &per_tenant(&|r| {
            r.quota
                .percents()
                .into_iter()
                .filter_map(|(_, p)| p)
                .map(|p| (p * 10.0).round() / 1000.0)
                .reduce(f64::max)
        }),
    );
    let costs: Samples<'_> = tenants
        .iter()
        .filter_map(|r| {
            let mut l = labels(r);
            l.push(("currency", currency));
            r.cost.map(|c| (l, money(c.total)))
        })
        .collect();
    e.family(
        "mla_tenant_cost",
        gauge,
        "The tenant's cost over the period by platform.yaml's cost model, in the currency label; absent for a tier it does not price.",
        &costs,
    );
    e.into_text()
}

/// A tenant's `tenant` and `tier` labels.
fn labels(r: &TenantUsage) -> Vec<(&'static str, &str)> {
    vec![
        ("tenant", r.name.as_str()),
        ("tier", r.tier.as_deref().unwrap_or("")),
    ]
}

/// An amount in the currency, e.g. 550.75.
fn money(m: Money) -> f64 {
    m.0 as f64 / 100.0
}

/// The CSV columns, in order; one row per tenant, no total row.
const CSV_COLUMNS: [&str; 34] = [
    "period_start",
    "period_end",
    "tenant",
    "namespace",
    "state",
    "tier",
    "pods",
    "restarts",
    "cpu_millicores",
    "cpu_limit_millicores",
    "cpu_percent",
    "memory_bytes",
    "memory_limit_bytes",
    "memory_percent",
    "database_used_bytes",
    "database_requested_bytes",
    "database_percent",
    "whatsapp_auth_used_bytes",
    "whatsapp_auth_requested_bytes",
    "whatsapp_auth_percent",
    "messages",
    "messages_per_day_average",
    "messages_per_day_limit",
    "messages_percent",
    "bot_runs",
    "warnings",
    "note",
    "currency",
    "cost_base",
    "cost_storage",
    "cost_cpu",
    "cost_memory",
    "cost_messages",
    "cost_total",
];

/// The monthly report: raw numbers, an empty field for unknown.
fn csv_report(report: &UsageOutput) -> anyhow::Result<String> {
    let (rows, since, until) = (&report.tenants, &report.since, &report.time);
    let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let money = |r: &TenantUsage, part: fn(&Cost) -> Money| {
        r.cost.map(|c| part(&c).to_string()).unwrap_or_default()
    };
    let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    let records: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let q = &r.quota;
            vec![
                since.to_owned(),
                until.to_owned(),
                r.name.clone(),
                r.namespace.clone(),
                r.state.to_string(),
                r.tier.clone().unwrap_or_default(),
                r.pods.to_string(),
                r.restarts.to_string(),
                n(q.cpu.used_millicores),
                n(q.cpu.limit_millicores),
                f(q.cpu.percent),
                n(q.memory.used_bytes),
                n(q.memory.limit_bytes),
                f(q.memory.percent),
                n(q.database.used_bytes),
                n(q.database.limit_bytes),
                f(q.database.percent),
                n(q.whatsapp_auth.used_bytes),
                n(q.whatsapp_auth.limit_bytes),
                f(q.whatsapp_auth.percent),
                n(r.messages),
                f(q.messages.per_day_average),
                n(q.messages.limit_per_day),
                f(q.messages.percent),
                n(r.bot_runs),
                r.warnings.join(" "),
                r.note.clone().unwrap_or_default(),
                report.currency.clone(),
                money(r, |c| c.base),
                money(r, |c| c.storage),
                money(r, |c| c.cpu),
                money(r, |c| c.memory),
                money(r, |c| c.messages),
                money(r, |c| c.total),
            ]
        })
        .collect();
    csv_text(&CSV_COLUMNS, &records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_sqlite_json() {
        assert_eq!(parse_results(b""), Ok((0, 0, vec![])));
        assert_eq!(
            parse_results(b"[{\"messages\":12,\"bot_runs\":3}]\n"),
            Ok((12, 3, vec![]))
        );
        assert_eq!(
            parse_results(b"[{\"messages\":null,\"bot_runs\":\"4\"}]"),
            Ok((0, 4, vec![]))
        );
        assert!(parse_results(b"12|3").is_err());
        assert!(parse_results(b"[{\"messages\":\"many\"}]").is_err());
    }

    fn day(date: &str, messages: u64, bot_runs: u64) -> DayUsage {
        DayUsage {
            date: date.to_owned(),
            messages,
            bot_runs,
        }
    }

    /// The two results of one sqlite3 call are told apart by their
    /// columns, in either order, with the daily one absent when the period
    /// had no use (sqlite3 prints nothing for no rows); days without use
    /// are left out and the rest come oldest first.
    #[test]
    fn counts_and_daily_rows_from_one_call() {
        let both = b"[{\"messages\":3,\"bot_runs\":1}]\n\
            [{\"date\":\"2026-11-21\",\"messages\":2,\"bot_runs\":0},\n\
            {\"date\":\"2026-11-20\",\"messages\":1,\"bot_runs\":1},\n\
            {\"date\":\"2026-11-22\",\"messages\":0,\"bot_runs\":0}]\n";
        let expected = vec![day("2026-11-20", 1, 1), day("2026-11-21", 2, 0)];
        assert_eq!(parse_results(both), Ok((3, 1, expected.clone())));
        let reversed = b"[{\"date\":\"2026-11-20\",\"messages\":1,\"bot_runs\":1},\
            {\"date\":\"2026-11-21\",\"messages\":\"2\",\"bot_runs\":null}]\n\
            [{\"messages\":3,\"bot_runs\":1}]";
        assert_eq!(parse_results(reversed), Ok((3, 1, expected)));
        let two_counts = b"[{\"messages\":3}]\n[{\"messages\":4}]";
        let err = parse_results(two_counts).unwrap_err();
        assert!(err.contains("two results without a `date` column"), "{err}");
        let bad_date = b"[{\"messages\":3}]\n[{\"date\":\"20 Nov\",\"messages\":1}]";
        let err = parse_results(bad_date).unwrap_err();
        assert!(err.contains("not a date such as 2026-11-20"), "{err}");
        assert!(
            is_iso_date("2026-11-20") && !is_iso_date("2026-1-200") && !is_iso_date("2026/11/20")
        );
    }

    #[test]
    fn totals_sum_known_values() {
        assert_eq!(sum_known([None, None].into_iter()), None);
        assert_eq!(sum_known([Some(2), None, Some(3)].into_iter()), Some(5));
    }

    fn root() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn platform() -> Platform {
        Platform::load(&root().join("platform.yaml").display().to_string()).unwrap()
    }

    fn row(messages: Option<u64>, config_limit: Option<u64>) -> TenantUsage {
        let volume = |purpose: &str, requested, used| VolumeUsage {
            name: purpose.to_owned(),
            purpose: Some(purpose.to_owned()),
            requested_bytes: requested,
            used_bytes: used,
        };
        let mut row = TenantUsage {
            name: "t".into(),
            namespace: "tenant-t".into(),
            state: State::Running,
            tier: Some("small".into()),
            pods: 1,
            restarts: 0,
            cpu_millicores: Some(250),
            memory_bytes: Some(400 << 20),
            volumes: vec![
                volume(DATABASE_PURPOSE, 1 << 30, Some(3 << 28)),
                volume(SESSION_PURPOSE, 256 << 20, None),
            ],
            messages,
            bot_runs: Some(1),
            quota: QuotaUsage::default(),
            cost: None,
            daily: Vec::new(),
            warnings: Vec::new(),
            note: None,
        };
        row.quota.messages.limit_per_day = config_limit;
        row.quota.messages.limit_source = config_limit.map(|_| "config_map");
        row
    }

    /// Each use is compared with its own limit: the small tier's quota is
    /// 1 CPU and 512Mi, its messages_per_day 5000.
    #[test]
    fn uses_against_the_tiers_limits() {
        let platform = platform();
        let q = quota(
            &row(Some(3000 * 30), None),
            platform.tiers.get("small"),
            30.0,
        );
        assert_eq!(
            (q.cpu.limit_millicores, q.cpu.percent),
            (Some(1000), Some(25.0))
        );
        assert_eq!(
            (q.memory.limit_bytes, q.memory.percent),
            (Some(512 << 20), Some(78.1))
        );
        assert_eq!(q.database.percent, Some(75.0));
        assert_eq!(
            q.whatsapp_auth.percent, None,
            "an unmounted volume is unknown"
        );
        assert_eq!(
            (
                q.messages.per_day_average,
                q.messages.limit_per_day,
                q.messages.percent
            ),
            (Some(3000.0), Some(5000), Some(60.0))
        );
        assert_eq!(q.messages.limit_source, Some("tier"));
        let medium = quota(
            &row(Some(3000 * 30), None),
            platform.tiers.get("medium"),
            30.0,
        );
        assert_eq!(medium.cpu.percent, Some(12.5));
        assert_eq!(medium.messages.percent, Some(15.0));
    }

    /// The bot's own limit (its ConfigMap, with the tenant's override) wins
    /// over the tier's, and still counts when the tier is unknown.
    #[test]
    fn the_config_maps_limit_wins_and_an_unknown_tier_is_unknown() {
        let platform = platform();
        let q = quota(&row(Some(90), Some(10)), platform.tiers.get("small"), 1.0);
        assert_eq!(q.messages.percent, Some(900.0));
        assert_eq!(q.messages.limit_source, Some("config_map"));
        let unknown = quota(&row(Some(90), None), None, 1.0);
        assert_eq!(unknown.cpu.percent, None);
        assert_eq!(unknown.memory.percent, None);
        assert_eq!(unknown.messages.percent, None);
        assert_eq!(
            unknown.database.percent,
            Some(75.0),
            "a volume's own size is known"
        );
        assert!(unknown.at_or_above(1).iter().all(|(l, _)| *l == "database"));
        let unread = quota(&row(None, Some(10)), None, 1.0);
        assert_eq!(
            (unread.messages.per_day_average, unread.messages.percent),
            (None, None)
        );
    }

    /// Thresholds compare the shown (rounded) percentage and include it.
    #[test]
    fn thresholds_are_inclusive_of_the_shown_value() {
        assert_eq!(percent(Some(7999.6), Some(10_000)), Some(80.0));
        assert_eq!(percent(Some(7994.9), Some(10_000)), Some(79.9));
        assert_eq!(percent(Some(1.0), Some(0)), None);
        let mut q = QuotaUsage::default();
        q.memory.percent = Some(80.0);
        q.cpu.percent = Some(79.9);
        assert_eq!(q.at_or_above(80), vec![("memory", 80.0)]);
        assert_eq!(q.at_or_above(81), vec![]);
    }

    /// The key this module reads is the one the ConfigMap template writes,
    /// with the tenant's override in it.
    #[test]
    fn the_config_map_carries_the_effective_daily_limit() {
        use crate::render::{SecretValues, Templates};
        use crate::tenant::{RateLimitOverrides, TenantName, TenantSpec, TenantValues};
        let platform = platform();
        let values = TenantValues {
            mla_name: Some("MLA".into()),
            constituency: Some("C".into()),
            whatsapp_number: Some("+917000000001".into()),
            domains: vec!["t.example.in".into()],
            tier: Some("medium".into()),
            rate_limits: RateLimitOverrides {
                messages_per_day: Some(1234),
                ..Default::default()
            },
            ..Default::default()
        };
        let spec = TenantSpec::resolve(
            &TenantName::parse("t").unwrap(),
            &values,
            &platform.tier_names(),
            &platform.default_tier,
        )
        .unwrap();
        let manifests = Templates::load(&root().join("templates"))
            .unwrap()
            .render_tenant(&spec, &platform, &SecretValues::Redacted)
            .unwrap();
        let config_map = manifests
            .iter()
            .map(|m| &m.object)
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == CONFIG_MAP)
            .expect("a ConfigMap named bot-config");
        assert_eq!(config_map["data"][MESSAGES_PER_DAY_KEY], "1234");
        assert!(
            config_map["metadata"]["labels"].get(TENANT_LABEL).is_some(),
            "read by the tenant label"
        );
    }
}
