//! `cargo xtask approve` and `cargo xtask plan show|body`: approving a
//! saved plan with SSH keys, every refusal of a signer who may not, and
//! signatures that OpenSSH's `ssh-keygen -Y sign`/`-Y verify` make and
//! check in both directions.
//!
//! The plans are written with the library's own `planfile::render`, the
//! keys are the committed test keys (`tests/fixtures/keys/`), or keys
//! `ssh-keygen` makes in the test where OpenSSH has to use them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{exits, fixture, stderr, stdout, xtask_bare};
use serde_json::Value;
use tempfile::TempDir;
use xtask::planfile::{
    self, Action, FORMAT, Inputs, ObjectAction, Options, Plan, PlanFile, PlannedObject, TenantPlan,
};
use xtask::signing::{self, Approvers, NAMESPACE};

/// The time every command of these tests runs at: an hour after planning.
const NOW: &str = "2026-11-24T06:00:00Z";

fn key(name: &str) -> PathBuf {
    fixture(&format!("keys/{name}"))
}

/// `KEYTYPE BASE64` of a public key file.
fn public(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A scratch directory with a plan for prod (planned by ops@example.in),
/// environments whose prod needs a devops-lead and a product-owner, and an
/// approvers file listing the test keys.
struct Review {
    dir: TempDir,
}

impl Review {
    fn new() -> Review {
        Review::planned_by("ops@example.in")
    }

    fn planned_by(planner: &str) -> Review {
        let review = Review {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(
            review.path("environments.yaml"),
            "environments:\n  dev:\n    context: kind-mla-dev\n    domain_suffix: dev.example.in\n    \
             tenant_domains: false\n    confirm: false\n  prod:\n    context: prod-mumbai\n    \
             domain_suffix: example.in\n    tenant_domains: true\n    confirm: true\n    \
             approvals: [devops-lead, product-owner]\n",
        )
        .unwrap();
        let mut approvers = String::from("# test approvers\n");
        for (who, file, roles) in [
            ("alice", "alice.pub", "devops-lead"),
            ("bob", "bob.pub", "product-owner"),
            ("carol", "carol.pub", "devops-lead,product-owner"),
            ("carol", "carol2.pub", "devops-lead,product-owner"),
            ("dave", "dave.pub", "team-lead"),
            ("erin", "erin.pub", "devops-lead"),
        ] {
            approvers.push_str(&format!(
                "{who}@example.in namespaces=\"{NAMESPACE}\" {} roles={roles}\n",
                public(&key(file))
            ));
        }
        std::fs::write(review.path("approvers"), approvers).unwrap();
        std::fs::write(
            review.path("demo.plan"),
            planfile::render(&plan(planner)).unwrap(),
        )
        .unwrap();
        review
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn plan(&self) -> PathBuf {
        self.path("demo.plan")
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.plan()).unwrap()
    }

    /// `cargo xtask ARGS` at [`NOW`], with this directory's files.
    fn xtask(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = xtask_bare();
        cmd.env("XTASK_ENVIRONMENTS", self.path("environments.yaml"))
            .env("XTASK_APPROVERS", self.path("approvers"))
            .env("XTASK_NOW", NOW)
            .args(args);
        cmd
    }

    fn approve(&self, key_name: &str) -> assert_cmd::Command {
        let mut cmd = self.xtask(&["approve"]);
        cmd.arg(self.plan()).arg("--key").arg(key(key_name));
        cmd
    }

    fn show_json(&self) -> Value {
        let mut cmd = self.xtask(&["plan", "show", "-o", "json"]);
        cmd.arg(self.plan());
        serde_json::from_str(&stdout(&exits(cmd, 0))).unwrap()
    }

    /// `signing::check` of the plan file as it is now.
    fn check(&self) -> anyhow::Result<Vec<signing::Approval>> {
        let file = PlanFile::read(&self.plan()).unwrap();
        let approvers = Approvers::load(Some(&self.path("approvers")), self.dir.path()).unwrap();
        signing::check(
            &file,
            &approvers,
            &["devops-lead".to_owned(), "product-owner".to_owned()],
        )
    }
}

fn plan(planner: &str) -> Plan {
    let object = |kind: &str, name: &str, action| PlannedObject {
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: (kind != "Namespace").then(|| "tenant-demo".to_owned()),
        action,
        digest: Some("c".repeat(64)),
        live: None,
    };
    Plan {
        format: FORMAT.to_owned(),
        action: Action::Provision,
        all: false,
        environment: Some("prod".to_owned()),
        context: Some("prod-mumbai".to_owned()),
        cluster: "6f1c2e0a-0000-4000-8000-000000000001".to_owned(),
        planned_by: planner.to_owned(),
        planned_at: "2026-11-24T05:00:00Z".to_owned(),
        expires_at: "2026-11-25T05:00:00Z".to_owned(),
        command: "provision demo --plan --save-plan demo.plan --env prod".to_owned(),
        inputs: Inputs {
            platform: "a".repeat(64),
            templates: "b".repeat(64),
            files: Default::default(),
        },
        tenants: vec![TenantPlan {
            tenant: "demo".to_owned(),
            namespace: "tenant-demo".to_owned(),
            config: Some("d".repeat(64)),
            values: None,
            options: Options::default(),
            confirmed: vec!["tier: small -> large".to_owned()],
            objects: vec![
                object("Namespace", "tenant-demo", ObjectAction::Unchanged),
                object("Deployment", "bot", ObjectAction::Update),
                object("Secret", "bot-credentials", ObjectAction::Keep),
            ],
            diff: "-        memory: 256Mi\n+        memory: 512Mi\n".to_owned(),
        }],
    }
}

/// The signatures in a plan file's text.
fn signatures(text: &str) -> Vec<String> {
    planfile::split(text).unwrap().1
}

#[test]
fn two_approvals_fill_prods_roles_and_show_lists_them() {
    let r = Review::new();
    let out = stdout(&exits(r.approve("alice"), 0));
    let alice_fp = signing::fingerprint(ssh_key_data(&key("alice.pub")).key_data());
    assert!(
        out.starts_with(&format!(
            "Approved {}: alice@example.in as devops-lead ({alice_fp}).\n",
            r.plan().display()
        )),
        "{out}"
    );
    assert!(
        out.contains("Still needed: product-owner (bob@example.in or carol@example.in).\n"),
        "{out}"
    );
    assert!(out.contains("cargo xtask approve"), "{out}");
    assert_eq!(signatures(&r.text()).len(), 1);

    let mut show = r.xtask(&["plan", "show"]);
    show.arg(r.plan());
    let table = stdout(&exits(show, 0));
    // Table cells compare with their columns' padding squeezed.
    let squeezed: String = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    for expected in [
        "environment: prod",
        "context:     prod-mumbai",
        "planned by:  ops@example.in",
        "expires at:  2026-11-25T05:00:00Z (in 23h)",
        "update deployment/bot",
        "keep secret/bot-credentials",
        "tier: small -> large",
        "+        memory: 512Mi",
        "environment prod requires devops-lead, product-owner",
        &format!("1 alice@example.in devops-lead {alice_fp} good"),
        "Before it can be applied:",
        "still needed: product-owner",
    ] {
        assert!(
            table.contains(expected) || squeezed.contains(expected),
            "{expected:?} in\n{table}"
        );
    }
    assert!(
        r.check()
            .unwrap_err()
            .to_string()
            .contains("product-owner has not approved")
    );

    let out = stdout(&exits(r.approve("bob"), 0));
    assert!(out.contains("bob@example.in as product-owner"), "{out}");
    assert!(
        out.contains("The plan has the approvals environment prod requires: alice@example.in as devops-lead; bob@example.in as product-owner.\nNext: cargo xtask apply"),
        "{out}"
    );
    let json = r.show_json();
    assert_eq!(json["ready"], true, "{json:#}");
    assert_eq!(json["expired"], false);
    assert_eq!(json["planned_by"], "ops@example.in");
    assert_eq!(json["tenants"][0]["objects"][1]["kind"], "Deployment");
    assert_eq!(json["tenants"][0]["objects"][1]["action"], "update");
    assert_eq!(json["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(json["signatures"][1]["principal"], "bob@example.in");
    assert_eq!(json["signatures"][1]["good"], true);
    assert_eq!(json["still_needed"], serde_json::json!([]));
    assert_eq!(
        json["digest"],
        planfile::digest(&PlanFile::read(&r.plan()).unwrap().body)
    );
    let approvals: Vec<(String, Vec<String>)> = r
        .check()
        .unwrap()
        .into_iter()
        .map(|a| (a.principal, a.roles))
        .collect();
    assert_eq!(
        approvals,
        [
            (
                "alice@example.in".to_owned(),
                vec!["devops-lead".to_owned()]
            ),
            (
                "bob@example.in".to_owned(),
                vec!["product-owner".to_owned()]
            )
        ]
    );
}

fn ssh_key_data(path: &Path) -> ssh_key::PublicKey {
    ssh_key::PublicKey::read_openssh_file(path).unwrap()
}

/// Each signer who may not approve is refused with their own reason, and
/// the plan file is left as it was.
#[test]
fn approve_refuses_who_may_not_approve() {
    let r = Review::new();
    exits(r.approve("alice"), 0);
    let before = r.text();
    let refused = |mut cmd: assert_cmd::Command, r: &Review, expected: &str| {
        let e = stderr(&exits(&mut cmd, 1));
        assert!(e.contains(expected), "{expected:?} in\n{e}");
        assert_eq!(r.text(), before, "a refused approval changed the plan file");
    };
    refused(
        r.approve("alice"),
        &r,
        "already approved this plan (signature 1): nothing to add",
    );
    refused(r.approve("outsider"), &r, "is not in the approvers file");
    let outsider_fp = signing::fingerprint(ssh_key_data(&key("outsider.pub")).key_data());
    refused(r.approve("outsider"), &r, &outsider_fp);

    let mut later = r.approve("bob");
    later.env("XTASK_NOW", "2026-11-25T05:00:01Z");
    refused(later, &r, "expired at 2026-11-25T05:00:00Z");

    let mut missing = r.approve("bob");
    missing.arg("--approvers").arg(r.path("nope"));
    refused(missing, &r, "(--approvers) does not exist");

    let mut public = r.xtask(&["approve"]);
    public.arg(r.plan()).arg("--key").arg(key("alice.pub"));
    refused(public, &r, "is a public key");

    // Carol's second key is still Carol.
    exits(r.approve("carol"), 0);
    let before = r.text();
    let e = stderr(&exits(r.approve("carol2"), 1));
    assert!(
        e.contains("carol@example.in already approved this plan with another key"),
        "{e}"
    );
    assert_eq!(r.text(), before);
}

#[test]
fn the_planner_cannot_approve_their_own_plan() {
    let r = Review::planned_by("alice@example.in");
    let e = stderr(&exits(r.approve("alice"), 1));
    assert!(
        e.contains(
            "alice@example.in planned this plan, and the planner cannot approve their own plan"
        ),
        "{e}"
    );
    assert!(signatures(&r.text()).is_empty());
}

#[test]
fn one_person_with_both_roles_fills_one() {
    let r = Review::new();
    let out = stdout(&exits(r.approve("carol"), 0));
    assert!(out.contains("Still needed:"), "{out}");
    let e = r.check().unwrap_err().to_string();
    assert!(
        e.contains("needs a different person: carol@example.in approved, but already fills"),
        "{e}"
    );
    exits(r.approve("alice"), 0);
    let approvals = r.check().unwrap();
    assert_eq!(approvals.len(), 2, "{approvals:?}");
    assert_eq!(approvals[0].principal, "carol@example.in");
    assert_eq!(approvals[0].roles, ["product-owner"]);
}

#[test]
fn a_changed_byte_voids_the_approvals() {
    let r = Review::new();
    exits(r.approve("alice"), 0);
    exits(r.approve("bob"), 0);
    r.check().unwrap();
    // One byte of the body: the cluster the plan is for.
    let text = r.text().replacen("000000000001", "000000000002", 1);
    std::fs::write(r.plan(), &text).unwrap();
    let e = r.check().unwrap_err().to_string();
    assert!(e.starts_with("2 signatures are bad"), "{e}");
    assert!(
        e.contains(
            "signature 1 is bad: it does not match the plan's body: alice@example.in (SHA256:"
        ),
        "{e}"
    );
    let json = r.show_json();
    assert_eq!(json["ready"], false);
    assert_eq!(json["signatures"][0]["good"], false);
    assert!(
        json["signatures"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("signed other bytes")
    );
}

#[test]
fn plan_body_prints_the_signed_bytes() {
    let r = Review::new();
    exits(r.approve("alice"), 0);
    let mut cmd = r.xtask(&["plan", "body"]);
    cmd.arg(r.plan());
    let body = exits(cmd, 0).stdout;
    assert_eq!(
        String::from_utf8(body).unwrap(),
        PlanFile::read(&r.plan()).unwrap().body
    );
    assert!(
        r.text().len() > body_len(&r),
        "the file also holds the signature"
    );
}

#[test]
fn an_encrypted_key_without_a_terminal_says_to_sign_with_openssh() {
    let r = Review::new();
    let e = stderr(&exits(r.approve("erin"), 1));
    assert!(e.contains("is encrypted and there is no terminal"), "{e}");
    assert!(
        e.contains("ssh-keygen -Y sign -n xtask-plan@mla-platform.in"),
        "{e}"
    );
    // The advice names this plan, ready to copy.
    let plan = r.plan().display().to_string();
    assert!(
        e.contains(&format!("`cargo xtask plan body {plan} | ssh-keygen"))
            && e.contains(&format!("approve {plan} --signature {plan}.sig`")),
        "{e}"
    );
    assert!(signatures(&r.text()).is_empty());
}

fn body_len(r: &Review) -> usize {
    PlanFile::read(&r.plan()).unwrap().body.len()
}

/// `ssh-keygen`, or None (and a line saying the test skips) without it.
fn ssh_keygen(test: &str) -> Option<PathBuf> {
    match which::which("ssh-keygen") {
        Ok(path) => Some(path),
        Err(_) => {
            eprintln!("SKIPPED {test}: ssh-keygen is not installed");
            None
        }
    }
}

/// A fresh ed25519 key made by ssh-keygen, listed in the approvers file
/// as `principal` with `roles`.
fn openssh_key(r: &Review, keygen: &Path, principal: &str, roles: &str) -> PathBuf {
    let path = r.path(principal.split('@').next().unwrap());
    let status = std::process::Command::new(keygen)
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "made in a test",
            "-f",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let mut approvers = std::fs::read_to_string(r.path("approvers")).unwrap();
    approvers.push_str(&format!(
        "{principal} namespaces=\"{NAMESPACE}\" {} roles={roles}\n",
        public(&path.with_extension("pub"))
    ));
    std::fs::write(r.path("approvers"), approvers).unwrap();
    path
}

/// Runs `cmd` with `input` on stdin.
fn piped(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_signature_by_ssh_keygen_approves() {
    let Some(keygen) = ssh_keygen("a_signature_by_ssh_keygen_approves") else {
        return;
    };
    let r = Review::new();
    let frank = openssh_key(&r, &keygen, "frank@example.in", "product-owner");
    let mut body = r.xtask(&["plan", "body"]);
    body.arg(r.plan());
    let body = exits(body, 0).stdout;
    let sign = |namespace: &str| {
        let out = piped(
            std::process::Command::new(&keygen)
                .args(["-Y", "sign", "-n", namespace, "-f"])
                .arg(&frank),
            &body,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let path = r.path(&format!("{namespace}.sig"));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    };
    // Made for git, it approves nothing.
    let git = sign("git");
    let mut attach = r.xtask(&["approve"]);
    attach.arg(r.plan()).arg("--signature").arg(&git);
    let e = stderr(&exits(attach, 1));
    assert!(e.contains("made for the namespace `git`"), "{e}");
    assert!(signatures(&r.text()).is_empty());

    let sig = sign(NAMESPACE);
    let mut attach = r.xtask(&["approve"]);
    attach.arg(r.plan()).arg("--signature").arg(&sig);
    let out = stdout(&exits(attach, 0));
    assert!(out.contains("frank@example.in as product-owner"), "{out}");
    exits(r.approve("alice"), 0);
    let approvals = r.check().unwrap();
    assert_eq!(approvals[0].principal, "frank@example.in");

    // Signed over other bytes, it is refused before it is attached.
    let other = Review::new();
    std::fs::copy(r.path("approvers"), other.path("approvers")).unwrap();
    let text = other.text().replacen("demo", "deme", 1);
    std::fs::write(other.plan(), text).unwrap();
    let mut attach = other.xtask(&["approve"]);
    attach.arg(other.plan()).arg("--signature").arg(&sig);
    let e = stderr(&exits(attach, 1));
    assert!(e.contains("does not match the plan's body"), "{e}");
    assert!(e.contains("cargo xtask plan body"), "{e}");
}

#[test]
fn a_signature_by_approve_verifies_with_ssh_keygen() {
    let Some(keygen) = ssh_keygen("a_signature_by_approve_verifies_with_ssh_keygen") else {
        return;
    };
    let r = Review::new();
    let grace = openssh_key(&r, &keygen, "grace@example.in", "devops-lead");
    let mut approve = r.xtask(&["approve"]);
    approve.arg(r.plan()).arg("--key").arg(&grace);
    exits(approve, 0);
    let sig = r.path("grace.sig");
    std::fs::write(&sig, &signatures(&r.text())[0]).unwrap();
    let body = PlanFile::read(&r.plan()).unwrap().body;
    let verify = |principal: &str, body: &[u8]| {
        piped(
            std::process::Command::new(&keygen)
                .args(["-Y", "verify", "-f"])
                .arg(r.path("approvers"))
                .args(["-I", principal, "-n", NAMESPACE, "-s"])
                .arg(&sig),
            body,
        )
    };
    // The approvers file, roles and options and all, is OpenSSH's too.
    let out = verify("grace@example.in", body.as_bytes());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Good \"xtask-plan@mla-platform.in\" signature for grace@example.in"),
        "{}",
        stdout(&out)
    );
    // And OpenSSH refuses what the tool refuses.
    let changed = body.replacen("demo", "deme", 1);
    assert!(
        !verify("grace@example.in", changed.as_bytes())
            .status
            .success()
    );
    assert!(!verify("alice@example.in", body.as_bytes()).status.success());
}

/// On a terminal, an encrypted key asks its passphrase (not echoed), and
/// signs once it is given.
#[test]
fn an_encrypted_key_asks_its_passphrase_on_a_terminal() {
    let r = Review::new();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("approve")
        .arg(r.plan())
        .arg("--key")
        .arg(key("erin"))
        .env("XTASK_ENVIRONMENTS", r.path("environments.yaml"))
        .env("XTASK_APPROVERS", r.path("approvers"))
        .env("XTASK_NOW", NOW)
        .env("TERM", "xterm-256color");
    let mut session = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    session.exp_string("Passphrase for").unwrap();
    session.send("test-passphrase\r").unwrap();
    session.flush().unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(
        !rest.contains("test-passphrase"),
        "the passphrase was echoed: {rest}"
    );
    assert!(rest.contains("erin@example.in as devops-lead"), "{rest}");
    assert_eq!(signatures(&r.text()).len(), 1);
    // Erin's signature is good: only the product-owner is missing.
    let e = r.check().unwrap_err().to_string();
    assert!(e.contains("still needed: product-owner.\n"), "{e}");
}
