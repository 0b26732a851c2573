//! `cargo xtask provision`: tenant config in, manifests out, one server-side
//! apply, then wait for the bot.
//!
//! Order of work, so that bad input never reaches the cluster: validate the
//! name (clap), load platform settings and templates, collect and validate
//! every value, render and check the manifests; only then read the cluster,
//! refuse clashes with other tenants, save the config, apply once, and wait.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::Shell;

use crate::flags;
use crate::kubectl::{Kubectl, Scope, str_at};
use crate::platform::{Platform, QuantityKind, parse_quantity};
use crate::prompt::{Prompter, TerminalPrompter, ask_valid};
use crate::render::{
    MANAGER, Manifest, SecretValues, TENANT_LABEL, Templates, file_name, to_yaml_stream,
};
use crate::tenant::{self, TenantSpec, TenantValues, format_problems};

/// Repository paths, defaulting to the repository root.
pub struct RepoPaths {
    pub platform: PathBuf,
    pub templates: PathBuf,
    pub tenants: PathBuf,
}

impl RepoPaths {
    pub fn new(root: &Path, args: &flags::RepoArgs) -> RepoPaths {
        RepoPaths {
            platform: args
                .platform
                .clone()
                .unwrap_or_else(|| root.join("platform.yaml")),
            templates: args
                .templates
                .clone()
                .unwrap_or_else(|| root.join("templates")),
            tenants: args
                .tenants_dir
                .clone()
                .unwrap_or_else(|| root.join("tenants")),
        }
    }
}

impl flags::Provision {
    pub(crate) fn run(self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let paths = RepoPaths::new(root, &self.repo);
        let Some(tenant) = self.tenant.clone() else {
            return self.run_all(&paths);
        };
        let platform = Platform::load(&paths.platform.display().to_string())?;
        let templates = Templates::load(&paths.templates)?;
        let mut values = self.file_and_flag_values()?;
        let interactive = !self.non_interactive && std::io::stdin().is_terminal();
        if interactive {
            fill_by_prompt(&mut values, &mut TerminalPrompter)?;
        }
        let spec = TenantSpec::resolve(
            &tenant,
            &values,
            &platform.tier_names(),
            &platform.default_tier,
        )
        .map_err(|problems| {
            let mut msg = format_problems(
                &format!("tenant `{tenant}` cannot be provisioned"),
                &problems,
            );
            if !interactive && problems.iter().any(|p| p.starts_with("missing values")) {
                msg.push_str(
                    "\nGive them as flags or in a --values file (see tenants/demo.yaml), \
                     or run in a terminal without --non-interactive to be asked.",
                );
            }
            anyhow::anyhow!(msg)
        })?;
        // The config is saved as written; the cluster gets the environment's view of it.
        let env = crate::environment::select(&self.cluster)?;
        let saved = spec;
        let spec = env
            .as_ref()
            .map_or_else(|| saved.clone(), |e| e.tenant_view(&saved));

        if self.plan {
            return self.plan(sh, &platform, &templates, &spec);
        }
        if self.dry_run || self.out.is_some() {
            let manifests = templates.render_tenant(&spec, &platform, &SecretValues::Redacted)?;
            return match &self.out {
                None => {
                    print!("{}", to_yaml_stream(&manifests)?);
                    Ok(())
                }
                Some(dir) => write_out_dir(dir, &manifests),
            };
        }

        if interactive && !confirm(&spec, &self.cluster, &mut TerminalPrompter)? {
            bail!("cancelled; nothing was changed");
        }
        let kubectl = self.cluster.kubectl()?;
        let applied =
            crate::environment::confirm_change(env.as_ref(), &tenant, self.yes, "provisioning")
                .and_then(|()| {
                    self.apply(sh, &kubectl, &paths, &platform, &templates, &saved, &spec)
                });
        self.cluster.record(root, spec.name.as_str(), applied)
    }

    /// `--plan`: what an apply would change on the cluster, per object, as
    /// kubectl's server-side diff shows it. Exit 0 when nothing would
    /// change, 2 when something would, 1 on error.
    fn plan(
        &self,
        sh: &Shell,
        platform: &Platform,
        templates: &Templates,
        spec: &TenantSpec,
    ) -> anyhow::Result<()> {
        let kubectl = self.cluster.kubectl()?;
        let prepared = prepare(sh, &kubectl, platform, templates, spec, false)?;
        let plan = diff_plan(sh, &kubectl, spec, &prepared)?;
        println!(
            "Plan for tenant {} in {} on {}:",
            spec.name,
            spec.namespace,
            kubectl.context_label()
        );
        if plan.changes.is_empty() {
            println!("  no changes: the cluster matches the config.");
            return Ok(());
        }
        for line in &plan.changes {
            println!("  {line}");
        }
        if !plan.diff.is_empty() {
            println!("\n{}", plan.diff.trim_end());
        }
        let changing = plan.changes.iter().filter(|c| !c.starts_with('!')).count();
        if changing == 0 {
            println!("\nNothing would change; the notes above need a hand.");
            return Ok(());
        }
        println!(
            "\n{changing} object(s) would change. Apply with the same command without --plan."
        );
        Err(crate::Exit(2).into())
    }

    /// `--all`: every `tenants/*.yaml`, each applied by a child run of this
    /// same command (its own audit line, its own saved config), `--jobs` at
    /// a time. One line per tenant; a failure does not stop the others.
    fn run_all(&self, paths: &RepoPaths) -> anyhow::Result<()> {
        let mut configs: Vec<PathBuf> = std::fs::read_dir(&paths.tenants)
            .with_context(|| format!("cannot read {}", paths.tenants.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        configs.sort();
        if configs.is_empty() {
            bail!("there are no tenant configs in {}", paths.tenants.display());
        }
        let env = crate::environment::select(&self.cluster)?;
        if let Some(env) = env.as_ref().filter(|e| e.confirm) {
            crate::prompt::confirm_typed(
                "all",
                &format!(
                    "Environment {} (context {}): provisioning all {} tenants.",
                    env.name,
                    env.context,
                    configs.len()
                ),
                self.yes,
                &format!(
                    "environment {} needs confirmation for provisioning all tenants",
                    env.name
                ),
            )?;
        }
        let exe =
            std::env::current_exe().context("cannot find this program to run it per tenant")?;
        let mut common: Vec<std::ffi::OsString> = Vec::new();
        let mut flag = |name: &str, value: Option<&std::ffi::OsStr>| {
            if let Some(v) = value {
                common.push(name.into());
                common.push(v.to_owned());
            }
        };
        flag("--platform", Some(paths.platform.as_os_str()));
        flag("--templates", Some(paths.templates.as_os_str()));
        flag("--tenants-dir", Some(paths.tenants.as_os_str()));
        flag("--timeout", Some(self.rollout.timeout.as_ref()));
        flag(
            "--kubectl",
            self.cluster.kubectl.as_deref().map(Path::as_os_str),
        );
        flag(
            "--context",
            self.cluster.context.as_deref().map(std::ffi::OsStr::new),
        );
        flag(
            "--env",
            self.cluster.env.as_deref().map(std::ffi::OsStr::new),
        );
        flag(
            "--audit-log",
            self.cluster.audit_log.as_deref().map(Path::as_os_str),
        );
        flag(
            "--kubectl-timeout",
            Some(self.cluster.kubectl_timeout.as_ref()),
        );
        common.extend(["--non-interactive".into(), "--yes".into()]);
        if self.force_conflicts {
            common.push("--force-conflicts".into());
        }
        eprintln!(
            "Provisioning {} tenants from {}, {} at a time ...",
            configs.len(),
            paths.tenants.display(),
            self.jobs
        );
        let queue = std::sync::Mutex::new(
            configs
                .into_iter()
                .collect::<std::collections::VecDeque<_>>(),
        );
        let failed = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.jobs {
                s.spawn(|| {
                    loop {
                        let Some(config) = queue.lock().expect("queue").pop_front() else {
                            break;
                        };
                        let name = config
                            .file_stem()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let out = std::process::Command::new(&exe)
                            .arg("provision")
                            .arg(&name)
                            .arg("--values")
                            .arg(&config)
                            .args(&common)
                            .stdin(std::process::Stdio::null())
                            .output();
                        let line = match out {
                            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                                .lines()
                                .next()
                                .unwrap_or("done")
                                .to_owned(),
                            Ok(o) => {
                                failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                let err = String::from_utf8_lossy(&o.stderr);
                                let first = err
                                    .lines()
                                    .find(|l| l.starts_with("error"))
                                    .unwrap_or("failed");
                                format!("{name}: FAILED: {}", first.trim_start_matches("error: "))
                            }
                            Err(e) => {
                                failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                format!("{name}: FAILED: could not run: {e}")
                            }
                        };
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        println!("{line}");
                    }
                });
            }
        });
        let failed = failed.into_inner();
        let total = done.into_inner();
        println!(
            "{total} tenants: {} applied, {failed} failed.",
            total - failed
        );
        if failed > 0 {
            bail!(
                "{failed} of {total} tenants failed; the others were applied. Re-run those with `cargo xtask provision <TENANT> --values tenants/<TENANT>.yaml` to see why"
            );
        }
        Ok(())
    }

    /// The `--values` file with the flags laid over it.
    fn file_and_flag_values(&self) -> anyhow::Result<TenantValues> {
        let file = match &self.values {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "cannot read the values file {}; check the path (tenant configs live in tenants/)",
                        path.display()
                    )
                })?;
                TenantValues::from_yaml(&path.display().to_string(), &text)?
            }
            None => TenantValues::default(),
        };
        Ok(file.overlay(TenantValues {
            tenant: None,
            mla_name: self.mla_name.clone(),
            constituency: self.constituency.clone(),
            whatsapp_number: self.whatsapp_number.clone(),
            domains: self.domains.clone(),
            tier: self.tier.clone(),
            rate_limits: Default::default(),
            site: Default::default(),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        sh: &Shell,
        kubectl: &Kubectl,
        paths: &RepoPaths,
        platform: &Platform,
        templates: &Templates,
        saved: &TenantSpec,
        spec: &TenantSpec,
    ) -> anyhow::Result<()> {
        let ns = spec.namespace.as_str();
        eprintln!(
            "Checking the cluster ({}) for tenant {} ...",
            kubectl.context_label(),
            spec.name
        );
        let Prepared {
            kinds,
            own_namespace,
            existing,
            to_apply,
            kept,
            secret_missing: _,
            secrets,
        } = prepare(sh, kubectl, platform, templates, spec, true)?;
        if let Some(since) = own_namespace
            .as_ref()
            .and_then(crate::admin::lifecycle::suspended_since)
        {
            bail!(
                "tenant {} is suspended (since {since}); applying would bring it back online. Resume it first with \
                 `cargo xtask admin resume {}`. Nothing was changed.",
                spec.name,
                spec.name
            );
        }

        self.save_values(&paths.tenants, saved)?;

        let before = versions(&own_namespace, &existing);
        eprintln!(
            "Applying {} objects to {ns} with one server-side apply (safe to interrupt and re-run) ...",
            to_apply.len()
        );
        let stream = to_yaml_stream(&to_apply)?;
        let applied = kubectl
            .apply_server_side(sh, &stream, MANAGER, self.force_conflicts, &secrets.values())
            .map_err(|e| {
                anyhow::anyhow!(
                    "applying tenant {} failed: {e:#}\n{}\nThe config was saved to {}. Re-running the same command is safe.",
                    spec.name,
                    what_changed(sh, kubectl, ns, &kinds, &before, &to_apply),
                    paths.tenants.join(format!("{}.yaml", spec.name)).display()
                )
            })?;
        drop(stream);
        let after: BTreeMap<(String, String), String> = applied
            .iter()
            .filter_map(|o| {
                Some((
                    (
                        str_at(o, "/kind").map(str::to_owned)?,
                        str_at(o, "/metadata/name").map(str::to_owned)?,
                    ),
                    str_at(o, "/metadata/resourceVersion")
                        .map(str::to_owned)
                        .unwrap_or_default(),
                ))
            })
            .collect();

        let deployment = to_apply
            .iter()
            .find(|m| m.kind == "Deployment")
            .map(|m| m.name.clone());
        if let Some(name) = &deployment {
            eprintln!(
                "Waiting up to {} for deployment/{name} to roll out ...",
                self.rollout.timeout
            );
            kubectl.rollout_status(sh, ns, name, &self.rollout.timeout).map_err(|e| {
                e.context(format!(
                    "every object of tenant {} was applied, but the bot did not become ready within {}. \
                     Diagnose with `kubectl{} --namespace {ns} describe deployment/{name}` and its pod's logs; \
                     re-run provision once fixed",
                    spec.name,
                    self.rollout.timeout,
                    self.cluster.context.as_deref().map(|c| format!(" --context {c}")).unwrap_or_default()
                ))
            })?;
        }

        let mut changed = 0;
        let mut lines = Vec::new();
        for m in &to_apply {
            let key = (m.kind.clone(), m.name.clone());
            let status = match (before.get(&key), after.get(&key)) {
                (None, _) => "created",
                (Some(old), Some(new)) if old == new => "unchanged",
                _ => "configured",
            };
            if status != "unchanged" {
                changed += 1;
            }
            lines.push(format!("  {status:<11}{}", m.reference()));
        }
        for (m, note) in &kept {
            lines.push(format!("  {:<11}{} ({note})", "kept", m.reference()));
        }
        if changed == 0 {
            println!(
                "Tenant {} is up to date in {ns}: nothing changed ({} objects checked, {} kept).",
                spec.name,
                to_apply.len(),
                kept.len()
            );
        } else {
            println!(
                "Tenant {} provisioned in {ns} ({} changed):",
                spec.name, changed
            );
            for line in lines {
                println!("{line}");
            }
        }
        if deployment.is_some() {
            println!("The bot is rolled out and ready.");
        }
        Ok(())
    }

    fn save_values(&self, dir: &Path, spec: &TenantSpec) -> anyhow::Result<()> {
        let path = dir.join(format!("{}.yaml", spec.name));
        let text = spec.to_yaml()?;
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        write_atomic(&path, text.as_bytes()).with_context(|| {
            format!(
                "cannot save the tenant config to {}; nothing was applied",
                path.display()
            )
        })?;
        eprintln!("Saved the tenant config to {} (commit it).", path.display());
        Ok(())
    }
}

/// What an apply of `spec` would send, after reading the cluster: the
/// objects to apply (existing Secret and PVCs are kept, never re-applied),
/// and whether the Secret must be created. Refuses clashes with other
/// tenants. With `generate_secrets` false the Secret stays redacted (plans).
pub struct Prepared {
    pub kinds: Vec<String>,
    pub own_namespace: Option<Value>,
    pub existing: LiveObjects,
    pub to_apply: Vec<Manifest>,
    pub kept: Vec<(Manifest, String)>,
    pub secret_missing: bool,
    pub secrets: SecretValues,
}

pub fn prepare(
    sh: &Shell,
    kubectl: &Kubectl,
    platform: &Platform,
    templates: &Templates,
    spec: &TenantSpec,
    generate_secrets: bool,
) -> anyhow::Result<Prepared> {
    let ns = spec.namespace.as_str();
    let kinds: Vec<String> = unique_kinds(
        &templates.render_tenant(spec, platform, &SecretValues::Redacted)?,
        |k| k != "Namespace",
    );
    let (own_namespace, existing) = live_state(sh, kubectl, ns, &kinds).map_err(nothing_changed)?;
    if let Some(existing) = &own_namespace
        && label(existing, TENANT_LABEL) != Some(spec.name.as_str())
    {
        bail!(
            "namespace {ns} already exists but does not belong to tenant {} (no `{TENANT_LABEL}={}` label); \
             it was not created by provision. Nothing was changed. Choose another tenant name, or \
             label the namespace if it really is this tenant's.",
            spec.name,
            spec.name
        );
    }
    let tenants = kubectl
        .get_list(sh, "namespaces", Scope::Cluster, Some(TENANT_LABEL))
        .map_err(nothing_changed)?;
    let ingresses = kubectl
        .get_list(sh, "ingresses", Scope::AllNamespaces, None)
        .map_err(nothing_changed)?;
    let conflicts = find_conflicts(spec, &tenants, &ingresses);
    if !conflicts.is_empty() {
        bail!(format_problems(
            &format!(
                "tenant {} clashes with what is already on the cluster; nothing was changed",
                spec.name
            ),
            &conflicts
        ));
    }

    let exists = |m: &Manifest| existing.contains_key(&(m.kind.clone(), m.name.clone()));

    // Credentials are generated only for a Secret that does not exist yet.
    let manifests = templates.render_tenant(spec, platform, &SecretValues::Redacted)?;
    let secret_missing = manifests.iter().any(|m| m.kind == "Secret" && !exists(m));
    let secrets = if secret_missing && generate_secrets {
        SecretValues::generate(&platform.bot.generated_secrets)?
    } else {
        SecretValues::Redacted
    };
    let manifests = templates.render_tenant(spec, platform, &secrets)?;
    let mut kept = Vec::new();
    let mut to_apply = Vec::new();
    for m in manifests {
        match m.kind.as_str() {
            "Secret" if exists(&m) => {
                kept.push((m, "exists; credentials are never regenerated".to_owned()))
            }
            "PersistentVolumeClaim" if exists(&m) => {
                let live = &existing[&(m.kind.clone(), m.name.clone())];
                let note = pvc_note(&m, live);
                kept.push((m, note));
            }
            _ => to_apply.push(m),
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

/// What an apply would change.
pub struct PlanResult {
    /// One line per object that would change: `~ deployment/bot`, `+ service/bot`.
    pub changes: Vec<String>,
    /// kubectl's unified diff of those objects (the Secret is never in it).
    pub diff: String,
}

/// Runs `kubectl diff --server-side` on what an apply would send, without
/// the Secret (whose values are never shown), and summarises it.
pub fn diff_plan(
    sh: &Shell,
    kubectl: &Kubectl,
    spec: &TenantSpec,
    prepared: &Prepared,
) -> anyhow::Result<PlanResult> {
    let objects: Vec<Manifest> = prepared
        .to_apply
        .iter()
        .filter(|m| m.kind != "Secret")
        .cloned()
        .collect();
    let stream = to_yaml_stream(&objects)?;
    let diff = kubectl
        .diff_server_side(sh, &stream, MANAGER)?
        .unwrap_or_default();
    let mut changes = Vec::new();
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
        if header {
            let exists = if m.kind == "Namespace" {
                prepared.own_namespace.is_some()
            } else {
                prepared
                    .existing
                    .contains_key(&(m.kind.clone(), m.name.clone()))
            };
            changes.push(format!(
                "{} {}",
                if exists { "~" } else { "+" },
                m.reference()
            ));
        }
    }
    if prepared.secret_missing {
        changes.push(format!(
            "+ secret/bot-credentials in {} (credentials generated at apply, never shown)",
            spec.namespace
        ));
    }
    for (m, note) in &prepared.kept {
        if note.contains("tier now asks") {
            changes.push(format!("! {} ({note})", m.reference()));
        }
    }
    Ok(PlanResult { changes, diff })
}

/// Live objects by kind and name.
type LiveObjects = BTreeMap<(String, String), Value>;

/// The tenant's namespace and its objects of `kinds`, as the cluster has them.
fn live_state(
    sh: &Shell,
    kubectl: &Kubectl,
    ns: &str,
    kinds: &[String],
) -> anyhow::Result<(Option<Value>, LiveObjects)> {
    let namespace = kubectl.get_optional(sh, "namespace", ns)?;
    let objects = kubectl
        .get_list(sh, &kinds.join(","), Scope::Namespace(ns), None)?
        .into_iter()
        .filter_map(|o| {
            Some((
                (
                    str_at(&o, "/kind").map(str::to_owned)?,
                    str_at(&o, "/metadata/name").map(str::to_owned)?,
                ),
                o,
            ))
        })
        .collect();
    Ok((namespace, objects))
}

/// Every object's resourceVersion, keyed by kind and name.
fn versions(
    namespace: &Option<Value>,
    objects: &LiveObjects,
) -> BTreeMap<(String, String), String> {
    let rv = |o: &Value| {
        str_at(o, "/metadata/resourceVersion")
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let mut out: BTreeMap<(String, String), String> =
        objects.iter().map(|(k, o)| (k.clone(), rv(o))).collect();
    if let Some(n) = namespace {
        out.insert(
            (
                "Namespace".into(),
                str_at(n, "/metadata/name")
                    .map(str::to_owned)
                    .unwrap_or_default(),
            ),
            rv(n),
        );
    }
    out
}

/// After a failed apply: reads the cluster back and says exactly which of
/// the objects changed, or that it could not tell.
fn what_changed(
    sh: &Shell,
    kubectl: &Kubectl,
    ns: &str,
    kinds: &[String],
    before: &BTreeMap<(String, String), String>,
    applied: &[Manifest],
) -> String {
    let Ok((namespace, objects)) = live_state(sh, kubectl, ns, kinds) else {
        return "The cluster could not be read back to tell which objects were applied before the failure."
            .to_owned();
    };
    let after = versions(&namespace, &objects);
    let mut changed = Vec::new();
    for m in applied {
        let key = (m.kind.clone(), m.name.clone());
        match (before.get(&key), after.get(&key)) {
            (None, Some(_)) => changed.push(format!("{} (created)", m.reference())),
            (Some(a), Some(b)) if a != b => changed.push(format!("{} (configured)", m.reference())),
            _ => {}
        }
    }
    if changed.is_empty() {
        format!(
            "Nothing was changed: all {} objects are as they were.",
            applied.len()
        )
    } else {
        format!(
            "Changed before the failure: {}. The other {} objects are as they were.",
            changed.join(", "),
            applied.len() - changed.len()
        )
    }
}

/// Adds the statement that nothing changed to an error from before the apply.
fn nothing_changed(e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("othing was changed") {
        e
    } else {
        anyhow::anyhow!("{text}\nNothing was changed on the cluster.")
    }
}

/// Asks for every required value that is missing or invalid.
pub fn fill_by_prompt(values: &mut TenantValues, p: &mut dyn Prompter) -> anyhow::Result<()> {
    type Field = (
        &'static str,
        fn(&mut TenantValues) -> &mut Option<String>,
        fn(&str) -> Result<String, String>,
    );
    let fields: [Field; 3] = [
        ("MLA name", |v| &mut v.mla_name, tenant::validate_mla_name),
        (
            "Constituency",
            |v| &mut v.constituency,
            tenant::validate_constituency,
        ),
        (
            "WhatsApp number (E.164, e.g. +91 98765-43210)",
            |v| &mut v.whatsapp_number,
            tenant::normalize_whatsapp_number,
        ),
    ];
    for (question, slot, validate) in fields {
        let current = slot(values).clone();
        match current.as_deref().map(validate) {
            Some(Ok(_)) => continue,
            Some(Err(why)) => p.say(&format!("  ✗ {why}")),
            None => {}
        }
        *slot(values) = Some(ask_valid(p, question, validate)?);
    }
    if let Err(problems) = tenant::validate_domains(&values.domains)
        .and_then(|d| if d.is_empty() { Err(Vec::new()) } else { Ok(d) })
    {
        for why in problems {
            p.say(&format!("  ✗ {why}"));
        }
        values.domains = ask_valid(p, "Domains (separated by spaces or commas)", |answer| {
            let list: Vec<String> = answer
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if list.is_empty() {
                return Err("give at least one domain, e.g. mla-pune.example.in".to_owned());
            }
            tenant::validate_domains(&list).map_err(|e| e.join("; "))
        })?;
    }
    Ok(())
}

fn confirm(
    spec: &TenantSpec,
    cluster: &flags::ClusterArgs,
    p: &mut dyn Prompter,
) -> anyhow::Result<bool> {
    p.say(&format!(
        "\nTenant {} (namespace {}):\n  MLA name:        {}\n  Constituency:    {}\n  WhatsApp number: {}\n  Domains:         {}\n  Tier:            {}",
        spec.name,
        spec.namespace,
        spec.mla_name,
        spec.constituency,
        spec.whatsapp_number,
        spec.domains.join(", "),
        spec.tier
    ));
    let target = cluster.context.as_deref().map_or_else(
        || "the current kube context".to_owned(),
        |c| format!("context {c}"),
    );
    let answer = p.ask(&format!("Apply to {target}? [y/N]"))?;
    Ok(matches!(
        answer.as_deref().map(str::trim),
        Some("y" | "Y" | "yes")
    ))
}

/// Domains and numbers that another tenant, or any Ingress outside this
/// tenant's namespace, already uses.
pub fn find_conflicts(spec: &TenantSpec, tenants: &[Value], ingresses: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let annotation = |o: &Value, key: &str| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    for ns in tenants {
        let Some(name) = str_at(ns, "/metadata/name").map(str::to_owned) else {
            continue;
        };
        if name == spec.namespace {
            continue;
        }
        let owner = label(ns, TENANT_LABEL).unwrap_or(&name).to_owned();
        if annotation(
            ns,
            &format!("{}/whatsapp-number", crate::render::LABEL_DOMAIN),
        )
        .as_deref()
            == Some(spec.whatsapp_number.as_str())
        {
            out.push(format!(
                "WhatsApp number {} is already used by tenant {owner} (namespace {name}); each bot needs its own number",
                spec.whatsapp_number
            ));
        }
        let theirs =
            annotation(ns, &format!("{}/domains", crate::render::LABEL_DOMAIN)).unwrap_or_default();
        for other in theirs.split(',').filter(|d| !d.is_empty()) {
            for mine in &spec.domains {
                if tenant::domains_overlap(mine, other) {
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
                let msg = format!(
                    "domain {mine} is already served by Ingress {ing_ns}/{ing_name} (host {host}); remove it there first or choose another domain"
                );
                if tenant::domains_overlap(mine, host)
                    && !out
                        .iter()
                        .any(|m| m.starts_with(&format!("domain {mine} is already used")))
                {
                    out.push(msg);
                }
            }
        }
    }
    out.dedup();
    out
}

fn pvc_note(desired: &Manifest, live: &Value) -> String {
    let want = str_at(&desired.object, "/spec/resources/requests/storage").map(str::to_owned);
    let have = str_at(live, "/spec/resources/requests/storage").map(str::to_owned);
    let parse = |q: &Option<String>| {
        q.as_deref()
            .and_then(|q| parse_quantity(q, QuantityKind::Bytes).ok())
    };
    match (&want, &have) {
        (Some(w), Some(h)) if parse(&want) != parse(&have) => format!(
            "exists; volumes are never re-applied. It requests {h} but the tier now asks for {w}: resize it by hand if the storage class allows"
        ),
        _ => "exists; volumes are never re-applied".to_owned(),
    }
}

fn unique_kinds(manifests: &[Manifest], keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for m in manifests {
        let kind = m.kind.to_ascii_lowercase();
        if keep(&m.kind) && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")?.get(key)?.as_str()
}

fn write_out_dir(dir: &Path, manifests: &[Manifest]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (i, m) in manifests.iter().enumerate() {
        let path = dir.join(file_name(i, m));
        write_atomic(&path, to_yaml_stream(std::slice::from_ref(m))?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "Wrote {} manifests to {} (the Secret's values are redacted).",
        manifests.len(),
        dir.display()
    );
    Ok(())
}

/// Writes to a temporary file beside `path`, then renames it over `path`, so
/// that a reader never sees half a file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::ScriptedPrompter;
    use crate::tenant::TenantName;

    #[test]
    fn prompts_only_for_missing_or_invalid_values() {
        let mut values = TenantValues {
            mla_name: Some("श्रीकांत शिंदे".into()),
            whatsapp_number: Some("12345".into()),
            ..Default::default()
        };
        let mut p = ScriptedPrompter::new(&[
            "Kalyan",
            "+91 98765 43210",
            "https://x.in",
            "kalyan.example.in, www.kalyan.example.in",
        ]);
        fill_by_prompt(&mut values, &mut p).unwrap();
        assert_eq!(values.mla_name.as_deref(), Some("श्रीकांत शिंदे"));
        assert_eq!(values.whatsapp_number.as_deref(), Some("+919876543210"));
        assert_eq!(
            values.domains,
            ["kalyan.example.in", "www.kalyan.example.in"]
        );
        insta::assert_snapshot!(p.transcript.join("\n"), @r"
        Constituency: Kalyan
          ✗ WhatsApp number `12345` must be in international E.164 form starting with '+' and the country code; example: `+91 98765-43210`
        WhatsApp number (E.164, e.g. +91 98765-43210): +91 98765 43210
        Domains (separated by spaces or commas): https://x.in
          ✗ domain `https://x.in` looks like a URL; give the host name only, example: `mla-pune.example.in`
        Domains (separated by spaces or commas): kalyan.example.in, www.kalyan.example.in
        ");
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
}
