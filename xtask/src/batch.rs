//! Many tenants' objects applied in few `kubectl apply --server-side`
//! processes (`provision --all`): the objects of up to
//! [`TENANTS_PER_APPLY`] tenants in one stream, each tenant's together and
//! in its own order (its Namespace before what goes in it: kubectl applies
//! a stream's objects one after another).
//!
//! What kubectl says about such a stream decides how its results are told
//! apart (kubectl's apply.go, `Run`): it applies every object and goes on
//! past one that fails; with `-o json` it prints the objects as stored
//! only when none failed, and its errors name an object without its
//! namespace (`configmaps "bot-config" is forbidden: ...`), or, for a
//! field-manager conflict, no object at all. Every tenant has objects of
//! the same names, so an error cannot be traced to its tenant by its text.
//! A stream that fails is therefore split in two and each half applied
//! again, down to single tenants: each tenant that fails does so in a
//! stream of its own, with exactly the error `provision` of that tenant
//! alone would give, and the others are applied. Applying an object again
//! is safe: server-side apply of the same object changes nothing. One
//! tenant failing among a hundred costs about 2·log2(100) ≈ 14 more calls;
//! the worst case, every tenant failing, about two calls per tenant.
//!
//! A failure of the call as a whole (the cluster out of reach, the
//! credentials refused, the call stopped at its time limit, an interrupt)
//! is not split: it is every tenant's of that stream.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::kubectl::{Cause, Conflicts, Kubectl, KubectlFailure, Wait};
use crate::object::{kind_and_name, namespace};
use crate::render::{Manifest, to_yaml_stream};

/// How many tenants' objects one `kubectl apply` carries at most: 1,000
/// tenants in ten calls, and a stream of about 1,500 objects (a few MB).
pub const TENANTS_PER_APPLY: usize = 100;

/// For every this many tenants in one stream, the call may take another
/// `--kubectl-timeout`: kubectl makes one request per object.
const TENANTS_PER_TIMEOUT: usize = 10;

/// One tenant's part of a batch.
pub struct Part<'a> {
    /// Its objects, in the order they are applied.
    pub objects: &'a [Manifest],
    /// Values that must never appear in an error (generated credentials).
    pub secrets: Vec<&'a str>,
}

/// Objects as the API server stored them, by kind and name.
pub type Stored = BTreeMap<(String, String), Value>;

/// Applies every part's objects, [`TENANTS_PER_APPLY`] tenants per call,
/// as field manager `manager`. Returns one result per part, in their
/// order: its objects as stored, or its own error; None when an interrupt
/// (Ctrl-C) came before its call, so nothing of it was sent. `done` is
/// told of each part's result as it is known.
pub fn apply(
    kubectl: &Kubectl,
    parts: &[Part<'_>],
    manager: &str,
    conflicts: Conflicts,
    mut done: impl FnMut(usize, &anyhow::Result<Stored>),
) -> Vec<Option<anyhow::Result<Stored>>> {
    let mut results: Vec<Option<anyhow::Result<Stored>>> = parts.iter().map(|_| None).collect();
    let indices: Vec<usize> = (0..parts.len()).collect();
    let mut batch = Batch {
        kubectl,
        parts,
        manager,
        conflicts,
        results: &mut results,
        done: &mut done,
    };
    for chunk in indices.chunks(TENANTS_PER_APPLY) {
        batch.apply_group(chunk);
    }
    results
}

struct Batch<'b, 'a, F> {
    kubectl: &'b Kubectl,
    parts: &'b [Part<'a>],
    manager: &'b str,
    conflicts: Conflicts,
    results: &'b mut Vec<Option<anyhow::Result<Stored>>>,
    done: &'b mut F,
}

impl<F: FnMut(usize, &anyhow::Result<Stored>)> Batch<'_, '_, F> {
    fn set(&mut self, i: usize, result: anyhow::Result<Stored>) {
        (self.done)(i, &result);
        self.results[i] = Some(result);
    }

    /// One call for the parts `group`; on a failure of some object, each
    /// half again.
    fn apply_group(&mut self, group: &[usize]) {
        if group.is_empty() || crate::interrupt::interrupted() {
            return;
        }
        let objects: Vec<Manifest> = group
            .iter()
            .flat_map(|&i| self.parts[i].objects.iter().cloned())
            .collect();
        let secrets: Vec<&str> = group
            .iter()
            .flat_map(|&i| self.parts[i].secrets.iter().copied())
            .collect();
        let stream = match to_yaml_stream(&objects) {
            Ok(stream) => stream,
            Err(e) => {
                for &i in group {
                    self.set(i, Err(anyhow::anyhow!("{e:#}")));
                }
                return;
            }
        };
        drop(objects);
        let limit = limit_for(self.kubectl.call_timeout(), group.len());
        let applied = self.kubectl.apply_within(
            &stream,
            self.manager,
            self.conflicts,
            &secrets,
            Wait::Within(limit),
        );
        drop(stream);
        match applied {
            Ok(stored) => {
                let mut by_part = self.distribute(group, stored);
                for &i in group {
                    self.set(i, Ok(by_part.remove(&i).unwrap_or_default()));
                }
            }
            Err(e) if group.len() == 1 => self.set(group[0], Err(e)),
            Err(e) if of_the_whole_call(&e) => {
                for &i in group {
                    self.set(i, Err(anyhow::anyhow!("{e:#}")));
                }
            }
            Err(_) => {
                let (first, second) = group.split_at(group.len() / 2);
                self.apply_group(first);
                self.apply_group(second);
            }
        }
    }

    /// The stored objects of one call, each given to the part that sent it
    /// (by kind, namespace and name).
    fn distribute(&self, group: &[usize], stored: Vec<Value>) -> BTreeMap<usize, Stored> {
        let mut sender: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for &i in group {
            for m in self.parts[i].objects {
                let ns = m.namespace.clone().unwrap_or_default();
                sender
                    .entry((m.kind.clone(), ns, m.name.clone()))
                    .or_insert(i);
            }
        }
        let mut out: BTreeMap<usize, Stored> = BTreeMap::new();
        for object in stored {
            let Some((kind, name)) = kind_and_name(&object) else {
                continue;
            };
            let key = (kind.clone(), namespace(&object).to_owned(), name.clone());
            if let Some(&i) = sender.get(&key) {
                out.entry(i).or_default().insert((kind, name), object);
            }
        }
        out
    }
}

/// A failure that is not one object's: the call could not run, was
/// stopped at its limit or by an interrupt, or the cluster could not be
/// reached or refused the credentials.
fn of_the_whole_call(e: &anyhow::Error) -> bool {
    if crate::interrupt::interrupted() {
        return true;
    }
    match e.downcast_ref::<KubectlFailure>() {
        None => true,
        Some(f) => {
            f.status.is_none()
                || matches!(
                    f.cause,
                    Cause::Unreachable | Cause::Unauthenticated | Cause::MissingContext
                )
        }
    }
}

/// How long one call carrying `tenants` tenants' objects may take.
pub fn limit_for(call_timeout: Duration, tenants: usize) -> Duration {
    call_timeout.saturating_mul(tenants.div_ceil(TENANTS_PER_TIMEOUT).max(1) as u32)
}
