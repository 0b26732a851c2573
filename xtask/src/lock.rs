//! Locks on the cluster, not on one laptop: a `coordination.k8s.io/v1`
//! Lease per tenant, held by every command that changes the tenant, and one
//! Lease for the domain and number claims, held by provision from reading
//! the other tenants' claims to applying its own.
//!
//! All of them live in one platform namespace, [`NAMESPACE`], created on
//! first use. Not in the tenant's namespace: it does not exist before the
//! first provision, offboard deletes it (taking a lease there with it), and
//! nothing can be created in it while it terminates; the claims lease
//! belongs to no tenant at all.
//!
//! Taking a lease is `kubectl create`, which the API server makes atomic:
//! the second command gets `AlreadyExists` and is refused, before anything
//! is changed, naming the holder, the command and its age. A lease records
//! its holder (`spec.holderIdentity`, the operator), start
//! (`spec.acquireTime`) and length (`spec.leaseDurationSeconds`), and in
//! annotations the command line and the process that holds it. It is
//! renewed (`spec.renewTime`) every five minutes while the command runs, and
//! released (deleted) on every outcome of the command, Ctrl-C included. A
//! process killed hard leaves it behind: until it expires (15 minutes after
//! its last renewal), the refusal says
//! how to break it (`admin unlock`, audited); once expired, the next command
//! takes it over with `kubectl replace` at the resourceVersion it read (so
//! two commands cannot both take one stale lease over) and says so.

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::kubectl::{Cause, Kubectl, KubectlFailure};
use crate::tenant::TenantName;

/// The namespace every lock lives in.
pub const NAMESPACE: &str = "xtask-locks";
/// The name of the lease that serialises domain and number claims.
pub const CLAIMS: &str = "claims";
/// How long a lease holds after its last renewal: a command killed hard
/// blocks its tenant this long, unless `admin unlock` breaks its lock.
pub const LEASE_SECONDS: u64 = 15 * 60;
/// How often a running command renews its leases (`spec.renewTime`): a
/// third of their length, so one failed renewal does not lose them.
/// `XTASK_LEASE_RENEW_SECONDS` shortens it for tests.
fn renew_every() -> std::time::Duration {
    let seconds = std::env::var("XTASK_LEASE_RENEW_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(LEASE_SECONDS / 3);
    std::time::Duration::from_secs(seconds)
}

const COMMAND_ANNOTATION: &str = "xtask.mla-platform.io/command";
const PROCESS_ANNOTATION: &str = "xtask.mla-platform.io/process";
/// The boot of the machine the holder ran on (Linux's boot id): a process
/// id means something only on the machine and boot that gave it.
const BOOT_ANNOTATION: &str = "xtask.mla-platform.io/boot";

/// What a lease guards, for messages.
#[derive(Debug, Clone)]
pub enum Subject {
    Tenant(String),
    Claims,
}

impl Subject {
    pub fn tenant(tenant: &TenantName) -> Subject {
        Subject::Tenant(tenant.as_str().to_owned())
    }

    /// The lease's name.
    pub fn lease(&self) -> String {
        match self {
            Subject::Tenant(t) => format!("tenant-{t}"),
            Subject::Claims => CLAIMS.to_owned(),
        }
    }

    /// `tenant kalyan`, `the domain and number claims`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Subject::Tenant(t) => format!("tenant {t}"),
            Subject::Claims => "the domain and number claims".to_owned(),
        }
    }

    /// `TENANT` or `--claims` after `cargo xtask admin unlock`.
    fn unlock_arg(&self) -> String {
        match self {
            Subject::Tenant(t) => t.clone(),
            Subject::Claims => "--claims".to_owned(),
        }
    }

    /// ` TENANT --env X` after `cargo xtask admin show`: the tenant, or a
    /// placeholder for the claims, and the run's target.
    fn show_arg(&self) -> String {
        let tenant = match self {
            Subject::Tenant(t) => t.as_str(),
            Subject::Claims => "TENANT",
        };
        format!(" {tenant}{}", crate::suggest::target_arg())
    }
}

/// A lease this process holds, renewed in the background while it runs;
/// released when dropped, whatever the outcome.
pub struct Held<'k> {
    kubectl: &'k Kubectl,
    subject: Subject,
    released: bool,
    renewal: Option<Renewal>,
    /// Set by the renewal when it finds the lease changed or deleted by
    /// someone else.
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The thread that renews a held lease every [`renew_every`].
struct Renewal {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Renewal {
    fn start(
        kubectl: Kubectl,
        subject: Subject,
        mut lease: Value,
        lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Renewal {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let every = renew_every();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
            {
                let Ok(now) = crate::clock::now() else {
                    return;
                };
                lease["spec"]["renewTime"] = json!(micro_time(now));
                match kubectl.replace(NAMESPACE, &lease) {
                    Ok(stored) => lease = stored,
                    Err(e) => {
                        let why = format!("{e:#}")
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let cause = e
                            .downcast_ref::<crate::kubectl::KubectlFailure>()
                            .map(|f| f.cause);
                        // Changed or deleted by someone else (`admin
                        // unlock`, a takeover): it is not ours any more.
                        if matches!(
                            cause,
                            Some(crate::kubectl::Cause::Modified | crate::kubectl::Cause::NotFound)
                        ) {
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            eprintln!(
                                "warning: the lock on {} was taken from this command ({why}): another \
                                 command may now change the tenant beside it; check `cargo xtask admin show{}` \
                                 when this one ends",
                                subject.describe(),
                                subject.show_arg()
                            );
                            return;
                        }
                        // Anything else (the API server out of reach) may
                        // pass: try again at the next turn, well before the
                        // lease expires.
                        eprintln!(
                            "warning: the lock on {} could not be renewed ({why}); trying again",
                            subject.describe()
                        );
                    }
                }
            }
        });
        Renewal { stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

impl<'k> Held<'k> {
    fn new(kubectl: &'k Kubectl, subject: Subject, stored: Value) -> Held<'k> {
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renewal = Renewal::start(kubectl.clone(), subject.clone(), stored, lost.clone());
        Held {
            kubectl,
            subject,
            released: false,
            renewal: Some(renewal),
            lost,
        }
    }

    /// Releases the lease at the end of the work it guarded, and turns a
    /// success into an error if the lock was broken while the work ran
    /// (`admin unlock`, or a takeover after it expired): another command
    /// may have changed the tenant beside it, so "done" would not be the
    /// whole truth. A failure keeps its own message; the loss is said on
    /// stderr.
    pub fn finish<T>(mut self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        let lost = self.release_now();
        finish_lost(&self.subject, lost, result)
    }

    /// Releases the lease now, saying on stderr if that failed (the lease
    /// then expires, or `admin unlock` breaks it). Returns how the lock was
    /// lost, if it was not ours any more.
    fn release_now(&mut self) -> Option<String> {
        if std::mem::replace(&mut self.released, true) {
            return None;
        }
        if let Some(renewal) = self.renewal.take() {
            renewal.stop();
        }
        let lost_at_renewal = self.lost.load(std::sync::atomic::Ordering::SeqCst);
        match release(self.kubectl, &self.subject) {
            Ok(Released::Ours) if lost_at_renewal => {
                Some("it was changed by another command, then given back".to_owned())
            }
            Ok(Released::Ours) => None,
            Ok(Released::Gone) => Some("deleted, e.g. by `admin unlock`".to_owned()),
            Ok(Released::Taken(holder)) => Some(format!("now held by {}", holder.summary())),
            Err(e) => {
                eprintln!(
                    "warning: the lock on {} could not be released: {e:#}\n  It expires by itself; to free it at once: `cargo xtask admin unlock {}{}`",
                    self.subject.describe(),
                    self.subject.unlock_arg(),
                    crate::suggest::target_arg()
                );
                lost_at_renewal.then(|| "taken from it while it ran".to_owned())
            }
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(lost) = self.release_now() {
            eprintln!(
                "warning: the lock on {} was broken while this command ran ({lost})",
                self.subject.describe()
            );
        }
    }
}

/// Leases on many subjects held by one command (`provision --all`), in a
/// number of kubectl calls that does not grow with them: taken in one
/// `kubectl create` of them all, renewed together in one `kubectl replace`
/// every [`renew_every`], released in two calls (a read of every lease in
/// [`NAMESPACE`], a delete of those still ours) whenever the command is
/// done with some of them. Each lease is the very object a command on one
/// tenant takes, so every other command is refused by it, and `admin
/// list`, `show` and `unlock` read and break it, as any other.
pub struct Many<'k> {
    kubectl: &'k Kubectl,
    leases: std::sync::Arc<std::sync::Mutex<Leases>>,
    renewal: Option<Renewal>,
}

/// What a [`Many`] holds, shared with its renewal.
#[derive(Default)]
struct Leases {
    /// Held now, by lease name: the subject and the lease as last stored.
    held: std::collections::BTreeMap<String, (Subject, Value)>,
    /// Found changed or deleted by someone else at a renewal, by lease
    /// name: the subject and how. No longer renewed.
    lost: std::collections::BTreeMap<String, (Subject, String)>,
}

/// Takes the leases on every one of `subjects` in one `kubectl create`;
/// returns those held, and each one refused with its refusal (another
/// command holds it; an expired one is taken over, as [`hold`] does, with
/// a call of its own). Fails as a whole, holding nothing, when the cluster
/// or the rights to leases are missing.
pub fn hold_many(
    kubectl: &Kubectl,
    subjects: Vec<Subject>,
) -> anyhow::Result<(Many<'_>, Vec<(Subject, anyhow::Error)>)> {
    let now = crate::clock::now()?;
    let objects: Vec<Value> = subjects.iter().map(|s| lease_object(s, now)).collect();
    let tenants = subjects
        .iter()
        .filter(|s| matches!(s, Subject::Tenant(_)))
        .count();
    let describe = match subjects.iter().any(|s| matches!(s, Subject::Claims)) {
        true => format!("the domain and number claims and {tenants} tenant(s)"),
        false => format!("{tenants} tenant(s)"),
    };
    let mut each = kubectl
        .create_each(NAMESPACE, &objects)
        .map_err(|e| explain_many(e, kubectl, &describe, "create"))?;
    if each.done.is_empty() && each.failure.as_ref().is_some_and(is_namespace_missing) {
        create_namespace(kubectl)?;
        each = kubectl
            .create_each(NAMESPACE, &objects)
            .map_err(|e| explain_many(e, kubectl, &describe, "create"))?;
    }
    let mut created = by_name(each.done);
    let mut leases = Leases::default();
    let mut missing = Vec::new();
    for subject in subjects {
        match created.remove(&subject.lease()) {
            Some(stored) => {
                leases.held.insert(subject.lease(), (subject, stored));
            }
            None => missing.push(subject),
        }
    }
    let mut refused = Vec::new();
    if !missing.is_empty() {
        let failure = each.failure.unwrap_or_else(|| {
            anyhow::anyhow!(
                "`kubectl create` printed no lease for {}",
                missing[0].describe()
            )
        });
        // Nothing taken, and not because some lease exists: the cluster or
        // the rights are missing, for every subject alike.
        if leases.held.is_empty() && cause(&failure) != Some(Cause::AlreadyExists) {
            return Err(explain_many(failure, kubectl, &describe, "create"));
        }
        let mut live = by_name(
            kubectl
                .get_list("leases", crate::kubectl::Scope::Namespace(NAMESPACE), None)
                .map_err(|e| explain_many(e, kubectl, &describe, "get"))?,
        );
        // Leases left behind (a batch killed before it could release
        // them) are taken over together, in one call.
        let mut takeovers = Vec::new();
        for subject in missing {
            let result = match live.remove(&subject.lease()) {
                None => take_existing(kubectl, &subject, None, now),
                Some(found) => match Takeover::judge(subject.clone(), &found, now) {
                    Ok(t) => {
                        takeovers.push(t);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(stored) => {
                    leases.held.insert(subject.lease(), (subject, stored));
                }
                Err(e) => refused.push((subject, e)),
            }
        }
        if !takeovers.is_empty() {
            let fresh: Vec<Value> = takeovers.iter().map(|t| t.fresh.clone()).collect();
            let each = kubectl
                .replace_each(NAMESPACE, &fresh)
                .map_err(|e| explain_many(e, kubectl, &describe, "update"))?;
            let mut replaced = by_name(each.done);
            let mut notes: std::collections::BTreeMap<(String, String), Vec<String>> =
                std::collections::BTreeMap::new();
            for t in takeovers {
                match replaced.remove(&t.subject.lease()) {
                    Some(stored) => {
                        notes
                            .entry((t.holder.summary(), t.why_left()))
                            .or_default()
                            .push(t.subject.describe());
                        leases.held.insert(t.subject.lease(), (t.subject, stored));
                    }
                    None => {
                        // kubectl names each object that failed on a line of its own.
                        let text = each
                            .failure
                            .as_ref()
                            .map(|e| format!("{e:#}"))
                            .unwrap_or_default();
                        let line = text
                            .lines()
                            .find(|l| l.contains(&format!("\"{}\"", t.subject.lease())));
                        let why = match line {
                            Some(l) if l.contains("the object has been modified") => {
                                t.raced(kubectl)
                            }
                            Some(l) => anyhow::anyhow!(
                                "could not take over the lock on {}: {l}",
                                t.subject.describe()
                            ),
                            None => anyhow::anyhow!(
                                "`kubectl replace` printed no lease for {}",
                                t.subject.describe()
                            ),
                        };
                        refused.push((t.subject, why));
                    }
                }
            }
            // One line per command whose locks were left behind.
            for ((summary, why), subjects) in notes {
                let what = match subjects.as_slice() {
                    [one] => format!("the lock on {one}"),
                    many => format!("{} locks ({}, ...)", many.len(), many[0]),
                };
                eprintln!(
                    "Took over {what}: {summary}, and its locks were left behind ({why}). Check what it left \
                     with `cargo xtask admin list{}`.",
                    crate::suggest::target_arg()
                );
            }
        }
    }
    let leases = std::sync::Arc::new(std::sync::Mutex::new(leases));
    let renewal = Renewal::start_many(kubectl.clone(), leases.clone());
    Ok((
        Many {
            kubectl,
            leases,
            renewal: Some(renewal),
        },
        refused,
    ))
}

impl Many<'_> {
    /// Whether the lease on `subject` is held (taken and not released).
    pub fn holds(&self, subject: &Subject) -> bool {
        let leases = self.lock();
        leases.held.contains_key(&subject.lease()) || leases.lost.contains_key(&subject.lease())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Releases the leases on the subjects of `results` in two calls, and
    /// ends each result as [`Held::finish`] does: a success whose lease was
    /// lost while it held becomes an error. A subject not held is passed
    /// through as it is.
    pub fn finish<K, T>(
        &self,
        results: Vec<(K, Subject, anyhow::Result<T>)>,
    ) -> Vec<(K, anyhow::Result<T>)> {
        let subjects: Vec<Subject> = results.iter().map(|(_, s, _)| s.clone()).collect();
        let mut lost = self.release(&subjects);
        results
            .into_iter()
            .map(
                |(key, subject, result)| match lost.remove(&subject.lease()) {
                    Some(how) => (key, finish_lost(&subject, how, result)),
                    None => (key, result),
                },
            )
            .collect()
    }

    /// Releases the leases on `subjects` that are held: one read of every
    /// lease, one delete of those still ours. Returns, for each released,
    /// how it was lost while held, if it was (None: it was ours to the end).
    fn release(&self, subjects: &[Subject]) -> std::collections::BTreeMap<String, Option<String>> {
        let mut leases = self.lock();
        let mut mine: Vec<(String, Subject, Option<String>)> = Vec::new();
        for subject in subjects {
            let name = subject.lease();
            if let Some((subject, _)) = leases.held.remove(&name) {
                mine.push((name, subject, None));
            } else if let Some((subject, how)) = leases.lost.remove(&name) {
                mine.push((name, subject, Some(how)));
            }
        }
        let mut out = std::collections::BTreeMap::new();
        if mine.is_empty() {
            return out;
        }
        let kubectl = self.kubectl;
        let unreleased = |e: &anyhow::Error, subject: &Subject| {
            eprintln!(
                "warning: the lock on {} could not be released: {e:#}\n  It expires by itself; to free it at once: `cargo xtask admin unlock {}{}`",
                subject.describe(),
                subject.unlock_arg(),
                crate::suggest::target_arg()
            );
        };
        let live =
            match kubectl.get_list("leases", crate::kubectl::Scope::Namespace(NAMESPACE), None) {
                Ok(live) => live,
                Err(e) => {
                    for (name, subject, at_renewal) in mine {
                        unreleased(&e, &subject);
                        out.insert(
                            name,
                            at_renewal.map(|_| "taken from it while it ran".to_owned()),
                        );
                    }
                    return out;
                }
            };
        let live: std::collections::BTreeMap<&str, &Value> =
            live.iter().map(|l| (crate::object::name(l), l)).collect();
        let now = crate::clock::now().unwrap_or(std::time::UNIX_EPOCH);
        let mut delete: Vec<(String, Subject)> = Vec::new();
        for (name, subject, at_renewal) in mine {
            let how = match live.get(name.as_str()) {
                None => Some("deleted, e.g. by `admin unlock`".to_owned()),
                Some(lease) => {
                    let holder = Holder::of(lease, now);
                    if holder.process != process() {
                        Some(format!("now held by {}", holder.summary()))
                    } else {
                        delete.push((name.clone(), subject));
                        at_renewal.map(|_| {
                            "it was changed by another command, then given back".to_owned()
                        })
                    }
                }
            };
            out.insert(name, how);
        }
        if !delete.is_empty() {
            let names: Vec<String> = delete.iter().map(|(n, _)| n.clone()).collect();
            if let Err(e) = kubectl.delete_each(NAMESPACE, "lease", &names) {
                for (_, subject) in &delete {
                    unreleased(&e, subject);
                }
            }
        }
        out
    }
}

impl Drop for Many<'_> {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.stop();
        }
        let subjects: Vec<Subject> = {
            let leases = self.lock();
            leases
                .held
                .values()
                .map(|(s, _)| s.clone())
                .chain(leases.lost.values().map(|(s, _)| s.clone()))
                .collect()
        };
        for (name, how) in self.release(&subjects) {
            if let Some(how) = how {
                eprintln!("warning: the lock {name} was broken while this command ran ({how})");
            }
        }
    }
}

impl Renewal {
    /// Renews every lease `leases` holds, all in one `kubectl replace`, every
    /// [`renew_every`]. A lease the replace did not renew is read back with
    /// the others (one read): one changed or deleted by someone else (`admin
    /// unlock`, a takeover) is lost, and no longer renewed; any other
    /// failure (the API server out of reach) is tried again at the next
    /// turn, well before the leases expire.
    fn start_many(kubectl: Kubectl, leases: std::sync::Arc<std::sync::Mutex<Leases>>) -> Renewal {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let every = renew_every();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
            {
                let Ok(now) = crate::clock::now() else {
                    return;
                };
                let mut leases = leases
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if leases.held.is_empty() {
                    continue;
                }
                let renewed: Vec<Value> = leases
                    .held
                    .values()
                    .map(|(_, lease)| {
                        let mut lease = lease.clone();
                        lease["spec"]["renewTime"] = json!(micro_time(now));
                        lease
                    })
                    .collect();
                let failure = match kubectl.replace_each(NAMESPACE, &renewed) {
                    Ok(each) => {
                        for stored in each.done {
                            if let Some((_, lease)) =
                                leases.held.get_mut(crate::object::name(&stored))
                            {
                                *lease = stored;
                            }
                        }
                        each.failure
                    }
                    Err(e) => Some(e),
                };
                let Some(failure) = failure else {
                    continue;
                };
                let why = format!("{failure:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                // Which were not renewed, and why: read them back.
                let live = match kubectl.get_list(
                    "leases",
                    crate::kubectl::Scope::Namespace(NAMESPACE),
                    None,
                ) {
                    Ok(live) => live,
                    Err(_) => {
                        eprintln!(
                            "warning: the locks of this command ({} of them) could not be renewed ({why}); trying again",
                            leases.held.len()
                        );
                        continue;
                    }
                };
                let live = by_name(live);
                let mut retry = 0;
                let names: Vec<String> = leases.held.keys().cloned().collect();
                for name in names {
                    let ours = leases.held[&name].1["metadata"]["resourceVersion"].clone();
                    match live.get(&name) {
                        Some(l) if l["metadata"]["resourceVersion"] == ours => retry += 1,
                        Some(l) if Holder::of(l, now).process == process() => {
                            // Renewed after all (the reply was lost): ours still.
                            if let Some((_, lease)) = leases.held.get_mut(&name) {
                                *lease = l.clone();
                            }
                        }
                        _ => {
                            let (subject, _) = leases.held.remove(&name).expect("a held lease");
                            eprintln!(
                                "warning: the lock on {} was taken from this command ({why}): another \
                                 command may now change the tenant beside it; check `cargo xtask admin show{}` \
                                 when this one ends",
                                subject.describe(),
                                subject.show_arg()
                            );
                            let how = match live.get(&name) {
                                None => "deleted while it ran".to_owned(),
                                Some(_) => "changed by another command while it ran".to_owned(),
                            };
                            leases.lost.insert(name, (subject, how));
                        }
                    }
                }
                if retry > 0 {
                    eprintln!(
                        "warning: the locks of this command ({retry} of them) could not be renewed ({why}); trying again"
                    );
                }
            }
        });
        Renewal { stop, thread }
    }
}

/// The end of the work a lease guarded: a success turned into an error if
/// the lease was `lost` while the work ran (`admin unlock`, or a takeover
/// after it expired): another command may have changed the tenant beside
/// it, so "done" would not be the whole truth. A failure keeps its own
/// message; the loss is said on stderr.
fn finish_lost<T>(
    subject: &Subject,
    lost: Option<String>,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    let Some(lost) = lost else {
        return result;
    };
    let context = crate::suggest::target_arg();
    let what = match subject {
        Subject::Tenant(t) => format!(
            "the lock on tenant {t} was broken while this command ran ({lost}): another command may \
             have changed the tenant beside it. Check it with `cargo xtask admin show {t}{context}` and \
             `cargo xtask admin drift {t}{context}`"
        ),
        Subject::Claims => format!(
            "the lock on the domain and number claims was broken while this command ran ({lost}): \
             another provision may have claimed a value beside it. Check every tenant's claims with \
             `cargo xtask admin verify{context}` (its `sharing` check)"
        ),
    };
    match result {
        Ok(_) => Err(crate::outcome::partly(
            anyhow::anyhow!("this command did all its work, but {what}"),
            "Its work was done (changes made, archives written), but not guarded by the lock to its end.".to_owned(),
        )),
        Err(e) => {
            eprintln!("warning: {what}");
            Err(e)
        }
    }
}

/// Leases by name.
fn by_name(leases: Vec<Value>) -> std::collections::BTreeMap<String, Value> {
    leases
        .into_iter()
        .map(|l| (crate::object::name(&l).to_owned(), l))
        .collect()
}

/// This process, as its leases record it: host and process id.
fn process() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// Whether the process a lease records (`host:pid`) runs on this machine,
/// as an xtask: Some(its command line) if so. None when it is gone, runs
/// something else (its pid reused), or was on another machine, which
/// [`Holder::on_another_host`] tells apart.
pub fn still_running_here(holder: &Holder) -> Option<String> {
    let pid = holder.pid()?;
    if !holder.taken_here() || pid == std::process::id() {
        return None;
    }
    crate::files::running_xtask(pid)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// This boot of this machine (`/proc/sys/kernel/random/boot_id`), which
/// two machines that share a host name do not share.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
}

fn command_line() -> String {
    std::env::args().skip(1).collect::<Vec<_>>().join(" ")
}

/// Kubernetes MicroTime: RFC 3339 with exactly six fractional digits.
fn micro_time(t: std::time::SystemTime) -> String {
    let seconds = crate::clock::rfc3339(t);
    let micros = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_micros())
        .unwrap_or(0);
    format!("{}.{micros:06}Z", seconds.trim_end_matches('Z'))
}

fn lease_object(subject: &Subject, now: std::time::SystemTime) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": subject.lease(),
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "xtask"},
            "annotations": {
                COMMAND_ANNOTATION: command_line(),
                PROCESS_ANNOTATION: process(),
                BOOT_ANNOTATION: boot_id().unwrap_or_default(),
            },
        },
        "spec": {
            "holderIdentity": crate::audit::operator(),
            "acquireTime": micro_time(now),
            // As client-go's leader election does: renewed when taken.
            "renewTime": micro_time(now),
            "leaseDurationSeconds": LEASE_SECONDS,
        },
    })
}

/// What a lease says about its holder.
#[derive(Debug, Clone)]
pub struct Holder {
    pub operator: String,
    pub command: String,
    pub process: String,
    /// The holder machine's boot id, when the lease records one.
    pub boot: Option<String>,
    pub acquired: Option<String>,
    pub age_seconds: Option<u64>,
    pub expires_in_seconds: Option<i64>,
}

impl Holder {
    pub fn of(lease: &Value, now: std::time::SystemTime) -> Holder {
        let text = |p: &str| lease.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let acquired = text("/spec/acquireTime");
        let age = crate::clock::age_seconds(acquired.as_deref(), now);
        // A lease lasts its duration from its last renewal.
        let renewed = text("/spec/renewTime").or_else(|| acquired.clone());
        let since_renewal = crate::clock::age_seconds(renewed.as_deref(), now);
        let duration = lease
            .pointer("/spec/leaseDurationSeconds")
            .and_then(Value::as_i64);
        Holder {
            operator: text("/spec/holderIdentity").unwrap_or_else(|| "(no holder)".to_owned()),
            command: text(&format!(
                "/metadata/annotations/{}",
                COMMAND_ANNOTATION.replace('/', "~1")
            ))
            .unwrap_or_else(|| "(not recorded)".to_owned()),
            process: text(&format!(
                "/metadata/annotations/{}",
                PROCESS_ANNOTATION.replace('/', "~1")
            ))
            .unwrap_or_default(),
            boot: text(&format!(
                "/metadata/annotations/{}",
                BOOT_ANNOTATION.replace('/', "~1")
            )),
            acquired,
            age_seconds: age,
            expires_in_seconds: match (since_renewal, duration) {
                (Some(a), Some(d)) => Some(d - a as i64),
                _ => None,
            },
        }
    }

    /// The recorded `host:pid`, safe to print; `unknown` when none is.
    pub fn process_shown(&self) -> String {
        if self.process.is_empty() {
            "unknown".to_owned()
        } else {
            crate::output::escape_controls(&self.process)
        }
    }

    /// The holder's process id, as its lease records it.
    pub fn pid(&self) -> Option<u32> {
        self.process.rsplit_once(':')?.1.parse().ok()
    }

    /// The machine the holder ran on, when it is not this one.
    pub fn on_another_host(&self) -> Option<&str> {
        self.host().filter(|h| *h != host_name())
    }

    /// Whether the lease records this machine as its holder's.
    pub fn taken_here(&self) -> bool {
        self.host().is_some_and(|h| h == host_name())
    }

    /// Whether the holder's process is known to be gone: the lease was
    /// taken on this machine in this boot (host name and boot id), and no
    /// xtask runs under its process id. Its lock can be taken over at once,
    /// without waiting for it to expire.
    pub fn gone_here(&self) -> bool {
        let this_boot = boot_id();
        self.taken_here()
            && this_boot.is_some()
            && self.boot == this_boot
            && self
                .pid()
                .is_some_and(|pid| crate::files::running_xtask(pid).is_none())
    }

    /// The holder's machine, as its lease records it (`host:pid`).
    fn host(&self) -> Option<&str> {
        Some(self.process.rsplit_once(':')?.0)
    }

    /// Expired: its holder did not release it in time (killed, machine gone).
    pub fn expired(&self) -> bool {
        self.expires_in_seconds.is_some_and(|s| s <= 0)
    }

    /// `ops@example.org ran \`admin restore kalyan\` 4m ago`, for messages.
    pub fn summary(&self) -> String {
        format!(
            "{} ran `{}` {} ago (since {})",
            crate::output::escape_controls(&self.operator),
            crate::output::escape_controls(&self.command),
            crate::clock::format_age(self.age_seconds),
            crate::output::escape_controls(self.acquired.as_deref().unwrap_or("an unknown time")),
        )
    }
}

/// Takes the lease on `subject`, or refuses, changing nothing, if another
/// command holds it.
pub fn hold<'k>(kubectl: &'k Kubectl, subject: Subject) -> anyhow::Result<Held<'k>> {
    let stored = take(kubectl, &subject)?;
    Ok(Held::new(kubectl, subject, stored))
}

/// Creates the lease on `subject` (and the lock namespace on first use),
/// or takes it over if it expired; the lease as stored.
fn take(kubectl: &Kubectl, subject: &Subject) -> anyhow::Result<Value> {
    let now = crate::clock::now()?;
    let object = lease_object(subject, now);
    let created = match kubectl.create(Some(NAMESPACE), &object) {
        Err(e) if is_namespace_missing(&e) => {
            create_namespace(kubectl)?;
            kubectl.create(Some(NAMESPACE), &object)
        }
        other => other,
    };
    match created {
        Ok(stored) => Ok(stored),
        Err(e) if cause(&e) == Some(Cause::AlreadyExists) => {
            let live = kubectl
                .get_in_optional(NAMESPACE, "lease", &subject.lease())
                .map_err(|e| explain(e, kubectl, subject, "get"))?;
            take_existing(kubectl, subject, live, now)
        }
        Err(e) => Err(explain(e, kubectl, subject, "create")),
    }
}

/// The lease on `subject` was there when we tried to create it (`live`,
/// as read after; None if it went since): refuse, or take it over if it
/// was left behind. The lease as stored.
fn take_existing(
    kubectl: &Kubectl,
    subject: &Subject,
    live: Option<Value>,
    now: std::time::SystemTime,
) -> anyhow::Result<Value> {
    let Some(live) = live else {
        // Released between our create and our read: try once more.
        return kubectl
            .create(Some(NAMESPACE), &lease_object(subject, now))
            .map_err(|e| explain(e, kubectl, subject, "create"));
    };
    let takeover = Takeover::judge(subject.clone(), &live, now)?;
    match kubectl.replace(NAMESPACE, &takeover.fresh) {
        Ok(stored) => {
            eprintln!("{}", takeover.note());
            Ok(stored)
        }
        Err(e) => Err(takeover.failed(e, kubectl)),
    }
}

/// A lease left behind by a command that no longer runs, to be replaced
/// by ours: its holder expired (killed elsewhere, a machine gone) or its
/// process on this machine is gone (killed, crashed).
struct Takeover {
    subject: Subject,
    /// Our lease, with the resourceVersion of the one it replaces (so that
    /// of two commands taking it over, one wins).
    fresh: Value,
    holder: Holder,
    gone: bool,
}

impl Takeover {
    /// Whether the lease `live` on `subject` may be taken over; the
    /// refusal, changing nothing, if another command may still hold it.
    fn judge(
        subject: Subject,
        live: &Value,
        now: std::time::SystemTime,
    ) -> anyhow::Result<Takeover> {
        let holder = Holder::of(live, now);
        let gone = holder.gone_here();
        if !holder.expired() && !gone {
            anyhow::bail!("{}", refusal(&subject, &holder));
        }
        // Expired, but its process still runs here (stopped with Ctrl-Z, or
        // the machine slept): it would go on beside us when it wakes.
        if let Some(cmdline) = still_running_here(&holder) {
            anyhow::bail!(
                "the lock on {} expired without being renewed, but the command that holds it still runs on \
                 this machine: {}, process {} (`{cmdline}`); stopped (Ctrl-Z) or hung, it would go on beside \
                 this one when it resumes. Let it finish (`fg` in its terminal, or `kill -CONT {}`), or stop it \
                 (`kill {}`), then run this again.",
                subject.describe(),
                holder.summary(),
                crate::output::escape_controls(&holder.process),
                holder.pid().unwrap_or_default(),
                holder.pid().unwrap_or_default(),
            );
        }
        let mut fresh = lease_object(&subject, now);
        fresh["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
        Ok(Takeover {
            subject,
            fresh,
            holder,
            gone,
        })
    }

    /// Why the lock was left behind.
    fn why_left(&self) -> String {
        if self.gone {
            format!(
                "its process {} on this machine is gone: killed or crashed",
                self.holder.process_shown()
            )
        } else {
            "it expired without being released: its process was probably killed".to_owned()
        }
    }

    /// What is said when the lock was taken over.
    fn note(&self) -> String {
        format!(
            "Took over the lock on {}: {}, and its lock was left behind ({}). Check what it left with \
             `cargo xtask admin show{}`.",
            self.subject.describe(),
            self.holder.summary(),
            self.why_left(),
            self.subject.show_arg()
        )
    }

    /// The error of a replace that failed.
    fn failed(&self, e: anyhow::Error, kubectl: &Kubectl) -> anyhow::Error {
        if cause(&e) == Some(Cause::Modified) {
            return self.raced(kubectl);
        }
        explain(e, kubectl, &self.subject, "update")
    }

    /// Another command took the lease over first.
    fn raced(&self, kubectl: &Kubectl) -> anyhow::Error {
        anyhow::anyhow!(
            "another command took over the lock on {} just now; nothing was changed. \
             See who holds it with `kubectl{} get lease {} --namespace {NAMESPACE} --output yaml`.",
            self.subject.describe(),
            kubectl.context_arg(),
            self.subject.lease()
        )
    }
}

/// The refusal of a command while another holds the lock.
pub fn refusal(subject: &Subject, holder: &Holder) -> String {
    let expires = holder
        .expires_in_seconds
        .map(|s| crate::clock::format_age(Some(s.max(0) as u64)))
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "another command holds the lock on {}: {} (process {}; lease {}/{} expires in {expires}). \
         Wait for it to finish and run this again. If that command is no longer \
         running (killed, or its machine gone), break the lock with `cargo xtask admin unlock {}{}`.",
        subject.describe(),
        holder.summary(),
        holder.process_shown(),
        NAMESPACE,
        subject.lease(),
        subject.unlock_arg(),
        crate::suggest::target_arg(),
    )
}

/// What releasing a lease found.
enum Released {
    /// It was ours, and is deleted.
    Ours,
    /// It was gone already: broken with `admin unlock`.
    Gone,
    /// Another command holds it now (it broke or took over ours).
    Taken(Holder),
}

/// Deletes our lease, if it is still ours (`admin unlock` may have broken
/// it and another command taken it since).
fn release(kubectl: &Kubectl, subject: &Subject) -> anyhow::Result<Released> {
    let name = subject.lease();
    let Some(live) = kubectl.get_in_optional(NAMESPACE, "lease", &name)? else {
        return Ok(Released::Gone);
    };
    let now = crate::clock::now()?;
    let holder = Holder::of(&live, now);
    if holder.process != process() {
        return Ok(Released::Taken(holder));
    }
    match kubectl.delete(Some(NAMESPACE), "lease", &name, None) {
        Ok(()) => Ok(Released::Ours),
        Err(e) if cause(&e) == Some(Cause::NotFound) => Ok(Released::Gone),
        Err(e) => Err(e),
    }
}

/// The lease on `subject` as it is now, if any.
pub fn read(kubectl: &Kubectl, subject: &Subject) -> anyhow::Result<Option<Value>> {
    kubectl
        .get_in_optional(NAMESPACE, "lease", &subject.lease())
        .map_err(|e| explain(e, kubectl, subject, "get"))
}

/// Every tenant's lease, by tenant name, in one read; for `list`. None
/// when the user may not read leases (said on stderr): the listing goes on
/// without them.
pub fn tenant_leases(
    kubectl: &Kubectl,
) -> anyhow::Result<Option<std::collections::BTreeMap<String, Value>>> {
    match kubectl.get_list("leases", crate::kubectl::Scope::Namespace(NAMESPACE), None) {
        Ok(leases) => Ok(Some(
            leases
                .into_iter()
                .filter_map(|l| {
                    let tenant = crate::object::name(&l).strip_prefix("tenant-")?.to_owned();
                    Some((tenant, l))
                })
                .collect(),
        )),
        Err(e) if cause(&e) == Some(Cause::Rbac) => {
            eprintln!(
                "warning: you may not list leases in {NAMESPACE}, so this does not show which tenants a \
                 command holds locked; ask a cluster admin for get and list on leases \
                 (coordination.k8s.io) there"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Breaks the lock on `subject` (`admin unlock`).
pub fn delete(kubectl: &Kubectl, subject: &Subject) -> anyhow::Result<()> {
    kubectl
        .delete(Some(NAMESPACE), "lease", &subject.lease(), None)
        .map_err(|e| explain(e, kubectl, subject, "delete"))
}

fn create_namespace(kubectl: &Kubectl) -> anyhow::Result<()> {
    let namespace = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "xtask"},
        },
    });
    match kubectl.create(None, &namespace) {
        Ok(_) => Ok(()),
        Err(e) if cause(&e) == Some(Cause::AlreadyExists) => Ok(()),
        Err(e) => Err(e).with_context(|| {
            format!(
                "the lock namespace {NAMESPACE} does not exist and could not be created; nothing was \
                 changed. Ask a cluster admin to create it (`kubectl create namespace {NAMESPACE}`) and \
                 to let operators create, get, update and delete leases in it"
            )
        }),
    }
}

/// [`explain`] for the leases of many subjects at once.
fn explain_many(e: anyhow::Error, kubectl: &Kubectl, what: &str, verb: &str) -> anyhow::Error {
    if matches!(
        cause(&e),
        Some(Cause::Unreachable | Cause::Unauthenticated | Cause::MissingContext)
    ) {
        return e;
    }
    let done = format!(
        "could not {verb} the locks on {what} (Leases in {NAMESPACE} on {}); nothing was changed",
        kubectl.context_label()
    );
    if cause(&e) == Some(Cause::Rbac) {
        e.context(format!(
            "{done}. Your user may not {verb} leases (coordination.k8s.io) in namespace {NAMESPACE}: \
             every command that changes a tenant needs create, get, list, update and delete on them; \
             ask a cluster admin to grant them"
        ))
    } else {
        e.context(done)
    }
}

fn cause(e: &anyhow::Error) -> Option<Cause> {
    e.downcast_ref::<KubectlFailure>().map(|f| f.cause)
}

fn is_namespace_missing(e: &anyhow::Error) -> bool {
    e.downcast_ref::<KubectlFailure>().is_some_and(|f| {
        f.cause == Cause::NotFound
            && f.stderr
                .contains(&format!("namespaces \"{NAMESPACE}\" not found"))
    })
}

/// A failure to read or write a lock: nothing was changed; an RBAC refusal
/// says which rights are missing.
fn explain(e: anyhow::Error, kubectl: &Kubectl, subject: &Subject, verb: &str) -> anyhow::Error {
    // Those say all there is to say about the cluster, whatever the call.
    if matches!(
        cause(&e),
        Some(Cause::Unreachable | Cause::Unauthenticated | Cause::MissingContext)
    ) {
        return e;
    }
    let rbac = cause(&e) == Some(Cause::Rbac);
    let what = format!(
        "could not {verb} the lock on {} (Lease {}/{} on {}); nothing was changed",
        subject.describe(),
        NAMESPACE,
        subject.lease(),
        kubectl.context_label()
    );
    if rbac {
        e.context(format!(
            "{what}. Your user may not {verb} leases (coordination.k8s.io) in namespace {NAMESPACE}: \
             every command that changes a tenant needs create, get, update and delete on them; \
             ask a cluster admin to grant them"
        ))
    } else {
        e.context(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API server parses MicroTime with exactly six fractional digits.
    #[test]
    fn acquire_time_is_micro_time() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_500_000, 120_000);
        assert_eq!(micro_time(t), "2026-11-24T06:00:00.000120Z");
    }

    #[test]
    fn a_lease_expires_after_its_duration_from_its_last_renewal() {
        let lease = |renew: Option<&str>| {
            let mut l = json!({"spec": {"holderIdentity": "a@b", "acquireTime": "2026-11-24T06:00:00.000000Z",
                                         "leaseDurationSeconds": 600}});
            if let Some(r) = renew {
                l["spec"]["renewTime"] = json!(r);
            }
            l
        };
        let at = |t: &str| humantime::parse_rfc3339(t).unwrap();
        assert!(!Holder::of(&lease(None), at("2026-11-24T06:09:59Z")).expired());
        assert!(Holder::of(&lease(None), at("2026-11-24T06:10:00Z")).expired());
        let renewed = lease(Some("2026-11-24T06:08:00.000000Z"));
        let holder = Holder::of(&renewed, at("2026-11-24T06:15:00Z"));
        assert!(!holder.expired());
        // Its age counts from when it was taken, not from the renewal.
        assert_eq!(holder.age_seconds, Some(900));
        assert_eq!(holder.expires_in_seconds, Some(180));
        // No duration recorded: never taken over, only broken by hand.
        let mut forever = lease(None);
        forever["spec"]
            .as_object_mut()
            .unwrap()
            .remove("leaseDurationSeconds");
        assert!(!Holder::of(&forever, at("2030-01-01T00:00:00Z")).expired());
    }

    #[test]
    fn a_recorded_command_cannot_write_to_the_terminal() {
        let mut lease =
            json!({"metadata": {"annotations": {COMMAND_ANNOTATION: "restore a\u{1b}[2J\nb"}}});
        lease["spec"] = json!({"holderIdentity": "x"});
        let summary = Holder::of(&lease, std::time::UNIX_EPOCH).summary();
        assert!(
            summary.contains("`restore a\\u{1b}[2J\\u{a}b`"),
            "{summary}"
        );
    }
}
