//! Hostile and foreign archives: every one is refused by verify-backup and
//! by restore before anything on the cluster changes (the bot is never
//! stopped), an archive of another cluster needs --from-cluster, offboard
//! picks only the tenant's own archives, and tenant data on local disk is
//! owner-only at every moment.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Cluster, create_bot_database, exits, seed_tenants, stderr, stdout};
use serde_json::{Value, json};

/// A cluster with tenants `names`, the first with a database and a session.
fn cluster_with(names: &[&str]) -> Cluster {
    let cluster = Cluster::new();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    seed_tenants(&cluster, &names);
    for name in &names {
        create_bot_database(
            &cluster.volume(name, "bot-data").join("bot.sqlite3"),
            &["2026-11-23T00:00:00Z"],
            &[],
            3,
        );
        let auth = cluster.volume(name, "bot-whatsapp-auth");
        std::fs::write(auth.join("creds.json"), format!("{{\"me\":\"{name}\"}}")).unwrap();
    }
    cluster
}

fn backup(cluster: &Cluster, tenant: &str, dir: &Path) -> PathBuf {
    let before: Vec<PathBuf> = list(dir);
    exits(cluster.admin(&["backup", tenant, "--out"]).arg(dir), 0);
    let new: Vec<PathBuf> = list(dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new.into_iter().next().unwrap()
}

fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .collect()
}

/// An archive's entries, in order: (name as stored, bytes).
fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap());
    let mut tar = tar::Archive::new(gz);
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

/// A tar header whose name is stored byte for byte (the tar crate's own
/// path setters normalise `a/./b` and `a//b` away, as a hostile writer
/// would not).
fn header(name: &str, size: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let bytes = name.as_bytes();
    h.as_gnu_mut().unwrap().name[..bytes.len()].copy_from_slice(bytes);
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(kind);
    h.set_cksum();
    h
}

/// Writes `entries` as regular files, names as given.
fn pack(path: &Path, entries: &[(String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(gz);
    for (name, data) in entries {
        let h = header(name, data.len() as u64, tar::EntryType::Regular);
        builder.append(&h, data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

fn manifest_of(entries: &[(String, Vec<u8>)]) -> Value {
    serde_json::from_slice(&entries[0].1).unwrap()
}

fn with_manifest(entries: &[(String, Vec<u8>)], manifest: &Value) -> Vec<(String, Vec<u8>)> {
    let mut out = entries.to_vec();
    out[0].1 = serde_json::to_vec_pretty(manifest).unwrap();
    out
}

/// `entries` with the file `from` renamed `to`, in the manifest as well.
fn renamed(entries: &[(String, Vec<u8>)], from: &str, to: &str) -> Vec<(String, Vec<u8>)> {
    let mut m = manifest_of(entries);
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == from {
            f["path"] = json!(to);
        }
    }
    with_manifest(entries, &m)
        .into_iter()
        .map(|(n, d)| {
            if n == from {
                (to.to_owned(), d)
            } else {
                (n, d)
            }
        })
        .collect()
}

/// Everything restore could change, to compare before and after.
struct Snapshot {
    objects: Vec<Value>,
    files: std::collections::BTreeMap<String, Vec<u8>>,
    calls: usize,
}

fn snapshot(cluster: &Cluster, tenant: &str) -> Snapshot {
    Snapshot {
        objects: cluster.objects_but_locks(),
        files: cluster.volume_files(tenant),
        calls: cluster.calls().len(),
    }
}

#[track_caller]
fn assert_unchanged(cluster: &Cluster, tenant: &str, before: &Snapshot, label: &str) {
    assert_eq!(
        cluster.objects_but_locks(),
        before.objects,
        "{label}: objects changed"
    );
    assert_eq!(
        cluster.volume_files(tenant),
        before.files,
        "{label}: the volumes changed"
    );
    let later: Vec<Vec<String>> = cluster.calls().into_iter().skip(before.calls).collect();
    // Reads, and the tenant's lock taken and given back (its namespace made
    // on first use: what the objects compared above leave out).
    let locking = |c: &Vec<String>| c[0] == "create" || c.iter().any(|w| w == "xtask-locks");
    assert!(
        later.iter().all(|c| c[0] == "get" || locking(c)),
        "{label}: a refused restore did more than read (the bot was stopped?): {later:?}"
    );
}

/// Each hostile archive: verify-backup refuses it with `expected` in its
/// message, and so does restore, with nothing changed on the cluster.
fn refused_everywhere(cluster: &Cluster, archive: &Path, expected: &str, label: &str) {
    let verified = exits(cluster.xtask(&["admin", "verify-backup"]).arg(archive), 1);
    assert!(
        stderr(&verified).contains(expected),
        "{label}: verify-backup said\n{}",
        stderr(&verified)
    );
    let before = snapshot(cluster, "alpha");
    let restored = exits(
        cluster
            .admin(&["restore", "alpha"])
            .arg(archive)
            .arg("--yes"),
        1,
    );
    assert!(
        stderr(&restored).contains(expected),
        "{label}: restore said\n{}",
        stderr(&restored)
    );
    assert!(
        stderr(&restored).contains("Nothing was changed"),
        "{label}: {}",
        stderr(&restored)
    );
    assert_unchanged(cluster, "alpha", &before, label);
}

#[test]
fn hostile_archives_are_refused_by_verify_and_restore_with_nothing_changed() {
    let cluster = cluster_with(&["alpha"]);
    std::fs::create_dir_all(cluster.volume("alpha", "bot-whatsapp-auth").join("keys")).unwrap();
    std::fs::write(
        cluster
            .volume("alpha", "bot-whatsapp-auth")
            .join("keys/pre-key-1.json"),
        b"pre-key",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let good = backup(&cluster, "alpha", out.path());
    let good_entries = entries(&good);
    assert_eq!(good_entries[0].0, "manifest.json");
    let bad = tempfile::tempdir().unwrap();
    let write = |name: &str, entries: &[(String, Vec<u8>)]| {
        let p = bad.path().join(name);
        pack(&p, entries);
        p
    };

    // Item 5: names restore cannot reproduce, listed so in the manifest.
    let dotted = write(
        "dotted.tar.gz",
        &renamed(
            &good_entries,
            "whatsapp-auth/creds.json",
            "whatsapp-auth/./sub/./x",
        ),
    );
    refused_everywhere(
        &cluster,
        &dotted,
        "the path `whatsapp-auth/./sub/./x` is not a canonical path",
        "a/./b",
    );
    let doubled = write(
        "doubled.tar.gz",
        &renamed(
            &good_entries,
            "whatsapp-auth/creds.json",
            "whatsapp-auth//y",
        ),
    );
    refused_everywhere(
        &cluster,
        &doubled,
        "the path `whatsapp-auth//y` is not a canonical path",
        "a//b",
    );
    // Paths out of the tree, in the manifest and the tar alike.
    for (name, path) in [("parent", "whatsapp-auth/../../x"), ("absolute", "/etc/x")] {
        let p = write(
            &format!("{name}.tar.gz"),
            &renamed(&good_entries, "whatsapp-auth/creds.json", path),
        );
        refused_everywhere(
            &cluster,
            &p,
            &format!("the path `{path}` is not a canonical path"),
            name,
        );
    }
    // A `./` the manifest does not have: the tar's name must be exact.
    let mut dot_slash = good_entries.clone();
    dot_slash[1].0 = format!("./{}", dot_slash[1].0);
    let p = write("dot-slash.tar.gz", &dot_slash);
    refused_everywhere(&cluster, &p, "which its manifest does not list", "./");
    // A file where another needs a directory: no volume can hold both.
    let mut clash = good_entries.clone();
    let mut m = manifest_of(&clash);
    m["files"].as_array_mut().unwrap().push(json!({
        "path": "whatsapp-auth/keys/pre-key-1.json/z",
        "size": 1,
        "sha256": xtask::digest::sha256_hex(b"z"),
    }));
    clash = with_manifest(&clash, &m);
    clash.push(("whatsapp-auth/keys/pre-key-1.json/z".into(), b"z".to_vec()));
    let p = write("clash.tar.gz", &clash);
    refused_everywhere(&cluster, &p, "needs it to be a directory", "file/dir");

    // Item 10: a second manifest.json (the last used to win), and a
    // manifest that does not lead.
    let mut two = good_entries.clone();
    let mut forged = manifest_of(&two);
    forged["database"]["user_version"] = json!(99);
    two.push(("manifest.json".into(), serde_json::to_vec(&forged).unwrap()));
    let p = write("two-manifests.tar.gz", &two);
    refused_everywhere(&cluster, &p, "holds manifest.json twice", "two manifests");
    let mut late = good_entries.clone();
    late.rotate_left(1);
    let p = write("manifest-last.tar.gz", &late);
    refused_everywhere(&cluster, &p, "not the file manifest.json", "manifest last");
    // A link, even one the manifest does not name.
    let p = bad.path().join("link.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).unwrap(),
            flate2::Compression::default(),
        );
        let mut b = tar::Builder::new(gz);
        for (name, data) in &good_entries {
            b.append(
                &header(name, data.len() as u64, tar::EntryType::Regular),
                data.as_slice(),
            )
            .unwrap();
        }
        let mut h = header("whatsapp-auth/evil", 0, tar::EntryType::Symlink);
        h.set_link_name("/etc/passwd").unwrap();
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    refused_everywhere(
        &cluster,
        &p,
        "`whatsapp-auth/evil`, which is not a regular file",
        "link",
    );
    // An entry whose size differs from the manifest's is refused unread.
    let mut grown = good_entries.clone();
    let i = grown
        .iter()
        .position(|(n, _)| n == "whatsapp-auth/creds.json")
        .unwrap();
    grown[i].1.extend_from_slice(b"more");
    let p = write("grown.tar.gz", &grown);
    refused_everywhere(&cluster, &p, "its manifest says", "size");

    // The archive itself still restores: nothing above was a false alarm.
    exits(
        cluster.admin(&["restore", "alpha"]).arg(&good).arg("--yes"),
        0,
    );
}

#[test]
fn decompression_bombs_are_refused_without_expanding_them() {
    let cluster = cluster_with(&["alpha"]);
    let out = tempfile::tempdir().unwrap();
    let good = backup(&cluster, "alpha", out.path());
    let good_entries = entries(&good);
    let bad = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // Item 9: 2 GiB of zeros, listed in the manifest, in a ~2 MB gzip.
    const ZEROS: u64 = 2 << 30;
    let bomb = bad.path().join("zeros.tar.gz");
    {
        let mut m = manifest_of(&good_entries);
        m["files"].as_array_mut().unwrap().push(json!({
            "path": "whatsapp-auth/zeros",
            "size": ZEROS,
            "sha256": "0".repeat(64),
        }));
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&bomb).unwrap(),
            flate2::Compression::best(),
        );
        let manifest = serde_json::to_vec(&m).unwrap();
        let mut b = tar::Builder::new(&mut gz);
        b.append(
            &header(
                "manifest.json",
                manifest.len() as u64,
                tar::EntryType::Regular,
            ),
            manifest.as_slice(),
        )
        .unwrap();
        b.append(
            &header("whatsapp-auth/zeros", ZEROS, tar::EntryType::Regular),
            std::io::repeat(0).take(ZEROS),
        )
        .unwrap();
        b.finish().unwrap();
        drop(b);
        gz.finish().unwrap();
    }
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 3 << 20, "the bomb is {size} bytes");
    for mut cmd in [
        cluster.xtask(&["admin", "verify-backup"]),
        cluster.admin(&["restore", "alpha", "--yes"]),
    ] {
        let before = snapshot(&cluster, "alpha");
        cmd.arg(&bomb).env("TMPDIR", tmp.path());
        let refused = exits(cmd, 1);
        let err = stderr(&refused);
        assert!(
            err.contains("expands to more than 100 times its compressed size"),
            "{err}"
        );
        // Stopped near the 64 MiB floor, not after 2 GiB.
        let expanded: u64 = err
            .split("times its compressed size (")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no byte count in {err}"));
        assert!(expanded < 80 << 20, "expanded {expanded} bytes first");
        assert!(
            list(tmp.path()).is_empty(),
            "left behind: {:?}",
            list(tmp.path())
        );
        assert_unchanged(&cluster, "alpha", &before, "bomb");
    }

    // A manifest.json of 1.5 GiB of spaces: refused from its header, unread.
    const SPACES: u64 = 3 << 29;
    let huge = bad.path().join("huge-manifest.tar.gz");
    {
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&huge).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(&mut gz);
        b.append(
            &header("manifest.json", SPACES, tar::EntryType::Regular),
            std::io::repeat(b' ').take(SPACES),
        )
        .unwrap();
        b.finish().unwrap();
        drop(b);
        gz.finish().unwrap();
    }
    let before = snapshot(&cluster, "alpha");
    for mut cmd in [
        cluster.xtask(&["admin", "verify-backup"]),
        cluster.admin(&["restore", "alpha", "--yes"]),
    ] {
        let started = std::time::Instant::now();
        let refused = exits(cmd.arg(&huge).env("TMPDIR", tmp.path()), 1);
        assert!(
            stderr(&refused).contains(&format!(
                "manifest.json is {SPACES} bytes, more than the 16777216 a manifest may be"
            )),
            "{}",
            stderr(&refused)
        );
        // Reading 1.5 GiB would take far longer than refusing a header.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
    assert_unchanged(&cluster, "alpha", &before, "huge manifest");
}

/// Manifest fields are words `admin backup` wrote: one holding an escape
/// sequence, a direction override or a line break (which would clear the
/// screen or forge a line), a namespace that is not the tenant's, a time
/// or a cluster UID of the wrong form, is refused by verify-backup and by
/// restore before anything is changed; the refusal itself prints it escaped.
#[test]
fn hostile_manifest_fields_are_refused_and_shown_escaped() {
    let cluster = cluster_with(&["alpha"]);
    let out = tempfile::tempdir().unwrap();
    let good = backup(&cluster, "alpha", out.path());
    let e = entries(&good);
    let cases: [(&str, &str, Value, &str); 7] = [
        (
            "tool",
            "/tool",
            json!("xtask\u{1b}[2J\n  database: forged (integrity ok)"),
            "has control or invisible characters in `tool` (xtask\\u{1b}[2J\\u{a}  database: forged",
        ),
        (
            "override",
            "/tool",
            json!("xtask\u{202e}1.0"),
            "has control or invisible characters in `tool` (xtask\\u{202e}1.0)",
        ),
        (
            "context",
            "/provenance/context",
            json!("kind\u{1b}]0;owned\u{7}"),
            "has control or invisible characters in `provenance.context`",
        ),
        (
            "environment",
            "/provenance/environment",
            json!("prod\r\nOK"),
            "has control or invisible characters in `provenance.environment`",
        ),
        (
            "namespace",
            "/namespace",
            json!("tenant-beta"),
            "says tenant alpha is in namespace `tenant-beta`, not tenant-alpha",
        ),
        (
            "uid",
            "/provenance/cluster_uid",
            json!("UID-not-hex"),
            "records cluster `UID-not-hex`, not a Kubernetes UID",
        ),
        (
            "created",
            "/created",
            json!("yesterday"),
            "says it was created `yesterday`, not an RFC 3339 time",
        ),
    ];
    let before = snapshot(&cluster, "alpha");
    for (name, pointer, value, expected) in cases {
        let mut m = manifest_of(&e);
        *m.pointer_mut(pointer).unwrap() = value;
        let hostile = out.path().join(format!("{name}.tar.gz"));
        pack(&hostile, &with_manifest(&e, &m));
        for mut cmd in [
            cluster.xtask(&["admin", "verify-backup"]),
            cluster.admin(&["restore", "alpha", "--yes"]),
        ] {
            let refused = exits(cmd.arg(&hostile), 1);
            let all = format!("{}{}", stdout(&refused), stderr(&refused));
            assert!(all.contains(expected), "{name}: {all}");
            assert!(
                !all.contains('\u{1b}') && !all.contains('\u{202e}') && !all.contains('\u{7}'),
                "{name}: raw control characters printed: {all}"
            );
        }
    }
    assert_unchanged(&cluster, "alpha", &before, "hostile manifest fields");
}

fn cluster_uid(cluster: &Cluster) -> String {
    let ns: Value = serde_json::from_slice(
        &cluster
            .kubectl(&["get", "namespace", "kube-system", "-o", "json"])
            .stdout,
    )
    .unwrap();
    ns["metadata"]["uid"].as_str().unwrap().to_owned()
}

#[test]
fn another_clusters_archive_needs_from_cluster() {
    let dev = cluster_with(&["alpha"]);
    let prod = cluster_with(&["alpha"]);
    let (dev_uid, prod_uid) = (cluster_uid(&dev), cluster_uid(&prod));
    assert_ne!(dev_uid, prod_uid);
    assert_eq!(cluster_uid(&dev), dev_uid, "a cluster's identity is stable");
    let backups = tempfile::tempdir().unwrap();
    let archive = backup(&dev, "alpha", backups.path());
    let recorded = manifest_of(&entries(&archive))["provenance"].clone();
    assert_eq!(recorded["cluster_uid"], dev_uid.as_str());
    assert_eq!(
        manifest_of(&entries(&archive))["format"],
        "mla-tenant-backup/2"
    );

    // Restore on prod refuses, naming both clusters and the way out.
    let before = snapshot(&prod, "alpha");
    let refused = exits(
        prod.admin(&["restore", "alpha"]).arg(&archive).arg("--yes"),
        1,
    );
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "was taken on another cluster (cluster {dev_uid}), not this one ({prod_uid}). To use it here on \
             purpose, add --from-cluster {dev_uid}"
        )),
        "{err}"
    );
    assert_unchanged(&prod, "alpha", &before, "cross-cluster restore");
    // A wrong --from-cluster is refused too.
    let wrong = exits(
        prod.admin(&["restore", "alpha"]).arg(&archive).args([
            "--yes",
            "--from-cluster",
            &prod_uid,
        ]),
        1,
    );
    assert!(stderr(&wrong).contains(&format!("was taken on cluster {dev_uid}")));
    assert_unchanged(&prod, "alpha", &before, "wrong --from-cluster");

    // Item 4: dev's backup in the shared directory does not let prod's
    // offboard delete prod's data.
    let refused = exits(
        prod.admin(&["offboard", "alpha", "--yes", "--delete-data", "--backups"])
            .arg(backups.path()),
        1,
    );
    assert!(
        stderr(&refused).contains("was taken on another cluster"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        prod.objects_but_locks(),
        before.objects,
        "a refused offboard changed prod"
    );

    // On purpose, both go ahead.
    let restored = exits(
        prod.admin(&["restore", "alpha"])
            .arg(&archive)
            .args(["--yes", "--from-cluster", &dev_uid]),
        0,
    );
    assert!(stdout(&restored).contains("Restored tenant alpha"));
    exits(
        prod.admin(&[
            "offboard",
            "alpha",
            "--yes",
            "--from-cluster",
            &dev_uid,
            "--backups",
        ])
        .arg(backups.path()),
        0,
    );
}

#[test]
fn an_archive_without_provenance_needs_from_cluster_unrecorded() {
    let cluster = cluster_with(&["alpha"]);
    let out = tempfile::tempdir().unwrap();
    let good = backup(&cluster, "alpha", out.path());
    let mut e = entries(&good);
    let mut m = manifest_of(&e);
    m["format"] = json!("mla-tenant-backup/1");
    m.as_object_mut().unwrap().remove("provenance");
    e = with_manifest(&e, &m);
    let old = out.path().join("old.tar.gz");
    pack(&old, &e);
    let ok = exits(cluster.xtask(&["admin", "verify-backup"]).arg(&old), 0);
    assert!(
        stdout(&ok).contains("cluster:  not recorded"),
        "{}",
        stdout(&ok)
    );
    let before = snapshot(&cluster, "alpha");
    let refused = exits(
        cluster.admin(&["restore", "alpha"]).arg(&old).arg("--yes"),
        1,
    );
    assert!(
        stderr(&refused).contains("records no cluster (it was written before archives did)")
            && stderr(&refused).contains("add --from-cluster unrecorded"),
        "{}",
        stderr(&refused)
    );
    assert_unchanged(&cluster, "alpha", &before, "old archive");
    exits(
        cluster.admin(&["restore", "alpha"]).arg(&old).args([
            "--yes",
            "--from-cluster",
            "unrecorded",
        ]),
        0,
    );
}

#[test]
fn offboard_looks_only_at_the_tenants_own_archives() {
    // Item 8: `gamma-east-…` starts with `gamma-`.
    let cluster = cluster_with(&["gamma", "gamma-east"]);
    let backups = tempfile::tempdir().unwrap();
    let objects = cluster.objects();
    backup(&cluster, "gamma-east", backups.path());
    let refused = exits(
        cluster
            .admin(&["offboard", "gamma", "--yes", "--backups"])
            .arg(backups.path()),
        1,
    );
    assert!(
        stderr(&refused).contains("there is no backup of tenant gamma in"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(cluster.objects_but_locks(), objects);
    // gamma's own, then a newer gamma-east one: gamma's is the one used.
    let own = backup(&cluster, "gamma", backups.path());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    backup(&cluster, "gamma-east", backups.path());
    let done = exits(
        cluster
            .admin(&["offboard", "gamma", "--yes", "--backups"])
            .arg(backups.path()),
        0,
    );
    assert!(
        stdout(&done).contains(&format!("last backup: {}", own.display())),
        "{}",
        stdout(&done)
    );
}

/// Every path under `dir` with its mode.
fn modes(dir: &Path, out: &mut Vec<(PathBuf, u32, bool)>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        out.push((p.clone(), m.permissions().mode() & 0o777, m.is_dir()));
        if m.is_dir() {
            modes(&p, out);
        }
    }
}

/// Runs `cmd` to its end, listing `dirs` every few milliseconds meanwhile:
/// every path seen, with its mode.
fn watch(mut cmd: std::process::Command, dirs: &[&Path]) -> Vec<(PathBuf, u32, bool)> {
    let mut child = cmd.spawn().unwrap();
    let mut seen = Vec::new();
    loop {
        for d in dirs {
            modes(d, &mut seen);
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            return seen;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[track_caller]
fn assert_private(seen: &[(PathBuf, u32, bool)], root: &Path) {
    for (p, mode, dir) in seen {
        // The directories tests made themselves are not the tool's.
        if p == root {
            continue;
        }
        let want = if *dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", p.display());
    }
}

#[test]
fn tenant_data_on_local_disk_is_owner_only_at_every_moment() {
    // Item 3. Every kubectl exec takes a while, so the work directories are
    // seen while they hold the database and the session.
    let cluster = cluster_with(&["alpha"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    cluster.fault(fake_kubectl::Fault::slow("exec", 300));

    let mut cmd = cluster.admin_process(&["backup", "alpha", "--out"]);
    cmd.arg(out.path()).env("TMPDIR", tmp.path());
    let seen = watch(cmd, &[out.path(), tmp.path()]);
    let work: Vec<_> = seen
        .iter()
        .filter(|(p, ..)| p.to_string_lossy().contains(".alpha-backup-"))
        .collect();
    assert!(
        work.iter().any(|(p, ..)| p.ends_with("database.sqlite3")),
        "the backup's work directory was never seen with the database: {seen:?}"
    );
    assert_private(&seen, out.path());
    let archive = list(out.path()).into_iter().next().unwrap();

    let mut cmd = cluster.admin_process(&["restore", "alpha", "--yes"]);
    cmd.arg(&archive).env("TMPDIR", tmp.path());
    let seen = watch(cmd, &[tmp.path()]);
    for wanted in ["xtask-verify-", "xtask-restore-"] {
        assert!(
            seen.iter()
                .any(|(p, _, dir)| *dir && p.to_string_lossy().contains(wanted)),
            "no {wanted}* directory seen: {seen:?}"
        );
    }
    for file in [
        "creds.json",
        "bot.sqlite3",
        ".restore-auth.tar",
        "auth-back.tar",
    ] {
        assert!(
            seen.iter().any(|(p, ..)| p.ends_with(file)),
            "{file} was never seen: {seen:?}"
        );
    }
    assert_private(&seen, tmp.path());
    assert!(
        list(tmp.path()).is_empty(),
        "left behind: {:?}",
        list(tmp.path())
    );
}

#[test]
fn every_refusal_leaves_the_verify_directory_gone() {
    // A refused archive leaves no plaintext copy of what it held.
    let cluster = cluster_with(&["alpha"]);
    let out = tempfile::tempdir().unwrap();
    let good = backup(&cluster, "alpha", out.path());
    let mut e = entries(&good);
    let last = e.len() - 1;
    e[last].1[0] ^= 1;
    let p = out.path().join("flipped.tar.gz");
    pack(&p, &e);
    let tmp = tempfile::tempdir().unwrap();
    let refused = exits(
        cluster
            .xtask(&["admin", "verify-backup"])
            .arg(&p)
            .env("TMPDIR", tmp.path()),
        1,
    );
    assert!(
        stderr(&refused).contains("does not match its checksum"),
        "{}",
        stderr(&refused)
    );
    assert!(
        list(tmp.path()).is_empty(),
        "left behind: {:?}",
        list(tmp.path())
    );
}

/// A database of mostly empty pages (a large deletion, not compacted)
/// compresses past the ratio an archive may expand by: the backup does not
/// keep an archive its own verify refuses, and says how to compact the
/// database, after which the backup succeeds.
#[test]
fn a_database_of_empty_pages_gets_the_vacuum_that_lets_it_be_backed_up() {
    let cluster = cluster_with(&["alpha"]);
    let db = cluster.volume("alpha", "bot-data").join("bot.sqlite3");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ballast(b BLOB);
             INSERT INTO ballast VALUES (zeroblob(100000000));
             DELETE FROM ballast;",
        )
        .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let refused = exits(
        cluster.admin(&["backup", "alpha", "--out"]).arg(out.path()),
        1,
    );
    let err = stderr(&refused);
    assert!(
        err.contains(
            "the archive just written expands too much to be verified: tenant alpha's database is mostly \
             empty pages. Compact it, then back up again: `kubectl --namespace tenant-alpha exec \
             deployment/bot -- sqlite3 "
        ) && err.contains("'VACUUM'`")
            && err.ends_with("No backup was written.\n"),
        "{err}"
    );
    assert!(list(out.path()).is_empty(), "{:?}", list(out.path()));
    // What the hint does.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();
    backup(&cluster, "alpha", out.path());
}
