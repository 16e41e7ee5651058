//! Secrets and personal data in traffic: the patterns `trawl audit`
//! reports, and the masking of what an agent is shown (`trawl mcp
//! --redact`): credentials in headers, URLs and bodies, and every pattern
//! the audit knows, each replaced by a short hash of itself so that two
//! different tokens still read as different.

use regex::bytes::{Regex, RegexSet};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Shows the first and last 4 characters of a secret (after its scheme,
/// `Bearer ` or `Basic `), the rest as `*` (12 at most).
pub fn redact(secret: &str) -> String {
    let (scheme, secret) = match secret.split_once(' ') {
        Some((s, rest)) if s.eq_ignore_ascii_case("bearer") || s.eq_ignore_ascii_case("basic") => {
            (format!("{s} "), rest)
        }
        _ => (String::new(), secret),
    };
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 10 {
        return format!("{scheme}{}", "*".repeat(chars.len()));
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{scheme}{head}{}{tail}", "*".repeat((chars.len() - 8).min(12)))
}

/// Luhn's check of a digit string.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// The kinds of sensitive data, and their patterns.
pub struct Patterns {
    list: Vec<(&'static str, Regex)>,
    /// All of them at once: most bodies match none, and one pass says so.
    any: Option<RegexSet>,
}

impl Patterns {
    pub fn new() -> Patterns {
        // ASCII word boundaries: Unicode ones keep the regex engine off its
        // fast automata, and these patterns are ASCII.
        let p = |s: &str| Regex::new(&format!("(?-u){s}")).ok();
        let list = [
            ("card number", r"\b(?:\d[ -]?){12,18}\d\b"),
            (
                "US social security number",
                r"\b(?:00[1-9]|0[1-9]\d|[1-5]\d\d|6[0-57-9]\d|66[0-57-9]|7[0-6]\d|77[0-2])-(?:0[1-9]|[1-9]\d)-(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})\b",
            ),
            ("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
            ("AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
            ("Stripe secret key", r"\b(?:sk|rk)_live_[0-9A-Za-z]{16,}"),
            ("GitHub token", r"\bgh[pousr]_[0-9A-Za-z]{36,}"),
            ("Slack token", r"\bxox[baprs]-[0-9A-Za-z-]{10,}"),
            ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
            ("private key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
        ];
        let list: Vec<(&'static str, Regex)> = list.iter().filter_map(|(k, r)| p(r).map(|re| (*k, re))).collect();
        let any = RegexSet::new(list.iter().map(|(_, re)| re.as_str())).ok();
        Patterns { list, any }
    }

    /// Every (kind, match) in `b`; card numbers only when they pass Luhn.
    pub fn scan(&self, b: &[u8]) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let hits = self.any.as_ref().map(|set| set.matches(b));
        for (i, (kind, re)) in self.list.iter().enumerate() {
            if hits.as_ref().is_some_and(|h| !h.matched(i)) {
                continue;
            }
            for m in re.find_iter(b).take(16) {
                let text = String::from_utf8_lossy(m.as_bytes()).into_owned();
                if *kind == "card number" {
                    let digits: Vec<u8> = m.as_bytes().iter().copied().filter(u8::is_ascii_digit).collect();
                    // Card numbers are 13 to 19 digits, from a known issuer range.
                    if !(13..=19).contains(&digits.len()) || !matches!(digits[0], b'2'..=b'6') || !luhn(&digits) {
                        continue;
                    }
                }
                out.push((*kind, text));
            }
        }
        out
    }
}

impl Default for Patterns {
    fn default() -> Patterns {
        Patterns::new()
    }
}

/// Header names whose values are credentials (lower case).
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "private-token",
];

/// Parameter and field names whose values are credentials or personal
/// secrets, in URLs, forms, JSON bodies and decoded messages (lower case).
const SECRET_NAMES: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "api_key",
    "apikey",
    "api-key",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "pin",
    "cvv",
    "cvc",
    "auth",
    "authorization",
    "signature",
    "sig",
    "session",
    "sessionid",
    "session_id",
    "ssn",
    "card_number",
    "cardnumber",
];

/// Masks credentials and personal data in tool results (see the module
/// doc). Masked values read `[redacted #1a2b3c4d]` (or `[redacted card
/// number #…]` for what a pattern found): the hash is of the value with
/// this redactor's salt, the same for the same value as long as the
/// redactor lives, and tells nothing of the value to whoever lacks the
/// salt.
pub struct Redactor {
    salt: [u8; 16],
    patterns: Patterns,
    /// `name=value` in URLs, forms and text, for the names above.
    param: regex::Regex,
    /// `"name": "value"` in JSON text.
    json_field: regex::Regex,
    /// `Authorization: scheme value` and the like in text.
    header_line: regex::Regex,
}

impl Redactor {
    /// A redactor with a fresh random salt.
    pub fn new() -> Redactor {
        let mut salt = [0u8; 16];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            use std::io::Read;
            let _ = f.read_exact(&mut salt);
        }
        Redactor::with_salt(salt)
    }

    /// A redactor whose hashes are fixed by `salt` (tests).
    pub fn with_salt(salt: [u8; 16]) -> Redactor {
        let names = SECRET_NAMES.iter().map(|n| regex::escape(n)).collect::<Vec<_>>().join("|");
        let headers = CREDENTIAL_HEADERS.iter().map(|n| regex::escape(n)).collect::<Vec<_>>().join("|");
        let re = |s: String| regex::Regex::new(&s).unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"));
        Redactor {
            salt,
            patterns: Patterns::new(),
            param: re(format!(r#"(?i)(^|[?&;,\s])({names})=([^&#\s"';,]+)"#)),
            json_field: re(format!(r#"(?i)("(?:{names})"\s*:\s*")((?:[^"\\]|\\.)*)""#)),
            header_line: re(format!(
                r#"(?i)\b({headers})(\s*[:=]\s*)((?:bearer|basic|digest|token|negotiate)\s+)?([^\r\n",]+)"#
            )),
        }
    }

    /// How `value` is shown: a short salted hash of it.
    pub fn mask(&self, kind: Option<&str>, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(value.as_bytes());
        let d = h.finalize();
        let hex: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
        match kind {
            Some(k) => format!("[redacted {k} #{hex}]"),
            None => format!("[redacted #{hex}]"),
        }
    }

    /// Masks in place everything sensitive `v` holds; returns how many
    /// values were masked.
    pub fn json(&self, v: &mut Value) -> usize {
        match v {
            Value::Object(m) => {
                let mut n = 0;
                for (k, x) in m.iter_mut() {
                    let key = k.to_ascii_lowercase();
                    let secret = match &*x {
                        Value::String(s) if CREDENTIAL_HEADERS.contains(&key.as_str()) => {
                            Some(self.header_value(&key, s))
                        }
                        Value::String(s) if SECRET_NAMES.contains(&key.as_str()) => Some(self.mask(None, s)),
                        Value::Number(num) if SECRET_NAMES.contains(&key.as_str()) => {
                            Some(self.mask(None, &num.to_string()))
                        }
                        _ => None,
                    };
                    n += match secret {
                        Some(masked) => {
                            *x = Value::String(masked);
                            1
                        }
                        None => self.json(x),
                    };
                }
                n
            }
            Value::Array(a) => a.iter_mut().map(|x| self.json(x)).sum(),
            Value::String(s) => match self.text(s) {
                Some((masked, n)) => {
                    *s = masked;
                    n
                }
                None => 0,
            },
            _ => 0,
        }
    }

    /// A credential header's value masked: the scheme of an
    /// Authorization kept, each cookie's name kept (and a Set-Cookie's
    /// attributes).
    fn header_value(&self, name: &str, value: &str) -> String {
        match name {
            "cookie" => value
                .split(';')
                .map(|c| match c.split_once('=') {
                    Some((k, v)) => format!("{k}={}", self.mask(None, v.trim())),
                    None => self.mask(None, c.trim()),
                })
                .collect::<Vec<_>>()
                .join(";"),
            "set-cookie" => {
                let (first, attrs) = value.split_once(';').map_or((value, None), |(a, b)| (a, Some(b)));
                let first = match first.split_once('=') {
                    Some((k, v)) => format!("{k}={}", self.mask(None, v.trim())),
                    None => self.mask(None, first.trim()),
                };
                attrs.map_or(first.clone(), |a| format!("{first};{a}"))
            }
            _ => match value.split_once(' ') {
                Some((scheme, rest))
                    if ["bearer", "basic", "digest", "token", "negotiate"]
                        .contains(&scheme.to_ascii_lowercase().as_str()) =>
                {
                    format!("{scheme} {}", self.mask(None, rest.trim()))
                }
                _ => self.mask(None, value),
            },
        }
    }

    /// `text` with its secrets masked, and how many, or None when it has
    /// none.
    pub fn text(&self, text: &str) -> Option<(String, usize)> {
        let mut n = 0;
        let mut out = text.to_string();
        // What the audit's patterns find (card numbers Luhn-checked).
        for (kind, found) in self.patterns.scan(out.as_bytes()) {
            if out.contains(&found) {
                out = out.replace(&found, &self.mask(Some(kind), &found));
                n += 1;
            }
        }
        let mut replace =
            |re: &regex::Regex, out: &mut String, value: usize, rebuild: &dyn Fn(&regex::Captures, &str) -> String| {
                if !re.is_match(out) {
                    return;
                }
                let next = re
                    .replace_all(out, |c: &regex::Captures| {
                        let v = c.get(value).map_or("", |m| m.as_str());
                        if v.starts_with("[redacted") {
                            return c[0].to_string();
                        }
                        n += 1;
                        rebuild(c, &self.mask(None, v))
                    })
                    .into_owned();
                *out = next;
            };
        replace(&self.header_line, &mut out, 4, &|c, m| {
            format!("{}{}{}{m}", &c[1], &c[2], c.get(3).map_or("", |s| s.as_str()))
        });
        replace(&self.param, &mut out, 3, &|c, m| format!("{}{}={m}", &c[1], &c[2]));
        replace(&self.json_field, &mut out, 2, &|c, m| format!("{}{m}\"", &c[1]));
        (n > 0).then_some((out, n))
    }
}

impl Default for Redactor {
    fn default() -> Redactor {
        Redactor::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_checked_and_redacted() {
        let p = Patterns::new();
        let found =
            p.scan(b"card 4111 1111 1111 1111, not 4111 1111 1111 1112; ssn 123-45-6789; key AKIAIOSFODNN7EXAMPLE");
        let kinds: Vec<&str> = found.iter().map(|f| f.0).collect();
        assert_eq!(kinds, ["card number", "US social security number", "AWS access key"]);
        assert_eq!(redact("4111 1111 1111 1111"), "4111***********1111");
        assert!(luhn(b"79927398713") && !luhn(b"79927398710"));
    }

    #[test]
    fn credentials_and_personal_data_are_masked_with_a_stable_hash() {
        let r = Redactor::with_salt([7; 16]);
        let mut v = serde_json::json!({
            "request_headers": {
                "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXN0b21lci00MiJ9.c2lnbmF0dXJlLXNlY3JldA",
                "cookie": "session=abc123; theme=dark",
                "accept": "*/*"
            },
            "response_headers": {"set-cookie": "sid=xyz789; Path=/; HttpOnly"},
            "query_string": {"api_key": "k-123", "page": "2"},
            "path": "/orders?access_token=tok-999&page=2",
            "response_body": "{\"card\": \"4111 1111 1111 1111\", \"password\": \"hunter2\", \"ok\": true}",
            "request_decoded": {"user": {"password": "hunter2"}},
            "redis_line": "AUTH x; GET k",
            "other": ["Authorization: Basic dXNlcjpwYXNz", 42]
        });
        let n = r.json(&mut v);
        let same = r.mask(None, "hunter2");
        assert!(same.starts_with("[redacted #") && same.len() == "[redacted #12345678]".len());
        let h = &v["request_headers"];
        assert!(h["authorization"].as_str().is_some_and(|a| a.starts_with("Bearer [redacted #")), "{h}");
        assert_eq!(h["cookie"], format!("session={}; theme={}", r.mask(None, "abc123"), r.mask(None, "dark")));
        assert_eq!(h["accept"], "*/*");
        assert_eq!(v["response_headers"]["set-cookie"], format!("sid={}; Path=/; HttpOnly", r.mask(None, "xyz789")));
        assert_eq!(v["query_string"]["api_key"], r.mask(None, "k-123"));
        assert_eq!(v["query_string"]["page"], "2");
        assert_eq!(v["path"], format!("/orders?access_token={}&page=2", r.mask(None, "tok-999")));
        let body = v["response_body"].as_str().unwrap_or_default();
        assert!(body.contains("[redacted card number #") && !body.contains("4111"), "{body}");
        assert!(body.contains(&format!("\"password\": \"{same}\"")), "{body}");
        assert_eq!(v["request_decoded"]["user"]["password"], same);
        assert_eq!(v["other"][0], format!("Authorization: Basic {}", r.mask(None, "dXNlcjpwYXNz")));
        assert_eq!(n, 9);
        // Two tokens read apart; the same one alike; another salt, other hashes.
        assert_ne!(r.mask(None, "a"), r.mask(None, "b"));
        assert_eq!(r.mask(None, "a"), Redactor::with_salt([7; 16]).mask(None, "a"));
        assert_ne!(r.mask(None, "a"), Redactor::with_salt([8; 16]).mask(None, "a"));
        // Text without secrets is left as it is.
        assert_eq!(r.text("GET /api/health 200 ok, 1234 5678"), None);
    }
}
