//! `cargo xtask provision <TENANT>` in a real terminal: the binary runs in a
//! pseudo-terminal (rexpect) against the fake kubectl, and is answered as an
//! operator would, key by key.
//!
//! What the operator sees is pinned as a snapshot: the bytes the binary
//! wrote (inquire's prompts redraw themselves with escape sequences) are
//! played into a terminal emulator (vt100), and its screen is the
//! transcript, as text without colours. Every wait has a time limit
//! (rexpect's, [`WAIT_MS`]), and a session that is dropped kills its
//! process: no test can hang.

mod common;

use std::path::Path;

use common::{Cluster, fake_kubectl, fixture, repo_root};
use rexpect::process::WaitStatus;
use rexpect::session::PtySession;

/// The longest any one expected text may take to appear: the first prompt
/// waits for nothing but the binary's start; the apply waits for the fake
/// cluster's rollout (seconds on a loaded 2-core machine).
const WAIT_MS: u64 = 60_000;
const ROWS: u16 = 120;
const COLS: u16 = 160;

/// One provision in a pseudo-terminal, with its screen.
struct Terminal {
    session: PtySession,
    screen: vt100::Parser,
}

impl Terminal {
    /// `xtask provision ARGS` against `cluster`, in a terminal of
    /// [`ROWS`]×[`COLS`] (set with `stty` before the binary starts, as a
    /// new pseudo-terminal has no size).
    fn provision(cluster: &Cluster, args: &[&str]) -> Terminal {
        Terminal::provision_in(
            cluster,
            args,
            &repo_root().join("tests/fixtures/environments.yaml"),
        )
    }

    /// [`Terminal::provision`] with the environments of `environments`.
    fn provision_in(cluster: &Cluster, args: &[&str], environments: &Path) -> Terminal {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "stty rows {ROWS} cols {COLS} && exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_xtask"))
            .arg("provision")
            .args(args)
            .arg("--kubectl")
            .arg(fake_kubectl())
            .arg("--tenants-dir")
            .arg(cluster.tenants.path())
            .env_remove("KUBECTL")
            .env("FAKE_KUBECTL_STATE", cluster.state.path())
            .env("XTASK_ENVIRONMENTS", environments)
            .env("XTASK_AUDIT_LOG", cluster.audit_log())
            .env("TERM", "xterm-256color");
        let session = rexpect::session::spawn_command(cmd, Some(WAIT_MS)).unwrap();
        Terminal {
            session,
            screen: vt100::Parser::new(ROWS.try_into().unwrap(), COLS.try_into().unwrap(), 0),
        }
    }

    /// Waits for `text` on the terminal (failing after [`WAIT_MS`]) and
    /// returns the bytes written before it, escape sequences and all.
    /// rexpect reads each byte as a char (Latin-1), so `text` is ASCII and
    /// what was read goes back to bytes before the screen gets it.
    #[track_caller]
    fn expect(&mut self, text: &str) -> Vec<u8> {
        assert!(text.is_ascii(), "{text:?}: rexpect matches bytes as chars");
        match self.session.exp_string(text) {
            Ok(before) => {
                let before = bytes(&before);
                self.screen.process(&before);
                self.screen.process(text.as_bytes());
                before
            }
            Err(e) => panic!("waiting for {text:?}: {e}\n--- screen\n{}", self.text()),
        }
    }

    /// Waits (up to [`WAIT_MS`]) until the screen shows `line`: what a
    /// frame shows once it is drawn whole, whichever bytes drew it.
    #[track_caller]
    fn expect_screen(&mut self, line: &str) {
        let started = std::time::Instant::now();
        while !self.text().lines().any(|l| l.trim_end() == line) {
            match self.session.try_read() {
                Some(c) => self.screen.process(&[u8::try_from(c).unwrap()]),
                None if started.elapsed().as_millis() > u128::from(WAIT_MS) => {
                    panic!("the screen never showed {line:?}:\n{}", self.text())
                }
                None => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    }

    /// Waits for `question`, then types `answer` and Enter.
    #[track_caller]
    fn answer(&mut self, question: &str, answer: &str) {
        self.expect(question);
        self.session.send(&format!("{answer}\r")).unwrap();
        self.session.flush().unwrap();
    }

    /// Clears the refused answer still in the field (Backspace, as an
    /// operator would) and types `answer` and Enter.
    fn retype(&mut self, answer: &str) {
        let erase = "\u{7f}".repeat(60);
        self.session.send(&format!("{erase}{answer}\r")).unwrap();
        self.session.flush().unwrap();
    }

    /// Presses Ctrl-C.
    fn ctrl_c(&mut self) {
        self.session.send_control('c').unwrap();
    }

    /// Reads to the end and returns the exit status and the screen.
    #[track_caller]
    fn finish(mut self) -> (i32, String) {
        match self.session.exp_eof() {
            Ok(rest) => self.screen.process(&bytes(&rest)),
            Err(e) => panic!("waiting for the end: {e}\n--- screen\n{}", self.text()),
        }
        let code = match self.session.process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("the binary did not exit: {other:?}\n{}", self.text()),
        };
        (code, self.text())
    }

    fn text(&self) -> String {
        self.screen.screen().contents().trim_end().to_owned()
    }
}

/// What rexpect read, as the bytes they were.
fn bytes(read: &str) -> Vec<u8> {
    read.chars().map(|c| u8::try_from(c).unwrap()).collect()
}

/// The screen with this run's temporary directories named, and the blanks
/// at the ends of lines (the cursor's room after a question) dropped.
fn redact(screen: &str, cluster: &Cluster) -> String {
    screen
        .replace(&cluster.tenants.path().display().to_string(), "[TENANTS]")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a refused or cancelled run must leave: no tenant config, no
/// tenant objects, no lock.
#[track_caller]
fn nothing_left(cluster: &Cluster, tenant: &str) {
    assert!(
        !cluster
            .tenants
            .path()
            .join(format!("{tenant}.yaml"))
            .exists(),
        "a config was saved"
    );
    assert!(
        cluster
            .get("Namespace", None, &format!("tenant-{tenant}"))
            .is_none(),
        "the tenant's namespace was made"
    );
    let leases: Vec<_> = cluster
        .objects()
        .into_iter()
        .filter(|o| o["kind"] == "Lease")
        .map(|o| o["metadata"]["name"].clone())
        .collect();
    assert!(leases.is_empty(), "locks left behind: {leases:?}");
}

fn saved_config(cluster: &Cluster, tenant: &str) -> String {
    std::fs::read_to_string(cluster.tenants.path().join(format!("{tenant}.yaml"))).unwrap()
}

/// Every question answered as asked: the config is saved with the typed
/// values (the number normalised), the tenant applied, exit 0.
#[test]
fn the_happy_path_asks_each_value_and_applies_after_yes() {
    let cluster = Cluster::new();
    let mut t = Terminal::provision(&cluster, &["pune"]);
    t.answer("MLA name", "Asha Kulkarni");
    t.answer("Constituency", "Pune Cantonment");
    t.answer("WhatsApp number", "+91 98765-11111");
    t.answer("Domains", "pune-mla.example.in");
    t.answer("[y/N]", "y");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    let saved = saved_config(&cluster, "pune");
    assert!(
        saved.contains("whatsapp_number: \"+919876511111\""),
        "{saved}"
    );
    assert!(saved.contains("Asha Kulkarni"), "{saved}");
    assert!(cluster.get("Namespace", None, "tenant-pune").is_some());
    insta::assert_snapshot!(redact(&screen, &cluster));
}

/// A wrong number is refused as it is entered, with the validator's
/// words, and the same question is asked again; the right one is taken.
#[test]
fn a_wrong_value_is_refused_at_once_and_asked_again() {
    let cluster = Cluster::new();
    let mut t = Terminal::provision(&cluster, &["pune"]);
    t.answer("MLA name", "Asha Kulkarni");
    t.answer("Constituency", "Pune Cantonment");
    t.answer("WhatsApp number", "98765 11111");
    // The refusal, then the question again with the refused text in it.
    t.expect("must be in international E.164 form");
    t.expect_screen("? WhatsApp number (E.164, e.g. +91 98765-43210) 98765 11111");
    let number_refused = redact(&t.text(), &cluster);
    t.retype("+91 98765-11111");
    t.answer("Domains", "https://pune-mla.example.in");
    t.expect("looks like a URL");
    t.expect_screen("? Domains (separated by spaces or commas) https://pune-mla.example.in");
    let domain_refused = redact(&t.text(), &cluster);
    t.retype("pune-mla.example.in");
    t.answer("[y/N]", "y");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    let saved = saved_config(&cluster, "pune");
    assert!(saved.contains("\"+919876511111\""), "{saved}");
    assert!(saved.contains("- pune-mla.example.in"), "{saved}");
    insta::assert_snapshot!(format!(
        "--- the number refused\n{number_refused}\n--- the domain refused\n{domain_refused}\n--- at the end\n{}",
        redact(&screen, &cluster)
    ));
}

/// Another tenant's number and domain are refused as soon as each is
/// entered, naming the tenant that has it, before any confirmation; the
/// answers before them are kept.
#[test]
fn a_clash_is_named_as_the_value_is_entered() {
    let cluster = Cluster::with_tenants(&["kalyan"]);
    let setup_calls = cluster.calls().len();
    let mut t = Terminal::provision(&cluster, &["pune"]);
    t.answer("MLA name", "Asha Kulkarni");
    t.answer("Constituency", "Pune Cantonment");
    t.answer("WhatsApp number", "+91 98765-43210");
    t.expect("is already used by tenant kalyan");
    t.expect_screen("? WhatsApp number (E.164, e.g. +91 98765-43210) +91 98765-43210");
    let number_refused = redact(&t.text(), &cluster);
    t.retype("+91 98765-11111");
    t.answer("Domains", "pune-mla.example.in www.kalyan-mla.example.in");
    t.expect("is already used by tenant kalyan");
    t.expect_screen(
        "? Domains (separated by spaces or commas) pune-mla.example.in www.kalyan-mla.example.in",
    );
    let domain_refused = redact(&t.text(), &cluster);
    t.retype("pune-mla.example.in");
    t.answer("[y/N]", "y");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    let saved = saved_config(&cluster, "pune");
    assert!(saved.contains("Pune Cantonment"), "{saved}");
    assert!(!saved.contains("kalyan"), "{saved}");
    // One read of the claims before the questions, none per answer, and
    // the one under the claims lock before the apply.
    let reads = cluster.calls()[setup_calls..]
        .iter()
        .filter(|c| c[..2] == ["get", "ingresses"])
        .count();
    assert_eq!(reads, 2, "{:#?}", cluster.calls());
    insta::assert_snapshot!(format!(
        "--- the number refused\n{number_refused}\n--- the domain refused\n{domain_refused}\n--- at the end\n{}",
        redact(&screen, &cluster)
    ));
}

/// A mistyped yes/no is asked again and a yes then applies; three
/// mistyped tenant names in production stop with nothing changed, and the
/// values typed before are not asked for again in between.
#[test]
fn a_mistyped_confirmation_is_asked_again_three_times_in_all() {
    let cluster = Cluster::new();
    let mut t = Terminal::provision(&cluster, &["pune"]);
    t.answer("MLA name", "Asha Kulkarni");
    t.answer("Constituency", "Pune Cantonment");
    t.answer("WhatsApp number", "+91 98765-11111");
    t.answer("Domains", "pune-mla.example.in");
    t.answer("[y/N]", "yse");
    t.answer("2 tries left", "y");
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(cluster.get("Namespace", None, "tenant-pune").is_some());
    insta::assert_snapshot!("mistyped_yes", redact(&screen, &cluster));

    let cluster = Cluster::new();
    let mut t = Terminal::provision(&cluster, &["pune", "--env", "prod"]);
    t.answer("MLA name", "Asha Kulkarni");
    t.answer("Constituency", "Pune Cantonment");
    t.answer("WhatsApp number", "+91 98765-11111");
    t.answer("Domains", "pune-mla.example.in");
    t.answer("Type pune to continue", "pnue");
    t.answer("2 tries left", "Pune");
    t.answer("1 try left", "pun");
    let (code, screen) = t.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.ends_with("Nothing was changed."), "{screen}");
    nothing_left(&cluster, "pune");
    insta::assert_snapshot!("mistyped_name", redact(&screen, &cluster));
}

/// Ctrl-C at a value's question and at the confirmation: exit 130,
/// "Nothing was changed.", and no config, object or lock left behind.
#[test]
fn ctrl_c_at_any_question_changes_nothing() {
    let cluster = Cluster::new();
    let mut t = Terminal::provision(&cluster, &["pune"]);
    t.answer("MLA name", "Asha Kulkarni");
    t.expect("Constituency");
    t.ctrl_c();
    let (code, screen) = t.finish();
    assert_eq!(code, 130, "{screen}");
    assert!(screen.ends_with("Nothing was changed."), "{screen}");
    nothing_left(&cluster, "pune");
    assert!(!cluster.calls().iter().any(|c| c[0] == "apply"));
    insta::assert_snapshot!("ctrl_c_at_a_value", redact(&screen, &cluster));

    // At the typed confirmation, while the tenant's and the claims' locks are held.
    let cluster = Cluster::new();
    let mut t = Terminal::provision(&cluster, &["pune", "--env", "prod"]);
    t.answer("MLA name", "Asha Kulkarni");
    t.answer("Constituency", "Pune Cantonment");
    t.answer("WhatsApp number", "+91 98765-11111");
    t.answer("Domains", "pune-mla.example.in");
    t.expect("Type pune to continue");
    t.ctrl_c();
    let (code, screen) = t.finish();
    assert_eq!(code, 130, "{screen}");
    assert!(screen.ends_with("Nothing was changed."), "{screen}");
    nothing_left(&cluster, "pune");
    insta::assert_snapshot!("ctrl_c_at_the_confirmation", redact(&screen, &cluster));
}

/// Breaking glass on a terminal: the banner, in red, before anything is
/// read, then the tenant name typed even with --yes, in an environment
/// (staging, tests/fixtures/environments-gated.yaml) whose own rule asks
/// for no typing; the change is then made and audited with the reason.
#[test]
fn break_glass_on_a_terminal_asks_for_the_name_even_with_yes() {
    let cluster = Cluster::new();
    let values = fixture("kalyan.yaml");
    let mut t = Terminal::provision_in(
        &cluster,
        &[
            "kalyan",
            "--values",
            values.to_str().unwrap(),
            "--non-interactive",
            "--yes",
            "--env",
            "staging",
            "--break-glass",
            "INC-9: pager at 3am",
        ],
        &fixture("environments-gated.yaml"),
    );
    let before = t.expect("BREAK GLASS: provisioning of tenant kalyan");
    assert!(
        before.ends_with(b"\x1b[1;31m"),
        "the banner is not red: {:?}",
        String::from_utf8_lossy(&before)
    );
    t.expect("Type kalyan to continue");
    assert!(
        !cluster
            .calls()
            .iter()
            .any(|c| c.contains(&"apply".to_owned())),
        "applied before the name was typed"
    );
    t.session.send("kalyan\r").unwrap();
    t.session.flush().unwrap();
    let (code, screen) = t.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(cluster.get("Namespace", None, "tenant-kalyan").is_some());
    let audit = std::fs::read_to_string(cluster.audit_log()).unwrap();
    let entry: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(entry["result"], "ok");
    assert_eq!(entry["break_glass"], "INC-9: pager at 3am");
    insta::assert_snapshot!("break_glass", redact(&screen, &cluster));
}
