//! Platform-wide settings shared by every tenant (`platform.yaml` at the
//! repository root): bot image, ingress, storage, network ranges, tiers
//! and what they cost. Nothing tenant-specific lives here and nothing here
//! lives in code.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub bot: Bot,
    pub ingress: Ingress,
    pub storage: Storage,
    pub network: Network,
    pub admin: Admin,
    pub default_tier: String,
    pub tiers: BTreeMap<String, Tier>,
    pub cost: CostModel,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bot {
    pub image: String,
    pub port: u16,
    pub run_as_user: u32,
    pub liveness_path: String,
    pub readiness_path: String,
    /// Mount path of the data volume, which holds the SQLite database.
    pub data_dir: String,
    /// File name of the database inside `data_dir`.
    pub database_file: String,
    /// Mount path of the WhatsApp auth session volume.
    pub whatsapp_auth_dir: String,
    /// Where the generated credentials are mounted, one file per key.
    pub credentials_dir: String,
    /// Keys of the bot's Secret; each gets 32 random bytes, hex-encoded.
    pub generated_secrets: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// The SQLite shell in the bot image.
    pub sqlite3: String,
    /// `admin usage`'s query; `:since` is the period start.
    pub usage_query: String,
    /// `admin usage`'s messages and bot runs per UTC day since `:since`,
    /// run in the same sqlite3 call as `usage_query`.
    pub usage_daily_query: String,
    /// kubectl duration for waits on pods that admin commands start or stop.
    pub pod_timeout: crate::clock::KubeDuration,
    /// Image of `admin verify --network`'s probe pod (needs nc and nslookup).
    pub probe_image: String,
}

impl Bot {
    /// The database's absolute path in the bot's container.
    pub fn database_path(&self) -> String {
        format!(
            "{}/{}",
            self.data_dir.trim_end_matches('/'),
            self.database_file
        )
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    pub class_name: String,
    /// Namespace of the ingress controller, matched by its immutable
    /// `kubernetes.io/metadata.name` label.
    pub controller_namespace: String,
    pub cluster_issuer: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// None selects the cluster's default StorageClass.
    pub class_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub dns_namespace: String,
    pub dns_pod_labels: BTreeMap<String, String>,
    /// Pod, service and node ranges: never reachable by the bot's HTTPS egress.
    pub cluster_cidrs: Vec<String>,
    /// Cloud metadata endpoints: never reachable either.
    pub metadata_cidrs: Vec<String>,
    /// NodeLocal DNSCache's address, which pods query instead of cluster DNS.
    pub node_local_dns: Option<std::net::Ipv4Addr>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub bot: BotResources,
    pub quota: Quota,
    pub storage: TierStorage,
    pub rate_limits: RateLimits,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BotResources {
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierStorage {
    pub database: String,
    pub whatsapp_auth: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub messages_per_minute_per_user: u32,
    pub messages_per_day: u32,
}

/// What tenants cost (`admin usage`'s COST): per tier a monthly base, plus
/// what the tenant requests (storage, and the tier's CPU and memory) at a
/// monthly price per unit, plus a price per 1,000 messages. Prices are in
/// `currency` with at most 4 decimals; costs are kept in hundredths.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// An ISO 4217 code such as INR.
    pub currency: String,
    /// Every tier's price; a tier without one is an error.
    pub tiers: BTreeMap<String, TierPrice>,
    pub per_gib_storage_requested_month: f64,
    pub per_cpu_core_requested_month: f64,
    pub per_gib_memory_requested_month: f64,
    pub per_1000_messages: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    pub monthly: f64,
}

/// An amount in hundredths of the cost model's currency (paise for INR):
/// integers, so that totals are exact sums of what is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub u64);

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// As a JSON number in the currency, e.g. `550.75`.
impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / 100.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

/// A tenant's cost over a period, each part rounded once to hundredths
/// (half up), the total their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub base: Money,
    pub storage: Money,
    pub cpu: Money,
    pub memory: Money,
    pub messages: Money,
    pub total: Money,
}

/// The month monthly prices are for: 30 days, so that `--since 30d` is
/// exactly one month's price.
pub const MONTH_SECONDS: u64 = 30 * 86_400;
const GIB: u128 = 1 << 30;

/// A price in ten-thousandths of the currency; None unless it is a finite,
/// non-negative number with at most 4 decimals and below 10 million.
fn price_units(price: f64) -> Option<u128> {
    let scaled = price * 10_000.0;
    let units = scaled.round();
    (price.is_finite() && (0.0..1e7).contains(&price) && (scaled - units).abs() < 1e-6)
        .then_some(units as u128)
}

/// `numerator / denominator` rounded half up, saturating.
fn rounded(numerator: u128, denominator: u128) -> u64 {
    let q = numerator.saturating_add(denominator / 2) / denominator;
    u64::try_from(q).unwrap_or(u64::MAX)
}

impl CostModel {
    /// The cost of a tenant of `tier` (None if the model has no price for
    /// it) over `period_seconds`: monthly prices prorated to the period,
    /// CPU and memory at the tier's bot requests, storage at what its
    /// volume claims request, and its messages of the period.
    pub fn cost(
        &self,
        tier_name: &str,
        tier: &Tier,
        storage_requested_bytes: u64,
        messages: u64,
        period_seconds: u64,
    ) -> Option<Cost> {
        let monthly = price_units(self.tiers.get(tier_name)?.monthly)?;
        let per = |price: f64| price_units(price).unwrap_or(0);
        let cpu_millicores = usage_quantity(&tier.bot.cpu_request, QuantityKind::Cpu)?;
        let memory_bytes = usage_quantity(&tier.bot.memory_request, QuantityKind::Bytes)?;
        let period = u128::from(period_seconds);
        // Ten-thousandths of the currency to hundredths: / 100.
        let month = 100 * u128::from(MONTH_SECONDS);
        let monthly_share = |units: u128, amount: u128, per_amount: u128| {
            rounded(
                units.saturating_mul(amount).saturating_mul(period),
                month * per_amount,
            )
        };
        let base = Money(monthly_share(monthly, 1, 1));
        let storage = Money(monthly_share(
            per(self.per_gib_storage_requested_month),
            u128::from(storage_requested_bytes),
            GIB,
        ));
        let cpu = Money(monthly_share(
            per(self.per_cpu_core_requested_month),
            cpu_millicores,
            1000,
        ));
        let memory = Money(monthly_share(
            per(self.per_gib_memory_requested_month),
            memory_bytes,
            GIB,
        ));
        let messages = Money(rounded(
            per(self.per_1000_messages).saturating_mul(u128::from(messages)),
            100 * 1000,
        ));
        Some(Cost {
            base,
            storage,
            cpu,
            memory,
            messages,
            total: [base, storage, cpu, memory, messages].into_iter().sum(),
        })
    }

    fn problems(&self, tiers: &BTreeMap<String, Tier>) -> Vec<String> {
        let mut p = Vec::new();
        let c = &self.currency;
        if c.len() != 3 || !c.chars().all(|c| c.is_ascii_uppercase()) {
            p.push(format!(
                "cost.currency `{c}` is not an ISO 4217 code such as INR"
            ));
        }
        let mut price = |field: String, value: f64| {
            if price_units(value).is_none() {
                p.push(format!(
                    "{field}: {value} is not a price; write a number from 0 to 9999999.9999 with at most 4 decimals, in cost.currency"
                ));
            }
        };
        for (field, value) in [
            (
                "per_gib_storage_requested_month",
                self.per_gib_storage_requested_month,
            ),
            (
                "per_cpu_core_requested_month",
                self.per_cpu_core_requested_month,
            ),
            (
                "per_gib_memory_requested_month",
                self.per_gib_memory_requested_month,
            ),
            ("per_1000_messages", self.per_1000_messages),
        ] {
            price(format!("cost.{field}"), value);
        }
        for (name, tier) in &self.tiers {
            price(format!("cost.tiers.{name}.monthly"), tier.monthly);
        }
        for name in tiers.keys() {
            if !self.tiers.contains_key(name) {
                p.push(format!(
                    "cost.tiers has no price for tier `{name}`; add `{name}: {{monthly: ...}}` under cost.tiers"
                ));
            }
        }
        for name in self.tiers.keys() {
            if !tiers.contains_key(name) {
                p.push(format!(
                    "cost.tiers.{name} prices a tier that is not in tiers ({})",
                    tiers
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        p
    }
}

impl Platform {
    pub fn load(path: &str) -> anyhow::Result<Platform> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read the platform settings {path}; run from the repository (it is committed there) or pass --platform FILE")
        })?;
        Platform::parse(path, &text)
    }

    pub fn parse(path: &str, text: &str) -> anyhow::Result<Platform> {
        let platform: Platform = serde_saphyr::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{path} is not valid platform settings: {}",
                crate::tenant::yaml_error(&e)
            )
        })?;
        let problems = platform.problems();
        if !problems.is_empty() {
            bail!(crate::tenant::format_problems(
                &format!("{path} has invalid platform settings"),
                &problems
            ));
        }
        Ok(platform)
    }

    pub fn tier_names(&self) -> Vec<&str> {
        self.tiers.keys().map(String::as_str).collect()
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.bot.image.is_empty() || self.bot.image.contains(char::is_whitespace) {
            p.push(format!(
                "bot.image `{}` is not an image reference",
                self.bot.image
            ));
        } else if !pinned_by_digest(&self.bot.image) {
            p.push(format!(
                "bot.image `{}` is not pinned by digest; write it as NAME:TAG@sha256:<64 hex digits> \
                 (`crane digest NAME:TAG` prints the digest), so that what runs is exactly what was released",
                self.bot.image
            ));
        }
        if self.bot.port < 1024 {
            p.push(format!(
                "bot.port {} is privileged; the bot runs as non-root and needs a port >= 1024",
                self.bot.port
            ));
        }
        if self.bot.run_as_user == 0 {
            p.push("bot.run_as_user 0 is root; the restricted profile forbids it".into());
        }
        for key in &self.bot.generated_secrets {
            let ok = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                p.push(format!(
                    "bot.generated_secrets: `{key}` is not a valid Secret key"
                ));
            }
        }
        for (key, dir) in [
            ("bot.data_dir", &self.bot.data_dir),
            ("bot.whatsapp_auth_dir", &self.bot.whatsapp_auth_dir),
            ("bot.credentials_dir", &self.bot.credentials_dir),
        ] {
            let plain = dir.starts_with('/')
                && dir.len() > 1
                && !dir.ends_with('/')
                && dir.split('/').skip(1).all(|c| {
                    !c.is_empty() && c != "." && c != ".." && !c.contains(char::is_whitespace)
                });
            if !plain {
                p.push(format!("{key} `{dir}` must be an absolute directory such as /data, not / and without spaces or `..`"));
            }
        }
        let dirs = [
            ("bot.data_dir", &self.bot.data_dir),
            ("bot.whatsapp_auth_dir", &self.bot.whatsapp_auth_dir),
            ("bot.credentials_dir", &self.bot.credentials_dir),
        ];
        for (i, (a_key, a)) in dirs.iter().enumerate() {
            for (b_key, b) in &dirs[i + 1..] {
                if a == b || b.starts_with(&format!("{a}/")) || a.starts_with(&format!("{b}/")) {
                    p.push(format!(
                        "{a_key} and {b_key} must be separate directories, neither inside the other"
                    ));
                }
            }
        }
        if let Some(ip) = self.network.node_local_dns
            && self
                .network
                .metadata_cidrs
                .iter()
                .filter_map(|c| parse_cidr(c).ok())
                .any(|net| net.contains(&std::net::IpAddr::V4(ip)))
        {
            p.push(format!(
                "network.node_local_dns {ip} is inside network.metadata_cidrs; NodeLocal DNSCache listens on its own address, e.g. 169.254.20.10"
            ));
        }
        let file = &self.bot.database_file;
        if file.is_empty()
            || file.contains('/')
            || file.starts_with('.')
            || file.contains(char::is_whitespace)
        {
            p.push(format!(
                "bot.database_file `{file}` must be a plain file name such as bot.sqlite3"
            ));
        }
        if !self.admin.usage_query.contains(":since") {
            p.push("admin.usage_query must use `:since`, the start of the period".into());
        }
        if !self.admin.usage_daily_query.contains(":since") {
            p.push("admin.usage_daily_query must use `:since`, the start of the period".into());
        }
        p.extend(self.cost.problems(&self.tiers));
        if self.bot.generated_secrets.is_empty() {
            p.push("bot.generated_secrets is empty; the bot needs at least one credential".into());
        }
        for cidr in self
            .network
            .cluster_cidrs
            .iter()
            .chain(&self.network.metadata_cidrs)
        {
            if let Err(e) = parse_cidr(cidr) {
                p.push(format!("network: {e}"));
            }
        }
        if !self.tiers.contains_key(&self.default_tier) {
            p.push(format!(
                "default_tier `{}` is not one of the tiers ({})",
                self.default_tier,
                self.tier_names().join(", ")
            ));
        }
        for (name, tier) in &self.tiers {
            let mut q = |field: &str, value: &str, kind: QuantityKind| {
                parse_quantity(value, kind)
                    .map_err(|e| p.push(format!("tiers.{name}.{field}: {e}")))
                    .ok()
            };
            let cpu_req = q("bot.cpu_request", &tier.bot.cpu_request, QuantityKind::Cpu);
            let cpu_lim = q("bot.cpu_limit", &tier.bot.cpu_limit, QuantityKind::Cpu);
            let mem_req = q(
                "bot.memory_request",
                &tier.bot.memory_request,
                QuantityKind::Bytes,
            );
            let mem_lim = q(
                "bot.memory_limit",
                &tier.bot.memory_limit,
                QuantityKind::Bytes,
            );
            let quota_cpu = q("quota.cpu", &tier.quota.cpu, QuantityKind::Cpu);
            let quota_mem = q("quota.memory", &tier.quota.memory, QuantityKind::Bytes);
            q(
                "storage.database",
                &tier.storage.database,
                QuantityKind::Bytes,
            );
            q(
                "storage.whatsapp_auth",
                &tier.storage.whatsapp_auth,
                QuantityKind::Bytes,
            );
            let mut order = |small: Option<u128>, big: Option<u128>, what: &str| {
                if let (Some(s), Some(b)) = (small, big)
                    && s > b
                {
                    p.push(format!("tiers.{name}: {what}"));
                }
            };
            order(cpu_req, cpu_lim, "bot.cpu_request is above bot.cpu_limit");
            order(
                mem_req,
                mem_lim,
                "bot.memory_request is above bot.memory_limit",
            );
            order(
                cpu_lim,
                quota_cpu,
                "bot.cpu_limit is above quota.cpu, the bot could never start",
            );
            order(
                mem_lim,
                quota_mem,
                "bot.memory_limit is above quota.memory, the bot could never start",
            );
            if tier.quota.pods == 0 {
                p.push(format!(
                    "tiers.{name}.quota.pods is 0, the bot could never start"
                ));
            }
            if tier.rate_limits.messages_per_day == 0
                || tier.rate_limits.messages_per_minute_per_user == 0
            {
                p.push(format!(
                    "tiers.{name}.rate_limits: 0 would silence every tenant of the tier"
                ));
            }
        }
        p
    }
}

/// `NAME[:TAG]@sha256:<64 lowercase hex digits>`.
fn pinned_by_digest(image: &str) -> bool {
    image.rsplit_once("@sha256:").is_some_and(|(name, digest)| {
        !name.is_empty()
            && digest.len() == 64
            && digest
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// A CIDR such as `10.0.0.0/8`, with no host bits set.
pub fn parse_cidr(cidr: &str) -> Result<ipnet::IpNet, String> {
    let net: ipnet::IpNet = cidr
        .parse()
        .map_err(|_| format!("`{cidr}` is not a CIDR such as 10.0.0.0/8"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{cidr}` has host bits set; the network is {}",
            net.trunc()
        ));
    }
    Ok(net)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantityKind {
    Cpu,
    Bytes,
}

/// Parses a Kubernetes quantity into thousandths of its unit, so that
/// `500m` CPU and `0.5` CPU compare equal. Only the suffixes that make sense
/// for the kind are accepted.
pub fn parse_quantity(raw: &str, kind: QuantityKind) -> Result<u128, String> {
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, suffix) = raw.split_at(split);
    let multiplier: u128 = match (kind, suffix) {
        (_, "") => 1000,
        (QuantityKind::Cpu, "m") => 1,
        (QuantityKind::Bytes, "k") => 1000 * 1000,
        (QuantityKind::Bytes, "M") => 1000 * 1000u128.pow(2),
        (QuantityKind::Bytes, "G") => 1000 * 1000u128.pow(3),
        (QuantityKind::Bytes, "T") => 1000 * 1000u128.pow(4),
        (QuantityKind::Bytes, "Ki") => 1000 << 10,
        (QuantityKind::Bytes, "Mi") => 1000 << 20,
        (QuantityKind::Bytes, "Gi") => 1000 << 30,
        (QuantityKind::Bytes, "Ti") => 1000 << 40,
        _ => {
            let want = match kind {
                QuantityKind::Cpu => "a CPU amount such as `500m` or `2`",
                QuantityKind::Bytes => "a size such as `256Mi` or `10Gi`",
            };
            return Err(format!("`{raw}` is not {want}"));
        }
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(format!("`{raw}` is not a number with a unit"));
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| format!("`{raw}` is too large"))?
    };
    let mut value = whole
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{raw}` is too large"))?;
    let mut scale = multiplier;
    for digit in frac.bytes() {
        scale /= 10;
        value += u128::from(digit - b'0') * scale;
    }
    Ok(value)
}

/// Parses a quantity as the cluster reports usage, to whole base units
/// (bytes, or millicores for CPU): metrics-server also writes CPU in
/// nanocores (`n`) and microcores (`u`).
pub fn usage_quantity(raw: &str, kind: QuantityKind) -> Option<u128> {
    if kind == QuantityKind::Cpu {
        if let Some(n) = raw.strip_suffix('n') {
            return n.parse::<u128>().ok().map(|n| n / 1_000_000);
        }
        if let Some(u) = raw.strip_suffix('u') {
            return u.parse::<u128>().ok().map(|u| u / 1_000);
        }
        return parse_quantity(raw, kind).ok();
    }
    parse_quantity(raw, kind).ok().map(|milli| milli / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        use QuantityKind::*;
        assert_eq!(parse_quantity("500m", Cpu), Ok(500));
        assert_eq!(parse_quantity("0.5", Cpu), Ok(500));
        assert_eq!(parse_quantity("2", Cpu), Ok(2000));
        assert_eq!(
            parse_quantity("1Gi", Bytes),
            parse_quantity("1024Mi", Bytes)
        );
        assert_eq!(
            parse_quantity("1.5Gi", Bytes),
            parse_quantity("1536Mi", Bytes)
        );
        assert!(parse_quantity("1G", Bytes).unwrap() < parse_quantity("1Gi", Bytes).unwrap());
        for bad in ["", "m", "1.2.3", "10 Gi", "1Gi", "-1"] {
            assert!(parse_quantity(bad, Cpu).is_err(), "{bad}");
        }
        assert!(parse_quantity("5m", Bytes).is_err());
    }

    #[test]
    fn cidrs() {
        assert!(parse_cidr("10.0.0.0/8").is_ok());
        assert!(parse_cidr("fd00::/8").is_ok());
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "10.0.0/8", "10.0.0.1/8"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        assert_eq!(usage_quantity("12000000n", QuantityKind::Cpu), Some(12));
        assert_eq!(usage_quantity("250m", QuantityKind::Cpu), Some(250));
        assert_eq!(
            usage_quantity("81920Ki", QuantityKind::Bytes),
            Some(80 << 20)
        );
    }

    #[test]
    fn committed_platform_file_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../platform.yaml");
        let platform = Platform::load(path).unwrap();
        assert!(platform.tiers.contains_key(&platform.default_tier));
    }

    #[test]
    fn the_bot_image_must_be_pinned_by_digest() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../platform.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let image = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("image: "))
            .unwrap();
        let tagged = text.replace(image, "ghcr.io/mla-platform/whatsapp-bot:1.4.2");
        let err = Platform::parse("p.yaml", &tagged).unwrap_err().to_string();
        assert!(err.contains("is not pinned by digest"), "{err}");
        assert!(!pinned_by_digest("bot@sha256:abc"));
        assert!(pinned_by_digest(&format!(
            "r.io/bot:1@sha256:{}",
            "0a".repeat(32)
        )));
    }

    fn committed() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../platform.yaml")).unwrap()
    }

    /// Each part is the monthly price times the period's share of 30 days,
    /// rounded half up to hundredths once; the total is their sum.
    #[test]
    fn costs_are_prorated_and_rounded_once_per_part() {
        let text = committed()
            .replace("small: {monthly: 499}", "small: {monthly: 333.33}")
            .replace(
                "per_gib_storage_requested_month: 8.5",
                "per_gib_storage_requested_month: 7.7777",
            )
            .replace("per_1000_messages: 0.5", "per_1000_messages: 1.005");
        let platform = Platform::parse("p.yaml", &text).unwrap();
        let small = &platform.tiers["small"];
        let week = 7 * 86_400;
        // 1.25 GiB requested, 1,001 messages, 7 days of 30:
        let c = platform
            .cost
            .cost("small", small, 5 << 28, 1001, week)
            .unwrap();
        // 333.33 x 7/30 = 77.777 -> 77.78
        assert_eq!(c.base, Money(7778));
        // 7.7777 x 1.25 x 7/30 = 2.26849... -> 2.27
        assert_eq!(c.storage, Money(227));
        // 1200 x 0.1 (100m) x 7/30 = 28
        assert_eq!(c.cpu, Money(2800));
        // 350 x 0.125 (128Mi) x 7/30 = 10.2083... -> 10.21
        assert_eq!(c.memory, Money(1021));
        // 1.005 x 1.001 = 1.006005 -> 1.01, not prorated
        assert_eq!(c.messages, Money(101));
        assert_eq!(c.total, Money(7778 + 227 + 2800 + 1021 + 101));
        assert_eq!(c.total.to_string(), "119.27");
        // Half a paisa rounds up: 500 messages x 0.01/1000 = 0.005 -> 0.01.
        let text = committed().replace("per_1000_messages: 0.5", "per_1000_messages: 0.01");
        let platform = Platform::parse("p.yaml", &text).unwrap();
        let c = platform.cost.cost("small", small, 0, 500, 0).unwrap();
        assert_eq!(
            (c.base, c.messages, c.total),
            (Money(0), Money(1), Money(1))
        );
        assert_eq!(platform.cost.cost("gold", small, 0, 0, week), None);
        assert_eq!(Money(5).to_string(), "0.05");
        assert_eq!(serde_json::to_string(&Money(67338)).unwrap(), "673.38");
    }

    /// A tier without a price, a price of an unknown tier, and prices that
    /// are not prices are named, each with its field.
    #[test]
    fn cost_model_problems_name_the_field() {
        let cases = [
            (
                "    large: {monthly: 4999}\n",
                "",
                "cost.tiers has no price for tier `large`",
            ),
            (
                "large: {monthly: 4999}",
                "large: {monthly: 4999}\n    gold: {monthly: 1}",
                "cost.tiers.gold prices a tier that is not in tiers",
            ),
            (
                "per_cpu_core_requested_month: 1200",
                "per_cpu_core_requested_month: -1",
                "cost.per_cpu_core_requested_month: -1 is not a price",
            ),
            (
                "small: {monthly: 499}",
                "small: {monthly: 499.00001}",
                "cost.tiers.small.monthly: 499.00001 is not a price",
            ),
            (
                "currency: INR",
                "currency: rupees",
                "cost.currency `rupees` is not an ISO 4217 code",
            ),
        ];
        for (from, to, expected) in cases {
            let text = committed();
            assert!(text.contains(from), "{from}");
            let err = Platform::parse("p.yaml", &text.replacen(from, to, 1))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let missing = committed().replace("  per_1000_messages: 0.5\n", "");
        let err = Platform::parse("p.yaml", &missing).unwrap_err().to_string();
        assert!(err.contains("per_1000_messages"), "{err}");
    }

    #[test]
    fn inconsistent_tier_is_rejected() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../platform.yaml");
        let text =
            std::fs::read_to_string(path)
                .unwrap()
                .replacen("cpu_limit: 500m", "cpu_limit: 50", 1);
        let err = Platform::parse("p.yaml", &text).unwrap_err().to_string();
        assert!(err.contains("bot.cpu_limit is above quota.cpu"), "{err}");
    }
}
