//! Platform-wide settings shared by every tenant (`platform.yaml` at the
//! repository root): bot image, ingress, storage, network ranges and tiers.
//! Nothing tenant-specific lives here and nothing here lives in code.

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
