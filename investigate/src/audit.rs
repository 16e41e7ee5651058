//! The security audit of a snapshot's calls:
//! - calls without an `Authorization` header to endpoints whose other
//!   calls carry one;
//! - one credential (`Authorization`, `x-api-key`, `Proxy-Authorization`)
//!   sent to more than one service, or outside the private ranges;
//! - sensitive data in URLs and bodies: card numbers that pass the Luhn
//!   check, US social security numbers, JWTs, API keys (AWS, Stripe,
//!   GitHub, Slack, Google), private keys;
//! - plaintext HTTP between namespaces;
//! - external egress, grouped by domain (DNS names, TLS SNI);
//! - weak TLS (old versions, weak suites).
//!
//! Secrets are redacted in every finding unless asked otherwise.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use serde_json::{Value, json};
use trawl_query::Catalog;

use crate::Error;
use crate::calls::{CLIENT, Cells, ENDPOINT, SERVER, for_each_batch, is_external, rfc3339};
use crate::secrets::{Patterns, redact};

/// What the audit reads of each call.
const SELECT: &[&str] = &[
    "concat(snapshot, '/', CAST(id AS VARCHAR))",
    "CAST(timestamp AS BIGINT)",
    "protocol",
    CLIENT,
    SERVER,
    "dst_ip",
    ENDPOINT,
    "COALESCE(url, '')",
    "COALESCE(map_extract(request_headers, 'authorization')[1], map_extract(request_headers, 'x-api-key')[1], map_extract(request_headers, 'proxy-authorization')[1])",
    "request_body",
    "response_body",
    "COALESCE(src_namespace, '')",
    "COALESCE(dst_namespace, '')",
    "COALESCE(dst_dns, '')",
    "COALESCE(tls_sni, '')",
    "COALESCE(tls_version, '')",
    "array_to_string(tls_weak, ', ')",
    "COALESCE(request_headers_size, 0) > 0 OR protocol NOT IN ('http', 'grpc', 'graphql')",
];

/// One call as the audit sees it.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    ts: i64,
    protocol: String,
    client: String,
    server: String,
    server_ip: String,
    endpoint: String,
    /// The request target as sent (path and query).
    url: String,
    credential: Option<String>,
    /// Sensitive data found in the URL and bodies: kind, place, text.
    secrets: Vec<(&'static str, &'static str, String)>,
    src_ns: String,
    dst_ns: String,
    dns: String,
    sni: String,
    tls_version: String,
    tls_weak: String,
}

/// One finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `missing_authorization`, `credential_forwarded`, `sensitive_data`,
    /// `plaintext_cross_namespace`, `external_egress`, `weak_tls`.
    pub kind: &'static str,
    pub first_ns: i64,
    /// Where: an endpoint, a client and server, a domain.
    pub subject: String,
    pub detail: String,
    /// Calls that show it: the first ones in time (`calls_truncated`
    /// when there were more).
    pub calls: Vec<String>,
    /// The distinct URLs of those calls (secrets in them redacted unless shown).
    pub urls: Vec<String>,
    pub count: usize,
    /// Start times of `calls`, to keep the first ones.
    times: Vec<i64>,
}

impl Finding {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "first_at": rfc3339(self.first_ns),
            "subject": self.subject,
            "detail": self.detail,
            "count": self.count,
            "calls": self.calls,
            "calls_truncated": self.count > self.calls.len(),
            "urls": self.urls,
        })
    }
}

/// Calls kept per finding.
const KEEP_CALLS: usize = 10;

/// Reads the calls, scanning their URL and bodies as they stream past
/// (bodies are not kept).
async fn load(cat: &Catalog, kfl: &str) -> Result<Vec<Row>, Error> {
    let patterns = Patterns::new();
    let mut out = Vec::new();
    for_each_batch(cat, kfl, SELECT, |b| {
        let c = Cells(b);
        for r in 0..b.num_rows() {
            let url = c.text(7, r)?;
            let mut secrets = Vec::new();
            for (place, bytes) in [
                ("URL", Some(url.as_bytes().to_vec())),
                ("request body", c.bytes(9, r)),
                ("response body", c.bytes(10, r)),
            ] {
                if let Some(bytes) = bytes {
                    secrets.extend(patterns.scan(&bytes).into_iter().map(|(kind, text)| (kind, place, text)));
                }
            }
            // An HTTP exchange whose request was not captured has no credential to judge.
            let request_seen = c.boolean(17, r);
            out.push(Row {
                id: c.text(0, r)?,
                ts: c.int(1, r),
                protocol: c.text(2, r)?,
                client: c.text(3, r)?,
                server: c.text(4, r)?,
                server_ip: c.text(5, r)?,
                endpoint: if request_seen { c.text(6, r)? } else { String::new() },
                url: url.clone(),
                credential: Some(c.text(8, r)?).filter(|v| !v.is_empty() && request_seen),
                secrets,
                src_ns: c.text(11, r)?,
                dst_ns: c.text(12, r)?,
                dns: c.text(13, r)?,
                sni: c.text(14, r)?,
                tls_version: c.text(15, r)?,
                tls_weak: c.text(16, r)?,
            });
        }
        Ok(())
    })
    .await?;
    out.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

fn fingerprint(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Collects findings keyed by (kind, subject, detail).
#[derive(Default)]
struct Found(BTreeMap<(&'static str, String, String), Finding>);

impl Found {
    fn add(&mut self, kind: &'static str, subject: String, detail: String, call: &Row, url: &str) {
        let f = self.0.entry((kind, subject.clone(), detail.clone())).or_insert_with(|| Finding {
            kind,
            first_ns: call.ts,
            subject,
            detail,
            calls: Vec::new(),
            urls: Vec::new(),
            count: 0,
            times: Vec::new(),
        });
        f.count += 1;
        f.first_ns = f.first_ns.min(call.ts);
        // The first KEEP_CALLS calls in time, whatever order they come in.
        let at = f.times.partition_point(|&t| t <= call.ts);
        if at < KEEP_CALLS {
            f.times.insert(at, call.ts);
            f.calls.insert(at, call.id.clone());
            f.times.truncate(KEEP_CALLS);
            f.calls.truncate(KEEP_CALLS);
            if !url.is_empty() && !f.urls.iter().any(|u| u == url) && f.urls.len() < KEEP_CALLS {
                f.urls.push(url.to_string());
            }
        }
    }
}

/// Audits the calls a KFL filter selects; `show_secrets` leaves secrets
/// unredacted.
pub async fn run(cat: &Catalog, kfl: &str, show_secrets: bool) -> Result<Vec<Finding>, Error> {
    let rows = load(cat, kfl).await?;
    Ok(audit(&rows, show_secrets))
}

fn audit(rows: &[Row], show_secrets: bool) -> Vec<Finding> {
    let shown = |s: &str| if show_secrets { s.to_string() } else { redact(s) };
    // A URL as shown: its secrets redacted unless asked otherwise.
    let url_of = |r: &Row| {
        let mut u = r.url.clone();
        if !show_secrets {
            for (_, place, text) in &r.secrets {
                if *place == "URL" {
                    u = u.replace(text.as_str(), &redact(text));
                }
            }
        }
        u
    };
    let mut found = Found::default();
    let http = |r: &Row| matches!(r.protocol.as_str(), "http" | "grpc" | "graphql");

    // Endpoints whose calls usually carry a credential.
    let mut per_endpoint: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for r in rows.iter().filter(|r| http(r) && !r.endpoint.is_empty()) {
        let e = per_endpoint.entry((&r.server, &r.endpoint)).or_default();
        e.0 += 1;
        e.1 += r.credential.is_some() as usize;
    }
    for r in rows.iter().filter(|r| http(r) && !r.endpoint.is_empty() && r.credential.is_none()) {
        let (calls, with) = per_endpoint[&(r.server.as_str(), r.endpoint.as_str())];
        if with >= 2 && with * 2 >= calls {
            found.add(
                "missing_authorization",
                format!("{} {}", r.server, r.endpoint),
                format!("{with} of {calls} calls carry a credential; this one has none"),
                r,
                &url_of(r),
            );
        }
    }

    // One credential sent to several services, or outside.
    let mut by_credential: BTreeMap<u64, (String, BTreeSet<&str>, Vec<&Row>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.credential.is_some()) {
        let cred = r.credential.as_deref().unwrap_or_default();
        let e =
            by_credential.entry(fingerprint(cred)).or_insert_with(|| (cred.to_string(), BTreeSet::new(), Vec::new()));
        e.1.insert(&r.server);
        e.2.push(r);
    }
    for (cred, servers, calls) in by_credential.values() {
        let outside: Vec<&str> = calls
            .iter()
            .filter(|r| is_external(&r.server_ip))
            .map(|r| r.server.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if servers.len() > 1 || !outside.is_empty() {
            let mut detail = format!(
                "the same credential `{}` reaches {}",
                shown(cred),
                servers.iter().copied().collect::<Vec<_>>().join(", ")
            );
            if !outside.is_empty() {
                detail.push_str(&format!(" (outside the private ranges: {})", outside.join(", ")));
            }
            for r in calls {
                found.add("credential_forwarded", calls[0].client.clone(), detail.clone(), r, &url_of(r));
            }
        }
    }

    // Sensitive data in URLs and bodies (scanned as they were read).
    for r in rows {
        for (kind, place, text) in &r.secrets {
            let subject = if r.endpoint.is_empty() { r.server.clone() } else { format!("{} {}", r.server, r.endpoint) };
            found.add("sensitive_data", subject, format!("{kind} in the {place}: {}", shown(text)), r, &url_of(r));
        }
    }

    // Plaintext HTTP between namespaces.
    // (`internal` and `public` name addresses outside the cluster's metadata.)
    let namespace = |ns: &str| !ns.is_empty() && ns != "internal" && ns != "public";
    for r in rows.iter().filter(|r| http(r) && namespace(&r.src_ns) && namespace(&r.dst_ns) && r.src_ns != r.dst_ns) {
        found.add(
            "plaintext_cross_namespace",
            format!("{} -> {}", r.client, r.server),
            format!("cleartext {} from namespace {} to {}", r.protocol, r.src_ns, r.dst_ns),
            r,
            &url_of(r),
        );
    }

    // External egress by domain, and weak TLS.
    for r in rows.iter().filter(|r| is_external(&r.server_ip)) {
        let domain =
            [&r.sni, &r.dns].into_iter().find(|d| !d.is_empty()).cloned().unwrap_or_else(|| r.server_ip.clone());
        found.add("external_egress", domain, format!("{} from {}", r.protocol, r.client), r, &url_of(r));
    }
    for r in rows.iter().filter(|r| r.protocol == "tls" && !r.tls_weak.is_empty()) {
        let name = if r.sni.is_empty() { r.server.clone() } else { r.sni.clone() };
        let detail = if r.tls_weak == r.tls_version {
            r.tls_weak.clone()
        } else {
            format!("{}; negotiated {}", r.tls_weak, r.tls_version)
        };
        found.add("weak_tls", name, detail, r, "");
    }

    let mut out: Vec<Finding> = found.0.into_values().collect();
    out.sort_by(|a, b| (a.kind, a.first_ns, &a.subject).cmp(&(b.kind, b.first_ns, &b.subject)));
    out
}
