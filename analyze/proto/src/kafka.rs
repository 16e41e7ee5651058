//! Kafka's wire protocol: request headers (API key and version,
//! correlation id, client id), the topics of Produce and Fetch requests,
//! and responses paired by correlation id with their error code.
//!
//! Requests and responses are size-prefixed. Since KIP-482 newer
//! versions of each API are "flexible": compact strings and arrays
//! (unsigned varint lengths plus one) and tagged fields; [`flexible`]
//! knows from which version each API is.

use crate::Limits;
use crate::detail::KafkaInfo;
use crate::exchange::{Message, StartLine};
use crate::frames::NAME_KEEP;
use crate::frames::{Cursor, Frame, Framed, Framer, Shape, text};
use crate::pairing::{Asked, Book, Pairing};
use get_size2::GetSize;

/// Topics kept per request.
const MAX_TOPICS: usize = 32;
/// Requests above this size are not Kafka (the broker's default
/// `socket.request.max.bytes` is 100 MiB).
const MAX_SIZE: i32 = 1 << 30;

/// The name of an API key.
pub fn api_name(key: i16) -> &'static str {
    const NAMES: &[&str] = &[
        "Produce",
        "Fetch",
        "ListOffsets",
        "Metadata",
        "LeaderAndIsr",
        "StopReplica",
        "UpdateMetadata",
        "ControlledShutdown",
        "OffsetCommit",
        "OffsetFetch",
        "FindCoordinator",
        "JoinGroup",
        "Heartbeat",
        "LeaveGroup",
        "SyncGroup",
        "DescribeGroups",
        "ListGroups",
        "SaslHandshake",
        "ApiVersions",
        "CreateTopics",
        "DeleteTopics",
        "DeleteRecords",
        "InitProducerId",
        "OffsetForLeaderEpoch",
        "AddPartitionsToTxn",
        "AddOffsetsToTxn",
        "EndTxn",
        "WriteTxnMarkers",
        "TxnOffsetCommit",
        "DescribeAcls",
        "CreateAcls",
        "DeleteAcls",
        "DescribeConfigs",
        "AlterConfigs",
        "AlterReplicaLogDirs",
        "DescribeLogDirs",
        "SaslAuthenticate",
        "CreatePartitions",
        "CreateDelegationToken",
        "RenewDelegationToken",
        "ExpireDelegationToken",
        "DescribeDelegationToken",
        "DeleteGroups",
        "ElectLeaders",
        "IncrementalAlterConfigs",
        "AlterPartitionReassignments",
        "ListPartitionReassignments",
        "OffsetDelete",
        "DescribeClientQuotas",
        "AlterClientQuotas",
        "DescribeUserScramCredentials",
        "AlterUserScramCredentials",
    ];
    usize::try_from(key).ok().and_then(|k| NAMES.get(k)).copied().unwrap_or("Unknown")
}

/// The first flexible version of an API (None: never flexible, or not
/// known here).
pub fn flexible(key: i16) -> Option<i16> {
    Some(match key {
        0 => 9,
        1 => 12,
        2 => 6,
        3 => 9,
        4 => 4,
        5 => 2,
        6 => 6,
        7 => 3,
        8 => 8,
        9 => 6,
        10 => 3,
        11 => 6,
        12 => 4,
        13 => 4,
        14 => 4,
        15 => 5,
        16 => 3,
        18 => 3,
        19 => 5,
        20 => 4,
        21 => 2,
        22 => 2,
        23 => 4,
        24 => 3,
        25 => 3,
        26 => 3,
        27 => 1,
        28 => 3,
        29..=41 => 2,
        42 | 43 => 2,
        44 => 1,
        45 | 46 => 0,
        48..=51 => 0,
        _ => return None,
    })
}

fn is_flexible(key: i16, version: i16) -> bool {
    flexible(key).is_some_and(|v| version >= v)
}

/// Kafka's framing: a 4-byte size.
pub(crate) struct Kf;

impl Shape for Kf {
    fn head_len(&self, _: u8) -> usize {
        4
    }
    fn body_len(&self, head: &[u8]) -> Result<u64, String> {
        let n = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if !(4..MAX_SIZE).contains(&n) {
            return Err(format!("message size {n}"));
        }
        Ok(n as u64)
    }
}

/// Does this look like a Kafka request (size, a known API key and a
/// version it has, a client id that fits)?
pub fn probe(b: &[u8]) -> bool {
    let mut c = Cursor::new(b);
    let (Some(size), Some(key), Some(version), Some(_correlation), Some(client_len)) =
        (c.i32(), c.i16(), c.i16(), c.i32(), c.i16())
    else {
        return false;
    };
    (14..MAX_SIZE).contains(&size)
        && api_name(key) != "Unknown"
        && (0..=20).contains(&version)
        && (client_len == -1
            || (0..=255).contains(&client_len)
                && c.take(client_len as usize).is_none_or(|id| id.iter().all(|x| x.is_ascii_graphic())))
        && i32::from(client_len.max(0)) + 10 <= size
}

fn uvarint(c: &mut Cursor<'_>) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = c.u8()?;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Skips tagged fields (flexible versions).
fn tagged(c: &mut Cursor<'_>) -> Option<()> {
    for _ in 0..uvarint(c)? {
        let _tag = uvarint(c)?;
        let n = uvarint(c)?;
        c.skip(usize::try_from(n).ok()?)?;
    }
    Some(())
}

/// A (nullable) string, compact in flexible versions.
fn string<'a>(c: &mut Cursor<'a>, flex: bool) -> Option<Option<&'a [u8]>> {
    let n = if flex { uvarint(c)? as i64 - 1 } else { i64::from(c.i16()?) };
    if n < 0 { Some(None) } else { c.take(usize::try_from(n).ok()?).map(Some) }
}

/// An array's length, compact in flexible versions (null reads as 0).
fn array_len(c: &mut Cursor<'_>, flex: bool) -> Option<u64> {
    let n = if flex { uvarint(c)? as i64 - 1 } else { i64::from(c.i32()?) };
    Some(n.max(0) as u64)
}

/// Bytes (records), compact in flexible versions.
fn bytes(c: &mut Cursor<'_>, flex: bool) -> Option<()> {
    let n = if flex { uvarint(c)? as i64 - 1 } else { i64::from(c.i32()?) };
    if n > 0 { c.skip(usize::try_from(n).ok()?) } else { Some(()) }
}

/// The topics a Produce or Fetch request names.
fn request_topics(key: i16, v: i16, c: &mut Cursor<'_>, flex: bool, topics: &mut Vec<String>) -> Option<()> {
    match key {
        0 => {
            if v >= 3 {
                string(c, flex)?;
            }
            c.skip(2 + 4)?;
            for _ in 0..array_len(c, flex)? {
                let name = string(c, flex)?.unwrap_or_default();
                if topics.len() < MAX_TOPICS {
                    topics.push(text(name, NAME_KEEP));
                }
                for _ in 0..array_len(c, flex)? {
                    c.skip(4)?;
                    bytes(c, flex)?;
                    if flex {
                        tagged(c)?;
                    }
                }
                if flex {
                    tagged(c)?;
                }
            }
        }
        1 => {
            c.skip(4 + 4 + 4)?;
            if v >= 3 {
                c.skip(4)?;
            }
            if v >= 4 {
                c.skip(1)?;
            }
            if v >= 7 {
                c.skip(8)?;
            }
            for _ in 0..array_len(c, flex)? {
                let name =
                    if v >= 13 { c.take(16).map(hex)? } else { text(string(c, flex)?.unwrap_or_default(), NAME_KEEP) };
                if topics.len() < MAX_TOPICS {
                    topics.push(name);
                }
                let per_partition =
                    4 + if v >= 9 { 4 } else { 0 } + 8 + if v >= 12 { 4 } else { 0 } + if v >= 5 { 8 } else { 0 } + 4;
                for _ in 0..array_len(c, flex)? {
                    c.skip(per_partition)?;
                    if flex {
                        tagged(c)?;
                    }
                }
                if flex {
                    tagged(c)?;
                }
            }
        }
        _ => {}
    }
    Some(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The response's error code (see [`KafkaInfo::error_code`]).
fn response_error(key: i16, v: i16, c: &mut Cursor<'_>, flex: bool) -> Option<i16> {
    match key {
        // Error code first.
        17 | 18 | 36 => c.i16(),
        // Throttle time (from v1), then the error code.
        10 | 11 | 12 | 13 | 14 | 22 => {
            if v >= 1 {
                c.skip(4)?;
            }
            c.i16()
        }
        0 => {
            for _ in 0..array_len(c, flex)? {
                string(c, flex)?;
                for _ in 0..array_len(c, flex)? {
                    c.skip(4)?;
                    let e = c.i16()?;
                    if e != 0 {
                        return Some(e);
                    }
                    // The rest of a partition is variable from v8: stop at the first.
                    if v >= 8 {
                        return Some(0);
                    }
                    c.skip(8 + if v >= 2 { 8 } else { 0 } + if v >= 5 { 8 } else { 0 })?;
                }
            }
            Some(0)
        }
        1 => {
            if v >= 1 {
                c.skip(4)?;
            }
            if v >= 7 {
                let e = c.i16()?;
                c.skip(4)?;
                if e != 0 {
                    return Some(e);
                }
            }
            if array_len(c, flex)? == 0 {
                return Some(0);
            }
            if v >= 13 {
                c.skip(16)?;
            } else {
                string(c, flex)?;
            }
            if array_len(c, flex)? == 0 {
                return Some(0);
            }
            c.skip(4)?;
            c.i16()
        }
        _ => None,
    }
}

impl Framed for KafkaConn {
    type Shape = Kf;
    const NAME: &'static str = "Kafka";
    const BAD: &'static str = "bad_kafka_message";
    const LOST: &'static str = "kafka_framing_lost";
    fn shape() -> Kf {
        Kf
    }
    fn framers(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }
    fn book(&mut self) -> &mut dyn Book {
        &mut self.pairs
    }
    fn book_ref(&self) -> &dyn Book {
        &self.pairs
    }
    fn message(&mut self, i: usize, f: &Frame<'_>) {
        if i == 0 { self.request(f) } else { self.response(f) }
    }
}

/// Kafka state of one TCP connection.
#[derive(Debug, GetSize)]
pub struct KafkaConn {
    framers: [Framer; 2],
    /// Requests waiting for their responses, paired by correlation id.
    pairs: Pairing<Asked<KafkaInfo>>,
}

impl KafkaConn {
    pub fn new(limits: Limits) -> KafkaConn {
        KafkaConn { framers: Default::default(), pairs: Pairing::new(limits.max_pending) }
    }

    fn request(&mut self, f: &Frame<'_>) {
        let mut c = Cursor::new(f.body);
        let (Some(key), Some(version), Some(correlation_id)) = (c.i16(), c.i16(), c.i32()) else { return };
        let client_id = string(&mut c, false).flatten().map(|s| text(s, NAME_KEEP));
        let flex = is_flexible(key, version);
        let mut topics = Vec::new();
        if !flex || tagged(&mut c).is_some() {
            // Topics read before a cut (the capped body) are kept.
            let _ = request_topics(key, version, &mut c, flex, &mut topics);
        }
        let name = api_name(key);
        let request =
            Message::wire(f.at, f.end, StartLine::Request { method: name.into(), target: topics.join(",") }, f.size());
        let info =
            KafkaInfo { api_key: key, api_version: version, correlation_id, client_id, topics, error_code: None };
        self.pairs.wait(Asked { key: correlation_id.into(), request, info });
    }

    fn response(&mut self, f: &Frame<'_>) {
        let mut c = Cursor::new(f.body);
        let Some(correlation_id) = c.i32() else { return };
        let response = Message::wire(f.at, f.end, StartLine::Unknown, f.size());
        // Requests before this one that a broker skipped stay waiting
        // until the connection ends (Produce with acks=0).
        let Some(mut p) = self.pairs.answer(|p| p.key == i64::from(correlation_id)) else {
            let info = KafkaInfo { correlation_id, api_key: -1, ..KafkaInfo::default() };
            self.pairs.rows.row(None, Some(response), info, Some("no_request"));
            return;
        };
        let (key, v) = (p.info.api_key, p.info.api_version);
        // ApiVersions responses keep the v0 header for clients that
        // cannot read a newer one.
        let flex = is_flexible(key, v) && key != 18;
        if !flex || tagged(&mut c).is_some() {
            p.info.error_code = response_error(key, v, &mut c, is_flexible(key, v));
        }
        self.pairs.rows.row(Some(p.request), Some(response), p.info, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::Side;
    use crate::testing::{Step, every_chunking};

    fn sized(body: &[u8]) -> Vec<u8> {
        let mut m = (body.len() as u32).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn produce_v2_topics_and_partition_error() {
        let mut body = vec![0, 0, 0, 2, 0, 0, 0, 7, 0, 3];
        body.extend_from_slice(b"app");
        body.extend_from_slice(&[0, 1, 0, 0, 0x75, 0x30]);
        body.extend_from_slice(&[0, 0, 0, 1, 0, 6]);
        body.extend_from_slice(b"orders");
        body.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 9, 9]);
        let req = sized(&body);
        assert!(probe(&req));
        let mut resp = vec![0, 0, 0, 7, 0, 0, 0, 1, 0, 6];
        resp.extend_from_slice(b"orders");
        resp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 3]);
        resp.extend_from_slice(&[0; 16]);
        resp.extend_from_slice(&[0; 4]);
        let resp = sized(&resp);
        let out = every_chunking(
            || Box::new(KafkaConn::new(Limits::default())),
            &[Step::Data(Side::Requester, &req), Step::Data(Side::Responder, &resp)],
        );
        let k = out.exchanges[0].detail.kafka().unwrap();
        assert_eq!((k.api_key, api_name(k.api_key), k.api_version, k.correlation_id), (0, "Produce", 2, 7));
        assert_eq!(
            (k.client_id.as_deref(), k.topics.as_slice(), k.error_code),
            (Some("app"), &["orders".to_string()][..], Some(3))
        );
        assert!(!probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
}
