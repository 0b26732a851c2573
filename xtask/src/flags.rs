//! Command-line flags of every task, in one place so that `--help`, the docs
//! checker and the generated reference all read the same definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::clock::{KubeDuration, Period, Since};
use crate::colour::ColorChoice;
use crate::output::{OutputFormat, ReportFormat};
use crate::tenant::TenantName;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Provision and operate MLA WhatsApp-bot tenants on the shared Kubernetes cluster",
    after_help = "Start with: cargo xtask provision demo --values tenants/demo.yaml --dry-run",
    disable_help_subcommand = true
)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,

    /// Colour states, pass/fail and diffs on stdout: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(long, value_enum, global = true, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Provision(Provision),
    #[command(visible_alias = "tenant-admin")]
    Admin(Admin),
    Approve(Approve),
    Apply(Apply),
    Plan(PlanCommand),
    Docs(Docs),
    Completions(Completions),
    Man(Man),
}

/// Approve a saved plan: sign it with your SSH key.
#[derive(Debug, Args)]
#[command(
    long_about = "Approve a plan saved by `provision --save-plan` (or `admin offboard --save-plan`): sign its \
body with your SSH key (an OpenSSH SSHSIG signature, namespace xtask-plan@mla-platform.in) and append the \
signature to the file. The key must be one of the `approvers` file's, which says whose it is and the roles \
it approves as. Read the plan first (`cargo xtask plan show FILE`): a signature approves exactly the plan's \
body, and any change to it voids every signature. A key kept in ssh-agent or on a security key signs with \
`ssh-keygen -Y sign`; attach that signature with --signature.",
    after_help = "Examples:\n  cargo xtask plan show demo.plan\n  cargo xtask approve demo.plan --key ~/.ssh/id_ed25519\n  \
cargo xtask plan body demo.plan | ssh-keygen -Y sign -n xtask-plan@mla-platform.in -f ~/.ssh/id_ed25519 > demo.sig\n  \
cargo xtask approve demo.plan --signature demo.sig"
)]
pub struct Approve {
    /// The plan file to approve
    pub file: PathBuf,
    /// Your OpenSSH private key (ed25519); an encrypted key asks for its passphrase on the terminal
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Attach this signature of the plan's body, made by `ssh-keygen -Y sign`, instead of signing with --key
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub signature: Option<PathBuf>,
    #[command(flatten)]
    pub approvers: ApproversArg,
}

/// The approvers file: who may approve plans, as what.
#[derive(Debug, Args)]
pub struct ApproversArg {
    /// The approvers file (OpenSSH allowed_signers format, roles in each key's comment) [default: $XTASK_APPROVERS, else approvers in the repository]
    #[arg(long, value_name = "FILE")]
    pub approvers: Option<PathBuf>,
}

/// Apply a saved plan exactly as it was approved.
#[derive(Debug, Args)]
#[command(
    long_about = "Apply a plan saved by `provision --save-plan` (or `admin offboard --save-plan`) exactly as \
planned. Before anything changes it checks: every signature against the approvers file; that the roles \
the plan's environment requires (environments.yaml `approvals`) each approved, as different people, none of \
them the planner; that the plan has not expired; that the cluster is the one planned for (its kube-system \
namespace UID); and, under the tenant's lock, that every object is still as it was when planned and that \
today's render of the tenant equals the planned objects. Any difference refuses the plan with what \
differs: plan again. A plan of `provision --all --plan` is applied as --all applies (the locks of its \
tenants in one call, the cluster read once, a hundred tenants per apply, the bots waited for \
together), to exactly its tenants, all or none: every tenant is checked as above before any is \
applied, and one that differs refuses the whole plan, named with why. The change then runs as the planning command would run it, and the audit log records \
the plan's digest and its approvers. The environment is the plan's; --env or --context may only repeat it. \
The files are the plan's too: --platform, --templates and --tenants-dir default to where the plan read them \
(when they exist here), else to the repository's. The approvals stand for --yes: without a terminal nothing \
more is asked; on one, an environment that confirms every change (production) still asks for the tenant \
name typed (`all` for a plan of --all).",
    after_help = "Examples:\n  cargo xtask apply demo.plan\n  cargo xtask apply demo.plan --timeout 10m\n  \
# A plan of the fleet (`provision --all --plan --save-plan fleet.plan`):\n  cargo xtask apply fleet.plan"
)]
pub struct Apply {
    /// The approved plan file
    pub file: PathBuf,
    #[command(flatten)]
    pub approvers: ApproversArg,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Read saved plans: for review, and for checking their signatures with OpenSSH.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cargo xtask plan show demo.plan\n  cargo xtask plan show demo.plan -o json\n  cargo xtask plan body demo.plan > demo.body"
)]
pub struct PlanCommand {
    #[command(subcommand)]
    pub command: PlanSubcommand,
}

#[derive(Debug, Subcommand)]
pub enum PlanSubcommand {
    Show(PlanShow),
    Body(PlanBody),
}

/// Print a plan and its approvals for review.
#[derive(Debug, Args)]
#[command(
    long_about = "Print a saved plan for review: where it applies (environment, context, cluster), who \
planned it and when, when it expires, every object it creates, changes, keeps or deletes, the diff, and \
each approval: whose key signed it, as which roles, and whether the signature is good. It ends with what \
the plan still needs before `cargo xtask apply` takes it.",
    after_help = "Examples:\n  cargo xtask plan show demo.plan\n  cargo xtask plan show demo.plan -o json"
)]
pub struct PlanShow {
    /// The plan file
    pub file: PathBuf,
    #[command(flatten)]
    pub approvers: ApproversArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Print the exact bytes a plan's signatures sign.
#[derive(Debug, Args)]
#[command(
    long_about = "Print a plan's body, the exact bytes every approval signs, for OpenSSH: sign it with \
`ssh-keygen -Y sign -n xtask-plan@mla-platform.in` and attach the signature with `cargo xtask approve \
--signature`, or check an approval with `ssh-keygen -Y verify -f approvers -I PRINCIPAL -n \
xtask-plan@mla-platform.in -s SIGNATURE`.",
    after_help = "Examples:\n  cargo xtask plan body demo.plan | ssh-keygen -Y sign -n xtask-plan@mla-platform.in -f ~/.ssh/id_ed25519 > demo.sig\n  \
cargo xtask plan body demo.plan | ssh-keygen -Y verify -f approvers -I lead@example.in -n xtask-plan@mla-platform.in -s demo.sig"
)]
pub struct PlanBody {
    /// The plan file
    pub file: PathBuf,
}

/// Print a shell completion script for `xtask` on stdout.
#[derive(Debug, Args)]
#[command(
    long_about = "Print a completion script for bash, zsh or fish on stdout. It completes the \
subcommands and flags, and offers as values of TENANT arguments the tenants committed in the tenants \
directory and as values of --env the environments in environments.yaml, as they are when the script is \
made: make it again after onboarding or offboarding a tenant. The script completes the command `xtask`: \
define it as a shell function that runs `cargo xtask` in the repository (see the guide's \
\"Shell completion\" section).",
    after_help = "Examples:\n  cargo xtask completions bash > ~/.local/share/bash-completion/completions/xtask\n  cargo xtask completions zsh > ~/.zfunc/_xtask\n  cargo xtask completions fish > ~/.config/fish/completions/xtask.fish"
)]
pub struct Completions {
    /// The shell to write the script for
    #[arg(value_enum)]
    pub shell: CompletionShell,
    /// Directory of tenant configs whose names are offered [default: tenants/]
    #[arg(long, value_name = "DIR")]
    pub tenants_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Print the manual page (roff) on stdout, or write one per command.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cargo xtask man | man -l -\n  cargo xtask man --out target/man    # xtask.1, xtask-admin.1, xtask-admin-list.1, ..."
)]
pub struct Man {
    /// Write a page for every command and subcommand into this directory instead
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Check the documentation, and generate the CLI reference.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  cargo xtask docs check\n  cargo xtask docs cli")]
pub struct Docs {
    #[command(subcommand)]
    pub command: DocsCommand,
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    Check(DocsCheck),
    Cli(DocsCli),
}

/// Check every markdown file under docs/ and the README.
#[derive(Debug, Args)]
#[command(
    long_about = "Check every markdown file under docs/ and the README: relative links and #anchors \
resolve (anchors as GitHub renders headings); every file or script path named in code exists and every \
script is executable; every `cargo xtask` command line in a code block parses with the tool's own argument \
parser, and the onboarding guide uses every subcommand; every `dns` block is valid zone-file records; \
external links are well-formed (checked for real only with --online); docs/cli.md is up to date. \
Each problem is printed as file:line: what is wrong; the exit status is 1 if there is any.",
    after_help = "Examples:\n  cargo xtask docs check\n  cargo xtask docs check --online\n  cargo xtask docs check docs/tenant-onboarding.md"
)]
pub struct DocsCheck {
    /// Only these markdown files [default: README.md and docs/**/*.md]
    pub files: Vec<PathBuf>,
    /// Also fetch every external link (needs network and curl)
    #[arg(long)]
    pub online: bool,
}

/// Write docs/cli.md, the command reference, from the argument definitions.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  cargo xtask docs cli\n  cargo xtask docs cli --check")]
pub struct DocsCli {
    /// Only check that docs/cli.md is up to date; write nothing
    #[arg(long)]
    pub check: bool,
}

/// Operate tenants: status, usage, logs, backups, isolation checks and lifecycle.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  cargo xtask admin list --env prod\n  \
  cargo xtask admin usage --since 7d -o json --env prod\n  \
  cargo xtask admin logs pune-central --tail 200 --follow --env prod\n  \
  cargo xtask admin backup pune-central --out backups/ --env prod\n  \
  cargo xtask admin restore pune-central backups/pune-central-20261124T061500Z.tar.gz --env prod --break-glass \"INC-4711: database lost\"")]
pub struct Admin {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    List(List),
    Show(Show),
    Usage(Usage),
    Restart(Restart),
    Logs(Logs),
    Backup(Backup),
    Restore(Restore),
    VerifyBackup(VerifyBackup),
    Verify(Verify),
    Drift(Drift),
    Audit(Audit),
    Suspend(Suspend),
    Resume(Resume),
    Rotate(Rotate),
    Offboard(Offboard),
    Unlock(Unlock),
}

/// Break a tenant's lock left by a command that is no longer running.
#[derive(Debug, Args)]
#[command(
    long_about = "Break the lock on a tenant (or, with --claims, on the domain and number claims) that a \
command left behind: every command that changes a tenant holds a lock on the cluster (a Lease in namespace \
xtask-locks) and releases it when it ends, even on an error or Ctrl-C; a command killed hard (kill -9, a \
lost machine) leaves it until it expires (15 minutes after its last renewal: a running command renews \
it every 5 minutes; the next command then takes it over and says so). Shows who holds it, with which command and since when, and asks for the name typed as for a \
destructive change (--yes stands in where no terminal can ask and the environment allows it). Break a lock \
only when the command holding it is no longer running: a running one would go on unguarded. Recorded in \
the audit log.",
    after_help = "Examples:\n  cargo xtask admin unlock pune-central --env prod\n  cargo xtask admin unlock --claims --yes --env prod    # the claims lock of provision, without a terminal\n  kubectl get leases --namespace xtask-locks --output wide    # every lock held now"
)]
pub struct Unlock {
    /// The tenant whose lock to break
    #[arg(value_name = "TENANT", value_parser = TenantName::parse, required_unless_present = "claims", conflicts_with = "claims")]
    pub tenant: Option<TenantName>,
    /// Break the lock provision holds on domain and number claims instead
    #[arg(long)]
    pub claims: bool,
    /// Confirm without typing (only where stdin is not a terminal; see environments.yaml)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Which tenants a bulk command acts on: one or more names, `--all`, or
/// `--tier T`; exactly one of the three. Read by `selection.rs`.
#[derive(Debug, Args)]
#[group(id = "selection", required = true, multiple = false)]
pub struct Selection {
    /// Tenants to act on; with more than one, one line each and a summary
    #[arg(value_name = "TENANT", value_parser = TenantName::parse)]
    pub tenants: Vec<TenantName>,
    /// Every tenant on the cluster
    #[arg(long)]
    pub all: bool,
    /// Every tenant of this size tier (a tier in platform.yaml)
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,
}

/// How many tenants of a batch to work on at once.
#[derive(Debug, Args)]
pub struct Jobs {
    /// With several tenants: how many to work on at once
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
}

/// `--break-glass`: a change made without the approvals its environment
/// requires. Read by `cluster::Target::gate`.
#[derive(Debug, Args)]
pub struct BreakGlassArg {
    /// Emergency only: make this change without the approvals the environment requires (environments.yaml `approvals`; there it is otherwise refused, with the plan, approve and apply commands that make it). REASON is printed in a banner and recorded with every audit entry of the command; the tenant name (or `all`) is typed to confirm on a terminal, even with --yes
    #[arg(long, value_name = "REASON")]
    pub break_glass: Option<String>,
}

/// Take tenants offline, keeping all their data.
#[derive(Debug, Args)]
#[command(
    long_about = "Take a tenant offline and keep everything: the bot is scaled to 0 and its Ingress removed \
(its definition is kept on the namespace), so the website and the bot stop answering; the volumes, the \
credentials and the WhatsApp session stay. `admin list` shows the tenant as suspended, and `admin resume` \
brings back exactly the previous state.\n\n\
With several names, --all or --tier: one line per tenant, --jobs at a time, under one confirmation; a \
tenant already suspended, offboarded or being deleted is skipped and says why; the others go on past a \
failure, and the exit status is 1 if any failed.",
    after_help = "Examples:\n  cargo xtask admin suspend demo --env prod\n  cargo xtask admin suspend kalyan mylapore --env dev\n  \
# Several at once where the environment requires approvals (see --break-glass):\n  \
cargo xtask admin suspend --tier small --env prod --break-glass \"INC-4711: spam from small-tier bots\""
)]
pub struct Suspend {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub jobs: Jobs,
    /// Confirm without typing (only where stdin is not a terminal; see environments.yaml)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub break_glass: BreakGlassArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Bring suspended tenants back exactly as they were.
#[derive(Debug, Args)]
#[command(
    long_about = "Bring a suspended tenant back exactly as it was before `admin suspend`: the bot's replica \
count and its Ingress, then wait for the bot.\n\n\
With several names, --all or --tier: one line per tenant, --jobs at a time, under one confirmation; a \
tenant that is not suspended is skipped and says why; the others go on past a failure, and the exit \
status is 1 if any failed.",
    after_help = "Examples:\n  cargo xtask admin resume demo --env prod\n  cargo xtask admin resume --all --env dev\n  \
cargo xtask admin resume --all --env prod --break-glass \"INC-4711: spam wave over\"    # see --break-glass"
)]
pub struct Resume {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub jobs: Jobs,
    /// Confirm without typing (only where stdin is not a terminal; see environments.yaml)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub break_glass: BreakGlassArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Replace a tenant's bot credentials with new random values.
#[derive(Debug, Args)]
#[command(
    long_about = "Replace every value of the bot's Secret with new random ones (as generated at the first \
provision), then restart the bot so that it uses them. The new values are never printed unless --show is \
given, and then only once.",
    after_help = "Examples:\n  cargo xtask admin rotate demo --env dev\n  \
# Where the environment requires approvals, a rotation has no plan: it is made by breaking glass:\n  \
cargo xtask admin rotate demo --env prod --break-glass \"INC-4711: credentials leaked\"\n  \
cargo xtask admin rotate demo --show --env dev"
)]
pub struct Rotate {
    /// The tenant whose bot credentials to replace
    #[arg(value_parser = TenantName::parse)]
    pub tenant: TenantName,
    /// Confirm without typing (only where stdin is not a terminal; see environments.yaml)
    #[arg(long)]
    pub yes: bool,
    /// Print the new values, once, to standard output
    #[arg(long)]
    pub show: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub break_glass: BreakGlassArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Remove a tenant from the cluster, safely.
#[derive(Debug, Args)]
#[command(
    long_about = "Remove a tenant: refuses without a fresh, verified backup of it (unless --no-backup), asks \
for the tenant name typed, marks the tenant offboarded on its namespace (when, by whom, which backup), then \
deletes in dependency order: the Ingress first so traffic stops, then the bot, then the rest. The volumes, \
the bot's credentials (the key of the WhatsApp session on its volume) and the namespace that holds them are \
deleted only with --delete-data. Until then the tenant is listed as \
`offboarded`, drift and verify skip it, and its domains and WhatsApp number are released for other tenants \
(--reserve keeps them claimed). `--delete-data` on a tenant already offboarded finishes the job; its backup \
must then be no older than --max-backup-age before the offboarding. The API server deletes the namespace in \
the background, and offboard waits until it is gone (up to --delete-timeout; run it again to wait longer). \
It ends by listing every object it deleted and everything of the tenant still on the cluster, \
PersistentVolumes kept by their reclaim policy included, and moves tenants/<TENANT>.yaml to \
tenants/offboarded/. Interrupted, it leaves the tenant marked offboarded: run the same command again.",
    after_help = "Examples:\n  cargo xtask admin backup demo --env dev && cargo xtask admin offboard demo --env dev\n  \
cargo xtask admin offboard demo --reserve --env dev        # keep its domains and number for its return\n  \
cargo xtask admin offboard demo --delete-data --env dev    # now, or later to finish an offboarding\n  \
# Where the environment requires approvals: plan, have it approved, apply it\n  \
cargo xtask admin offboard demo --plan --save-plan demo-offboard.plan --env prod\n  \
# ... or, in an emergency, without them (see --break-glass):\n  \
cargo xtask admin offboard demo --env prod --break-glass \"INC-4711: court order, approvers unreachable\""
)]
pub struct Offboard {
    /// The tenant to take off the platform
    #[arg(value_parser = TenantName::parse)]
    pub tenant: TenantName,
    /// Also delete the volumes (the database and WhatsApp session) and the namespace; on a tenant already offboarded, finishes the job
    #[arg(long)]
    pub delete_data: bool,
    /// Keep the tenant's domains and WhatsApp number claimed while its data is kept, so that no other tenant can take them
    #[arg(long, conflicts_with = "delete_data")]
    pub reserve: bool,
    /// Go ahead without a fresh verified backup
    #[arg(long)]
    pub no_backup: bool,
    /// Where to look for the backup [default: backups/]
    #[arg(long, value_name = "DIR")]
    pub backups: Option<PathBuf>,
    /// How old the newest backup may be
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub max_backup_age: KubeDuration,
    /// Accept a backup taken on this other cluster (the kube-system namespace UID it records; `unrecorded` for an archive that records none)
    #[arg(long, value_name = "CLUSTER_UID")]
    pub from_cluster: Option<String>,
    /// How long to wait for each deleted object, and then the namespace, to be gone (a namespace terminates only after its finalizers and its pods' grace periods)
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub delete_timeout: KubeDuration,
    /// Confirm without typing the tenant name (only where stdin is not a terminal: on one, the name is always typed)
    #[arg(long)]
    pub yes: bool,
    /// Show what would be deleted and kept, and stop; exit 0 if nothing, 2 if something, 1 on error
    #[arg(long)]
    pub plan: bool,
    #[command(flatten)]
    pub saving: SavePlanArgs,
    /// Directory of tenant configs [default: tenants/]
    #[arg(long, value_name = "DIR")]
    pub tenants_dir: Option<PathBuf>,
    #[command(flatten)]
    pub break_glass: BreakGlassArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Show the audit log: every command that changed the cluster.
#[derive(Debug, Args)]
#[command(
    long_about = "Show the audit log: every command that changed the cluster, oldest first, with when, \
who, on which environment and context, the tenant, the command line and its result. Filters combine: \
--tenant (or TENANT), --since, then --limit keeps the newest N of what is left. The table fits 100 columns: \
a field too long for its column is cut short with `…`; -o json and -o yaml give every field whole. A \
change made with --break-glass (without the approvals its environment requires) has its result marked \
`BREAK GLASS:` in the table, and its reason as `break_glass` in JSON and YAML.",
    after_help = "Examples:\n  cargo xtask admin audit\n  cargo xtask admin audit --tenant demo --since 7d\n  cargo xtask admin audit --since 2026-11-01T00:00:00Z --limit 20\n  cargo xtask admin audit demo -o json"
)]
pub struct Audit {
    /// Only this tenant's entries (the same as --tenant)
    #[arg(value_parser = TenantName::parse)]
    pub tenant: Option<TenantName>,
    /// Only this tenant's entries
    #[arg(long = "tenant", value_name = "TENANT", value_parser = TenantName::parse, conflicts_with = "tenant")]
    pub tenant_flag: Option<TenantName>,
    /// Only entries since then: a period before now (7d, 12h, 90m, as usage's --since) or a UTC time (2026-11-01T00:00:00Z)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<Since>,
    /// Only the newest N entries (of those the other filters keep)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Audit log to read [default: $XTASK_AUDIT_LOG, else audit.jsonl]
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// List the tenants whose live objects differ from their committed config.
#[derive(Debug, Args)]
#[command(
    long_about = "For every tenant on the cluster, compare its live objects with what its committed config \
(tenants/<name>.yaml) renders, as a server-side apply by provision would change them. Hand edits show up as \
drift. A tenant with no committed config, and a config with no tenant on the cluster, are listed too. A \
suspended tenant is compared with its suspended form: no Ingress on the cluster, and the Ingress recorded at \
suspension (what `admin resume` brings back) matching the config. An offboarded tenant (or one being \
deleted) is listed as `skipped`, with when and by whom. Exit 0 when everything matches, 2 when anything \
differs, 1 on error.\n\n\
The cluster is read once for the whole fleet (three kubectl calls at any number of tenants: the tenant \
namespaces, every tenant object by its tenant label, every Ingress), and each object is compared locally, \
by what its managedFields say provision's field manager owns: a field the config sets whose live value \
differs is drift, and so is a field provision set before that the config no longer sets (an apply would \
remove it); fields set by controllers, by the API server's defaults and by other field managers are not. \
This needs rights to list those kinds in all namespaces. With --server, the named tenants are compared \
instead with kubectl's server-side diff (`kubectl diff --server-side`), exactly as `provision --plan` \
does: a few kubectl calls and a dry run per tenant.\n\n\
On a terminal, stderr shows one progress line (`drift: 12/1000 tenants, 0 failed`).",
    after_help = "Examples:\n  cargo xtask admin drift --env prod\n  cargo xtask admin drift -o json --env prod\n  cargo xtask admin drift pune-central kalyan --env prod\n  cargo xtask admin drift --server pune-central --env prod    # the API server's own dry run"
)]
pub struct Drift {
    /// Only these tenants [default: every tenant on the cluster or in the tenants directory]
    #[arg(value_name = "TENANT", value_parser = TenantName::parse)]
    pub tenants: Vec<TenantName>,
    /// Compare the named tenants with a server-side dry run each (`kubectl diff --server-side`) instead of from one read of the cluster
    #[arg(long)]
    pub server: bool,
    /// Directory of tenant configs to compare with [default: tenants/]
    #[arg(long, value_name = "DIR")]
    pub tenants_dir: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Prove each tenant's isolation on the live cluster.
#[derive(Debug, Args)]
#[command(
    long_about = "Prove each tenant's isolation on the live cluster, with a pass or fail per check and per \
tenant, and exit 1 if any check fails. The checks: `objects` (every object its committed config renders \
exists, and the isolation objects, namely quota, limit range, network policies, service account and Pod \
Security labels, match it); `rbac` (no service account of the tenant can read secrets or config maps, \
create or exec into pods, delete volumes or patch deployments in any other tenant's namespace, nor list \
namespaces or secrets, get nodes or create cluster role bindings cluster-wide; no other tenant's service \
account can do so in its namespace; and no binding outside the namespace names it); `admission` (a server-side dry run of a privileged pod in the namespace is rejected by Pod Security; a refusal for \
any other reason, RBAC, quota or a LimitRange, proves nothing and fails); `sharing` (no \
two tenants share a domain, a WhatsApp number, a volume or a credential). With --network, also \
`network`: a short-lived probe pod in the tenant's namespace (restricted, deleted afterwards whatever \
happens) must fail to reach another tenant's bot, the cloud metadata address and the API server, and must \
resolve DNS; this catches a CNI that ignores NetworkPolicy. The probe carries the bot's network role, so the \
bot's own NetworkPolicies are what it tests; it waits up to admin.pod_timeout (platform.yaml) to start.\n\n\
A suspended tenant is checked all the same (its policies, RBAC, Pod Security and claims stay in force); only \
its Ingress, removed on purpose, is left out, with a note. An offboarded tenant is not checked: it is listed \
as skipped with a note, and passes.\n\n\
RBAC is decided from one read of every Role, ClusterRole, RoleBinding and ClusterRoleBinding, as the API \
server's RBAC authorizer decides (groups such as system:serviceaccounts and system:authenticated, aggregated \
ClusterRoles, wildcards, resource names); each failure names the binding that grants it. An aggregated \
ClusterRole whose stored rules lag its aggregationRule is judged by its stored rules, as the server does, and \
what the aggregation controller is about to add is reported as well. For each tenant the API server itself is \
asked (`kubectl auth can-i`) a fixed handful of the same questions about two other tenants' namespaces and \
cluster-wide; an answer that differs from the evaluation fails the tenant loudly. Cost: five cluster-wide \
reads, then per tenant at most ten kubectl calls (without --network), --jobs tenants at a time.",
    after_help = "Examples:\n  cargo xtask admin verify --env prod\n  cargo xtask admin verify demo kalyan -o json --env prod\n  cargo xtask admin verify demo --network --env prod\n  cargo xtask admin verify --jobs 8 --env prod"
)]
pub struct Verify {
    /// Only these tenants [default: every tenant]
    #[arg(value_parser = TenantName::parse)]
    pub tenants: Vec<TenantName>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Directory of tenant configs to compare with [default: tenants/]
    #[arg(long, value_name = "DIR")]
    pub tenants_dir: Option<PathBuf>,
    /// Also probe the network from a short-lived pod in each tenant
    #[arg(long)]
    pub network: bool,
    /// How many tenants to probe at once (dry run, spot checks, network probe)
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Settings the admin commands read: the platform file.
#[derive(Debug, Args)]
pub struct PlatformArg {
    /// Platform settings file [default: platform.yaml]
    #[arg(long, value_name = "FILE")]
    pub platform: Option<PathBuf>,
}

/// List every tenant on the cluster with its status.
#[derive(Debug, Args)]
#[command(
    long_about = "List every tenant on the cluster (namespaces labelled as tenants) with its state, tier, \
readiness, restarts, age and domains. The states, defined once for every command: pending (applied, the bot \
not ready yet, with the reason, e.g. unschedulable), running, stopped (scaled to 0 by hand), error (crash \
looping, image pull failure, container cannot start, failed rollout, no bot Deployment), suspended (by \
`admin suspend`: since when and by whom), offboarded (by `admin offboard`, its volumes kept: since when, by \
whom, the backup it checked) and terminating (its namespace being deleted). Three kubectl calls, however \
many tenants there are.",
    after_help = "Examples:\n  cargo xtask admin list --env prod\n  cargo xtask admin list -o json --env prod | jq '.tenants[] | select(.state != \"running\")'"
)]
pub struct List {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Everything about one tenant: state, tier and quota use, identity, image, volumes, backup, changes.
#[derive(Debug, Args)]
#[command(
    long_about = "Everything about one tenant in one view: its state (and since when, and by whom, for a \
suspended or offboarded tenant), MLA name, WhatsApp number and domains, tier, the bot's image and readiness, \
the rate limits its bot enforces, each limit of its tier's ResourceQuota with what the API server counts \
against it, CPU and memory in use (from the metrics API, when the cluster serves one), its volumes with \
size and bytes used, its newest backup in --backups (file and age; `admin verify-backup` checks it), and \
its latest audited changes. Message counts are `admin usage TENANT`'s. A few kubectl calls, however many \
tenants there are.",
    after_help = "Examples:\n  cargo xtask admin show pune-central --env prod\n  cargo xtask admin show pune-central -o json --env prod | jq '.quota[] | select(.percent >= 80)'\n  cargo xtask admin show pune-central --backups /srv/backups --audit-entries 20 --env prod"
)]
pub struct Show {
    /// The tenant to show
    #[arg(value_parser = TenantName::parse)]
    pub tenant: TenantName,
    /// Where to look for the tenant's backups [default: backups/]
    #[arg(long, value_name = "DIR")]
    pub backups: Option<PathBuf>,
    /// How many of the tenant's latest audit entries to show
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub audit_entries: usize,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Resource, storage and message usage per tenant, against its tier's limits, and in total.
#[derive(Debug, Args)]
#[command(
    long_about = "Per tenant and in total: pods, container restarts, CPU and memory in use (from the metrics \
API, shown as unavailable when the cluster has none), storage requested and used per volume (from each \
node's kubelet), and the messages and bot runs of the period, read with a read-only query of the tenant's \
SQLite database inside its pod. Cluster-wide reads do not grow with the number of tenants; the database \
reads run concurrently, at most --jobs at a time.

Each use is also shown as a percentage of its limit: CPU and memory of the quota of the tenant's tier \
(its namespace's mla-platform.in/tier annotation, looked up in platform.yaml's tiers), each volume of its \
requested size, and messages as the AVERAGE PER DAY over --since of the messages_per_day limit the bot \
enforces (its ConfigMap's RATE_LIMIT_MESSAGES_PER_DAY, so a tenant's own rate_limits override counts; the \
tier's value when the ConfigMap has none). A single busier day is not visible in an average. A percentage \
is unknown (?% in the table, an empty field in CSV, null in JSON), never 0, when its use or its limit is: no \
metrics API, a stopped bot, an unmounted volume, or a tier that platform.yaml does not have.

A tenant with any percentage at or above --warn-at is marked in the WARN column (and listed in \
`warnings` in JSON). With --fail-at, the report is printed in full and then each tenant and limit at or \
above it is named on stderr, and the exit status is 1: for cron or CI alerting. Unknown percentages never \
reach a threshold. The exit status is also 1, with or without --fail-at, when a tenant's database could \
not be read (an alert gate cannot vouch for a tenant it could not see); a stopped bot or a missing \
metrics API is not an error.

-o csv prints one row per tenant and no total row, raw numbers (millicores, bytes, counts, percentages \
with one decimal), with the period's start and end in every row: a monthly report that sums to the \
table's TOTAL.

COST is what each tenant costs over --since by platform.yaml's `cost` model: its tier's monthly base, the \
storage its volume claims request and its tier's bot CPU and memory requests at monthly prices, all times \
the period's days / 30 (so --since 30d is one month's price), plus its messages of the period per 1,000. \
Each part is rounded to hundredths of the currency and the TOTAL is their exact sum. A tenant with no \
database yet costs what it requests and nothing for messages; a tier platform.yaml does not price has no cost (? and null). \
-o json also gives each tenant's messages and bot runs per UTC day (`daily`, from \
admin.usage_daily_query, read in the same call as the counts).

-o prometheus prints the same figures as Prometheus metrics (text format 0.0.4, `tenant` and `tier` \
labels; mla_tenant_messages, mla_tenant_cost, mla_tenant_quota_use_ratio, ...) for node-exporter's \
textfile collector; dashboards/mla-tenants.json is a Grafana dashboard of them.

--report FILE.html also writes the same figures as one self-contained web page (no network needed to \
open it): fleet totals, the top tenants by messages, cost and quota use as charts, each tenant's daily \
messages as a small line, and every tenant in a table that sorts, searches and pages in the browser (and \
reads whole without JavaScript). It combines with any -o; what is printed does not change.",
    after_help = "Examples:\n  cargo xtask admin usage --env prod\n  cargo xtask admin usage pune-central --since 7d --env prod\n  cargo xtask admin usage --jobs 16 -o json --env prod\n  cargo xtask admin usage --warn-at 70 --fail-at 95 --env prod    # cron: exit 1 when a tenant nears a limit\n  cargo xtask admin usage --since 30d -o csv --env prod > usage-2026-11.csv\n  \
cargo xtask admin usage --since 30d --report usage-2026-11.html --env prod    # a page to share\n  \
D=/var/lib/prometheus/node-exporter; cargo xtask admin usage --since 1d -o prometheus --env prod > $D/mla.prom.$$ && mv $D/mla.prom.$$ $D/mla.prom"
)]
pub struct Usage {
    /// Only this tenant
    #[arg(value_parser = TenantName::parse)]
    pub tenant: Option<TenantName>,
    /// The period for message counts and cost (monthly prices x days / 30): a number with d (days), h (hours) or m (minutes, not months: a month is 30d), at most 3650d
    #[arg(long, default_value = "30d")]
    pub since: Period,
    /// How many tenant databases to query at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Mark tenants with any use at or above this percentage of its limit (1 to 1000)
    #[arg(long, value_name = "PCT", default_value_t = 80, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub warn_at: u16,
    /// Exit 1 after the report when any tenant's use reaches this percentage of a limit (1 to 1000)
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub fail_at: Option<u16>,
    /// Output format
    #[arg(short = 'o', long = "output", value_name = "FORMAT", value_enum, default_value_t = ReportFormat::Table)]
    pub output: ReportFormat,
    /// Also write the report as one self-contained HTML page to this file
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Restart tenants' bots and wait until they are back.
#[derive(Debug, Args)]
#[command(
    long_about = "Restart a tenant's bot with a rolling restart and wait until it is ready again.\n\n\
With several names, --all or --tier: one line per tenant, --jobs at a time, under one confirmation; a \
tenant that is suspended, offboarded, being deleted or stopped (scaled to 0) is skipped and says why; the \
others go on past a failure, and the exit status is 1 if any failed.",
    after_help = "Examples:\n  cargo xtask admin restart pune-central --env prod\n  cargo xtask admin restart pune-central kalyan --env dev\n  \
cargo xtask admin restart --all --jobs 4 --env dev\n  \
# Several at once where the environment requires approvals (see --break-glass):\n  \
cargo xtask admin restart --tier large --env prod --break-glass \"INC-4711: bots stuck after node failure\""
)]
pub struct Restart {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub jobs: Jobs,
    /// Confirm without typing (only where stdin is not a terminal; see environments.yaml)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub break_glass: BreakGlassArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Show a tenant's recent bot logs.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cargo xtask admin logs pune-central --tail 100 --env prod\n  cargo xtask admin logs pune-central --follow --env prod    # e.g. to show the WhatsApp pairing QR code\n  cargo xtask admin logs pune-central --previous --env prod  # the crashed container's last words"
)]
pub struct Logs {
    /// The tenant whose bot's logs to show
    #[arg(value_parser = TenantName::parse)]
    pub tenant: TenantName,
    /// Lines from the end to show
    #[arg(long, default_value_t = 100)]
    pub tail: u32,
    /// Only lines newer than this (kubectl duration, e.g. 1h)
    #[arg(long)]
    pub since: Option<KubeDuration>,
    /// Keep streaming new lines until interrupted
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The previous (crashed) container's logs
    #[arg(long, short = 'p')]
    pub previous: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Back up tenants' databases and WhatsApp sessions into verified archives.
#[derive(Debug, Args)]
#[command(
    long_about = "Back up both volumes of a tenant into one archive, <tenant>-<UTC time>.tar.gz. The SQLite \
database is copied with SQLite's online backup inside the pod (never by copying the live file) and checked \
with PRAGMA integrity_check; the WhatsApp session is copied as files. manifest.json records the tenant, \
tool version, time, the database's user_version and the size and SHA-256 of every file. The archive is \
written under a temporary name, verified, and only then renamed, with owner-only permissions: an \
interrupted backup leaves nothing that looks like a backup.\n\n\
With several names, --all or --tier: one archive per tenant in --out, one line per tenant, --jobs at a \
time; an offboarded tenant, or one being deleted, is skipped and says why; the others go on past a \
failure, and the exit status is 1 if any failed. --keep N then deletes each tenant's older archives in \
--out beyond the newest N, only after its new archive is written and verified; a failed backup prunes \
nothing.",
    after_help = "Examples:\n  cargo xtask admin backup pune-central --env prod\n  cargo xtask admin backup pune-central --out /srv/backups --env prod\n  # Nightly, from cron: every tenant, keeping each one's 7 newest archives:\n  cargo xtask admin backup --all --keep 7 --out /srv/backups --env prod"
)]
pub struct Backup {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub jobs: Jobs,
    /// Directory for the archives [default: backups/ in the repository]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// After each verified new archive, delete that tenant's older archives in the directory beyond the newest N
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    #[command(flatten)]
    pub long: LongWork,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Limits of the work that takes as long as the data: not the call timeout.
#[derive(Debug, Args)]
pub struct LongWork {
    /// How long SQLite's online backup and PRAGMA integrity_check may run in the pod (a large tier's database takes minutes). Copies of the data have no limit; Ctrl-C stops them. Waits for pods (volumes re-attaching) use admin.pod_timeout in platform.yaml
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub db_timeout: KubeDuration,
}

/// Restore a tenant's volumes from a backup archive.
#[derive(Debug, Args)]
#[command(
    long_about = "Restore a tenant from an archive made by `admin backup`. The archive is verified first \
(checksums, manifest, database integrity, and that it belongs to TENANT and was taken on this cluster) and \
everything restore sends is built locally; nothing is touched if that fails. Then the bot is stopped (a WhatsApp session must never run twice), both volumes' contents are \
replaced through a short-lived workbench pod, the restored database is checked, and the bot is started \
again. If a step fails after the bot was stopped, the error says exactly what state the tenant is in and \
how to recover. Asks you to type the tenant name, in every environment; where stdin is not a terminal, \
--yes stands in for it.",
    after_help = "Examples:\n  cargo xtask admin restore pune-central backups/pune-central-20261124T061500Z.tar.gz --env dev\n  \
# Where the environment requires approvals, a restore has no plan: it is made by breaking glass:\n  \
cargo xtask admin restore pune-central backups/pune-central-20261124T061500Z.tar.gz --env prod --break-glass \"INC-4711: database lost\"\n  \
# Seed a new tenant from another's data, on purpose:\n  \
cargo xtask admin restore pune-new backups/pune-central-20261124T061500Z.tar.gz --from-tenant pune-central --yes --env dev\n  \
# Move a tenant from another cluster (its UID is in the refusal and in verify-backup):\n  \
cargo xtask admin restore pune-central pune-central-20261124T061500Z.tar.gz --from-cluster 5f1c2e9a-0c1d-4f7e-9a53-2b9f6d0e8c41 --env dev"
)]
pub struct Restore {
    /// The tenant to restore into; the archive must be this tenant's own unless --from-tenant names the one it is of
    #[arg(value_parser = TenantName::parse)]
    pub tenant: TenantName,
    /// The archive to restore
    pub file: PathBuf,
    /// Accept an archive of this other tenant (it must name the archive's tenant); refused while that tenant is on this cluster and not offboarded, as its WhatsApp session would run in two bots
    #[arg(long, value_name = "TENANT", value_parser = TenantName::parse)]
    pub from_tenant: Option<TenantName>,
    /// Accept an archive taken on this other cluster (the kube-system namespace UID it records; `unrecorded` for an archive that records none)
    #[arg(long, value_name = "CLUSTER_UID")]
    pub from_cluster: Option<String>,
    /// Confirm without typing the tenant name (only where stdin is not a terminal: on one, the name is always typed)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub long: LongWork,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub break_glass: BreakGlassArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Check a backup archive offline: manifest, checksums, database integrity.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  cargo xtask admin verify-backup backups/pune-central-20261124T061500Z.tar.gz"
)]
pub struct VerifyBackup {
    /// The archive to check (a .tar.gz made by `admin backup`)
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How long a command that restarts the bot waits for it.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// How long to wait for the bot to be ready again (kubectl duration)
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: KubeDuration,
}

/// `--save-plan` and its expiry, for the commands whose `--plan` can be
/// saved for approval (provision, offboard).
#[derive(Debug, Args)]
pub struct SavePlanArgs {
    /// With --plan: also write the plan to FILE, for `cargo xtask approve` and `cargo xtask apply`
    #[arg(long, value_name = "FILE", requires = "plan")]
    pub save_plan: Option<PathBuf>,
    /// How long a saved plan may wait for its approvals and apply (at most 168h)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "24h",
        requires = "save_plan"
    )]
    pub expires_in: KubeDuration,
}

/// Where the repository's files are; the defaults are relative to the
/// repository root, whatever the current directory.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Platform settings file [default: platform.yaml]
    #[arg(long, value_name = "FILE")]
    pub platform: Option<PathBuf>,
    /// Directory of manifest templates [default: templates/]
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Directory of tenant configs, where <TENANT>.yaml is saved [default: tenants/]
    #[arg(long, value_name = "DIR")]
    pub tenants_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// kubectl binary to use [default: $KUBECTL, else `kubectl` on PATH]
    #[arg(long, value_name = "PATH")]
    pub kubectl: Option<PathBuf>,
    /// Kube context to use; the environment whose context it is applies (a context of no environment gets no environment's rules) [default: the context of the environment --env names, else of environments.yaml's default environment; only when environments.yaml names none (or does not exist), kubectl's current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Stop any kubectl call that has not answered after this long (waits for rollouts get their own timeout on top)
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub kubectl_timeout: KubeDuration,
    /// Audit log that changes are recorded in [default: $XTASK_AUDIT_LOG, else audit.jsonl]
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Environment from environments.yaml: its context, host names and confirmation rule [default: the file's `default` environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

/// Render a tenant's manifests and apply them to the cluster.
#[derive(Debug, Args)]
#[command(
    long_about = "Render a tenant's Kubernetes manifests from templates/ and apply them with one \
`kubectl apply --server-side`, then wait for the bot to roll out.\n\n\
Where values come from: a tenant that has a committed config (tenants/<TENANT>.yaml, or in \
--tenants-dir) starts from it; --values FILE starts from that file instead. Flags then replace \
single fields (a --domain list replaces the whole list); everything else, tier, site and \
rate_limits included, is kept. In a terminal, the MLA name, constituency, number and domains \
that no flag gives are asked for, the current value offered in parentheses: Enter keeps it; a wrong value, or another tenant's number or domain, is refused at its question and asked again; Ctrl-C or Esc at a question stops with nothing changed (exit status 130). Everything is validated before any cluster call.\n\n\
What needs a yes: a change of tier, MLA name or WhatsApp number, compared with the live tenant \
(its namespace) and the committed config, and a change of the domains the live tenant answers on (a \
dropped domain takes a website down), is shown as `field: old → new`; in a terminal it is \
asked about [y/N]; without one, with --non-interactive and under --all it needs --yes. A tenant that is live with another MLA name or \
WhatsApp number is refused unless --reconfigure is given: reusing a name would otherwise turn \
someone else's running bot, with its database and WhatsApp session, into this one. A tier whose \
volumes are smaller than the tenant's existing ones is refused: Kubernetes cannot shrink a \
PersistentVolumeClaim. A bigger tier applies its quota and limits at once, but the existing \
volumes keep their size until grown by hand (where the StorageClass allows expansion). These \
checks run before anything is changed, including before the config is saved; --plan shows them \
too.\n\n\
A real apply then saves the resolved config to tenants/<TENANT>.yaml (untouched when it already \
says the same), so that re-running with no flags reproduces the same manifests. The bot's \
credentials are generated once, when its Secret does not exist, and never printed; existing \
volumes and credentials are never re-applied. Re-running is safe: an interrupted apply is \
finished by running the same command again.\n\n\
--all applies every committed config in a few kubectl calls, however many tenants there are: \
every tenant's lock is taken in one call, the cluster is read once, and each tenant is compared \
with its config by content; a tenant with nothing to change is reported up to date, nothing \
applied to it, and its lock released at once. The others are applied a hundred tenants per \
`kubectl apply` (each call may take --kubectl-timeout for every ten tenants it carries); a \
tenant whose object fails is found and reported on its own line with its own error, the others \
are applied. The bots whose Deployment changed, and any not yet rolled out, are waited for \
together (one read of every tenant Deployment per poll, up to --timeout); a bot that does not \
roll out fails its own tenant. A command on one tenant is refused while --all holds its lock \
(until its bot is ready, for a tenant it applies). Suspended and offboarded tenants are skipped. \
Ctrl-C stops the batch: no new apply starts, the wait ends, and every tenant's outcome is said \
and its lock released.\n\n\
--all --plan shows what --all would apply, tenant by tenant, from the same one read of the \
cluster (no lock, no kubectl call per tenant): each object that would change, and under it the \
fields it would change, as compared locally (kubectl's diff would take a call per tenant; \
`provision <TENANT> --plan` shows it for one). It exits 0 when nothing would change, 2 when \
something would, 1 when a tenant cannot be planned. With --save-plan FILE it writes one plan \
of the tenants that would change (none when nothing would, or when a tenant cannot be planned); \
`cargo xtask apply FILE` applies it as --all applies, to exactly those tenants, after checking \
every one of them against the plan under the batch's locks: any difference refuses the whole \
plan, naming each tenant, before anything is applied.",
    after_help = "Examples:\n  \
  # Review what would be applied, with no cluster and no kubectl:\n  \
  cargo xtask provision demo --values tenants/demo.yaml --dry-run\n\n  \
  # Onboard interactively (prompts for anything missing):\n  \
  cargo xtask provision pune-central --env dev\n\n  \
  # Onboard from flags only, e.g. in a script:\n  \
  cargo xtask provision pune-central --non-interactive --mla-name \"Asha Kulkarni\" \\\n      \
  --constituency \"Pune Central\" --whatsapp-number \"+91 98765-43210\" --domain pune-central.example.in --env dev\n\n  \
  # Re-apply a committed tenant (starts from tenants/pune-central.yaml):\n  \
  cargo xtask provision pune-central --env dev\n\n  \
  # Serve the website on a second domain in prod (a --domain list replaces the whole\n  \
  # list; the rest of the config is kept): plan it, then approve and apply it as below:\n  \
  cargo xtask provision pune-central --domain pune-central.example.in --domain seva.pune-central.example.in --plan --save-plan pune-central.plan --env prod\n\n  \
  # Move a tenant to a bigger tier without a terminal (the change needs --yes):\n  \
  cargo xtask provision pune-central --tier medium --yes --env dev\n\n  \
  # Hand a live tenant over to a new MLA and number (keeps its database and session):\n  \
  cargo xtask provision pune-central --mla-name \"Ravi Deshmukh\" --whatsapp-number \"+91 98765-00000\" --reconfigure --yes --env dev\n\n  \
  # Re-apply every committed tenant (only those that differ are applied; their bots\n  \
  # waited for together, ten minutes at most):\n  \
  cargo xtask provision --all --env dev --timeout 10m\n\n  \
  # Where the environment requires approvals (prod): plan, approve, then apply what was approved:\n  \
  cargo xtask provision pune-central --plan --save-plan pune-central.plan --env prod\n  \
  cargo xtask approve pune-central.plan --key ~/.ssh/id_ed25519    # by each role the environment requires\n  \
  cargo xtask apply pune-central.plan\n\n  \
  # The whole fleet in one plan: every tenant that would change, applied as approved:\n  \
  cargo xtask provision --all --plan --save-plan fleet.plan --env prod\n  \
  cargo xtask apply fleet.plan\n\n  \
  # ... or, in an emergency, without the approvals (a banner, the name typed, the reason audited):\n  \
  cargo xtask provision pune-central --env prod --break-glass \"INC-4711: bot down, approvers unreachable\""
)]
pub struct Provision {
    /// Tenant name: a lowercase DNS label of 1 to 56 characters (namespace `tenant-<TENANT>`)
    #[arg(value_parser = TenantName::parse, required_unless_present = "all")]
    pub tenant: Option<TenantName>,
    /// Apply every tenants/*.yaml that differs from the cluster, in a few kubectl calls; one line per tenant (with --plan: show, or save with --save-plan, what it would apply)
    #[arg(long, conflicts_with_all = ["tenant", "values", "mla_name", "constituency", "whatsapp_number", "domains", "tier", "dry_run", "out", "reconfigure"])]
    pub all: bool,
    /// With --all: how many bots to restart at once (those whose ConfigMap alone changed); the rollouts of all are waited for together
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
    /// Start from this tenant config file (YAML, as in tenants/demo.yaml) instead of the committed one; flags override its values
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// Full name of the MLA (any script, at most 120 characters)
    #[arg(long, value_name = "TEXT")]
    pub mla_name: Option<String>,
    /// Constituency name (any script, at most 120 characters)
    #[arg(long, value_name = "TEXT")]
    pub constituency: Option<String>,
    /// The bot's WhatsApp number in E.164 form; spaces and dashes are removed
    #[arg(long, value_name = "NUMBER")]
    pub whatsapp_number: Option<String>,
    /// A domain the tenant's website answers on; repeat for several (replaces the file's list)
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Size tier from the platform settings [default: the config's tier, else the platform's default_tier]
    #[arg(long, value_name = "NAME")]
    pub tier: Option<String>,
    /// Never prompt; missing values are an error (implied when stdin is not a terminal)
    #[arg(long)]
    pub non_interactive: bool,
    /// Print the manifests to stdout and stop: no cluster, no kubectl, no file written
    #[arg(long, conflicts_with = "out")]
    pub dry_run: bool,
    /// Write one file per object into DIR and stop: no cluster, no kubectl
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Show what would change on the cluster and stop; exit 0 if nothing, 2 if something, 1 on error
    #[arg(long, conflicts_with_all = ["dry_run", "out"])]
    pub plan: bool,
    #[command(flatten)]
    pub saving: SavePlanArgs,
    /// Not a flag: set when `cargo xtask apply` runs an approved plan, whose
    /// approvals confirm its changes and which cannot simply be run again.
    #[arg(skip)]
    pub approved_plan: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Take over fields that another field manager (e.g. a hand edit) owns
    #[arg(long)]
    pub force_conflicts: bool,
    /// Let the MLA name or WhatsApp number of a live tenant change (its database and WhatsApp session are kept)
    #[arg(long)]
    pub reconfigure: bool,
    /// Confirm without asking: a change of tier, MLA name, number or domains (no terminal, --non-interactive, --all), and the environment's typed confirmation where stdin is not a terminal (see environments.yaml)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub break_glass: BreakGlassArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Xtask::command().debug_assert();
    }

    /// Every argument says what it is in `--help`: restore's `<TENANT>`
    /// once showed a bare name.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str())
                {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Xtask::command(), "cargo xtask", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
    }
}
