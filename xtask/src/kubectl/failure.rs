//! What a failed kubectl call means, read from kubectl's and the API
//! server's own texts, and what the operator should do about it.
//!
//! kubectl writes discovery warnings (klog lines such as `E1124 06:00:00.000000
//! 123 memcache.go:265] "Unhandled Error" err="couldn't get resource list for
//! metrics.k8s.io/v1beta1: ..."`) and API warnings (`Warning: ...`) to stderr
//! whenever an aggregated API is down or a request is deprecated. They say
//! nothing about the call, so they are never read as its error.

/// What a failure was, as far as its text tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// `Error in configuration: context was not found for specified context: X`.
    MissingContext,
    /// The API server could not be reached at all.
    Unreachable,
    /// The credentials were refused (`Unauthorized`).
    Unauthenticated,
    /// RBAC: `User "u" cannot create resource "pods" in API group ""...`.
    Rbac,
    /// `exceeded quota: ...` or `failed quota: ...`.
    Quota,
    /// A LimitRange maximum or minimum: `maximum cpu usage per Container is ...`.
    LimitRange,
    /// Pod Security admission: `violates PodSecurity "restricted:latest": ...`.
    PodSecurity,
    /// `unable to create new content in namespace X because it is being terminated`.
    NamespaceTerminating,
    /// Server-side apply: `Apply failed with N conflict(s)`.
    Conflict,
    /// `Error from server (NotFound): ...`.
    NotFound,
    /// `Error from server (AlreadyExists): ...`: a create of an object that exists.
    AlreadyExists,
    /// `Error from server (Conflict): Operation cannot be fulfilled on ...`
    /// (after `error when replacing "STDIN": ` where the object came from
    /// `-f -`): an update at a resourceVersion that is no longer the object's.
    Modified,
    /// `kubectl exec`: the command in the pod ran and exited with this status.
    CommandExited(i32),
    Other,
}

/// True for a klog line (`E1124 06:00:00.000000   4242 memcache.go:265] ...`).
pub fn is_klog_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 22
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[8] == b':'
        && b[14] == b'.'
        && line.contains("] ")
}

/// The error text of a call: stderr without kubectl's log and warning lines.
pub fn error_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !is_klog_line(l) && !l.starts_with("Warning: "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

pub fn classify(stderr: &str) -> Cause {
    let text = error_lines(stderr);
    let lower = text.to_ascii_lowercase();
    if let Some(code) = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("command terminated with exit code "))
        .and_then(|n| n.trim().parse().ok())
    {
        return Cause::CommandExited(code);
    }
    if lower.contains("context was not found for specified context")
        || (lower.contains("context \"") && lower.contains("\" does not exist"))
    {
        Cause::MissingContext
    } else if [
        "unable to connect to the server",
        "connection refused",
        "no such host",
        "i/o timeout",
        "was refused - did you specify the right host or port",
        "tls handshake timeout",
    ]
    .iter()
    .any(|s| lower.contains(s))
    {
        Cause::Unreachable
    } else if text.contains("because it is being terminated") {
        Cause::NamespaceTerminating
    } else if text.contains("violates PodSecurity") {
        Cause::PodSecurity
    } else if text.contains("exceeded quota:") || text.contains("failed quota:") {
        Cause::Quota
    } else if [
        "maximum cpu usage per",
        "maximum memory usage per",
        "minimum cpu usage per",
        "minimum memory usage per",
    ]
    .iter()
    .any(|s| text.contains(s))
    {
        Cause::LimitRange
    } else if text.contains("Apply failed with") && text.contains("conflict") {
        Cause::Conflict
    } else if text.contains(" cannot ")
        && text.contains(" resource \"")
        && text.contains("is forbidden: User \"")
    {
        Cause::Rbac
    } else if text.contains("(Unauthorized)")
        || lower.contains("you must be logged in to the server")
    {
        Cause::Unauthenticated
    } else if text.contains("Error from server (NotFound)") {
        Cause::NotFound
    } else if text.contains("Error from server (AlreadyExists)") {
        Cause::AlreadyExists
    } else if text.contains("Error from server (Conflict): ")
        && text.contains("Operation cannot be fulfilled on")
    {
        Cause::Modified
    } else {
        Cause::Other
    }
}

/// What to do about a failure; `context_arg` is ` --context X` or empty.
pub fn advice(cause: Cause, context_arg: &str) -> String {
    match cause {
        Cause::MissingContext => "The kube context does not exist in your kubeconfig: `kubectl config get-contexts` lists the ones you have; pick one with --context or --env (environments.yaml names each environment's context).".to_owned(),
        Cause::Unreachable => format!(
            "The cluster could not be reached: check the VPN or network and your kubeconfig with `kubectl{context_arg} cluster-info`, then run the same command again."
        ),
        Cause::Unauthenticated => format!(
            "The cluster refused your credentials: log in again (refresh the kubeconfig's token), check with `kubectl{context_arg} auth whoami`, then run the same command again."
        ),
        Cause::Rbac => format!(
            "Your credentials are not allowed to do this: check who you are with `kubectl{context_arg} auth whoami` and ask a cluster admin for the platform operator role."
        ),
        Cause::Quota => "The namespace's ResourceQuota has no room for this: `kubectl describe resourcequota --namespace <namespace>` shows what is used and what is allowed.".to_owned(),
        Cause::LimitRange => "The namespace's LimitRange refused the container's resources: `kubectl describe limitrange --namespace <namespace>` shows its bounds.".to_owned(),
        Cause::PodSecurity => "Pod Security admission refused the pod: it does not meet the namespace's profile (the message above names each rule).".to_owned(),
        Cause::NamespaceTerminating => format!(
            "The namespace is being deleted (Terminating): nothing can be created in it until it is gone. Follow it with `kubectl{context_arg} get namespace <namespace>`; once that says NotFound, run the command again to start afresh."
        ),
        Cause::Conflict => format!(
            "Another field manager owns some of these fields (a hand edit, `kubectl scale`, another tool). See which with `cargo xtask provision TENANT --plan{}`, then re-run with --force-conflicts to take them back.",
            crate::suggest::target_arg()
        ),
        Cause::CommandExited(code) => format!(
            "The command in the pod ran and exited with status {code}; its own message is above."
        ),
        Cause::AlreadyExists | Cause::Modified => "Another command wrote the same object at the same time; read it again and run the same command again.".to_owned(),
        Cause::NotFound | Cause::Other => {
            "Fix the cause above and run the same command again; it is safe to re-run.".to_owned()
        }
    }
}

/// A kubectl call that exited non-zero (or was killed).
#[derive(Debug)]
pub struct KubectlFailure {
    /// The verb, e.g. `get` or `rollout status`.
    pub verb: String,
    pub status: Option<i32>,
    /// kubectl's stderr, secrets redacted.
    pub stderr: String,
    /// What kubectl printed before failing (e.g. `diff`'s differences).
    pub stdout: String,
    pub cause: Cause,
    /// `context \`x\`` or `the current context`.
    pub context: String,
    pub advice: String,
}

impl std::fmt::Display for KubectlFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self
            .status
            .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
        let errors = error_lines(&self.stderr);
        let text = if !errors.is_empty() {
            errors.as_str()
        } else if !self.stderr.trim().is_empty() {
            self.stderr.trim()
        } else {
            "(no error text)"
        };
        write!(
            f,
            "`kubectl {}` failed ({status}) on {}: {text}\n{}",
            self.verb, self.context, self.advice
        )
    }
}

impl std::error::Error for KubectlFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    const DISCOVERY: &str = "E1124 06:00:00.123456   4242 memcache.go:265] \"Unhandled Error\" err=\"couldn't get resource list for metrics.k8s.io/v1beta1: the server is currently unable to handle the request\"\n";

    /// Each cause from the exact text kubectl or the API server prints;
    /// discovery warnings before it change nothing.
    #[test]
    fn causes_from_real_texts() {
        for (stderr, cause) in [
            (
                "Error in configuration: context was not found for specified context: prod",
                Cause::MissingContext,
            ),
            (
                "The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?",
                Cause::Unreachable,
            ),
            (
                "error: You must be logged in to the server (Unauthorized)",
                Cause::Unauthenticated,
            ),
            (
                "Error from server (Forbidden): pods \"x\" is forbidden: User \"jane\" cannot patch resource \"pods\" in API group \"\" in the namespace \"tenant-a\"",
                Cause::Rbac,
            ),
            (
                "Error from server (Forbidden): pods \"x\" is forbidden: exceeded quota: tenant-quota, requested: pods=1, used: pods=3, limited: pods=3",
                Cause::Quota,
            ),
            (
                "Error from server (Forbidden): pods \"x\" is forbidden: maximum cpu usage per Container is 1, but limit is 2",
                Cause::LimitRange,
            ),
            (
                "Error from server (Forbidden): pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"probe\" must not set securityContext.privileged=true)",
                Cause::PodSecurity,
            ),
            (
                "Error from server (Forbidden): configmaps \"bot-config\" is forbidden: unable to create new content in namespace tenant-a because it is being terminated",
                Cause::NamespaceTerminating,
            ),
            (
                "error: Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.X",
                Cause::Conflict,
            ),
            (
                "Error from server (NotFound): namespaces \"tenant-x\" not found",
                Cause::NotFound,
            ),
            // create.go and replace.go name the source of an object from -f -.
            (
                "Error from server (AlreadyExists): error when creating \"STDIN\": leases.coordination.k8s.io \"claims\" already exists",
                Cause::AlreadyExists,
            ),
            (
                "Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on leases.coordination.k8s.io \"tenant-a\": the object has been modified; please apply your changes to the latest version and try again",
                Cause::Modified,
            ),
            (
                "Error from server (NotFound): error when replacing \"STDIN\": leases.coordination.k8s.io \"tenant-a\" not found",
                Cause::NotFound,
            ),
            (
                "Error: unable to open database \"/data/bot.sqlite3\": unable to open database file\ncommand terminated with exit code 1",
                Cause::CommandExited(1),
            ),
        ] {
            assert_eq!(classify(stderr), cause, "{stderr}");
            assert_eq!(
                classify(&format!("{DISCOVERY}{DISCOVERY}{stderr}")),
                cause,
                "{stderr}"
            );
        }
        // A discovery warning mentioning a refused connection is not the error.
        let warning = "E1124 06:00:00.123456   4242 memcache.go:265] \"Unhandled Error\" err=\"couldn't get current server API group list: Get \\\"https://10.0.0.1:6443/api\\\": dial tcp 10.0.0.1:6443: connect: connection refused\"\nerror: unable to upgrade connection: pod does not exist";
        assert_eq!(classify(warning), Cause::Other);
        assert_eq!(
            error_lines(warning),
            "error: unable to upgrade connection: pod does not exist"
        );
    }
}
