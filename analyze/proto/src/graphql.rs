//! GraphQL over HTTP (HTTP/1 and HTTP/2): the operation a request
//! carries (a JSON body with `query`, an `application/graphql` body, or a
//! GET with `?query=`), its type and name, and the `errors` of the
//! response.
//!
//! The operation type is read from the document's first tokens (with the
//! request's `operationName` picking among several operations), not by
//! parsing the whole document: a query, a mutation and a subscription
//! are told apart by their keyword, and the shorthand `{ ... }` is a
//! query.

use get_size2::GetSize;
use serde_json::Value;

use crate::detail::GraphqlOperation;
use crate::exchange::{Exchange, Message, StartLine};

/// Recognises a GraphQL request in an exchange and reads its response.
pub fn inspect(ex: &Exchange) -> Option<GraphqlOperation> {
    let req = ex.request.as_ref()?;
    let (method, target) = match &req.start {
        StartLine::Request { method, target } => (method.as_str(), target.as_str()),
        _ => return None,
    };
    let (document, op_name) = if method.eq_ignore_ascii_case("GET") {
        let query = target.split_once('?')?.1;
        let mut doc = None;
        let mut name = None;
        for (k, v) in form_pairs(query) {
            match k.as_str() {
                "query" => doc = Some(v),
                "operationName" => name = Some(v),
                _ => {}
            }
        }
        (doc?, name)
    } else {
        from_body(req)?
    };
    let (kind, name) = operation(&document, op_name.as_deref())?;
    let mut op = GraphqlOperation { kind, name: name.or(op_name), ..GraphqlOperation::default() };
    if let Some(resp) = ex.response.as_ref()
        && let Ok(v) = serde_json::from_slice::<Value>(&resp.body)
    {
        let errors = v.get("errors").and_then(Value::as_array);
        op.errors = Some(errors.map_or(0, |e| e.len() as u32));
        op.error_message =
            errors.and_then(|e| e.first()).and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_string);
    }
    Some(op)
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((crate::percent_decode(k, true), crate::percent_decode(v, true)))
        })
        .collect()
}

/// The document and operationName of a POST body.
fn from_body(req: &Message) -> Option<(String, Option<String>)> {
    let ct = req.header("content-type").unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/graphql") && !ct.contains("json") {
        return Some((String::from_utf8_lossy(&req.body).into_owned(), None));
    }
    // Only the two fields are read: the rest (variables, extensions) is
    // skipped without being built, so variables nested deeper than a
    // JSON tree may be built do not hide the operation.
    let body = req.body.trim_ascii_start();
    let op: Body = if body.starts_with(b"[") {
        // A batch: the first operation stands for the request.
        serde_json::from_slice::<Vec<Body>>(body).ok()?.into_iter().next()?
    } else {
        serde_json::from_slice(body).ok()?
    };
    Some((op.query?, op.operation_name))
}

/// What a GraphQL-over-HTTP request body names.
#[derive(serde::Deserialize, GetSize)]
struct Body {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

/// The type and name of the operation `want` (else the first) in a
/// GraphQL document.
pub fn operation(doc: &str, want: Option<&str>) -> Option<(&'static str, Option<String>)> {
    let mut tokens = Tokens { s: doc };
    let mut first = None;
    let mut depth = 0usize;
    // Inside a fragment definition (its selection set is no operation).
    let mut fragment = false;
    while let Some(t) = tokens.next() {
        match t {
            "{" => {
                if depth == 0 && first.is_none() && !fragment {
                    first = Some(("query", None));
                }
                depth += 1;
            }
            "}" => {
                depth = depth.saturating_sub(1);
                fragment &= depth > 0;
            }
            "fragment" if depth == 0 => fragment = true,
            "query" | "mutation" | "subscription" if depth == 0 => {
                let kind = match t {
                    "query" => "query",
                    "mutation" => "mutation",
                    _ => "subscription",
                };
                let name = tokens
                    .peek()
                    .filter(|n| n.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_'))
                    .map(str::to_string);
                if want.is_some() && name.as_deref() == want {
                    return Some((kind, name));
                }
                first.get_or_insert((kind, name));
            }
            _ => {}
        }
    }
    first
}

struct Tokens<'a> {
    s: &'a str,
}

impl<'a> Tokens<'a> {
    fn skip(&mut self) {
        loop {
            self.s = self.s.trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == '\u{feff}');
            if self.s.starts_with('#') {
                self.s = self.s.find('\n').map_or("", |i| &self.s[i..]);
            } else if self.s.starts_with('"') {
                // Strings (and block strings) are skipped whole.
                let block = self.s.starts_with("\"\"\"");
                let close = if block { "\"\"\"" } else { "\"" };
                let body = &self.s[close.len()..];
                let mut end = None;
                let mut i = 0;
                while i < body.len() {
                    if body[i..].starts_with('\\') {
                        i += 2;
                        continue;
                    }
                    if body[i..].starts_with(close) {
                        end = Some(i + close.len());
                        break;
                    }
                    i += body[i..].chars().next().map_or(1, char::len_utf8);
                }
                self.s = end.map_or("", |e| body.get(e..).unwrap_or(""));
            } else {
                return;
            }
        }
    }

    fn peek(&mut self) -> Option<&'a str> {
        let saved = self.s;
        let t = self.next();
        self.s = saved;
        t
    }

    fn next(&mut self) -> Option<&'a str> {
        self.skip();
        let c = self.s.chars().next()?;
        let len = if c.is_alphanumeric() || c == '_' {
            self.s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(self.s.len())
        } else {
            c.len_utf8()
        };
        let (t, rest) = self.s.split_at(len);
        self.s = rest;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_types_and_names() {
        assert_eq!(operation("{ user(id: 1) { name } }", None), Some(("query", None)));
        assert_eq!(
            operation("query GetUser($id: ID!) { user(id: $id) { name } }", None),
            Some(("query", Some("GetUser".into())))
        );
        assert_eq!(
            operation("# a comment with mutation\n mutation AddUser { add(name: \"query {\") { id } }", None),
            Some(("mutation", Some("AddUser".into())))
        );
        assert_eq!(operation("query A { a } mutation B { b }", Some("B")), Some(("mutation", Some("B".into()))));
        assert_eq!(operation("fragment F on User { name } subscription { ticks }", None), Some(("subscription", None)));
        assert_eq!(operation("not graphql at all", None), None);
    }

    fn post(body: &str) -> Message {
        let mut headers = crate::exchange::Headers::default();
        headers.push("content-type", "application/json");
        Message {
            at: Default::default(),
            end: Default::default(),
            start: StartLine::Request { method: "POST".into(), target: "/graphql".into() },
            version: Some(1),
            headers,
            head_size: 0,
            body: body.as_bytes().to_vec(),
            body_size: body.len() as u64,
            body_truncated: false,
            error: None,
        }
    }

    #[test]
    fn bodies_name_the_operation_whatever_their_variables_hold() {
        let named = |b: &str| from_body(&post(b));
        let q = r#""query":"query Q($x: [Int]) { items(x: $x) { id } }""#;
        assert_eq!(named(&format!("{{{q},\"operationName\":\"Q\"}}")).map(|(_, n)| n), Some(Some("Q".into())));
        // A batch: the first operation stands for the request.
        assert_eq!(named(&format!("[{{{q}}},{{\"query\":\"mutation M {{ m }}\"}}]")).map(|(d, _)| d.len()), Some(42));
        // Variables nested 30,000 deep (past any JSON tree's depth limit)
        // are skipped, not built.
        let deep = format!("{}1{}", "[".repeat(30_000), "]".repeat(30_000));
        assert!(named(&format!("{{{q},\"variables\":{{\"x\":{deep}}}}}")).is_some());
        assert_eq!(named(r#"{"query": 7}"#), None);
        assert_eq!(named("not json"), None);
    }

    #[test]
    fn get_requests_are_percent_decoded() {
        assert_eq!(crate::percent_decode("mutation+%7B+a+%7D", true), "mutation { a }");
        assert_eq!(crate::percent_decode("100%", true), "100%");
    }
}
