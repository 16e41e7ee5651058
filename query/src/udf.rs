//! Scalar functions SQL lacks, registered on every session:
//!
//! | function | returns | |
//! |---|---|---|
//! | `cidr_match(ip, cidr)` | bool | `ip` lies in `cidr` (`10.0.0.0/8`, `fd00::/8`); null if either is not an address |
//! | `map_get(map, key, default)` | string | the map's value for `key`, else `default` |
//! | `path_template(path)` | string | ids in a path replaced: `/api/orders/123` -> `/api/orders/{id}` |
//! | `endpoint(method, path)` | string | `"GET /api/orders/{id}"` |
//! | `body_text(bytes)` | string | a stored body as UTF-8 text (invalid bytes replaced) |
//! | `cookies(header, is_set_cookie)` | map | cookies of a `Cookie` (or `Set-Cookie`) header |

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, MapBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Every function of this module.
pub fn all() -> Vec<Arc<ScalarUDF>> {
    vec![cidr_match(), map_get(), path_template(), endpoint(), body_text(), cookies()]
}

/// Registers every function of this module on `ctx`.
pub fn register(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf((*f).clone());
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Udf {
    name: &'static str,
    signature: Signature,
    ret: DataType,
    kind: Kind,
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    Cidr,
    MapGet,
    PathTemplate,
    Endpoint,
    BodyText,
    Cookies,
}

fn make(name: &'static str, signature: Signature, ret: DataType, kind: Kind) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(Udf { name, signature, ret, kind }))
}

fn map_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()).finish().data_type().clone()
}

pub fn cidr_match() -> Arc<ScalarUDF> {
    static F: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
        make(
            "cidr_match",
            Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
            DataType::Boolean,
            Kind::Cidr,
        )
    });
    F.clone()
}

pub fn map_get() -> Arc<ScalarUDF> {
    static F: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| make("map_get", Signature::any(3, Volatility::Immutable), DataType::Utf8, Kind::MapGet));
    F.clone()
}

pub fn path_template() -> Arc<ScalarUDF> {
    static F: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
        make("path_template", Signature::any(1, Volatility::Immutable), DataType::Utf8, Kind::PathTemplate)
    });
    F.clone()
}

/// `endpoint(method, path)`: `"GET /api/orders/{id}"` in one pass (the
/// `calls` view's `endpoint` column; grouping by it is the common query).
pub fn endpoint() -> Arc<ScalarUDF> {
    static F: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| make("endpoint", Signature::any(2, Volatility::Immutable), DataType::Utf8, Kind::Endpoint));
    F.clone()
}

pub fn body_text() -> Arc<ScalarUDF> {
    static F: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
        make(
            "body_text",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Binary]),
                    TypeSignature::Exact(vec![DataType::BinaryView]),
                    TypeSignature::Exact(vec![DataType::LargeBinary]),
                ],
                Volatility::Immutable,
            ),
            DataType::Utf8,
            Kind::BodyText,
        )
    });
    F.clone()
}

pub fn cookies() -> Arc<ScalarUDF> {
    static F: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
        make(
            "cookies",
            Signature::exact(vec![DataType::Utf8, DataType::Boolean], Volatility::Immutable),
            map_type(),
            Kind::Cookies,
        )
    });
    F.clone()
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.ret.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.kind {
            Kind::Cidr => {
                let (ips, nets) = (utf8(&arrays[0])?, utf8(&arrays[1])?);
                // The network is nearly always a literal: parse it once.
                let mut cached: Option<(usize, Option<Cidr>)> = None;
                let mut out = Vec::with_capacity(ips.len());
                for i in 0..ips.len() {
                    if ips.is_null(i) || nets.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let net = match &cached {
                        Some((j, n)) if nets.value(*j) == nets.value(i) => *n,
                        _ => {
                            let n = Cidr::parse(nets.value(i));
                            if n.is_none() {
                                return exec_err!(
                                    "cidr_match: {:?} is not a network such as \"10.0.0.0/8\" or \"fd00::/8\"",
                                    nets.value(i)
                                );
                            }
                            cached = Some((i, n));
                            n
                        }
                    };
                    out.push(match (ips.value(i).parse::<IpAddr>(), net) {
                        (Ok(ip), Some(n)) => Some(n.contains(ip)),
                        _ => None,
                    });
                }
                Arc::new(BooleanArray::from(out))
            }
            Kind::MapGet => {
                let Some(map) = arrays[0].as_map_opt() else {
                    return exec_err!("map_get: the first argument must be a map, found {}", arrays[0].data_type());
                };
                let keys = datafusion::arrow::compute::cast(&arrays[1], &DataType::Utf8)?;
                let defaults = datafusion::arrow::compute::cast(&arrays[2], &DataType::Utf8)?;
                let (keys, defaults) = (keys.as_string::<i32>(), defaults.as_string::<i32>());
                let mk = datafusion::arrow::compute::cast(map.keys(), &DataType::Utf8)?;
                let mv = datafusion::arrow::compute::cast(map.values(), &DataType::Utf8)?;
                let (mk, mv) = (mk.as_string::<i32>(), mv.as_string::<i32>());
                let offsets = map.value_offsets();
                let mut b = StringBuilder::new();
                for i in 0..map.len() {
                    let found = if map.is_null(i) || keys.is_null(i) {
                        None
                    } else {
                        let k = keys.value(i);
                        (offsets[i] as usize..offsets[i + 1] as usize)
                            .find(|&j| mk.value(j) == k)
                            .filter(|&j| mv.is_valid(j))
                            .map(|j| mv.value(j))
                    };
                    match found {
                        Some(v) => b.append_value(v),
                        None if defaults.is_valid(i) => b.append_value(defaults.value(i)),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Kind::PathTemplate => {
                let paths = strings(&arrays[0], "path_template")?;
                let mut b = StringBuilder::with_capacity(paths.len(), paths.len() * 16);
                let mut buf = String::new();
                for p in paths {
                    match p {
                        Some(p) => {
                            buf.clear();
                            template_into(p, &mut buf);
                            b.append_value(&buf);
                        }
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Endpoint => {
                let (methods, paths) = (strings(&arrays[0], "endpoint")?, strings(&arrays[1], "endpoint")?);
                let mut b = StringBuilder::with_capacity(paths.len(), paths.len() * 24);
                let mut buf = String::new();
                for (m, p) in methods.into_iter().zip(paths) {
                    buf.clear();
                    if let Some(m) = m {
                        buf.push_str(m);
                    }
                    if let Some(p) = p {
                        if !buf.is_empty() {
                            buf.push(' ');
                        }
                        template_into(p, &mut buf);
                    }
                    b.append_value(&buf);
                }
                Arc::new(b.finish())
            }
            Kind::BodyText => {
                let bin = datafusion::arrow::compute::cast(&arrays[0], &DataType::Binary)?;
                let bin = bin.as_binary::<i32>();
                Arc::new(
                    bin.iter().map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned())).collect::<StringArray>(),
                )
            }
            Kind::Cookies => {
                let h = utf8(&arrays[0])?;
                let set = arrays[1].as_boolean();
                let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                for i in 0..h.len() {
                    if h.is_valid(i) {
                        for (k, v) in parse_cookies(h.value(i), set.is_valid(i) && set.value(i)) {
                            b.keys().append_value(k);
                            b.values().append_value(v);
                        }
                    }
                    b.append(true)?;
                }
                Arc::new(b.finish())
            }
        };
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// The values of any string array (Utf8, Utf8View, LargeUtf8), without
/// casting it first.
fn strings<'a>(a: &'a ArrayRef, f: &str) -> Result<Vec<Option<&'a str>>> {
    Ok(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().collect(),
        DataType::Utf8View => a.as_string_view().iter().collect(),
        DataType::Null => vec![None; a.len()],
        other => return exec_err!("{f}: expected a string argument, found {other}"),
    })
}

fn utf8(a: &ArrayRef) -> Result<&StringArray> {
    match a.as_string_opt::<i32>() {
        Some(s) => Ok(s),
        None => exec_err!("expected a string argument, found {}", a.data_type()),
    }
}

#[derive(Debug, Clone, Copy)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a.trim().parse::<IpAddr>().ok()?, Some(b.trim().parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net: addr, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        // IPv4-mapped IPv6 addresses match IPv4 networks.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.bits == 0 { 0 } else { u32::MAX << (32 - self.bits) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.bits == 0 { 0 } else { u128::MAX << (128 - self.bits) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Replaces the id-like segments of a path:
/// all digits -> `{id}`; a UUID -> `{uuid}`; 16+ hex digits -> `{hex}`;
/// 20+ characters mixing letters and digits -> `{token}`.
pub fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    template_into(path, &mut out);
    out
}

/// [`template`], appending to `out`.
pub fn template_into(path: &str, out: &mut String) {
    let mut start = 0;
    for slash in memchr::memchr_iter(b'/', path.as_bytes()).chain([path.len()]) {
        let seg = &path[start..slash];
        out.push_str(classify(seg).unwrap_or(seg));
        if slash < path.len() {
            out.push('/');
        }
        start = slash + 1;
    }
}

fn classify(seg: &str) -> Option<&'static str> {
    let b = seg.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some("{id}");
    }
    let is_uuid = b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() });
    if is_uuid {
        return Some("{uuid}");
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) {
        return Some("{hex}");
    }
    let alnum = b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
    if b.len() >= 20 && alnum && b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_alphabetic) {
        return Some("{token}");
    }
    None
}

/// `a=1; b=2` (Cookie) or the name=value of `a=1; Path=/, b=2; HttpOnly`
/// (Set-Cookie values joined with ", ").
fn parse_cookies(h: &str, set_cookie: bool) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    if set_cookie {
        // Set-Cookie values were joined with ", "; an Expires date also
        // holds ", ", so only a part that starts a name=value pair counts.
        for part in h.split(", ") {
            let first = part.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let k = k.trim();
                if !k.is_empty() && !k.contains(' ') {
                    out.push((k, v.trim()));
                }
            }
        }
    } else {
        for pair in h.split(';') {
            if let Some((k, v)) = pair.split_once('=') {
                let k = k.trim();
                if !k.is_empty() {
                    out.push((k, v.trim()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates() {
        assert_eq!(template("/api/orders/123"), "/api/orders/{id}");
        assert_eq!(template("/u/0b7e2c4a-9f1d-4c1e-8a2b-3c4d5e6f7a8b/cart"), "/u/{uuid}/cart");
        assert_eq!(template("/blob/9f86d081884c7d659a2feaa0c55ad015"), "/blob/{hex}");
        assert_eq!(template("/s/abcDEF1234567890ghijKL"), "/s/{token}");
        assert_eq!(template("/api/v2/health"), "/api/v2/health");
        assert_eq!(template("/"), "/");
        assert_eq!(template("/a//7/"), "/a//{id}/");
    }

    #[test]
    fn cidrs() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()));
        let n = Cidr::parse("fd00::/8").unwrap();
        assert!(n.contains("fd12::1".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("banana").is_none());
        assert!(Cidr::parse("192.168.1.7").unwrap().contains("192.168.1.7".parse().unwrap()));
    }

    #[test]
    fn cookie_headers() {
        assert_eq!(parse_cookies("a=1; b=two", false), vec![("a", "1"), ("b", "two")]);
        assert_eq!(
            parse_cookies("sid=x; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT, theme=dark; HttpOnly", true),
            vec![("sid", "x"), ("theme", "dark")]
        );
    }
}
