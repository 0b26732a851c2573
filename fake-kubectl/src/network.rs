//! A model of the cluster network for `nc -z` and `nslookup` run in a pod:
//! NetworkPolicies evaluated as the API defines them (a pod selected by no
//! policy of a direction is open in that direction; otherwise some rule must
//! allow the peer and port), over pod IPs, Services and a few fixed
//! addresses. A test can switch enforcement off, as a CNI without
//! NetworkPolicy support would.
//!
//! Supported: podSelector/namespaceSelector `matchLabels`, ipBlock with
//! except, numeric and named ports. `matchExpressions` fail loudly.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::invocation::{Failure, NOT_IMPLEMENTED};
use crate::object::{fnv, labels, namespace_and_name};
use crate::state::State;

/// The API server's Service address, inside the cluster ranges.
const API_SERVER: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

/// Where a connection goes.
struct Destination {
    ip: Ipv4Addr,
    port: u64,
    /// The pod behind it (namespace, labels, named container ports), if any.
    pod: Option<(String, Value, Value)>,
}

/// A pod's address in the pod range 10.244.0.0/16.
pub fn pod_ip(ns: &str, name: &str) -> Ipv4Addr {
    let h = fnv(&format!("{ns}/{name}"));
    Ipv4Addr::new(10, 244, (h % 250) as u8 + 1, ((h >> 8) % 250) as u8 + 1)
}

fn unsupported(what: &str) -> Failure {
    Failure::new(
        NOT_IMPLEMENTED,
        format!("fake-kubectl: not implemented: {what} in the network model"),
    )
}

fn match_labels(selector: &Value, labels: &Value) -> Result<bool, Failure> {
    if selector
        .get("matchExpressions")
        .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
    {
        return Err(unsupported("matchExpressions"));
    }
    Ok(selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v)))
}

fn namespace_labels(state: &State, ns: &str) -> Value {
    state
        .get("Namespace", None, ns)
        .map(|n| n["metadata"]["labels"].clone())
        .unwrap_or_else(|| json!({"kubernetes.io/metadata.name": ns}))
}

fn in_cidr(ip: Ipv4Addr, cidr: &str) -> Result<bool, Failure> {
    let net: ipnet::IpNet = cidr
        .parse()
        .map_err(|_| unsupported(&format!("CIDR {cidr}")))?;
    // An IPv6 block never holds an IPv4 address.
    Ok(net.contains(&std::net::IpAddr::V4(ip)))
}

/// Does a policy peer match the other end of the connection?
fn peer_matches(
    state: &State,
    peer: &Value,
    policy_ns: &str,
    other_ns: Option<&str>,
    other_labels: Option<&Value>,
    other_ip: Ipv4Addr,
) -> Result<bool, Failure> {
    if let Some(block) = peer.get("ipBlock") {
        let cidr = block["cidr"].as_str().unwrap_or_default();
        if !in_cidr(other_ip, cidr)? {
            return Ok(false);
        }
        for except in block["except"].as_array().into_iter().flatten() {
            if in_cidr(other_ip, except.as_str().unwrap_or_default())? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let (Some(ns), Some(pod_labels)) = (other_ns, other_labels) else {
        return Ok(false); // pod and namespace selectors match only pods
    };
    let ns_ok = match peer.get("namespaceSelector") {
        Some(sel) => match_labels(sel, &namespace_labels(state, ns))?,
        None => ns == policy_ns,
    };
    let pod_ok = match peer.get("podSelector") {
        Some(sel) => match_labels(sel, pod_labels)?,
        None => true,
    };
    Ok(ns_ok && pod_ok)
}

fn port_matches(rule: &Value, port: u64, named: &Value) -> bool {
    let Some(ports) = rule.get("ports").and_then(Value::as_array) else {
        return true;
    };
    ports.iter().any(|p| match &p["port"] {
        Value::Number(n) => n.as_u64() == Some(port),
        Value::String(name) => named.get(name).and_then(Value::as_u64) == Some(port),
        _ => true,
    })
}

/// Whether the policies of `ns` let traffic leave (egress) or enter
/// (ingress) the pod with `pod_labels`.
#[allow(clippy::too_many_arguments)]
fn allowed(
    state: &State,
    direction: &str,
    ns: &str,
    pod_labels: &Value,
    other_ns: Option<&str>,
    other_labels: Option<&Value>,
    other_ip: Ipv4Addr,
    port: u64,
    named_ports: &Value,
) -> Result<bool, Failure> {
    let key = if direction == "Egress" {
        "egress"
    } else {
        "ingress"
    };
    let peers_key = if direction == "Egress" { "to" } else { "from" };
    let mut selected = false;
    for policy in state
        .objects()
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["namespace"] == ns)
    {
        if !match_labels(&policy["spec"]["podSelector"], pod_labels)? {
            continue;
        }
        let types = policy["spec"]["policyTypes"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![json!("Ingress")]);
        if !types.iter().any(|t| t == direction) {
            continue;
        }
        selected = true;
        for rule in policy["spec"][key].as_array().into_iter().flatten() {
            let peers = rule.get(peers_key).and_then(Value::as_array);
            let peer_ok = match peers {
                None => true,
                Some(list) => {
                    let mut any = false;
                    for p in list {
                        if peer_matches(state, p, ns, other_ns, other_labels, other_ip)? {
                            any = true;
                            break;
                        }
                    }
                    any
                }
            };
            if peer_ok && port_matches(rule, port, named_ports) {
                return Ok(true);
            }
        }
    }
    Ok(!selected)
}

/// Resolves a host as cluster DNS would: `svc.ns.svc[.cluster.local]`,
/// `kubernetes.default...`, or a literal IPv4 address.
fn resolve(state: &State, host: &str, port: u64) -> Result<Option<Destination>, Failure> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Some(Destination {
            ip,
            port,
            pod: None,
        }));
    }
    let name = host
        .trim_end_matches('.')
        .trim_end_matches(".cluster.local");
    let Some(rest) = name.strip_suffix(".svc") else {
        return Ok(None);
    };
    let Some((svc, ns)) = rest.split_once('.') else {
        return Ok(None);
    };
    if (svc, ns) == ("kubernetes", "default") {
        return Ok(Some(Destination {
            ip: API_SERVER,
            port,
            pod: None,
        }));
    }
    let Some(service) = state.get("Service", Some(ns), svc) else {
        return Ok(None);
    };
    let service_port = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_u64() == Some(port));
    let Some(service_port) = service_port else {
        return Ok(Some(Destination {
            ip: Ipv4Addr::new(10, 96, 1, 1),
            port,
            pod: None,
        }));
    };
    let selector = json!({"matchLabels": service["spec"]["selector"]});
    for pod in state
        .objects()
        .iter()
        .filter(|o| o["kind"] == "Pod" && o["metadata"]["namespace"] == ns)
    {
        // Endpoints are the Ready pods only.
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if !ready || !match_labels(&selector, &pod["metadata"]["labels"])? {
            continue;
        }
        let named: serde_json::Map<String, Value> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| Some((p["name"].as_str()?.to_owned(), p["containerPort"].clone())))
            .collect();
        let target = match &service_port["targetPort"] {
            Value::Number(n) => n.as_u64().unwrap_or(port),
            Value::String(name) => named.get(name).and_then(Value::as_u64).unwrap_or(port),
            _ => port,
        };
        let (pns, pname) = namespace_and_name(pod);
        return Ok(Some(Destination {
            ip: pod_ip(&pns, &pname),
            port: target,
            pod: Some((pns, pod["metadata"]["labels"].clone(), Value::Object(named))),
        }));
    }
    Ok(Some(Destination {
        ip: Ipv4Addr::new(10, 96, 1, 1),
        port,
        pod: None,
    })) // no endpoints
}

/// `nc -z -w SECONDS HOST PORT` from `pod`: exit 0 when a connection is
/// possible.
pub fn nc(state: &State, pod: &Value, host: &str, port: &str) -> Result<Vec<u8>, Failure> {
    let port: u64 = port
        .parse()
        .map_err(|_| Failure::new(1, format!("nc: bad port '{port}'")))?;
    let (ns, name) = namespace_and_name(pod);
    let fail = || Failure::new(1, format!("nc: {host} ({port}): Connection timed out"));
    let Some(dest) = resolve(state, host, port)? else {
        return Err(Failure::new(1, format!("nc: bad address '{host}'")));
    };
    if !state.network_policy_enforced() {
        return if dest.pod.is_some() || dest.ip == API_SERVER || host.parse::<Ipv4Addr>().is_ok() {
            Ok(Vec::new())
        } else {
            Err(fail())
        };
    }
    let src_labels = labels_value(pod);
    let src_ip = pod_ip(&ns, &name);
    let (dest_ns, dest_labels) = match &dest.pod {
        Some((n, l, _)) => (Some(n.as_str()), Some(l)),
        None => (None, None),
    };
    let named = dest
        .pod
        .as_ref()
        .map(|(_, _, n)| n.clone())
        .unwrap_or(json!({}));
    if !allowed(
        state,
        "Egress",
        &ns,
        &src_labels,
        dest_ns,
        dest_labels,
        dest.ip,
        dest.port,
        &named,
    )? {
        return Err(fail());
    }
    if let Some((dns, dlabels, named)) = &dest.pod {
        if !allowed(
            state,
            "Ingress",
            dns,
            dlabels,
            Some(&ns),
            Some(&src_labels),
            src_ip,
            dest.port,
            named,
        )? {
            return Err(fail());
        }
    } else if dest.ip != API_SERVER && host.parse::<Ipv4Addr>().is_err() {
        return Err(fail());
    }
    Ok(Vec::new())
}

/// `nslookup NAME`: succeeds when the pod may reach its DNS server and the
/// name exists. The server is cluster DNS (pods labelled `k8s-app:
/// kube-dns` in `kube-system`), or with NodeLocal DNSCache the node-local
/// address, a plain IP that only an ipBlock rule allows.
pub fn nslookup(state: &State, pod: &Value, host: &str) -> Result<Vec<u8>, Failure> {
    let (ns, _) = namespace_and_name(pod);
    let dns_labels = json!({"k8s-app": "kube-dns"});
    let (dns_ip, dns_ns, dns_pod) = match state.node_local_dns() {
        Some(ip) => (ip, None, None),
        None => (
            Ipv4Addr::new(10, 96, 0, 10),
            Some("kube-system"),
            Some(&dns_labels),
        ),
    };
    let reachable = !state.network_policy_enforced()
        || allowed(
            state,
            "Egress",
            &ns,
            &labels_value(pod),
            dns_ns,
            dns_pod,
            dns_ip,
            53,
            &json!({}),
        )?;
    if !reachable {
        return Err(Failure::new(
            1,
            ";; connection timed out; no servers could be reached",
        ));
    }
    match resolve(state, host, 0)? {
        Some(d) => Ok(format!(
            "Server:\t\t{dns_ip}\nAddress:\t{dns_ip}:53\n\nName:\t{host}\nAddress: {}\n",
            d.ip
        )
        .into_bytes()),
        None => Err(Failure::new(
            1,
            format!("** server can't find {host}: NXDOMAIN"),
        )),
    }
}

fn labels_value(o: &Value) -> Value {
    serde_json::to_value(labels(o)).unwrap_or(json!({}))
}
