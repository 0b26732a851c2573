//! Approvals of plan files: OpenSSH signatures (SSHSIG, as `ssh-keygen -Y
//! sign` makes them) over a plan's body, the `approvers` file (OpenSSH
//! `allowed_signers` format) that says whose key is whose and which roles
//! each person approves as, and the check that a plan's signatures fill the
//! roles its environment requires, each by a different person who is not
//! its planner.
//!
//! The approvers file is parsed here rather than handed to `ssh-keygen`, so
//! that no OpenSSH is needed to apply a plan; it keeps to what `ssh-keygen
//! -Y verify` accepts (options `namespaces`, `valid-after`, `valid-before`;
//! anything else is refused), so the same file verifies the same
//! signatures with OpenSSH alone.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde::Serialize;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig, public::KeyData};

use crate::planfile::{Plan, PlanFile};

/// The SSHSIG namespace of plan approvals: a signature made for anything
/// else (git commits use `git`, files `file`) never approves a plan.
pub const NAMESPACE: &str = "xtask-plan@mla-platform.in";

/// One key of the approvers file: whose it is and the roles it approves as.
#[derive(Debug, Clone)]
pub struct Approver {
    /// The person, by e-mail.
    pub principal: String,
    pub roles: Vec<String>,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The line of the approvers file the key is on.
    pub line: usize,
    key: PublicKey,
    namespaces: Option<String>,
    valid_after: Option<(String, SystemTime)>,
    valid_before: Option<(String, SystemTime)>,
}

impl Approver {
    /// Why this key cannot approve a plan at `now` (its `namespaces`
    /// leaves ours out, or it is outside `valid-after`/`valid-before`), as
    /// `ssh-keygen -Y verify` would refuse it; None when it can.
    pub fn unusable(&self, approvers: &Approvers, now: SystemTime) -> Option<String> {
        let at = format!("{}:{}", approvers.path.display(), self.line);
        if let Some(namespaces) = &self.namespaces
            && !matches_pattern_list(NAMESPACE, namespaces)
        {
            return Some(format!(
                "the key of {} ({at}) is limited to namespaces=\"{namespaces}\", which leaves out \
                 {NAMESPACE}: it cannot approve plans; add {NAMESPACE} to its namespaces in a reviewed \
                 change to the approvers file",
                self.principal
            ));
        }
        if let Some((text, after)) = &self.valid_after
            && now < *after
        {
            return Some(format!(
                "the key of {} ({at}) is not valid yet: valid-after=\"{text}\"",
                self.principal
            ));
        }
        if let Some((text, before)) = &self.valid_before
            && now > *before
        {
            return Some(format!(
                "the key of {} ({at}) has expired: valid-before=\"{text}\"; the approver needs a new \
                 key listed in the approvers file",
                self.principal
            ));
        }
        None
    }
}

/// The approvers file: who may approve plans, as which roles.
#[derive(Debug, Clone)]
pub struct Approvers {
    path: PathBuf,
    entries: Vec<Approver>,
}

impl Approvers {
    /// `flag` (`--approvers`), else `$XTASK_APPROVERS`, else `approvers` at
    /// `root`. A missing file is an error naming it and how to add an
    /// approver; so is every bad line, by `file:line`.
    pub fn load(flag: Option<&Path>, root: &Path) -> anyhow::Result<Approvers> {
        let (path, from) = match (flag, std::env::var_os("XTASK_APPROVERS")) {
            (Some(p), _) => (p.to_path_buf(), " (--approvers)"),
            (None, Some(p)) if !p.is_empty() => (PathBuf::from(p), " ($XTASK_APPROVERS)"),
            _ => (root.join("approvers"), ""),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "the approvers file {}{from} does not exist: it lists whose SSH keys may approve plans. \
                 Add an approver with a line `EMAIL namespaces=\"{NAMESPACE}\" ssh-ed25519 AAAA... \
                 roles=ROLE[,ROLE]` (their public key, e.g. ~/.ssh/id_ed25519.pub) in the repository's \
                 approvers file, or name another file with --approvers or $XTASK_APPROVERS",
                path.display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the approvers file {}", path.display()));
            }
        };
        Approvers::parse(&path, &text)
    }

    /// Parses the text of the approvers file `path`.
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Approvers> {
        let mut entries: Vec<Approver> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let entry =
                parse_line(line).map_err(|why| anyhow::anyhow!("{}:{n}: {why}", path.display()))?;
            let Some((principal, options, key, roles)) = entry else {
                continue;
            };
            if let Some(other) = entries.iter().find(|e| e.key.key_data() == key.key_data()) {
                bail!(
                    "{}:{n}: this key is already listed on line {} (for {}): a key belongs to one \
                     person, listed once",
                    path.display(),
                    other.line,
                    other.principal
                );
            }
            entries.push(Approver {
                fingerprint: fingerprint(key.key_data()),
                principal,
                roles,
                line: n,
                key,
                namespaces: options.namespaces,
                valid_after: options.valid_after,
                valid_before: options.valid_before,
            });
        }
        Ok(Approvers {
            path: path.to_path_buf(),
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every key, in the file's order.
    pub fn entries(&self) -> &[Approver] {
        &self.entries
    }

    /// The entry of `key`, if it is listed.
    pub fn find(&self, key: &KeyData) -> Option<&Approver> {
        self.entries.iter().find(|e| e.key.key_data() == key)
    }

    /// The people (principals) holding `role`, each once, in the file's
    /// order.
    pub fn holders(&self, role: &str) -> Vec<String> {
        let mut people: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.roles.iter().any(|r| r == role) && !people.contains(&e.principal) {
                people.push(e.principal.clone());
            }
        }
        people
    }

    /// "held in approvers by a, b" (but the planner, who may not approve),
    /// or that nobody holds `role` and how to change that.
    fn holders_text(&self, role: &str, planner: &str) -> String {
        let holders: Vec<String> = self
            .holders(role)
            .into_iter()
            .filter(|p| !same_person(p, planner))
            .collect();
        match holders.as_slice() {
            [] if !self.holders(role).is_empty() => format!(
                "only the planner, {planner}, holds {role} in {}, and the planner cannot approve their own \
                 plan: another {role} must approve (add one to the approvers file), or someone else plans it",
                self.path.display()
            ),
            [] => format!(
                "nobody in {} holds {role}: add an approver with roles={role}",
                self.path.display()
            ),
            people => format!("held in {} by {}", self.path.display(), people.join(", ")),
        }
    }
}

#[derive(Default)]
struct Options {
    namespaces: Option<String>,
    valid_after: Option<(String, SystemTime)>,
    valid_before: Option<(String, SystemTime)>,
}

/// One line: None for a blank or comment line, else its principal,
/// options, key and roles; Err says what is wrong (the caller adds
/// `file:line`).
#[allow(clippy::type_complexity)]
fn parse_line(line: &str) -> Result<Option<(String, Options, PublicKey, Vec<String>)>, String> {
    let rest = line.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    // Principals: one field, optionally in double quotes (as OpenSSH reads it).
    let (principals, rest) = match rest.strip_prefix('"') {
        Some(quoted) => {
            let end = quoted
                .find('"')
                .ok_or("the quoted principals have no closing `\"`")?;
            (&quoted[..end], &quoted[end + 1..])
        }
        None => rest.split_at(rest.find([' ', '\t']).unwrap_or(rest.len())),
    };
    let principal = parse_principals(principals)?;
    let rest = rest.trim_start();
    let first = rest.split([' ', '\t']).next().unwrap_or_default();
    let (options, rest) = if first.is_empty() {
        return Err(format!(
            "no key after the principal `{principal}`: expected `PRINCIPAL [OPTIONS] KEYTYPE BASE64-KEY roles=ROLE`"
        ));
    } else if is_key_type(first) {
        (Options::default(), rest)
    } else {
        let end = options_end(rest)?;
        (parse_options(&rest[..end])?, rest[end..].trim_start())
    };
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let (Some(kind), Some(base64)) = (fields.next(), fields.next()) else {
        return Err(
            "no key after the options: expected `KEYTYPE BASE64-KEY` (as in a .pub file)"
                .to_owned(),
        );
    };
    if kind.ends_with("-cert-v01@openssh.com") {
        return Err(format!(
            "`{kind}` is a certificate: approvers are listed by their plain public key, not a certificate"
        ));
    }
    if !is_key_type(kind) {
        return Err(format!(
            "`{kind}` is not an SSH key type (expected e.g. ssh-ed25519)"
        ));
    }
    let key = PublicKey::from_openssh(&format!("{kind} {base64}")).map_err(|e| {
        format!("its {kind} key is not valid ({e}): copy it whole from the approver's .pub file")
    })?;
    if !matches!(key.algorithm(), Algorithm::Ed25519 | Algorithm::SkEd25519) {
        return Err(format!(
            "`{kind}` keys are not supported for approvals: the approver needs an ed25519 key \
             (ssh-keygen -t ed25519, or -t ed25519-sk for a security key)"
        ));
    }
    let comment: Vec<&str> = fields.collect();
    let roles = parse_roles(&comment)?;
    Ok(Some((principal, options, key, roles)))
}

/// The one principal of a line: a person's e-mail, named exactly.
fn parse_principals(field: &str) -> Result<String, String> {
    let list: Vec<&str> = field.split(',').collect();
    if list.iter().any(|p| p.is_empty()) {
        return Err(format!("the principals `{field}` have an empty entry"));
    }
    if let [one] = list.as_slice() {
        if one.contains(['*', '?', '!']) {
            return Err(format!(
                "the principal `{one}` is a pattern: an approver is one person, named exactly (their e-mail)"
            ));
        }
        return Ok((*one).to_owned());
    }
    Err(format!(
        "the key is listed for {} principals ({field}): a key approves as one person; list each \
         person's own key on a line of its own",
        list.len()
    ))
}

fn is_key_type(field: &str) -> bool {
    !field.contains(['=', '"', ','])
        && (field.starts_with("ssh-")
            || field.starts_with("ecdsa-")
            || field.starts_with("sk-")
            || field.starts_with("rsa-sha2-"))
}

/// Where the options field ends: the first blank outside double quotes.
fn options_end(text: &str) -> Result<usize, String> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Ok(i),
            _ => {}
        }
    }
    match quoted {
        true => Err("an option's value has no closing `\"`".to_owned()),
        false => Ok(text.len()),
    }
}

/// The options ssh-keygen's allowed_signers takes; any other is refused, as
/// `ssh-keygen -Y verify` refuses it.
fn parse_options(text: &str) -> Result<Options, String> {
    let mut options = Options::default();
    let mut rest = text;
    while !rest.is_empty() {
        let name_end = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = &rest[name_end..];
        let value = match rest.strip_prefix('=') {
            Some(after) => {
                let Some(after) = after.strip_prefix('"') else {
                    return Err(format!(
                        "the value of option `{name}` must be in double quotes"
                    ));
                };
                let end = after
                    .find('"')
                    .ok_or_else(|| format!("the value of option `{name}` has no closing `\"`"))?;
                rest = &after[end + 1..];
                Some(&after[..end])
            }
            None => None,
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => {
                return Err(
                    "cert-authority is not supported: approvals are checked against each \
                     approver's own key; list the person's public key instead of a CA"
                        .to_owned(),
                );
            }
            ("namespaces", Some(v)) if options.namespaces.is_none() => {
                options.namespaces = Some(v.to_owned())
            }
            ("valid-after", Some(v)) if options.valid_after.is_none() => {
                options.valid_after = Some((v.to_owned(), parse_time(v)?))
            }
            ("valid-before", Some(v)) if options.valid_before.is_none() => {
                options.valid_before = Some((v.to_owned(), parse_time(v)?))
            }
            ("namespaces" | "valid-after" | "valid-before", Some(_)) => {
                return Err(format!("option `{name}` is given twice"));
            }
            ("namespaces" | "valid-after" | "valid-before", None) => {
                return Err(format!("option `{name}` needs a value: {name}=\"...\""));
            }
            _ => {
                return Err(format!(
                    "unknown option `{name}`: the approvers file takes namespaces, valid-after and \
                     valid-before (roles go in the comment after the key: roles=ROLE)"
                ));
            }
        }
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None if rest.is_empty() => {}
            None => return Err(format!("unexpected `{rest}` after option `{name}`")),
        }
    }
    if let (Some((_, after)), Some((_, before))) = (&options.valid_after, &options.valid_before)
        && before <= after
    {
        return Err("valid-before is not after valid-after".to_owned());
    }
    Ok(options)
}

/// `YYYYMMDD[HHMM[SS]]` with `Z` (or `UTC`) for UTC, as ssh-keygen reads a
/// validity time. Without the suffix ssh-keygen reads the local time of
/// whichever machine checks, so such a time is refused.
fn parse_time(text: &str) -> Result<SystemTime, String> {
    let upper = text.to_ascii_uppercase();
    let Some(digits) = upper
        .strip_suffix('Z')
        .or_else(|| upper.strip_suffix("UTC"))
    else {
        return Err(format!(
            "the time `{text}` has no Z: write it in UTC with a trailing Z (e.g. {text}Z); \
             without it ssh-keygen reads each machine's local time"
        ));
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(format!(
            "the time `{text}` is not YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, then Z"
        ));
    }
    let d = |from: usize, to: usize| digits.get(from..to).unwrap_or("00");
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        d(0, 4),
        d(4, 6),
        d(6, 8),
        d(8, 10),
        d(10, 12),
        d(12, 14)
    );
    humantime::parse_rfc3339(&rfc3339)
        .map_err(|_| format!("the time `{text}` is not a real date and time"))
}

/// The roles in a key's comment: its `roles=a,b` word.
fn parse_roles(comment: &[&str]) -> Result<Vec<String>, String> {
    let mut found = comment.iter().filter_map(|w| w.strip_prefix("roles="));
    let Some(list) = found.next() else {
        return Err(
            "no roles: end the line with the roles the key approves as, e.g. roles=devops-lead"
                .to_owned(),
        );
    };
    if found.next().is_some() {
        return Err("roles= is given twice: list all roles in one, comma-separated".to_owned());
    }
    let mut roles = Vec::new();
    for role in list.split(',') {
        let valid = !role.is_empty()
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(format!(
                "the role `{role}` is not a role name (lowercase letters, digits and -, as in environments.yaml)"
            ));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
        }
    }
    Ok(roles)
}

/// OpenSSH's pattern lists (`match_pattern_list`): comma-separated
/// patterns with `*` and `?`; a matching `!pattern` denies.
fn matches_pattern_list(text: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(p) if glob(text.as_bytes(), p.as_bytes()) => return false,
            Some(_) => {}
            None if glob(text.as_bytes(), pattern.as_bytes()) => matched = true,
            None => {}
        }
    }
    matched
}

fn glob(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(&text[i..], rest)),
        Some((b'?', rest)) => !text.is_empty() && glob(&text[1..], rest),
        Some((c, rest)) => text.first() == Some(c) && glob(&text[1..], rest),
    }
}

/// `SHA256:...` of a public key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A private key read from a file, still locked when it is encrypted: its
/// public half (and so whose it is) is known before any passphrase is
/// asked. Never printed.
pub struct SigningKey {
    path: PathBuf,
    key: PrivateKey,
}

impl SigningKey {
    /// Reads the OpenSSH private key at `path`.
    pub fn open(path: &Path) -> anyhow::Result<SigningKey> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key {}", path.display()))?;
        if text.trim_start().starts_with("ssh-") || text.trim_start().starts_with("sk-") {
            bail!(
                "{} is a public key: give --key the private key (the same path without .pub)",
                path.display()
            );
        }
        let key = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| {
            anyhow::anyhow!(
                "{} is not an OpenSSH private key ({e}): give an ed25519 key as ssh-keygen writes it \
                 (-----BEGIN OPENSSH PRIVATE KEY-----)",
                path.display()
            )
        })?;
        Ok(SigningKey {
            path: path.to_path_buf(),
            key,
        })
    }

    pub fn public(&self) -> &KeyData {
        self.key.public_key().key_data()
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(self.public())
    }

    /// Signs `body` (asking for the passphrase of an encrypted key on the
    /// terminal) and returns the armored signature.
    pub fn sign(&self, body: &[u8]) -> anyhow::Result<String> {
        self.sign_plan(body, None)
    }

    /// [`SigningKey::sign`] of the body of the plan file `plan`, which the
    /// advice for an encrypted key without a terminal names.
    pub fn sign_plan(&self, body: &[u8], plan: Option<&Path>) -> anyhow::Result<String> {
        if !self.key.is_encrypted() {
            return sign_with(&self.key, body);
        }
        use std::io::IsTerminal as _;
        let plan = plan.map_or_else(|| "FILE".to_owned(), |p| p.display().to_string());
        let advice = format!(
            "sign on a terminal, or sign with OpenSSH and attach the signature: `cargo xtask plan \
             body {plan} | ssh-keygen -Y sign -n {NAMESPACE} -f {} > {plan}.sig`, then `cargo xtask \
             approve {plan} --signature {plan}.sig`",
            self.path.display()
        );
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            bail!(
                "the key {} is encrypted and there is no terminal to ask its passphrase on: {advice}",
                self.path.display()
            );
        }
        let question = format!("Passphrase for {}:", self.path.display());
        let passphrase = match inquire::Password::new(&question)
            .without_confirmation()
            .with_display_mode(inquire::PasswordDisplayMode::Hidden)
            .prompt()
        {
            Ok(p) => p,
            Err(inquire::InquireError::NotTTY) => bail!(
                "the key {} is encrypted and there is no terminal to ask its passphrase on: {advice}",
                self.path.display()
            ),
            Err(
                inquire::InquireError::OperationCanceled
                | inquire::InquireError::OperationInterrupted,
            ) => bail!("cancelled at the passphrase: nothing was signed"),
            Err(e) => return Err(anyhow::Error::new(e).context("cannot read the passphrase")),
        };
        self.sign_unlocked(body, &passphrase)
    }

    /// Signs `body` with the key unlocked by `passphrase`.
    pub fn sign_unlocked(&self, body: &[u8], passphrase: &str) -> anyhow::Result<String> {
        let key = self.key.decrypt(passphrase).map_err(|_| {
            anyhow::anyhow!(
                "wrong passphrase for {}: nothing was signed; run the command again",
                self.path.display()
            )
        })?;
        sign_with(&key, body)
    }
}

fn sign_with(key: &PrivateKey, body: &[u8]) -> anyhow::Result<String> {
    let signature = key
        .sign(NAMESPACE, HashAlg::Sha512, body)
        .map_err(|e| anyhow::anyhow!("cannot sign with this key: {e}"))?;
    let mut armored = signature
        .to_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("cannot encode the signature: {e}"))?;
    if !armored.ends_with('\n') {
        armored.push('\n');
    }
    Ok(armored)
}

/// Signs `body` with the private key at `key` (an encrypted key asks its
/// passphrase on the terminal) and returns the armored SSHSIG signature.
pub fn sign(body: &[u8], key: &Path) -> anyhow::Result<String> {
    SigningKey::open(key)?.sign(body)
}

/// A signature read from its armor, with the approver whose key made it.
pub struct Signature {
    pub sig: SshSig,
    pub fingerprint: String,
}

/// Parses an armored signature.
pub fn parse_signature(armored: &str) -> anyhow::Result<Signature> {
    let sig = SshSig::from_pem(armored.trim().as_bytes())
        .map_err(|e| anyhow::anyhow!("it is not a valid SSH signature ({e})"))?;
    Ok(Signature {
        fingerprint: fingerprint(sig.public_key()),
        sig,
    })
}

/// Checks one armored signature of `body`: its namespace, that its key is
/// an approver's that may sign now, and that it signs exactly `body`.
/// Ok is the approver; Err is why the signature is bad, for a person to
/// read ("signature N" is the caller's to add).
pub fn verify<'a>(
    armored: &str,
    body: &[u8],
    approvers: &'a Approvers,
    now: SystemTime,
) -> Result<&'a Approver, String> {
    let signature = parse_signature(armored)
        .map_err(|e| format!("{e:#}: remove it from the plan file and approve again"))?;
    let sig = &signature.sig;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "it was made for the namespace `{}`, not {NAMESPACE}: it is not an approval of a plan; \
             sign with `cargo xtask approve FILE --key KEY` or `ssh-keygen -Y sign -n {NAMESPACE}`",
            sig.namespace()
        ));
    }
    let Some(approver) = approvers.find(sig.public_key()) else {
        return Err(format!(
            "it is made by the key {}, which is not in the approvers file {}: only listed keys \
             approve; add it there in a reviewed change, or remove the signature",
            signature.fingerprint,
            approvers.path.display()
        ));
    };
    if let Some(why) = approver.unusable(approvers, now) {
        return Err(why);
    }
    match approver.key.verify(NAMESPACE, body, sig) {
        Ok(()) => Ok(approver),
        Err(ssh_key::Error::Crypto) => Err(format!(
            "it does not match the plan's body: {} ({}) signed other bytes, another plan or this one \
             before it was changed. A plan changed after it was signed is not to be applied: plan again \
             and have the new plan approved",
            approver.principal, approver.fingerprint
        )),
        Err(e) => Err(format!(
            "it cannot be verified ({e}); remove it from the plan file and approve again"
        )),
    }
}

/// Who approved a plan: one per person, with the required roles they fill
/// and the fingerprint of their (first) key that signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub principal: String,
    pub roles: Vec<String>,
    pub fingerprint: String,
}

impl Approval {
    /// `lead@example.in as devops-lead (SHA256:...)`, as the audit log
    /// records an approver.
    pub fn describe(&self) -> String {
        match self.roles.as_slice() {
            [] => format!("{} ({})", self.principal, self.fingerprint),
            roles => format!(
                "{} as {} ({})",
                self.principal,
                roles.join(", "),
                self.fingerprint
            ),
        }
    }
}

/// One signature of a plan as `plan show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureReport {
    /// 1 for the first signature in the file.
    pub number: usize,
    /// The approver whose key signed, when the key is in the approvers file.
    pub principal: Option<String>,
    /// The roles that key holds in the approvers file.
    pub roles: Vec<String>,
    /// The signing key's fingerprint, when the signature could be read.
    pub fingerprint: Option<String>,
    pub good: bool,
    /// Why it is bad.
    pub problem: Option<String>,
}

/// A plan's approvals weighed against the roles it needs.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The roles required (the environment's `approvals`).
    pub required: Vec<String>,
    pub signatures: Vec<SignatureReport>,
    /// The good approvals, one per person, with the roles they fill.
    pub approvals: Vec<Approval>,
    /// Required roles nobody fills yet.
    pub still_needed: Vec<String>,
    /// Why an apply refuses the plan's approvals; None when they suffice.
    pub refusal: Option<String>,
}

/// Weighs every signature of `file` and the roles `required`, at the time
/// [`crate::clock::now`] gives. Policy failures are in the result
/// ([`Review::refusal`]), not errors.
pub fn review(
    file: &PlanFile,
    approvers: &Approvers,
    required: &[String],
) -> anyhow::Result<Review> {
    let now = crate::clock::now()?;
    Ok(review_at(file, approvers, required, now))
}

fn review_at(
    file: &PlanFile,
    approvers: &Approvers,
    required: &[String],
    now: SystemTime,
) -> Review {
    let planner = &file.plan.planned_by;
    let mut reports = Vec::new();
    // The good signers, each person once (in the order they first
    // signed), with the roles of all their keys that signed.
    let mut persons: Vec<Signer> = Vec::new();
    let mut problems = Vec::new();
    for (i, armored) in file.signatures.iter().enumerate() {
        let number = i + 1;
        let fingerprint = parse_signature(armored).ok().map(|s| s.fingerprint);
        let listed = parse_signature(armored)
            .ok()
            .and_then(|s| approvers.find(s.sig.public_key()));
        let mut problem = verify(armored, file.body.as_bytes(), approvers, now).err();
        if let Some(a) = listed
            && problem.is_none()
            && same_person(&a.principal, planner)
        {
            problem = Some(format!(
                "it is by {}, who planned this plan: the planner cannot approve their own plan; have \
                 others approve it (or another person plan it again)",
                a.principal
            ));
        }
        if let Some(why) = &problem {
            problems.push(format!("signature {number} is bad: {why}"));
        } else if let Some(a) = listed {
            let at = match persons
                .iter()
                .position(|p| same_person(&p.principal, &a.principal))
            {
                Some(at) => at,
                None => {
                    persons.push(Signer {
                        principal: a.principal.clone(),
                        fingerprint: a.fingerprint.clone(),
                        roles: Vec::new(),
                    });
                    persons.len() - 1
                }
            };
            for role in &a.roles {
                if !persons[at].roles.contains(role) {
                    persons[at].roles.push(role.clone());
                }
            }
        }
        reports.push(SignatureReport {
            number,
            principal: listed.map(|a| a.principal.clone()),
            roles: listed.map(|a| a.roles.clone()).unwrap_or_default(),
            fingerprint,
            good: problem.is_none(),
            problem,
        });
    }
    let holds: Vec<Vec<usize>> = required
        .iter()
        .map(|role| {
            persons
                .iter()
                .enumerate()
                .filter(|(_, p)| p.roles.contains(role))
                .map(|(p, _)| p)
                .collect()
        })
        .collect();
    let assigned = assign(&holds, persons.len());
    let approvals: Vec<Approval> = persons
        .iter()
        .enumerate()
        .map(|(p, signer)| Approval {
            principal: signer.principal.clone(),
            roles: required
                .iter()
                .zip(&assigned)
                .filter(|(_, a)| **a == Some(p))
                .map(|(r, _)| r.clone())
                .collect(),
            fingerprint: signer.fingerprint.clone(),
        })
        .collect();
    let still_needed: Vec<String> = required
        .iter()
        .zip(&assigned)
        .filter(|(_, a)| a.is_none())
        .map(|(r, _)| r.clone())
        .collect();
    let refusal = match (problems.as_slice(), still_needed.is_empty()) {
        ([one], _) => Some(one.clone()),
        ([_, ..], _) => Some(format!(
            "{} signatures are bad; an apply takes no plan with a bad signature:\n- {}",
            problems.len(),
            problems.join("\n- ")
        )),
        ([], true) => None,
        ([], false) => Some(roles_refusal(
            file,
            required,
            &still_needed,
            &holds,
            &persons,
            &assigned,
            approvers,
        )),
    };
    Review {
        required: required.to_vec(),
        signatures: reports,
        approvals,
        still_needed,
        refusal,
    }
}

/// One person whose good signature is on a plan.
struct Signer {
    principal: String,
    /// Of the first of their keys that signed.
    fingerprint: String,
    roles: Vec<String>,
}

/// What is missing when the signers cannot fill every required role:
/// either nobody who signed holds a role, or the ones who hold it already
/// fill another (one person cannot approve as two roles).
fn roles_refusal(
    file: &PlanFile,
    required: &[String],
    still_needed: &[String],
    holds: &[Vec<usize>],
    persons: &[Signer],
    assigned: &[Option<usize>],
    approvers: &Approvers,
) -> String {
    let (path, planner) = (file.path.as_path(), file.plan.planned_by.as_str());
    let mut lines = Vec::new();
    for (r, role) in required.iter().enumerate() {
        if assigned[r].is_some() {
            continue;
        }
        let signed_holders: Vec<&str> = holds[r]
            .iter()
            .map(|p| persons[*p].principal.as_str())
            .collect();
        if signed_holders.is_empty() {
            lines.push(format!(
                "{role} has not approved ({})",
                approvers.holders_text(role, planner)
            ));
        } else {
            let others: Vec<String> = approvers
                .holders(role)
                .into_iter()
                .filter(|p| !signed_holders.contains(&p.as_str()) && !same_person(p, planner))
                .collect();
            lines.push(format!(
                "{role} needs a different person: {} approved, but already fills {} and one person \
                 fills one role ({})",
                signed_holders.join(", "),
                signed_holders
                    .iter()
                    .map(|p| {
                        let pi = persons.iter().position(|s| s.principal == *p);
                        required
                            .iter()
                            .zip(assigned)
                            .filter(|(_, a)| **a == pi)
                            .map(|(r, _)| r.as_str())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                match others.as_slice() {
                    [] => format!(
                        "nobody else in {} holds {role}: add one",
                        approvers.path.display()
                    ),
                    o => format!("also held by {}", o.join(", ")),
                }
            ));
        }
    }
    format!(
        "the plan is not approved yet: it needs {} (each by a different person, not the planner); \
         still needed: {}.\n- {}\nEach of them runs `cargo xtask approve {} --key KEY`",
        required.join(", "),
        still_needed.join(", "),
        lines.join("\n- "),
        path.display()
    )
}

/// A maximum assignment of roles to distinct people: `holds[r]` lists who
/// may take role `r`; the result gives each role its person, or None.
/// Kuhn's augmenting paths: a handful of roles and signers.
fn assign(holds: &[Vec<usize>], people: usize) -> Vec<Option<usize>> {
    fn augment(
        r: usize,
        holds: &[Vec<usize>],
        seen: &mut [bool],
        taken_by: &mut [Option<usize>],
    ) -> bool {
        for &p in &holds[r] {
            if seen[p] {
                continue;
            }
            seen[p] = true;
            if taken_by[p].is_none_or(|other| augment(other, holds, seen, taken_by)) {
                taken_by[p] = Some(r);
                return true;
            }
        }
        false
    }
    let mut taken_by: Vec<Option<usize>> = vec![None; people];
    for r in 0..holds.len() {
        let mut seen = vec![false; people];
        augment(r, holds, &mut seen, &mut taken_by);
    }
    let mut roles = vec![None; holds.len()];
    for (p, r) in taken_by.iter().enumerate() {
        if let Some(r) = r {
            roles[*r] = Some(p);
        }
    }
    roles
}

/// Whether the approvers principal `principal` is the planner: e-mails
/// compare without regard to case.
pub fn same_person(principal: &str, planned_by: &str) -> bool {
    principal.trim().eq_ignore_ascii_case(planned_by.trim())
}

/// Checks the approvals of `file`: every signature good (any bad one
/// refuses the whole plan), none by its planner, and each role of
/// `required` filled by a different person. Ok is who approved, one per
/// person; Err says what is wrong and what to do.
pub fn check(
    file: &PlanFile,
    approvers: &Approvers,
    required: &[String],
) -> anyhow::Result<Vec<Approval>> {
    let review = review(file, approvers, required)?;
    match review.refusal {
        Some(why) => bail!("{why}"),
        None => Ok(review.approvals),
    }
}

/// Whether `plan` has expired at `now`.
pub fn expired(plan: &Plan, now: SystemTime) -> anyhow::Result<bool> {
    let expires = humantime::parse_rfc3339(&plan.expires_at).with_context(|| {
        format!(
            "the plan's expires_at `{}` is not an RFC 3339 time",
            plan.expires_at
        )
    })?;
    Ok(now > expires)
}

/// The roles a plan's environment requires (its `approvals` in
/// environments.yaml); none for a plan without an environment.
pub fn required_roles(plan: &Plan) -> anyhow::Result<Vec<String>> {
    let Some(env) = &plan.environment else {
        return Ok(Vec::new());
    };
    Ok(crate::environment::select(Some(env), None)?
        .environment
        .map(|e| e.approvals)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planfile::{self, Action, FORMAT, Inputs};

    const ALICE: &str = include_str!("../../tests/fixtures/keys/alice");
    const ALICE_PUB: &str = include_str!("../../tests/fixtures/keys/alice.pub");
    const BOB: &str = include_str!("../../tests/fixtures/keys/bob");
    const BOB_PUB: &str = include_str!("../../tests/fixtures/keys/bob.pub");
    const CAROL: &str = include_str!("../../tests/fixtures/keys/carol");
    const CAROL_PUB: &str = include_str!("../../tests/fixtures/keys/carol.pub");
    const CAROL2: &str = include_str!("../../tests/fixtures/keys/carol2");
    const CAROL2_PUB: &str = include_str!("../../tests/fixtures/keys/carol2.pub");
    const OUTSIDER: &str = include_str!("../../tests/fixtures/keys/outsider");
    const ERIN: &str = include_str!("../../tests/fixtures/keys/erin");
    /// A 1024-bit RSA public key: a type approvals refuse.
    const RSA_PUB: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDwU6AhHZ1pt9GB1rB0wvhC2SEycpIZRAcmI2MbVr6xa1k5wo4w3wU8NktgdwSNdK6EVNG2r1vHuntcBB4YNumvj7N+M0b4Nihh9YpSGmaDlpQvlJNKdeEKNwYjf/O9zKtZARISqjQxdH0CsjtoEHlzU6vtKxNF0McLf7dRwfHM1w==";

    /// `KEYTYPE BASE64` of a .pub file, without its comment.
    fn key(public: &str) -> String {
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2026-11-24T06:00:00Z").unwrap()
    }

    fn approvers() -> Approvers {
        let text = format!(
            "# who approves\n             alice@example.in namespaces=\"{NAMESPACE}\" {} roles=devops-lead\n             bob@example.in {} roles=product-owner Bob's laptop\n             carol@example.in {} roles=devops-lead,product-owner\n             carol@example.in {} roles=devops-lead,product-owner\n",
            key(ALICE_PUB),
            key(BOB_PUB),
            key(CAROL_PUB),
            key(CAROL2_PUB)
        );
        Approvers::parse(Path::new("approvers"), &text).unwrap()
    }

    fn plan_file(planned_by: &str, signers: &[&str]) -> PlanFile {
        let plan = Plan {
            format: FORMAT.to_owned(),
            action: Action::Provision,
            all: false,
            environment: Some("prod".to_owned()),
            context: Some("prod-mumbai".to_owned()),
            cluster: "uid-1".to_owned(),
            planned_by: planned_by.to_owned(),
            planned_at: "2026-11-24T05:00:00Z".to_owned(),
            expires_at: "2026-11-25T05:00:00Z".to_owned(),
            command: "provision demo --plan --save-plan demo.plan".to_owned(),
            inputs: Inputs {
                platform: "a".repeat(64),
                templates: "b".repeat(64),
                files: Default::default(),
            },
            tenants: Vec::new(),
        };
        let body = planfile::render(&plan).unwrap();
        let signatures = signers.iter().map(|k| signed(k, body.as_bytes())).collect();
        PlanFile {
            path: PathBuf::from("demo.plan"),
            body,
            plan,
            signatures,
        }
    }

    fn signed(private: &str, body: &[u8]) -> String {
        sign_with(&PrivateKey::from_openssh(private).unwrap(), body).unwrap()
    }

    fn roles(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| r.to_string()).collect()
    }

    fn refusal(file: &PlanFile, required: &[&str]) -> String {
        review_at(file, &approvers(), &roles(required), now())
            .refusal
            .expect("refused")
    }

    fn approved(file: &PlanFile, required: &[&str]) -> Vec<(String, Vec<String>)> {
        let review = review_at(file, &approvers(), &roles(required), now());
        assert_eq!(review.refusal, None);
        review
            .approvals
            .into_iter()
            .map(|a| (a.principal, a.roles))
            .collect()
    }

    #[test]
    fn the_approvers_file_reads_options_quotes_and_comments() {
        let a = approvers();
        let e = a.entries();
        assert_eq!(e.len(), 4, "the comment line is skipped");
        assert_eq!(
            (e[0].principal.as_str(), e[0].line),
            ("alice@example.in", 2)
        );
        assert_eq!(e[0].roles, ["devops-lead"]);
        assert_eq!(e[0].namespaces.as_deref(), Some(NAMESPACE));
        // As `ssh-keygen -lf tests/fixtures/keys/alice.pub` prints it.
        assert_eq!(
            e[0].fingerprint,
            "SHA256:1EwIzwiOmv6CWYF8+4zpaOL2eXNJMq60WBAMjvSY/vc"
        );
        assert_eq!(
            e[1].roles,
            ["product-owner"],
            "other words of the comment are ignored"
        );
        assert_eq!(e[2].roles, ["devops-lead", "product-owner"]);
        assert_eq!(
            a.holders("devops-lead"),
            ["alice@example.in", "carol@example.in"]
        );

        let text = format!(
            "  \"dan@example.in\" valid-after=\"20260101Z\",namespaces=\"git,{NAMESPACE}\",valid-before=\"202701011200UTC\"\t{} roles=team-lead\n",
            key(ALICE_PUB)
        );
        let one = Approvers::parse(Path::new("f"), &text).unwrap();
        let dan = &one.entries()[0];
        assert_eq!(dan.principal, "dan@example.in");
        assert_eq!(
            dan.namespaces.as_deref(),
            Some("git,xtask-plan@mla-platform.in")
        );
        assert_eq!(
            dan.valid_after.as_ref().unwrap().1,
            humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            dan.valid_before.as_ref().unwrap().1,
            humantime::parse_rfc3339("2027-01-01T12:00:00Z").unwrap()
        );
        assert_eq!(dan.unusable(&one, now()), None);
    }

    #[test]
    fn bad_lines_are_named_by_file_and_line() {
        let k = key(ALICE_PUB);
        let cases = [
            (
                format!("a@x cert-authority {k} roles=r"),
                "cert-authority is not supported",
            ),
            (
                format!("a@x restrict {k} roles=r"),
                "unknown option `restrict`",
            ),
            (format!("a@x roles=\"r\" {k}"), "unknown option `roles`"),
            (
                format!("a@x namespaces=git {k} roles=r"),
                "must be in double quotes",
            ),
            (format!("a@x namespaces=\"git {k} roles=r"), "no closing"),
            (
                format!("a@x namespaces=\"a\",namespaces=\"b\" {k} roles=r"),
                "given twice",
            ),
            (
                format!("a@x valid-after=\"20260101\" {k} roles=r"),
                "has no Z",
            ),
            (
                format!("a@x valid-after=\"2026011Z\" {k} roles=r"),
                "is not YYYYMMDD",
            ),
            (
                format!("a@x valid-after=\"20270101Z\",valid-before=\"20260101Z\" {k} roles=r"),
                "not after valid-after",
            ),
            (format!("a@x {k}"), "no roles"),
            (format!("a@x {k} my laptop"), "no roles"),
            (format!("a@x {k} roles=Lead"), "not a role name"),
            (format!("a@x {k} roles=a roles=b"), "given twice"),
            (format!("a@x,b@x {k} roles=r"), "2 principals"),
            (format!("*@x {k} roles=r"), "is a pattern"),
            ("a@x".to_owned(), "no key after the principal"),
            (
                "a@x namespaces=\"git\"".to_owned(),
                "no key after the options",
            ),
            (
                "a@x ssh-ed25519 AAAAnotakey roles=r".to_owned(),
                "is not valid",
            ),
            (
                format!("a@x {RSA_PUB} roles=r"),
                "`ssh-rsa` keys are not supported",
            ),
            (
                "a@x ssh-ed25519-cert-v01@openssh.com AAAA roles=r".to_owned(),
                "is a certificate",
            ),
            (
                format!("a@x {k} roles=r\nb@x {k} roles=r"),
                "already listed on line 2",
            ),
        ];
        for (text, expected) in cases {
            let text = format!("# header\n{text}\n");
            let e = format!(
                "{:#}",
                Approvers::parse(Path::new("approvers"), &text).unwrap_err()
            );
            let line = if expected.contains("line 2") { 3 } else { 2 };
            assert!(
                e.starts_with(&format!("approvers:{line}: ")) && e.contains(expected),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn a_missing_approvers_file_says_how_to_add_one() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = format!(
            "{:#}",
            Approvers::load(Some(&missing), dir.path()).unwrap_err()
        );
        assert!(e.contains(&missing.display().to_string()), "{e}");
        assert!(e.contains("(--approvers) does not exist"), "{e}");
        assert!(e.contains("roles=ROLE"), "{e}");
    }

    #[test]
    fn openssh_pattern_lists() {
        assert!(matches_pattern_list(NAMESPACE, "git,xtask-plan@*"));
        assert!(matches_pattern_list(NAMESPACE, "*"));
        assert!(!matches_pattern_list(NAMESPACE, "git,file"));
        assert!(!matches_pattern_list(NAMESPACE, "*,!xtask-*"));
        assert!(matches_pattern_list("file", "fil?"));
        assert!(!matches_pattern_list("file", "fi?"));
    }

    #[test]
    fn two_roles_need_two_people() {
        let prod = ["devops-lead", "product-owner"];
        assert_eq!(
            approved(&plan_file("ops@example.in", &[ALICE, BOB]), &prod),
            [
                ("alice@example.in".to_owned(), roles(&["devops-lead"])),
                ("bob@example.in".to_owned(), roles(&["product-owner"]))
            ]
        );
        // Carol holds both roles: alone she fills one.
        let e = refusal(&plan_file("ops@example.in", &[CAROL]), &prod);
        assert!(e.contains("still needed: product-owner"), "{e}");
        assert!(
            e.contains("product-owner needs a different person: carol@example.in approved, but already fills devops-lead"),
            "{e}"
        );
        assert!(e.contains("also held by bob@example.in"), "{e}");
        // Her second key is still her: one person, one role.
        let both = plan_file("ops@example.in", &[CAROL, CAROL2]);
        let e = refusal(&both, &prod);
        assert!(
            e.contains("needs a different person: carol@example.in"),
            "{e}"
        );
        let review = review_at(&both, &approvers(), &roles(&prod), now());
        assert_eq!(review.approvals.len(), 1, "{:?}", review.approvals);
        assert!(review.signatures.iter().all(|s| s.good));
        // Whoever signs first, Carol takes the role Alice cannot.
        assert_eq!(
            approved(&plan_file("ops@example.in", &[CAROL, ALICE]), &prod),
            [
                ("carol@example.in".to_owned(), roles(&["product-owner"])),
                ("alice@example.in".to_owned(), roles(&["devops-lead"]))
            ]
        );
    }

    #[test]
    fn a_missing_role_names_who_holds_it() {
        let e = refusal(
            &plan_file("ops@example.in", &[ALICE]),
            &["devops-lead", "product-owner"],
        );
        assert!(e.contains("still needed: product-owner"), "{e}");
        assert!(
            e.contains("product-owner has not approved (held in approvers by bob@example.in, carol@example.in)"),
            "{e}"
        );
        let e = refusal(&plan_file("ops@example.in", &[ALICE]), &["team-lead"]);
        assert!(
            e.contains("nobody in approvers holds team-lead: add an approver with roles=team-lead"),
            "{e}"
        );
        // No roles required: good signatures (or none) suffice.
        assert!(approved(&plan_file("ops@example.in", &[]), &[]).is_empty());
    }

    #[test]
    fn the_planner_cannot_approve() {
        let file = plan_file("Alice@Example.in", &[ALICE, BOB]);
        let e = refusal(&file, &["devops-lead", "product-owner"]);
        assert!(
            e.starts_with("signature 1 is bad: it is by alice@example.in, who planned this plan: the planner cannot approve their own plan"),
            "{e}"
        );
        // Even with the roles filled by others, the plan is refused.
        let file = plan_file("alice@example.in", &[ALICE, CAROL, BOB]);
        assert!(
            refusal(&file, &["devops-lead", "product-owner"]).contains("planner cannot approve")
        );
    }

    #[test]
    fn a_changed_body_voids_its_signatures() {
        let mut file = plan_file("ops@example.in", &[ALICE, BOB]);
        // One byte: a tenant's cluster UID, say.
        file.body = file.body.replacen("uid-1", "uid-2", 1);
        let e = refusal(&file, &["devops-lead", "product-owner"]);
        assert!(e.starts_with("2 signatures are bad"), "{e}");
        assert!(
            e.contains("signature 1 is bad: it does not match the plan's body: alice@example.in"),
            "{e}"
        );
        let mut one = plan_file("ops@example.in", &[ALICE]);
        one.body.push(' ');
        assert!(refusal(&one, &[]).contains("signed other bytes"));
    }

    #[test]
    fn foreign_signatures_are_refused_each_with_its_reason() {
        let mut file = plan_file("ops@example.in", &[ALICE, OUTSIDER]);
        let e = refusal(&file, &["devops-lead"]);
        assert!(
            e.starts_with("signature 2 is bad: it is made by the key SHA256:"),
            "{e}"
        );
        assert!(
            e.contains("which is not in the approvers file approvers"),
            "{e}"
        );

        let git = PrivateKey::from_openssh(BOB)
            .unwrap()
            .sign("git", HashAlg::Sha512, file.body.as_bytes())
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap();
        file.signatures = vec![git];
        let e = refusal(&file, &[]);
        assert!(
            e.contains("made for the namespace `git`, not xtask-plan@mla-platform.in"),
            "{e}"
        );

        file.signatures =
            vec!["-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n".to_owned()];
        let e = refusal(&file, &[]);
        assert!(
            e.contains("signature 1 is bad: it is not a valid SSH signature"),
            "{e}"
        );
    }

    #[test]
    fn keys_outside_our_namespace_or_their_validity_cannot_approve() {
        let file = plan_file("ops@example.in", &[ALICE]);
        let with = |options: &str| {
            let text = format!(
                "alice@example.in {options} {} roles=devops-lead\n",
                key(ALICE_PUB)
            );
            let a = Approvers::parse(Path::new("approvers"), &text).unwrap();
            review_at(&file, &a, &[], now()).refusal.unwrap_or_default()
        };
        assert!(with("namespaces=\"git\"").contains(
            "limited to namespaces=\"git\", which leaves out xtask-plan@mla-platform.in"
        ));
        assert!(with("namespaces=\"*,!xtask-plan@*\"").contains("leaves out"));
        assert!(
            with("valid-after=\"20270101Z\"")
                .contains("is not valid yet: valid-after=\"20270101Z\"")
        );
        assert!(
            with("valid-before=\"20260101Z\"").contains("has expired: valid-before=\"20260101Z\"")
        );
        assert_eq!(
            with("namespaces=\"git,xtask-plan@mla-platform.in\",valid-before=\"20270101Z\""),
            ""
        );
    }

    #[test]
    fn an_encrypted_key_signs_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("erin");
        std::fs::write(&path, ERIN).unwrap();
        let key = SigningKey::open(&path).unwrap();
        let e = format!("{:#}", key.sign_unlocked(b"body", "wrong").unwrap_err());
        assert!(e.starts_with("wrong passphrase for"), "{e}");
        let armored = key.sign_unlocked(b"body", "test-passphrase").unwrap();
        let sig = parse_signature(&armored).unwrap();
        assert_eq!(sig.fingerprint, key.fingerprint());
        PublicKey::from(sig.sig.public_key().clone())
            .verify(NAMESPACE, b"body", &sig.sig)
            .unwrap();
        assert!(
            !armored.contains("PRIVATE"),
            "no key material in a signature"
        );
        // Without a terminal (as under cargo test), the advice.
        let e = format!("{:#}", key.sign(b"body").unwrap_err());
        assert!(e.contains("no terminal to ask its passphrase on"), "{e}");
        assert!(
            e.contains("ssh-keygen -Y sign -n xtask-plan@mla-platform.in"),
            "{e}"
        );
        assert!(e.contains("--signature"), "{e}");

        let public = dir.path().join("alice.pub");
        std::fs::write(&public, ALICE_PUB).unwrap();
        let e = format!("{:#}", SigningKey::open(&public).err().unwrap());
        assert!(e.contains("is a public key"), "{e}");
    }

    #[test]
    fn expiry() {
        let file = plan_file("ops@example.in", &[]);
        assert!(!expired(&file.plan, now()).unwrap());
        let later = humantime::parse_rfc3339("2026-11-25T05:00:01Z").unwrap();
        assert!(expired(&file.plan, later).unwrap());
    }
}
