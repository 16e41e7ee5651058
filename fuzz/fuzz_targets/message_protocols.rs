//! Any bytes as the two sides of a PostgreSQL, MySQL, Kafka, AMQP or
//! MongoDB connection (the first byte picks which), cut into segments
//! with gaps: framing, pairing and the capped reading of messages must
//! never panic nor keep more than they should.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::exchange::CloseReason;
use trawl_proto::parser::Parser;
use trawl_proto::{At, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else { return };
    let limits = Limits { max_pending: 8, ..Limits::default() };
    let mut c: Box<dyn Parser> = match pick % 5 {
        0 => Box::new(trawl_proto::postgres::PgConn::new(limits)),
        1 => Box::new(trawl_proto::mysql::MysqlConn::new(limits)),
        2 => Box::new(trawl_proto::kafka::KafkaConn::new(limits)),
        3 => Box::new(trawl_proto::amqp::AmqpConn::new(limits)),
        _ => Box::new(trawl_proto::mongodb::MongoConn::new(limits)),
    };
    segments::drive(data, |e| match e {
        Event::Data(side, at, chunk) => c.on_data(side, at, chunk),
        Event::Gap(side, at, len) => c.on_gap(side, at, len),
    });
    c.on_close(At::default(), CloseReason::CaptureEnd);
    let _ = c.drain();
    // The probes see the same bytes.
    let _ = (
        trawl_proto::postgres::probe(data),
        trawl_proto::mysql::probe(data),
        trawl_proto::kafka::probe(data),
        trawl_proto::amqp::probe(data),
        trawl_proto::mongodb::probe(data),
    );
});
