//! The resource types the fake knows, with the names kubectl accepts for them.

pub struct Resource {
    pub kind: &'static str,
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub short: &'static [&'static str],
    pub namespaced: bool,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// How kubectl names an object's kind in what it prints after a change
    /// (`deployment.apps/bot annotated`, `configmap "c" deleted`): the
    /// lowercase kind and the group.
    pub fn printed(&self) -> String {
        let kind = self.kind.to_ascii_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// Whether the API server keeps `metadata.generation` for it: only
    /// kinds whose registry strategy sets it (of these, Deployment,
    /// Ingress and NetworkPolicy; not Pods before 1.33).
    pub fn has_generation(&self) -> bool {
        matches!(self.kind, "Deployment" | "Ingress" | "NetworkPolicy")
    }

    /// How kubectl names the resource in errors: `deployments.apps`, `secrets`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn r(
    kind: &'static str,
    group: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
) -> Resource {
    Resource {
        kind,
        group,
        version: "v1",
        plural,
        short,
        namespaced,
    }
}

pub const RESOURCES: &[Resource] = &[
    r("Namespace", "", "namespaces", &["ns"], false),
    r("ResourceQuota", "", "resourcequotas", &["quota"], true),
    r("LimitRange", "", "limitranges", &["limits"], true),
    r(
        "NetworkPolicy",
        "networking.k8s.io",
        "networkpolicies",
        &["netpol"],
        true,
    ),
    r("ServiceAccount", "", "serviceaccounts", &["sa"], true),
    r("ConfigMap", "", "configmaps", &["cm"], true),
    r("Secret", "", "secrets", &[], true),
    r(
        "PersistentVolumeClaim",
        "",
        "persistentvolumeclaims",
        &["pvc"],
        true,
    ),
    r("Deployment", "apps", "deployments", &["deploy"], true),
    r("Service", "", "services", &["svc"], true),
    r("Ingress", "networking.k8s.io", "ingresses", &["ing"], true),
    r("Pod", "", "pods", &["po"], true),
    r("Lease", "coordination.k8s.io", "leases", &[], true),
    r("Node", "", "nodes", &["no"], false),
    r("PersistentVolume", "", "persistentvolumes", &["pv"], false),
    r("Role", "rbac.authorization.k8s.io", "roles", &[], true),
    r(
        "ClusterRole",
        "rbac.authorization.k8s.io",
        "clusterroles",
        &[],
        false,
    ),
    r(
        "RoleBinding",
        "rbac.authorization.k8s.io",
        "rolebindings",
        &[],
        true,
    ),
    r(
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        &[],
        false,
    ),
];

/// Finds a resource by any name kubectl accepts: plural, singular (the
/// lowercased kind), short name, or `plural.group`.
pub fn lookup(name: &str) -> Option<&'static Resource> {
    let name = name.to_ascii_lowercase();
    RESOURCES.iter().find(|r| {
        r.plural == name
            || r.kind.to_ascii_lowercase() == name
            || r.short.contains(&name.as_str())
            || r.qualified() == name
    })
}

pub fn by_kind(kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.kind == kind)
}
