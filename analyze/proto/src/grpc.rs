//! gRPC over HTTP/2: the length-prefixed message framing of each
//! direction of a stream, the call summary (service, method, status,
//! message counts), and protobuf payloads rendered as JSON.
//!
//! Without a schema a message is decoded from the wire format alone,
//! keyed by field number (what `protoc --decode_raw` prints): a
//! length-delimited field is shown as a string when it is printable
//! UTF-8, as a nested message when it parses as one, and as base64
//! otherwise. With a descriptor set ([`Schemas`], from `protoc
//! --descriptor_set_out --include_imports`) the method's input and output
//! types give field names, via `prost-reflect`, in the canonical proto3
//! JSON mapping.

use base64::Engine;
use get_size2::GetSize;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use serde_json::{Map, Value};

use crate::detail::GrpcCall;

/// Splits `/package.Service/Method` into service and method.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    let method = method.split('?').next().unwrap_or(method);
    (!service.is_empty() && !method.is_empty() && !method.contains('/')).then_some((service, method))
}

/// True for a gRPC content type (`application/grpc`, `application/grpc+proto`, ...).
pub fn is_grpc(content_type: Option<&str>) -> bool {
    // Bytes, not a str slice: the header is traffic, and byte 16 may fall
    // inside a character.
    content_type.is_some_and(|c| c.as_bytes().get(..16).is_some_and(|p| p.eq_ignore_ascii_case(b"application/grpc")))
}

/// Percent-decodes a `grpc-message` value.
pub fn decode_message(v: &str) -> String {
    crate::percent_decode(v, false)
}

/// Reads the 5-byte message prefixes of one direction of a stream as
/// DATA arrives, counting messages and keeping their payloads up to a
/// cap.
#[derive(Debug, Default, Clone, GetSize)]
pub struct Framer {
    prefix: [u8; 5],
    have: u8,
    /// Payload bytes of the current message still to come.
    left: u32,
    /// Keeping the current message (it began under the cap).
    keeping: bool,
    /// A gap broke the framing; it resumes at the next DATA frame.
    lost: bool,
    pub count: u32,
    pub compressed: u32,
    /// Kept messages: compressed flag and payload (the last may be cut).
    pub kept: Vec<(bool, Vec<u8>)>,
    kept_bytes: usize,
}

impl Framer {
    /// A DATA frame begins: after lost framing, assume a message starts
    /// here (gRPC implementations begin each message in a new frame).
    pub fn frame_start(&mut self) {
        if self.lost {
            self.lost = false;
            self.have = 0;
            self.left = 0;
            self.keeping = false;
        }
    }

    /// Bytes of the stream were not captured.
    pub fn gap(&mut self) {
        self.lost = true;
    }

    /// In-order DATA payload bytes; `cap` bounds the kept payload bytes.
    pub fn data(&mut self, mut bytes: &[u8], cap: usize) {
        while !bytes.is_empty() && !self.lost {
            if self.left == 0 && self.have < 5 {
                let n = (5 - self.have as usize).min(bytes.len());
                self.prefix[self.have as usize..self.have as usize + n].copy_from_slice(&bytes[..n]);
                self.have += n as u8;
                bytes = &bytes[n..];
                if self.have < 5 {
                    return;
                }
                if self.prefix[0] > 1 {
                    // Not a message prefix: framing is lost.
                    self.gap();
                    return;
                }
                let len = u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]);
                self.count += 1;
                self.compressed += (self.prefix[0] == 1) as u32;
                self.keeping = self.kept_bytes < cap;
                if self.keeping {
                    self.kept.push((self.prefix[0] == 1, Vec::new()));
                }
                self.left = len;
                if len == 0 {
                    self.have = 0;
                }
                continue;
            }
            let n = (self.left as usize).min(bytes.len());
            if self.keeping {
                let room = cap.saturating_sub(self.kept_bytes).min(n);
                if let Some((_, m)) = self.kept.last_mut() {
                    m.extend_from_slice(&bytes[..room]);
                }
                self.kept_bytes += room;
            }
            self.left -= n as u32;
            bytes = &bytes[n..];
            if self.left == 0 {
                self.have = 0;
            }
        }
    }
}

/// Protobuf schemas from a descriptor set.
#[derive(Debug, Clone)]
pub struct Schemas {
    pool: DescriptorPool,
}

impl Schemas {
    /// Reads serialized `FileDescriptorSet`s into one pool; an error
    /// names the 0-based index of the set that failed.
    pub fn from_sets(sets: &[Vec<u8>]) -> Result<Schemas, (usize, String)> {
        let mut pool = DescriptorPool::new();
        for (i, set) in sets.iter().enumerate() {
            pool.decode_file_descriptor_set(&set[..]).map_err(|e| (i, e.to_string()))?;
        }
        Ok(Schemas { pool })
    }

    /// Services the set describes.
    pub fn services(&self) -> Vec<String> {
        self.pool.services().map(|s| s.full_name().to_string()).collect()
    }

    fn method(&self, service: &str, method: &str) -> Option<MethodDescriptor> {
        self.pool.get_service_by_name(service)?.methods().find(|m| m.name() == method)
    }
}

/// Renders the kept messages of one direction as a JSON array. `request`
/// picks the method's input type (else its output type) when `schemas`
/// describes the method; messages compressed with gzip are inflated.
pub fn messages_json(
    call: &GrpcCall,
    kept: &[(bool, Vec<u8>)],
    encoding: Option<&str>,
    schemas: Option<&Schemas>,
    request: bool,
    cap: usize,
) -> String {
    let desc = schemas
        .and_then(|s| s.method(&call.service, &call.method))
        .map(|m| if request { m.input() } else { m.output() });
    let gzip = encoding.is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    let items: Vec<Value> = kept
        .iter()
        .map(|(compressed, payload)| {
            let inflated;
            let bytes = if *compressed {
                if !gzip {
                    return serde_json::json!({ "compressed": encoding.unwrap_or("unknown"), "bytes": payload.len() });
                }
                match crate::body::inflate::gunzip(payload, cap) {
                    Ok(b) => {
                        inflated = b;
                        &inflated[..]
                    }
                    Err(e) => return serde_json::json!({ "undecodable": e }),
                }
            } else {
                &payload[..]
            };
            if let Some(d) = &desc
                && let Ok(m) = DynamicMessage::decode(d.clone(), bytes)
                && let Ok(v) = serde_json::to_value(&m)
            {
                return v;
            }
            raw_message(bytes, 0)
                .map(Value::Object)
                .unwrap_or_else(|| serde_json::json!({ "undecodable": base64(bytes) }))
        })
        .collect();
    Value::Array(items).to_string()
}

fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

const MAX_DEPTH: usize = 16;

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes a protobuf message without its schema: field number to value;
/// repeated fields become arrays. None when the bytes are not a message.
pub fn raw_message(b: &[u8], depth: usize) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let field = key >> 3;
        if field == 0 || field > (1 << 29) - 1 {
            return None;
        }
        let value = match key & 7 {
            0 => Value::from(varint(b, &mut pos)?),
            1 => {
                let v = b.get(pos..pos + 8)?;
                pos += 8;
                Value::from(u64::from_le_bytes(v.try_into().ok()?))
            }
            5 => {
                let v = b.get(pos..pos + 4)?;
                pos += 4;
                Value::from(u32::from_le_bytes(v.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(varint(b, &mut pos)?).ok()?;
                let v = b.get(pos..pos.checked_add(len)?)?;
                pos += len;
                length_delimited(v, depth)
            }
            _ => return None,
        };
        // Values are never arrays, so an array is a repeated field.
        match out.get_mut(&field.to_string()) {
            Some(Value::Array(a)) => a.push(value),
            Some(prev) => *prev = Value::Array(vec![prev.take(), value]),
            None => {
                out.insert(field.to_string(), value);
            }
        }
    }
    Some(out)
}

fn length_delimited(v: &[u8], depth: usize) -> Value {
    if let Ok(s) = std::str::from_utf8(v)
        && s.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
    {
        return Value::String(s.to_string());
    }
    if depth < MAX_DEPTH
        && !v.is_empty()
        && let Some(m) = raw_message(v, depth + 1)
    {
        return Value::Object(m);
    }
    Value::String(base64(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `h2` and `capture_reader` fuzz targets (crash
    /// c6bba658, 46728525): a content type with a character across byte
    /// 16 panicked on a str slice.
    #[test]
    fn fuzz_h2_c6bba658_content_type_cut_inside_a_character() {
        assert!(!is_grpc(Some("application/grp\u{e9}c")));
        assert!(!is_grpc(Some("H\u{fffd}.\u{fffd} \u{fffd}")));
        assert!(is_grpc(Some("Application/GRPC+proto")));
        assert!(!is_grpc(Some("application/grp")));
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(split_path("/helloworld.Greeter/SayHello"), Some(("helloworld.Greeter", "SayHello")));
        assert_eq!(split_path("/StreamingService/ClientStreamRPC"), Some(("StreamingService", "ClientStreamRPC")));
        assert_eq!(split_path("/index.html"), None);
        assert_eq!(split_path("/a/b/c"), None);
    }

    #[test]
    fn framer_counts_messages_across_frames_and_flags() {
        let mut f = Framer::default();
        // Two messages, the second compressed, split at awkward places.
        let wire = [&[0u8, 0, 0, 0, 3, 8, 150, 1][..], &[1, 0, 0, 0, 2, 0xaa, 0xbb]].concat();
        for chunk in wire.chunks(3) {
            f.data(chunk, 1024);
        }
        assert_eq!((f.count, f.compressed), (2, 1));
        assert_eq!(f.kept, vec![(false, vec![8, 150, 1]), (true, vec![0xaa, 0xbb])]);
    }

    #[test]
    fn framer_resumes_at_the_next_frame_after_a_gap() {
        let mut f = Framer::default();
        f.data(&[0, 0, 0, 0, 10, 1, 2], 1024);
        f.gap();
        f.data(&[3, 4, 5], 1024);
        f.frame_start();
        f.data(&[0, 0, 0, 0, 0], 1024);
        assert_eq!(f.count, 2);
    }

    #[test]
    fn schemaless_decoding_keys_by_field_number() {
        // {1: 150, 2: "testing", 3: {1: 1}, 4: [5, 6]}
        let b = [
            0x08, 0x96, 0x01, 0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g', 0x1a, 0x02, 0x08, 0x01, 0x20, 0x05,
            0x20, 0x06,
        ];
        let v = Value::Object(raw_message(&b, 0).unwrap());
        assert_eq!(v, serde_json::json!({"1": 150, "2": "testing", "3": {"1": 1}, "4": [5, 6]}));
        assert!(raw_message(&[0x0b], 0).is_none(), "groups are not decoded");
        assert!(raw_message(&[0x12, 0x05, 1], 0).is_none(), "a length past the end is not a message");
    }

    #[test]
    fn grpc_message_is_percent_decoded() {
        assert_eq!(decode_message("no%20such%20user%3A%20bob"), "no such user: bob");
        assert_eq!(decode_message("100%"), "100%");
    }
}
