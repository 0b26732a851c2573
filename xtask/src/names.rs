//! Every name the tool and its templates share, defined once: labels and
//! annotation keys, the bot's app name and selector, object names, and the
//! names of the tool's own short-lived pods. Templates read them as
//! `names.*` and `keys.*` (see `render.rs`); Rust reads these constants.

use std::collections::BTreeMap;

use serde::Serialize;

/// Prefix of the platform's own labels and annotations.
pub const LABEL_DOMAIN: &str = "mla-platform.in";
/// The label that marks every object of a tenant; tenants are discovered by it.
pub const TENANT_LABEL: &str = "mla-platform.in/tenant";
/// Our field manager for server-side apply and `managed-by` label value.
pub const MANAGER: &str = "xtask-provision";
/// The `part-of` label value of every object.
pub const PART_OF: &str = "mla-platform";

/// Kubernetes' recommended labels.
pub const APP_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// The bot's app name (`app.kubernetes.io/name`); the tool's own pods have others.
pub const BOT_APP: &str = "whatsapp-bot";

/// Annotations on the tenant's Namespace, read to find clashes and show tenants.
pub const DOMAINS_ANNOTATION: &str = "mla-platform.in/domains";
pub const WHATSAPP_NUMBER_ANNOTATION: &str = "mla-platform.in/whatsapp-number";
pub const MLA_NAME_ANNOTATION: &str = "mla-platform.in/mla-name";
pub const TIER_ANNOTATION: &str = "mla-platform.in/tier";
/// On the bot's pod template: changes when its config does, to restart it.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "mla-platform.in/config-checksum";
/// On each volume claim: what it holds (`sqlite-database`, `whatsapp-auth-session`).
pub const VOLUME_PURPOSE_ANNOTATION: &str = "mla-platform.in/tenant-volume";
/// Suspension markers on the tenant's Namespace (`admin suspend`).
pub const SUSPENDED_ANNOTATION: &str = "mla-platform.in/suspended";
pub const SUSPENDED_REPLICAS_ANNOTATION: &str = "mla-platform.in/suspended-replicas";
pub const SUSPENDED_INGRESSES_ANNOTATION: &str = "mla-platform.in/suspended-ingresses";
pub const SUSPENDED_BY_ANNOTATION: &str = "mla-platform.in/suspended-by";
/// Offboarding markers on a Namespace `admin offboard` keeps for its volumes.
pub const OFFBOARDED_ANNOTATION: &str = "mla-platform.in/offboarded";
pub const OFFBOARDED_BY_ANNOTATION: &str = "mla-platform.in/offboarded-by";
pub const OFFBOARDED_BACKUP_ANNOTATION: &str = "mla-platform.in/offboarded-last-backup";
/// `true` when the offboarded tenant's domains and number stay claimed.
pub const OFFBOARDED_RESERVED_ANNOTATION: &str = "mla-platform.in/offboarded-reserved";
/// On the bot's Deployment while a restore has it stopped.
pub const REPLICAS_BEFORE_RESTORE_ANNOTATION: &str = "mla-platform.in/replicas-before-restore";

/// The bot's Deployment, Service, Ingress and ServiceAccount, and its container.
pub const BOT: &str = "bot";
pub const CONFIG_MAP: &str = "bot-config";
pub const CREDENTIALS_SECRET: &str = "bot-credentials";
pub const DATA_CLAIM: &str = "bot-data";
pub const AUTH_CLAIM: &str = "bot-whatsapp-auth";
pub const TLS_SECRET: &str = "bot-tls";
pub const QUOTA: &str = "tenant-quota";
pub const LIMIT_RANGE: &str = "tenant-limits";
/// The bot's pod volume that mounts the credentials Secret.
pub const CREDENTIALS_VOLUME: &str = "credentials";
/// The bot's named HTTP port.
pub const HTTP_PORT: &str = "http";
/// What each volume holds, as [`VOLUME_PURPOSE_ANNOTATION`] says.
pub const DATABASE_PURPOSE: &str = "sqlite-database";
pub const SESSION_PURPOSE: &str = "whatsapp-auth-session";

/// The pod that mounts a stopped bot's volumes (backup, restore).
pub const WORKBENCH_POD: &str = "xtask-workbench";
/// `admin verify --network`'s probe pod.
pub const NETWORK_PROBE_POD: &str = "xtask-netprobe";
/// `admin verify`'s admission check: a privileged pod, only ever dry-run.
pub const PRIVILEGED_PROBE_POD: &str = "xtask-verify-privileged";

/// The labels that select a tenant's bot pods (the stable subset).
pub fn bot_selector(tenant: &str) -> BTreeMap<String, String> {
    [(APP_LABEL, BOT_APP), (INSTANCE_LABEL, tenant)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// What the bot's NetworkPolicies select: its network role. Not the
/// Deployment's selector, so that a pod that must obey the bot's network
/// rules (`admin verify --network`'s probe) can carry it without being
/// adopted by the bot's ReplicaSet or served by its Service.
pub const NETWORK_ROLE_LABEL: &str = "mla-platform.in/network-role";
pub const NETWORK_ROLE_BOT: &str = "bot";

pub fn bot_network_role() -> BTreeMap<String, String> {
    [(NETWORK_ROLE_LABEL.to_owned(), NETWORK_ROLE_BOT.to_owned())].into()
}

/// The same selector as kubectl's `--selector` takes it.
pub fn bot_selector_arg(tenant: &str) -> String {
    bot_selector(tenant)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What templates see as `names`.
#[derive(Serialize)]
pub struct TemplateNames {
    bot: &'static str,
    config_map: &'static str,
    credentials_secret: &'static str,
    credentials_volume: &'static str,
    data_claim: &'static str,
    auth_claim: &'static str,
    tls_secret: &'static str,
    quota: &'static str,
    limit_range: &'static str,
    http_port: &'static str,
    database_purpose: &'static str,
    session_purpose: &'static str,
}

pub const TEMPLATE_NAMES: TemplateNames = TemplateNames {
    bot: BOT,
    config_map: CONFIG_MAP,
    credentials_secret: CREDENTIALS_SECRET,
    credentials_volume: CREDENTIALS_VOLUME,
    data_claim: DATA_CLAIM,
    auth_claim: AUTH_CLAIM,
    tls_secret: TLS_SECRET,
    quota: QUOTA,
    limit_range: LIMIT_RANGE,
    http_port: HTTP_PORT,
    database_purpose: DATABASE_PURPOSE,
    session_purpose: SESSION_PURPOSE,
};

/// What templates see as `keys`: the platform's annotation keys.
pub fn template_keys() -> BTreeMap<&'static str, &'static str> {
    [
        ("tenant", TENANT_LABEL),
        ("domains", DOMAINS_ANNOTATION),
        ("whatsapp_number", WHATSAPP_NUMBER_ANNOTATION),
        ("mla_name", MLA_NAME_ANNOTATION),
        ("tier", TIER_ANNOTATION),
        ("config_checksum", CONFIG_CHECKSUM_ANNOTATION),
        ("volume_purpose", VOLUME_PURPOSE_ANNOTATION),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_keys_are_under_the_label_domain() {
        for key in [
            TENANT_LABEL,
            DOMAINS_ANNOTATION,
            WHATSAPP_NUMBER_ANNOTATION,
            MLA_NAME_ANNOTATION,
            TIER_ANNOTATION,
            CONFIG_CHECKSUM_ANNOTATION,
            VOLUME_PURPOSE_ANNOTATION,
            SUSPENDED_ANNOTATION,
            SUSPENDED_REPLICAS_ANNOTATION,
            SUSPENDED_INGRESSES_ANNOTATION,
            SUSPENDED_BY_ANNOTATION,
            OFFBOARDED_ANNOTATION,
            OFFBOARDED_BY_ANNOTATION,
            OFFBOARDED_BACKUP_ANNOTATION,
            OFFBOARDED_RESERVED_ANNOTATION,
            REPLICAS_BEFORE_RESTORE_ANNOTATION,
            NETWORK_ROLE_LABEL,
        ] {
            assert!(key.starts_with(&format!("{LABEL_DOMAIN}/")), "{key}");
        }
        assert_eq!(
            bot_selector_arg("kalyan"),
            "app.kubernetes.io/instance=kalyan,app.kubernetes.io/name=whatsapp-bot"
        );
    }
}
