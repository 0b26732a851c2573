//! What an apply of a tenant would do, worked out before anything changes:
//! the cluster read once for the tenant, clashes with other tenants refused,
//! what to apply and what to keep (existing credentials and volumes), and
//! the plan `provision --plan` and `admin drift` show. After an apply, which
//! objects changed is decided by their content, never by resourceVersion
//! alone (a status update bumps that without any change of ours).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kubectl::{Conflicts, Kubectl, Scope};
use crate::names::{
    CREDENTIALS_SECRET, DOMAINS_ANNOTATION, MANAGER, MLA_NAME_ANNOTATION, TENANT_LABEL,
    TIER_ANNOTATION, WHATSAPP_NUMBER_ANNOTATION,
};
use crate::object::{annotation, content_differs, kind_and_name, label, str_at};
use crate::outcome::{Left, LeftUnchanged};
use crate::platform::{Platform, QuantityKind, parse_quantity};
use crate::render::{Manifest, SecretValues, Templates, to_yaml_stream};
use crate::tenant::{self, TenantSpec, format_problems};

/// Live objects by kind and name.
pub type LiveObjects = BTreeMap<(String, String), Value>;

/// An object provision renders but never applies again once it exists.
pub struct Kept {
    pub manifest: Manifest,
    pub reason: KeptReason,
}

pub enum KeptReason {
    /// The Secret: credentials are never regenerated.
    Credentials,
    /// A volume claim, and how its size compares with what the tier asks.
    Volume(VolumeSize),
}

/// A kept volume claim's requested size against the tier's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSize {
    /// As the tier asks (or a size that cannot be read).
    AsTier,
    /// The tier asks for more. The claim is never re-applied: it grows
    /// only by hand, where its StorageClass allows expansion.
    Grow { have: String, want: String },
    /// More than its unchanged tier asks (grown by hand): it stays so.
    Larger { have: String, want: String },
    /// A new tier asks for less. Kubernetes cannot shrink a claim, so
    /// provision refuses the tier ([`refuse_shrinking`]).
    Shrink { have: String, want: String },
}

impl Kept {
    pub fn note(&self) -> String {
        const KEPT: &str = "exists; volumes are never re-applied";
        match &self.reason {
            KeptReason::Credentials => "exists; credentials are never regenerated".to_owned(),
            KeptReason::Volume(VolumeSize::AsTier) => KEPT.to_owned(),
            KeptReason::Volume(VolumeSize::Grow { have, want }) => format!(
                "{KEPT}. It requests {have} but the tier now asks for {want}: grow it by hand if its \
                 StorageClass allows volume expansion (allowVolumeExpansion: true) with `kubectl{context} \
                 --namespace {ns} patch persistentvolumeclaim {name} --patch \
                 '{{\"spec\":{{\"resources\":{{\"requests\":{{\"storage\":\"{want}\"}}}}}}}}'`",
                context = crate::kubectl::suggested_context_arg(),
                ns = self.manifest.namespace.as_deref().unwrap_or_default(),
                name = self.manifest.name
            ),
            KeptReason::Volume(VolumeSize::Larger { have, want }) => format!(
                "{KEPT}. It requests {have}, more than the tier's {want}, and keeps that size"
            ),
            KeptReason::Volume(VolumeSize::Shrink { have, want }) => format!(
                "it requests {have} and the tier asks for {want}, but Kubernetes cannot shrink a \
                 PersistentVolumeClaim"
            ),
        }
    }

    /// Kept as it always is (credentials, a volume of the tier's size):
    /// nothing an operator needs to read about in a batch.
    pub fn routine(&self) -> bool {
        matches!(
            self.reason,
            KeptReason::Credentials | KeptReason::Volume(VolumeSize::AsTier)
        )
    }

    /// A change the tier asks for that provision cannot make itself.
    fn needs_a_hand(&self) -> bool {
        matches!(
            self.reason,
            KeptReason::Volume(VolumeSize::Grow { .. } | VolumeSize::Shrink { .. })
        )
    }
}

/// What an apply of `spec` would send, after reading the cluster.
pub struct Prepared {
    /// The lowercase kinds of the tenant's namespaced objects.
    pub kinds: Vec<String>,
    pub own_namespace: Option<Value>,
    pub existing: LiveObjects,
    pub to_apply: Vec<Manifest>,
    pub kept: Vec<Kept>,
    pub secret_missing: bool,
    pub secrets: SecretValues,
}

impl Prepared {
    /// The live object a manifest would replace, if any.
    pub fn live(&self, m: &Manifest) -> Option<&Value> {
        if m.kind == "Namespace" {
            self.own_namespace.as_ref()
        } else {
            self.existing.get(&(m.kind.clone(), m.name.clone()))
        }
    }

    /// Ingresses on the cluster although the tenant is suspended (applied
    /// by someone since): its website answers. One line each.
    pub fn ingresses_while_suspended(&self, tenant: &str) -> Vec<String> {
        self.existing
            .keys()
            .filter(|(kind, _)| kind == "Ingress")
            .map(|(_, name)| {
                format!(
                    "~ ingress/{name}: on the cluster although the tenant is suspended, so its website \
                     answers; `cargo xtask admin resume {tenant}{}` it, or delete the Ingress",
                    crate::suggest::target_arg()
                )
            })
            .collect()
    }

    /// Turns the plan into the tenant's suspended form, as `admin suspend`
    /// leaves it: no Ingress on the cluster (its definition is recorded on
    /// the namespace). Returns the rendered Ingresses taken out, to be
    /// compared with that record.
    pub fn suspended_form(&mut self) -> Vec<Manifest> {
        let (ingresses, rest) = std::mem::take(&mut self.to_apply)
            .into_iter()
            .partition(|m| m.kind == "Ingress");
        self.to_apply = rest;
        ingresses
    }
}

/// Reads the tenant's namespace and objects and every other tenant's
/// claims; refuses an unowned namespace and clashes (changing nothing), and
/// decides what to apply. With `generate_secrets` false the Secret stays
/// redacted (plans).
pub fn prepare(
    kubectl: &Kubectl,
    platform: &Platform,
    templates: &Templates,
    spec: &TenantSpec,
    generate_secrets: bool,
) -> anyhow::Result<Prepared> {
    let ns = spec.namespace.as_str();
    let rendered = templates.render_tenant(spec, platform, &SecretValues::Redacted)?;
    let kinds = unique_kinds(&rendered, |k| k != "Namespace");
    let (own_namespace, existing) =
        live_state(kubectl, ns, &kinds).left_unchanged(Left::NothingChanged)?;
    // Before the claims are read: an unowned namespace needs no more reads.
    refuse_foreign_namespace(spec, own_namespace.as_ref())?;
    let tenants = kubectl
        .get_list("namespaces", Scope::Cluster, Some(TENANT_LABEL))
        .left_unchanged(Left::NothingChanged)?;
    let ingresses = kubectl
        .get_list("ingresses", Scope::AllNamespaces, None)
        .left_unchanged(Left::NothingChanged)?;
    prepare_from(
        Live {
            own_namespace,
            existing,
        },
        Claims {
            tenants: &tenants,
            ingresses: &ingresses,
        },
        platform,
        templates,
        spec,
        rendered,
        generate_secrets,
    )
}

/// A tenant's namespace and objects as the cluster has them.
pub struct Live {
    pub own_namespace: Option<Value>,
    pub existing: LiveObjects,
}

/// What other tenants and Ingresses claim: every tenant namespace (with
/// its domains and number) and every Ingress in the cluster.
#[derive(Clone, Copy)]
pub struct Claims<'a> {
    pub tenants: &'a [Value],
    pub ingresses: &'a [Value],
}

/// [`prepare`] from what is already read: `rendered` is the tenant's
/// render with redacted secrets. Refuses an unowned namespace and clashes
/// (changing nothing), and decides what to apply.
pub fn prepare_from(
    live: Live,
    claims: Claims<'_>,
    platform: &Platform,
    templates: &Templates,
    spec: &TenantSpec,
    rendered: Vec<Manifest>,
    generate_secrets: bool,
) -> anyhow::Result<Prepared> {
    let Live {
        own_namespace,
        existing,
    } = live;
    let kinds = unique_kinds(&rendered, |k| k != "Namespace");
    refuse_foreign_namespace(spec, own_namespace.as_ref())?;
    let conflicts = find_conflicts(spec, claims.tenants, claims.ingresses);
    if !conflicts.is_empty() {
        crate::outcome::bail_unchanged!(
            "{}",
            format_problems(
                &format!(
                    "tenant {} clashes with what is already on the cluster",
                    spec.name
                ),
                &conflicts
            )
        );
    }

    let exists = |m: &Manifest| existing.contains_key(&(m.kind.clone(), m.name.clone()));
    // Credentials are generated only for a Secret that does not exist yet.
    let secret_missing = rendered.iter().any(|m| m.kind == "Secret" && !exists(m));
    let secrets = if secret_missing && generate_secrets {
        SecretValues::generate(&platform.bot.generated_secrets)?
    } else {
        SecretValues::Redacted
    };
    let manifests = if secrets.is_generated() {
        templates.render_tenant(spec, platform, &secrets)?
    } else {
        rendered
    };
    // A volume bigger than its tier is a shrink only when the tier changes:
    // one grown by hand under an unchanged tier stays as it is.
    let live_tier = own_namespace
        .as_ref()
        .and_then(|ns| annotation(ns, TIER_ANNOTATION));
    let mut kept = Vec::new();
    let mut to_apply = Vec::new();
    for m in manifests {
        let reason = match m.kind.as_str() {
            "Secret" if exists(&m) => Some(KeptReason::Credentials),
            "PersistentVolumeClaim" if exists(&m) => {
                let live = &existing[&(m.kind.clone(), m.name.clone())];
                Some(KeptReason::Volume(volume_size(
                    &m,
                    live,
                    live_tier != Some(spec.tier.as_str()),
                )))
            }
            _ => None,
        };
        match reason {
            Some(reason) => kept.push(Kept {
                manifest: m,
                reason,
            }),
            None => to_apply.push(m),
        }
    }
    Ok(Prepared {
        kinds,
        own_namespace,
        existing,
        to_apply,
        kept,
        secret_missing,
        secrets,
    })
}

/// Refuses a namespace of the tenant's name that does not carry the
/// tenant's label: provision did not create it.
fn refuse_foreign_namespace(spec: &TenantSpec, namespace: Option<&Value>) -> anyhow::Result<()> {
    if let Some(existing) = namespace
        && label(existing, TENANT_LABEL) != Some(spec.name.as_str())
    {
        crate::outcome::bail_unchanged!(
            "namespace {} already exists but does not belong to tenant {} (no `{TENANT_LABEL}={}` label); \
             it was not created by provision. Choose another tenant name, or label the namespace if it \
             really is this tenant's.",
            spec.namespace,
            spec.name,
            spec.name
        );
    }
    Ok(())
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanChange {
    /// `+ kind/name`: would be created.
    Create(String),
    /// `~ kind/name`: would be changed; `foreign` are the fields that
    /// another field manager set, which only `--force-conflicts` takes back.
    Update {
        reference: String,
        foreign: Vec<crate::managed::Foreign>,
    },
    /// The Secret would be created with fresh credentials (never shown).
    CreateCredentials { namespace: String },
    /// Needs a hand: provision never does it (a volume resize).
    Manual { reference: String, note: String },
}

impl PlanChange {
    /// Whether an apply would make this change.
    pub fn applies(&self) -> bool {
        !matches!(self, PlanChange::Manual { .. })
    }
}

impl std::fmt::Display for PlanChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanChange::Create(r) => write!(f, "+ {r}"),
            PlanChange::Update { reference, foreign } if foreign.is_empty() => {
                write!(f, "~ {reference}")
            }
            PlanChange::Update { reference, foreign } => write!(
                f,
                "~ {reference} ({}; provision takes {} back only with --force-conflicts)",
                foreign
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if foreign.len() == 1 { "it" } else { "them" }
            ),
            PlanChange::CreateCredentials { namespace } => write!(
                f,
                "+ secret/{CREDENTIALS_SECRET} in {namespace} (credentials generated at apply, never shown)"
            ),
            PlanChange::Manual { reference, note } => write!(f, "! {reference} ({note})"),
        }
    }
}

/// What an apply would change.
pub struct Plan {
    pub changes: Vec<PlanChange>,
    /// kubectl's unified diff of those objects (the Secret is never in it).
    pub diff: String,
}

impl Plan {
    /// How many objects an apply would change.
    pub fn applying(&self) -> usize {
        self.changes.iter().filter(|c| c.applies()).count()
    }
}

/// What an apply would change. A tenant whose namespace does not exist yet
/// gets every object created, as rendered: the API server cannot dry-run an
/// object in a namespace that does not exist (kubernetes/kubernetes#114141),
/// so no server diff is asked for. Otherwise `kubectl diff --server-side`
/// of what an apply would send (never the Secret, whose values are never
/// shown), forcing conflicts as a reviewed apply would: a field another
/// manager set then shows as the change that would take it back, and the
/// plan names the field and the manager.
pub fn diff_plan(
    kubectl: &Kubectl,
    spec: &TenantSpec,
    prepared: &Prepared,
) -> anyhow::Result<Plan> {
    let objects: Vec<Manifest> = prepared
        .to_apply
        .iter()
        .filter(|m| m.kind != "Secret")
        .cloned()
        .collect();
    let mut changes = Vec::new();
    let mut diff = String::new();
    if prepared.own_namespace.is_none() {
        changes.extend(objects.iter().map(|m| PlanChange::Create(m.reference())));
    } else {
        refuse_unusable_namespace(spec, prepared)?;
        let stream = to_yaml_stream(&objects)?;
        diff = kubectl
            .diff(&stream, MANAGER, Conflicts::Force)?
            .unwrap_or_default();
        let headers = diff.lines().filter(|l| l.starts_with("diff ")).count();
        let mut matched = 0;
        for m in &objects {
            // kubectl names each file group.version.Kind.namespace.name.
            let suffix = format!(
                ".{}.{}.{}",
                m.kind,
                m.namespace.as_deref().unwrap_or(""),
                m.name
            );
            let header = diff
                .lines()
                .any(|l| l.starts_with("diff ") && l.ends_with(&suffix));
            matched += usize::from(header);
            match prepared.live(m) {
                None if header => changes.push(PlanChange::Create(m.reference())),
                Some(live) => {
                    let foreign = crate::managed::foreign_fields(&m.object, live, MANAGER);
                    if header || !foreign.is_empty() {
                        changes.push(PlanChange::Update {
                            reference: m.reference(),
                            foreign,
                        });
                    }
                }
                None => {}
            }
        }
        // kubectl said something differs: every difference must be read
        // as an object's, or the plan would hide a change.
        if !diff.is_empty() && (headers == 0 || matched != headers) {
            anyhow::bail!(
                "`kubectl diff` reported differences in a form this tool cannot read \
                 ({headers} file header(s), {matched} of them for the tenant's objects); \
                 is `diff` on PATH GNU diff? Its output:\n{diff}"
            );
        }
    }
    push_unapplied(spec, prepared, &mut changes);
    Ok(Plan { changes, diff })
}

/// What an apply would change, as [`diff_plan`] says it, decided locally
/// from the live objects and their managed fields (`compare.rs`) instead
/// of a server dry run: no kubectl call, so a whole fleet is compared from
/// one read of the cluster. The plan has no unified diff.
pub fn local_plan(spec: &TenantSpec, prepared: &Prepared) -> anyhow::Result<Plan> {
    let mut changes = Vec::new();
    if prepared.own_namespace.is_some() {
        refuse_unusable_namespace(spec, prepared)?;
    }
    for m in prepared.to_apply.iter().filter(|m| m.kind != "Secret") {
        match prepared.live(m) {
            None => changes.push(PlanChange::Create(m.reference())),
            Some(live) => {
                let foreign = crate::managed::foreign_fields(&m.object, live, MANAGER);
                if !foreign.is_empty()
                    || !crate::compare::drift(&m.object, live, MANAGER).is_empty()
                {
                    changes.push(PlanChange::Update {
                        reference: m.reference(),
                        foreign,
                    });
                }
            }
        }
    }
    push_unapplied(spec, prepared, &mut changes);
    Ok(Plan {
        changes,
        diff: String::new(),
    })
}

/// The plan's lines for what is not in the applied stream: fresh
/// credentials, and volume resizes that need a hand.
fn push_unapplied(spec: &TenantSpec, prepared: &Prepared, changes: &mut Vec<PlanChange>) {
    if prepared.secret_missing {
        changes.push(PlanChange::CreateCredentials {
            namespace: spec.namespace.clone(),
        });
    }
    for k in &prepared.kept {
        if k.needs_a_hand() {
            changes.push(PlanChange::Manual {
                reference: k.manifest.reference(),
                note: k.note(),
            });
        }
    }
}

/// The tenant's namespace and its objects of `kinds`, as the cluster has them.
pub fn live_state(
    kubectl: &Kubectl,
    ns: &str,
    kinds: &[String],
) -> anyhow::Result<(Option<Value>, LiveObjects)> {
    let namespace = kubectl.get_optional("namespace", ns)?;
    let objects = kubectl
        .get_list_with_owners(&kinds.join(","), Scope::Namespace(ns), None)?
        .into_iter()
        .filter_map(|o| Some((kind_and_name(&o)?, o)))
        .collect();
    Ok((namespace, objects))
}

/// What an apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectChange {
    Created,
    Configured,
    Unchanged,
}

impl ObjectChange {
    /// From the object before (None: absent) and after, by content.
    pub fn between(before: Option<&Value>, after: Option<&Value>) -> Option<ObjectChange> {
        match (before, after) {
            (None, Some(_)) => Some(ObjectChange::Created),
            (Some(a), Some(b)) if content_differs(a, b) => Some(ObjectChange::Configured),
            (Some(_), Some(_)) => Some(ObjectChange::Unchanged),
            (_, None) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectChange::Created => "created",
            ObjectChange::Configured => "configured",
            ObjectChange::Unchanged => "unchanged",
        }
    }
}

/// After a failed apply: reads the cluster back and says exactly which of
/// the objects changed, or that it could not tell.
pub fn what_changed(kubectl: &Kubectl, ns: &str, prepared: &Prepared) -> String {
    let after = live_state(kubectl, ns, &prepared.kinds).ok();
    changed_since(
        prepared,
        after.as_ref().map(|(namespace, objects)| Live {
            own_namespace: namespace.clone(),
            existing: objects.clone(),
        }),
    )
}

/// [`what_changed`], from the tenant's namespace and objects as read back
/// (`after`; None: they could not be read).
pub fn changed_since(prepared: &Prepared, after: Option<Live>) -> String {
    let Some(after) = after else {
        return "The cluster could not be read back to tell which objects were applied before the failure."
            .to_owned();
    };
    let mut changed = Vec::new();
    for m in &prepared.to_apply {
        let now = if m.kind == "Namespace" {
            after.own_namespace.as_ref()
        } else {
            after.existing.get(&(m.kind.clone(), m.name.clone()))
        };
        if let Some(c @ (ObjectChange::Created | ObjectChange::Configured)) =
            ObjectChange::between(prepared.live(m), now)
        {
            changed.push(format!("{} ({})", m.reference(), c.as_str()));
        }
    }
    if changed.is_empty() {
        format!(
            "Nothing was changed: all {} objects are as they were.",
            prepared.to_apply.len()
        )
    } else {
        let others = prepared.to_apply.len() - changed.len();
        format!(
            "Changed before the failure: {}. {}",
            changed.join(", "),
            match others {
                0 => "No other object was to be applied.".to_owned(),
                1 => "The other object is as it was.".to_owned(),
                n => format!("The other {n} objects are as they were."),
            }
        )
    }
}

/// Domains and numbers that another tenant, or any Ingress outside this
/// tenant's namespace, already uses.
pub fn find_conflicts(spec: &TenantSpec, tenants: &[Value], ingresses: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    // Domains already reported as another tenant's; its Ingress says no more.
    let mut claimed: Vec<&str> = Vec::new();
    for ns in tenants {
        let Some(name) = str_at(ns, "/metadata/name").map(str::to_owned) else {
            continue;
        };
        if name == spec.namespace {
            continue;
        }
        let owner = label(ns, TENANT_LABEL).unwrap_or(&name).to_owned();
        if annotation(ns, WHATSAPP_NUMBER_ANNOTATION) == Some(spec.whatsapp_number.as_str()) {
            out.push(format!(
                "WhatsApp number {} is already used by tenant {owner} (namespace {name}); each bot needs its own number",
                spec.whatsapp_number
            ));
        }
        let theirs = annotation(ns, DOMAINS_ANNOTATION).unwrap_or_default();
        for other in theirs.split(',').filter(|d| !d.is_empty()) {
            for mine in &spec.domains {
                if tenant::domains_overlap(mine, other) {
                    claimed.push(mine);
                    out.push(format!(
                        "domain {mine} is already used by tenant {owner} (as {other}); remove it from this tenant or offboard the other first"
                    ));
                }
            }
        }
    }
    for ing in ingresses {
        let ing_ns = str_at(ing, "/metadata/namespace")
            .map(str::to_owned)
            .unwrap_or_default();
        if ing_ns == spec.namespace {
            continue;
        }
        let ing_name = str_at(ing, "/metadata/name")
            .map(str::to_owned)
            .unwrap_or_default();
        let hosts = ing
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("host").and_then(Value::as_str));
        for host in hosts {
            for mine in &spec.domains {
                if tenant::domains_overlap(mine, host) && !claimed.contains(&mine.as_str()) {
                    out.push(format!(
                        "domain {mine} is already served by Ingress {ing_ns}/{ing_name} (host {host}); remove it there first or choose another domain"
                    ));
                }
            }
        }
    }
    out.dedup();
    out
}

/// How a kept claim's size compares with the tier's; `tier_changes` says
/// whether this apply moves the tenant to another tier.
fn volume_size(desired: &Manifest, live: &Value, tier_changes: bool) -> VolumeSize {
    let sizes = || {
        let want = str_at(&desired.object, "/spec/resources/requests/storage")?;
        let have = str_at(live, "/spec/resources/requests/storage")?;
        let parse = |q: &str| parse_quantity(q, QuantityKind::Bytes).ok();
        Some((have, parse(have)?, want, parse(want)?))
    };
    let Some((have, have_bytes, want, want_bytes)) = sizes() else {
        return VolumeSize::AsTier;
    };
    let (have, want) = (have.to_owned(), want.to_owned());
    match have_bytes.cmp(&want_bytes) {
        std::cmp::Ordering::Less => VolumeSize::Grow { have, want },
        std::cmp::Ordering::Greater if tier_changes => VolumeSize::Shrink { have, want },
        std::cmp::Ordering::Greater => VolumeSize::Larger { have, want },
        std::cmp::Ordering::Equal => VolumeSize::AsTier,
    }
}

/// Refuses a tier whose volumes are smaller than the tenant's: Kubernetes
/// cannot shrink a PersistentVolumeClaim, and provision never deletes one.
pub fn refuse_shrinking(spec: &TenantSpec, prepared: &Prepared) -> anyhow::Result<()> {
    let shrinking: Vec<String> = prepared
        .kept
        .iter()
        .filter_map(|k| match &k.reason {
            KeptReason::Volume(VolumeSize::Shrink { have, want }) => Some(format!(
                "{} requests {have}; tier {} asks for {want}",
                k.manifest.reference(),
                spec.tier
            )),
            _ => None,
        })
        .collect();
    if shrinking.is_empty() {
        return Ok(());
    }
    let live_tier = prepared
        .own_namespace
        .as_ref()
        .and_then(|ns| annotation(ns, TIER_ANNOTATION));
    let keep = match live_tier {
        Some(tier) => format!("Keep tier {tier} (the tenant's tier now)"),
        None => "Keep the tenant's tier".to_owned(),
    };
    crate::outcome::bail_unchanged!(
        "{}\n{keep}, or choose a tier whose volumes are at least as big as these: --tier, or `tier:` in the config.",
        format_problems(
            &format!(
                "tenant {} cannot move to tier {}: Kubernetes cannot shrink a PersistentVolumeClaim, \
                 and the tier's volumes are smaller than the ones the tenant has",
                spec.name, spec.tier
            ),
            &shrinking
        )
    );
}

/// One field of a tenant's identity or size that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// As in the config file: `mla_name`, `whatsapp_number`, `tier`, `domains`.
    pub field: &'static str,
    pub old: String,
    pub new: String,
    /// Whether `old` is what the live tenant has (its namespace's
    /// annotations); otherwise it is the committed config's.
    pub live: bool,
    /// Where the committed config and the cluster disagree, what the other says.
    pub note: Option<String>,
}

impl FieldChange {
    /// A change of who the bot is: another MLA or another number.
    pub fn is_identity(&self) -> bool {
        matches!(self.field, "mla_name" | "whatsapp_number")
    }
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} → {}", self.field, self.old, self.new)?;
        match &self.note {
            Some(note) => write!(f, " ({note})"),
            None => Ok(()),
        }
    }
}

/// The tier, MLA name and WhatsApp number `spec` changes: against the live
/// tenant's namespace annotations where it exists, else against the
/// committed config; the other's word is noted where the two disagree. And
/// the live tenant's domains, as this environment serves them.
pub fn field_changes(
    spec: &TenantSpec,
    live_namespace: Option<&Value>,
    committed: Option<&TenantSpec>,
) -> Vec<FieldChange> {
    let fields: [(&'static str, &str, &str, Option<&str>); 3] = [
        (
            "mla_name",
            MLA_NAME_ANNOTATION,
            &spec.mla_name,
            committed.map(|c| c.mla_name.as_str()),
        ),
        (
            "whatsapp_number",
            WHATSAPP_NUMBER_ANNOTATION,
            &spec.whatsapp_number,
            committed.map(|c| c.whatsapp_number.as_str()),
        ),
        (
            "tier",
            TIER_ANNOTATION,
            &spec.tier,
            committed.map(|c| c.tier.as_str()),
        ),
    ];
    let mut out = Vec::new();
    for (field, key, new, committed) in fields {
        let live = live_namespace.and_then(|ns| annotation(ns, key));
        let change = |old: &str, live: bool, note: Option<String>| FieldChange {
            field,
            old: old.to_owned(),
            new: new.to_owned(),
            live,
            note,
        };
        match (live, committed) {
            (Some(old), committed) if old != new => out.push(change(
                old,
                true,
                committed
                    .filter(|c| *c != old && *c != new)
                    .map(|c| format!("the committed config says {c}")),
            )),
            (live, Some(old)) if old != new => out.push(change(
                old,
                false,
                live.map(|l| format!("in the committed config; the cluster already has {l}")),
            )),
            _ => {}
        }
    }
    // The domains the live tenant answers on: a list given as flags
    // replaces the whole list, and a dropped domain takes a website down.
    if let Some(old) = live_namespace.and_then(|ns| annotation(ns, DOMAINS_ANNOTATION)) {
        let new = spec.domains.join(",");
        if old != new {
            out.push(FieldChange {
                field: "domains",
                old: old.to_owned(),
                new,
                live: true,
                note: None,
            });
        }
    }
    out
}

/// The changes of tier, MLA name, number or domains a provision of `spec`
/// (saved as `saved`) makes and asks to have confirmed: those of the live
/// tenant (`live_namespace`), and the committed config's domains that
/// `saved` replaces.
pub fn changes_to_confirm(
    saved: &TenantSpec,
    spec: &TenantSpec,
    live_namespace: Option<&Value>,
    committed: Option<&TenantSpec>,
) -> Vec<FieldChange> {
    let mut changes = field_changes(spec, live_namespace, committed);
    changes.extend(committed_domains_change(saved, committed, &changes));
    changes
}

/// The committed config's domains that `saved` (the config as it will be
/// saved, not as an environment serves it) replaces: where an environment
/// serves its own host names, the live tenant shows no change, but the
/// committed file, which production reads, would lose them.
fn committed_domains_change(
    saved: &TenantSpec,
    committed: Option<&TenantSpec>,
    listed: &[FieldChange],
) -> Option<FieldChange> {
    let committed = committed?;
    if committed.domains == saved.domains || listed.iter().any(|c| c.field == "domains") {
        return None;
    }
    Some(FieldChange {
        field: "domains",
        old: committed.domains.join(","),
        new: saved.domains.join(","),
        live: false,
        note: Some(
            "in the committed config; this environment serves its own host names".to_owned(),
        ),
    })
}

/// Refuses to give a live tenant another identity (MLA name or WhatsApp
/// number) unless `reconfigure`: a reused tenant name would otherwise turn
/// someone else's running bot, with its database and WhatsApp session,
/// into this one.
pub fn refuse_identity_change(
    spec: &TenantSpec,
    prepared: &Prepared,
    reconfigure: bool,
) -> anyhow::Result<()> {
    if reconfigure {
        return Ok(());
    }
    let changes: Vec<String> = field_changes(spec, prepared.own_namespace.as_ref(), None)
        .iter()
        .filter(|c| c.is_identity())
        .map(ToString::to_string)
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    crate::outcome::bail_unchanged!(
        "{}\nIf tenant {name} really changes hands, provision it with --reconfigure \
         (`cargo xtask provision {name} --reconfigure{}` and the other flags you gave); its database and \
         WhatsApp session are kept. If this is another tenant, choose another tenant name.",
        format_problems(
            &match prepared
                .own_namespace
                .as_ref()
                .map(crate::state::Lifecycle::of)
            {
                Some(crate::state::Lifecycle::Offboarded { since, .. }) => format!(
                    "tenant {name} was offboarded (since {since}) from {} as another MLA or number, its \
                     volumes kept; provisioning would give this one that bot's database and WhatsApp session",
                    spec.namespace,
                    name = spec.name
                ),
                _ => format!(
                    "tenant {name} is live in {} as another MLA or number; provisioning would turn that \
                     running bot, with its database and WhatsApp session, into this one",
                    spec.namespace,
                    name = spec.name
                ),
            },
            &changes
        ),
        crate::suggest::target_arg(),
        name = spec.name
    );
}

/// The lowercase kinds of `manifests` that `keep` keeps, each once, in order.
pub fn unique_kinds(manifests: &[Manifest], keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for m in manifests {
        let kind = m.kind.to_ascii_lowercase();
        if keep(&m.kind) && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// Refuses a plan or apply into a namespace that is being deleted: the API
/// server creates nothing in it, and a plan of it would mislead.
pub fn refuse_unusable_namespace(spec: &TenantSpec, prepared: &Prepared) -> anyhow::Result<()> {
    if let Some(ns) = &prepared.own_namespace
        && let Some(since) = crate::live::terminating_since(ns)
    {
        crate::outcome::bail_unchanged!(
            "namespace {} is being deleted (Terminating since {since}), so nothing can be created in it. \
             Wait until `kubectl get namespace {}` says NotFound, then run this again to provision tenant {} afresh.",
            spec.namespace,
            spec.namespace,
            spec.name
        );
    }
    Ok(())
}

/// SHA-256 of `v` with every object's keys in order: the same object read
/// twice digests the same, whatever order the server sent its fields in.
pub fn canonical_digest(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    write(v, &mut text);
    crate::digest::sha256_hex(text.as_bytes())
}

/// A live object as a plan records it: its UID, resourceVersion, and the
/// digest of what an apply depends on. Left out of the digest: its status
/// and the server's bookkeeping (resourceVersion, generation, the times in
/// managedFields), which change without anyone editing the object (a
/// Deployment's status moves whenever a pod restarts). Kept in: spec,
/// labels, annotations, owners, finalizers, a deletion under way, and who
/// manages which field (an apply's conflicts depend on it).
pub fn live_ref(live: &Value) -> crate::planfile::LiveRef {
    let mut reduced = live.clone();
    if let Some(map) = reduced.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = reduced.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["resourceVersion", "generation", "selfLink"] {
            meta.remove(field);
        }
        if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                entry.remove("time");
            }
        }
    }
    crate::planfile::LiveRef {
        uid: str_at(live, "/metadata/uid").unwrap_or_default().to_owned(),
        resource_version: str_at(live, "/metadata/resourceVersion")
            .unwrap_or_default()
            .to_owned(),
        digest: canonical_digest(&reduced),
    }
}

/// Every object of a tenant's plan: what an apply sends (created, updated
/// or already as rendered), what it keeps, each with the digest of its
/// render (credentials redacted: their values are generated at apply) and
/// the live object it was planned against.
pub fn planned_objects(prepared: &Prepared, plan: &Plan) -> Vec<crate::planfile::PlannedObject> {
    use crate::planfile::{ObjectAction, PlannedObject};
    let updated = |m: &Manifest| {
        plan.changes.iter().any(
            |c| matches!(c, PlanChange::Update { reference, .. } if *reference == m.reference()),
        )
    };
    let sent = prepared.to_apply.iter().map(|m| {
        let action = match prepared.live(m) {
            None => ObjectAction::Create,
            Some(_) if updated(m) => ObjectAction::Update,
            Some(_) => ObjectAction::Unchanged,
        };
        (m, action)
    });
    let kept = prepared
        .kept
        .iter()
        .map(|k| (&k.manifest, ObjectAction::Keep));
    sent.chain(kept)
        .map(|(m, action)| PlannedObject {
            kind: m.kind.clone(),
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            action,
            digest: Some(rendered_digest(m)),
            live: prepared.live(m).map(live_ref),
        })
        .collect()
}

/// The digest of a rendered object as plans record it. A Secret's values
/// are redacted in every render a plan is made or checked from.
pub fn rendered_digest(m: &Manifest) -> String {
    canonical_digest(&m.object)
}

/// Each planned object whose live version (found by `live_now(kind,
/// name)`) is not the one planned against: created, deleted, deleted and
/// created again, or changed since.
pub fn stale_objects<'a>(
    planned: &[crate::planfile::PlannedObject],
    live_now: impl Fn(&str, &str) -> Option<&'a Value>,
) -> Vec<String> {
    let mut stale = Vec::new();
    for p in planned {
        let now = live_now(&p.kind, &p.name).map(live_ref);
        let what = match (&p.live, &now) {
            (None, None) => continue,
            (None, Some(_)) => "was created",
            (Some(_), None) => "was deleted",
            (Some(then), Some(now)) if then.uid != now.uid => "was deleted and created again",
            (Some(then), Some(now)) if then.digest != now.digest => "changed",
            (Some(_), Some(_)) => continue,
        };
        stale.push(format!("{} {what}", p.reference()));
    }
    stale
}

/// What makes a plan no longer the one to apply, found under the tenant's
/// lock: each planned object whose live version changed since planning
/// (created, deleted, replaced or edited), and each object today's render
/// (`rendered`, credentials redacted) makes otherwise than planned. Empty:
/// an apply now does exactly what was planned.
pub struct Departures {
    pub stale: Vec<String>,
    pub rendered: Vec<String>,
}

pub fn departures(
    planned: &[crate::planfile::PlannedObject],
    prepared: &Prepared,
    rendered: &[Manifest],
) -> Departures {
    let stale = stale_objects(planned, |kind, name| {
        if kind == "Namespace" {
            prepared.own_namespace.as_ref()
        } else {
            prepared.existing.get(&(kind.to_owned(), name.to_owned()))
        }
    });
    let mut differs = Vec::new();
    for m in rendered {
        let planned = planned
            .iter()
            .find(|p| p.kind == m.kind && p.name == m.name);
        match planned {
            None => differs.push(format!("{} is new in today's render", m.reference())),
            Some(p) if p.digest.as_deref() != Some(rendered_digest(m).as_str()) => {
                differs.push(format!("{} renders differently", m.reference()))
            }
            Some(_) => {}
        }
    }
    for p in planned {
        if !rendered
            .iter()
            .any(|m| m.kind == p.kind && m.name == p.name)
        {
            differs.push(format!("{} is no longer rendered", p.reference()));
        }
    }
    Departures {
        stale,
        rendered: differs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{TenantName, TenantValues};

    /// A plan goes stale when someone edits an object, and not when the
    /// server only moves its status or bookkeeping (a pod restart bumps a
    /// Deployment's resourceVersion and status, never its spec).
    #[test]
    fn a_live_object_changes_by_edits_not_by_status() {
        let live = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bot", "uid": "u1", "resourceVersion": "10", "generation": 2,
                "labels": {"a": "b"},
                "managedFields": [{"manager": "mla-platform", "operation": "Apply",
                    "time": "2026-11-24T06:00:00Z", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 1},
            "status": {"readyReplicas": 1}
        });
        let then = live_ref(&live);
        let mut bookkeeping = live.clone();
        bookkeeping["metadata"]["resourceVersion"] = "11".into();
        bookkeeping["metadata"]["managedFields"][0]["time"] = "2026-11-24T07:00:00Z".into();
        bookkeeping["status"] = serde_json::json!({"readyReplicas": 0, "conditions": []});
        let now = live_ref(&bookkeeping);
        assert_eq!(now.digest, then.digest);
        assert_ne!(now.resource_version, then.resource_version);
        for edit in [
            "/spec/replicas",
            "/metadata/labels/a",
            "/metadata/managedFields/0/manager",
        ] {
            let mut edited = live.clone();
            *edited.pointer_mut(edit).unwrap() = serde_json::json!("changed");
            assert_ne!(live_ref(&edited).digest, then.digest, "{edit}");
        }
        // The same object with its fields in another order.
        let reordered: Value = serde_json::from_str(
            r#"{"status": {"readyReplicas": 1}, "spec": {"replicas": 1}, "kind": "Deployment",
                "metadata": {"managedFields": [{"fieldsV1": {"f:spec": {}}, "time": "2026-11-24T06:00:00Z",
                "operation": "Apply", "manager": "mla-platform"}], "labels": {"a": "b"}, "generation": 2,
                "resourceVersion": "10", "uid": "u1", "name": "bot"}, "apiVersion": "apps/v1"}"#,
        )
        .unwrap();
        assert_eq!(live_ref(&reordered).digest, then.digest);
    }

    fn spec(domains: &[&str], number: &str) -> TenantSpec {
        let values = TenantValues {
            mla_name: Some("A".into()),
            constituency: Some("B".into()),
            whatsapp_number: Some(number.into()),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        TenantSpec::resolve(
            &TenantName::parse("a").unwrap(),
            &values,
            &["small"],
            "small",
        )
        .unwrap()
    }

    #[test]
    fn conflicts_with_other_tenants_and_foreign_ingresses() {
        let tenants = vec![
            serde_json::json!({"metadata": {"name": "tenant-b", "labels": {TENANT_LABEL: "b"},
                "annotations": {"mla-platform.in/domains": "b.in,*.shared.in", "mla-platform.in/whatsapp-number": "+919800000001"}}}),
            serde_json::json!({"metadata": {"name": "tenant-a", "labels": {TENANT_LABEL: "a"},
                "annotations": {"mla-platform.in/domains": "a.in", "mla-platform.in/whatsapp-number": "+919800000002"}}}),
        ];
        let ingresses = vec![
            serde_json::json!({"metadata": {"name": "web", "namespace": "marketing"}, "spec": {"rules": [{"host": "site.in"}]}}),
            serde_json::json!({"metadata": {"name": "bot", "namespace": "tenant-a"}, "spec": {"rules": [{"host": "a.in"}]}}),
            // Tenant b's own Ingress: its domain is reported once, as tenant b's.
            serde_json::json!({"metadata": {"name": "bot", "namespace": "tenant-b"}, "spec": {"rules": [{"host": "*.shared.in"}]}}),
        ];
        assert!(find_conflicts(&spec(&["a.in"], "+919800000002"), &tenants, &ingresses).is_empty());
        let found = find_conflicts(
            &spec(&["a.in", "x.shared.in", "site.in"], "+919800000001"),
            &tenants,
            &ingresses,
        );
        insta::assert_snapshot!(found.join("\n"), @r"
        WhatsApp number +919800000001 is already used by tenant b (namespace tenant-b); each bot needs its own number
        domain x.shared.in is already used by tenant b (as *.shared.in); remove it from this tenant or offboard the other first
        domain site.in is already served by Ingress marketing/web (host site.in); remove it there first or choose another domain
        ");
    }

    #[test]
    fn field_changes_against_the_cluster_and_the_committed_config() {
        let mut new = spec(&["a.in"], "+919800000002");
        new.tier = "large".into();
        let ns = |mla: &str, number: &str, tier: &str| {
            serde_json::json!({"metadata": {"annotations": {
                MLA_NAME_ANNOTATION: mla, WHATSAPP_NUMBER_ANNOTATION: number, TIER_ANNOTATION: tier}}})
        };
        let shown = |changes: Vec<FieldChange>| {
            changes
                .iter()
                .map(|c| format!("{c} [live: {}, identity: {}]", c.live, c.is_identity()))
                .collect::<Vec<_>>()
        };
        // Same as the cluster: nothing, whatever the committed config says.
        assert!(field_changes(&new, Some(&ns("A", "+919800000002", "large")), None).is_empty());
        let mut committed = new.clone();
        committed.tier = "medium".into();
        committed.mla_name = "Old".into();
        assert_eq!(
            shown(field_changes(
                &new,
                Some(&ns("A", "+919800000001", "small")),
                Some(&committed)
            )),
            [
                "mla_name: Old → A (in the committed config; the cluster already has A) [live: false, identity: true]",
                "whatsapp_number: +919800000001 → +919800000002 [live: true, identity: true]",
                "tier: small → large (the committed config says medium) [live: true, identity: false]",
            ]
        );
        // No namespace: the committed config is all there is to compare with.
        assert_eq!(
            shown(field_changes(&new, None, Some(&committed))),
            [
                "mla_name: Old → A [live: false, identity: true]",
                "tier: medium → large [live: false, identity: false]",
            ]
        );
        assert!(field_changes(&new, None, None).is_empty());
    }

    #[test]
    fn volume_sizes() {
        let claim = |size: &str| {
            serde_json::json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "bot-data"},
                "spec": {"resources": {"requests": {"storage": size}}}})
        };
        let desired = |size: &str| Manifest {
            source: "persistentvolumeclaim.yaml".into(),
            kind: "PersistentVolumeClaim".into(),
            name: "bot-data".into(),
            namespace: Some("tenant-a".into()),
            object: claim(size),
        };
        let size = |want: &str, have: &str, tier_changes: bool| {
            volume_size(&desired(want), &claim(have), tier_changes)
        };
        let pair = |have: &str, want: &str| (have.to_owned(), want.to_owned());
        assert_eq!(size("5Gi", "5120Mi", true), VolumeSize::AsTier);
        let (have, want) = pair("1Gi", "5Gi");
        assert_eq!(size("5Gi", "1Gi", true), VolumeSize::Grow { have, want });
        let (have, want) = pair("5Gi", "1Gi");
        assert_eq!(size("1Gi", "5Gi", true), VolumeSize::Shrink { have, want });
        // Grown by hand under the same tier: kept, not a shrink.
        let (have, want) = pair("50Gi", "20Gi");
        assert_eq!(
            size("20Gi", "50Gi", false),
            VolumeSize::Larger { have, want }
        );
        assert_eq!(size("20Gi", "lots", true), VolumeSize::AsTier);
    }

    #[test]
    fn changes_are_decided_by_content() {
        let before = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1"}, "data": {"a": "1"}});
        let status_only = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "7"}, "data": {"a": "1"}, "status": {"x": 1}});
        let edited = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "8"}, "data": {"a": "2"}});
        assert_eq!(
            ObjectChange::between(Some(&before), Some(&status_only)),
            Some(ObjectChange::Unchanged)
        );
        assert_eq!(
            ObjectChange::between(Some(&before), Some(&edited)),
            Some(ObjectChange::Configured)
        );
        assert_eq!(
            ObjectChange::between(None, Some(&edited)),
            Some(ObjectChange::Created)
        );
        assert_eq!(
            PlanChange::CreateCredentials {
                namespace: "tenant-a".into()
            }
            .to_string(),
            "+ secret/bot-credentials in tenant-a (credentials generated at apply, never shown)"
        );
    }
}
