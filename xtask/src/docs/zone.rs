//! Zone-file records (RFC 1035 master file syntax) as the guide's `dns`
//! blocks show them: `$TTL`, `$ORIGIN`, and A, AAAA, CNAME, TXT and CAA
//! records with valid names, TTLs, classes and values.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Checks every line of a `dns` block; returns (line index, problem).
pub fn check(block: &str) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let mut have_name = false;
    for (i, raw) in block.lines().enumerate() {
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let tokens = match tokenize(line) {
            Ok(t) => t,
            Err(e) => {
                problems.push((i, e));
                continue;
            }
        };
        if let Some(directive) = tokens.first().filter(|t| t.starts_with('$')) {
            let r = match (directive.as_str(), &tokens[1..]) {
                ("$TTL", [ttl]) => check_ttl(ttl),
                ("$ORIGIN", [origin]) if origin.ends_with('.') => check_name(origin),
                ("$ORIGIN", [origin]) => Err(format!(
                    "$ORIGIN `{origin}` must be absolute (end with a dot)"
                )),
                _ => Err(format!("unknown or malformed directive `{}`", line.trim())),
            };
            if let Err(e) = r {
                problems.push((i, e));
            }
            continue;
        }
        let inherits = raw.starts_with([' ', '\t']);
        let mut rest: &[String] = &tokens;
        if !inherits {
            if let Err(e) = check_name(&rest[0]) {
                problems.push((i, e));
            }
            have_name = true;
            rest = &rest[1..];
        } else if !have_name {
            problems.push((
                i,
                "a record with no owner name must follow one that has it".to_owned(),
            ));
        }
        // TTL and class, in either order, both optional.
        for _ in 0..2 {
            match rest.first().map(String::as_str) {
                Some(t) if t.chars().all(|c| c.is_ascii_digit()) => {
                    if let Err(e) = check_ttl(t) {
                        problems.push((i, e));
                    }
                    rest = &rest[1..];
                }
                Some("IN") => rest = &rest[1..],
                Some(c @ ("CH" | "HS" | "in")) => {
                    problems.push((i, format!("class `{c}`: records for the web use class IN")));
                    rest = &rest[1..];
                }
                _ => break,
            }
        }
        let Some((kind, data)) = rest.split_first() else {
            problems.push((i, "the record has no type".to_owned()));
            continue;
        };
        if let Err(e) = check_data(kind, data) {
            problems.push((i, e));
        }
    }
    problems
}

fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Splits on white space, keeping quoted strings (with their quotes) whole.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                current.push(c);
                quoted = !quoted;
            }
            '\\' if quoted => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err("a quoted string is not closed".to_owned());
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

fn check_ttl(ttl: &str) -> Result<(), String> {
    match ttl.parse::<u64>() {
        Ok(n) if n <= 2_147_483_647 => Ok(()),
        _ => Err(format!(
            "TTL `{ttl}` must be a whole number of seconds from 0 to 2147483647"
        )),
    }
}

/// An owner name or target: `@`, or labels of letters, digits, `-` and `_`
/// (for names like `_acme-challenge`), a `*` first label, an optional final dot.
fn check_name(name: &str) -> Result<(), String> {
    if name == "@" {
        return Ok(());
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() || body.len() > 253 {
        return Err(format!("`{name}` is not a valid DNS name"));
    }
    for (i, label) in body.split('.').enumerate() {
        let ok = (i == 0 && label == "*")
            || (!label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        if !ok {
            return Err(format!(
                "`{name}` is not a valid DNS name (label `{label}`)"
            ));
        }
    }
    Ok(())
}

fn check_quoted(s: &str) -> Result<(), String> {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| format!("`{s}` must be a quoted string"))?;
    if inner.len() > 255 {
        return Err(
            "a TXT string is at most 255 bytes; split it into several quoted strings".to_owned(),
        );
    }
    Ok(())
}

fn check_data(kind: &str, data: &[String]) -> Result<(), String> {
    let one = || match data {
        [value] => Ok(value.as_str()),
        [] => Err(format!("the {kind} record has no value")),
        _ => Err(format!(
            "the {kind} record has more than one value: `{}`",
            data.join(" ")
        )),
    };
    match kind {
        "A" => one()?
            .parse::<Ipv4Addr>()
            .map(drop)
            .map_err(|_| format!("A record value `{}` is not an IPv4 address", data.join(" "))),
        "AAAA" => one()?.parse::<Ipv6Addr>().map(drop).map_err(|_| {
            format!(
                "AAAA record value `{}` is not an IPv6 address",
                data.join(" ")
            )
        }),
        "CNAME" => {
            let target = one()?;
            if target.parse::<Ipv4Addr>().is_ok() || target.parse::<Ipv6Addr>().is_ok() {
                return Err(format!(
                    "CNAME target `{target}` is an address; use an A or AAAA record instead"
                ));
            }
            if target == "@" || target.contains('*') {
                return Err(format!("CNAME target `{target}` must be a host name"));
            }
            check_name(target).map_err(|e| format!("CNAME target: {e}"))
        }
        "TXT" => {
            if data.is_empty() {
                return Err("the TXT record has no value".to_owned());
            }
            data.iter()
                .try_for_each(|s| check_quoted(s).map_err(|e| format!("TXT value: {e}")))
        }
        "CAA" => match data {
            [flags, tag, value] => {
                flags
                    .parse::<u8>()
                    .map_err(|_| format!("CAA flags `{flags}` must be a number from 0 to 255"))?;
                if !matches!(tag.as_str(), "issue" | "issuewild" | "iodef") {
                    return Err(format!("CAA tag `{tag}` must be issue, issuewild or iodef"));
                }
                check_quoted(value).map_err(|e| format!("CAA value: {e}"))
            }
            _ => Err(format!(
                "a CAA record is `flags tag \"value\"`, found `{}`",
                data.join(" ")
            )),
        },
        other => Err(format!(
            "record type `{other}` is not one the guide uses (A, AAAA, CNAME, TXT, CAA) or is misspelt"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn valid_records_pass() {
        let zone = "$TTL 3600\n$ORIGIN example.in.\n\
                    pune 300 IN A 203.0.113.10\n\
                    pune IN 300 AAAA 2001:db8::10 ; comment\n\
                    www.pune 300 IN CNAME pune.example.in.\n\
                    _acme-challenge.pune 60 IN TXT \"abc; def\" \"ghi\"\n\
                    @ 3600 IN CAA 0 issue \"letsencrypt.org\"\n\
                    \x20    300 IN TXT \"continued owner\"\n";
        assert_eq!(check(zone), Vec::new());
    }

    #[test]
    fn each_kind_of_mistake_is_caught_on_its_line() {
        let zone = "pune 300 IN A 203.0.113.300\n\
                    pune 300 IN AAAA 2001:db8::zz\n\
                    www 300 IN CNAME 203.0.113.10\n\
                    txt 300 IN TXT unquoted\n\
                    pune 99999999999 IN A 203.0.113.10\n\
                    pune 300 CH A 203.0.113.10\n\
                    bad_name! 300 IN A 203.0.113.10\n\
                    pune 300 IN AA 203.0.113.10\n\
                    txt 300 IN TXT \"open\n";
        let found: Vec<usize> = check(zone).into_iter().map(|(i, _)| i).collect();
        assert_eq!(found, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
