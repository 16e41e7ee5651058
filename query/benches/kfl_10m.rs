//! Query latency over a 10-million-row calls table.
//!
//!     cargo bench -p trawl-query --bench kfl_10m -- SOURCE.snap [ROWS] [RUNS]
//!
//! (benches/query_10m.sh makes SOURCE.snap from the HTTP benchmark capture
//! and runs this.) The table is built by repeating the real rows of
//! SOURCE's api_calls until it holds ROWS (default 10,000,000): copy k gets
//! ids and flow ids shifted past copy k-1's and timestamps shifted by the
//! capture's span, so every row is a real exchange at a later time. Bodies
//! are left out of the copies (the queries below never read them, and with
//! them the table would be about 20 GB).
//!
//! Each query runs RUNS times (default 5) on a catalog opened with two
//! threads; the median and the worst are printed as a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trawl_query::datafusion::parquet::arrow::ArrowWriter;
use trawl_query::datafusion::parquet::basic::{Compression, ZstdLevel};
use trawl_query::datafusion::parquet::file::properties::WriterProperties;
use trawl_query::datafusion::prelude::{ParquetReadOptions, SessionContext};
use trawl_query::{Catalog, KflQuery, Table, block_on};

const THREADS: usize = 2;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let source = PathBuf::from(args.first().expect("usage: kfl_10m SOURCE.snap [ROWS] [RUNS]"));
    let rows: u64 = args.get(1).map_or(10_000_000, |s| s.parse().expect("ROWS"));
    let runs: usize = args.get(2).map_or(5, |s| s.parse().expect("RUNS"));
    let big = source.with_file_name(format!("{}-{}rows.snap", source.file_name().unwrap().to_string_lossy(), rows));
    if !big.join("manifest.json").exists() {
        let t = Instant::now();
        block_on(THREADS, build(&source, &big, rows)).unwrap();
        eprintln!("built {} in {:.1} s", big.display(), t.elapsed().as_secs_f64());
    }
    block_on(THREADS, measure(&big, runs)).unwrap();
    // The other shape: the source snapshot itself, fewer calls with their
    // bodies stored (large responses), for the time-order page.
    block_on(THREADS, measure_bulk(&source, runs)).unwrap();
}

/// The time-order page on the source snapshot (bodies stored).
async fn measure_bulk(snap: &Path, runs: usize) {
    let cat = Catalog::open(snap, THREADS).await.unwrap();
    let total = cat.kfl_count(Table::Calls, "").await.unwrap();
    println!("\nsource snapshot, bodies stored: {total} calls\n");
    println!("| query | median | worst | target |");
    println!("|---|---|---|---|");
    let page = |order: trawl_query::Order| {
        let cat = &cat;
        move || async move {
            let q =
                KflQuery { table: Table::Calls, filter: String::new(), limit: Some(100), order, ..Default::default() };
            let r = cat.kfl(&q).await.unwrap();
            assert_eq!(r.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
        }
    };
    time("first 100 rows, every column, in id order", "< 200 ms", runs, page(trawl_query::Order::Id)).await;
    time("first 100 rows, every column, in time order", "< 1 s", runs, page(trawl_query::Order::Time)).await;
    let sql = || async {
        let b = cat.sql("SELECT * FROM calls ORDER BY timestamp LIMIT 100").await.unwrap();
        assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
    };
    time("SQL: the same 100 rows in timestamp order (a full top-k)", "", runs, sql).await;
}

/// Writes a snapshot whose api_calls are `rows` rows repeated from `source`.
async fn build(source: &Path, out: &Path, rows: u64) {
    let ctx = SessionContext::new();
    let src = source.join("api_calls.parquet");
    ctx.register_parquet("src", src.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
    let stats = ctx
        .sql(
            "SELECT count(*) AS n, max(id) AS max_id, max(flow_id) AS max_flow, \
             arrow_cast(max(timestamp), 'Int64') - arrow_cast(min(timestamp), 'Int64') + 1000000000 AS span_ns FROM src",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    use trawl_query::datafusion::arrow::array::AsArray;
    use trawl_query::datafusion::arrow::datatypes::{Int64Type, UInt64Type};
    let b = &stats[0];
    let n = b.column(0).as_primitive::<Int64Type>().value(0) as u64;
    let max_id = b.column(1).as_primitive::<UInt64Type>().value(0);
    let max_flow = b.column(2).as_primitive::<UInt64Type>().value(0);
    let span = b.column(3).as_primitive::<Int64Type>().value(0);
    let copies = rows.div_ceil(n);
    let schema = ctx.table("src").await.unwrap().schema().clone();
    let cols = |k: u64| -> String {
        let list: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "id" => format!("id + {k} * {max_id} AS id"),
                "flow_id" => format!("flow_id + {k} * {max_flow} AS flow_id"),
                "timestamp" | "response_timestamp" | "end_timestamp" => {
                    format!("arrow_cast(arrow_cast({0}, 'Int64') + {k} * {span}, 'Timestamp(Nanosecond, Some(\"UTC\"))') AS {0}", f.name())
                }
                "request_body" | "response_body" => format!("arrow_cast(NULL, 'Binary') AS {}", f.name()),
                other => format!("\"{other}\""),
            })
            .collect();
        list.join(", ")
    };
    let tmp = out.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    // One copy at a time, in id order, into one file: the table stays
    // sorted by id as the analyzer writes it, in bounded memory.
    let file = std::fs::File::create(tmp.join("api_calls.parquet")).unwrap();
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap())).build();
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    let mut left = rows;
    for k in 0..copies {
        let take = left.min(n);
        let sql = format!("SELECT {} FROM src ORDER BY id LIMIT {take}", cols(k));
        for batch in ctx.sql(&sql).await.unwrap().collect().await.unwrap() {
            let w = writer.get_or_insert_with(|| {
                ArrowWriter::try_new(file.try_clone().unwrap(), batch.schema(), Some(props.clone())).unwrap()
            });
            w.write(&batch).unwrap();
        }
        left -= take;
    }
    writer.unwrap().close().unwrap();
    for f in ["flows.parquet", "parse_issues.parquet", "packets.parquet"] {
        std::fs::copy(source.join(f), tmp.join(f)).unwrap();
    }
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("manifest.json")).unwrap()).unwrap();
    manifest["tables"]["api_calls"]["rows"] = rows.into();
    // now() is the last packet: the last copy's.
    let big = SessionContext::new();
    big.register_parquet("t", tmp.join("api_calls.parquet").to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let last = big
        .sql("SELECT to_char(max(timestamp), '%Y-%m-%dT%H:%M:%S%.9fZ') FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let last = trawl_query::datafusion::arrow::compute::cast(
        last[0].column(0),
        &trawl_query::datafusion::arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    manifest["last_timestamp"] = last.as_string::<i32>().value(0).into();
    manifest["benchmark"] =
        format!("api_calls: {copies} shifted copies of {}, bodies omitted", source.display()).into();
    std::fs::write(tmp.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(out);
    std::fs::rename(&tmp, out).unwrap();
}

async fn measure(snap: &Path, runs: usize) {
    let t = Instant::now();
    let cat = Catalog::open(snap, THREADS).await.unwrap();
    let open = t.elapsed();
    let total = cat.sql("SELECT count(*) FROM calls").await.unwrap();
    println!(
        "calls rows: {}",
        trawl_query::datafusion::arrow::util::pretty::pretty_format_batches(&total)
            .unwrap()
            .to_string()
            .lines()
            .nth(3)
            .unwrap()
    );
    println!("catalog open: {:.1} ms\n", open.as_secs_f64() * 1e3);
    println!("| query | median | worst | target |");
    println!("|---|---|---|---|");
    let first100 = |filter: &'static str| {
        let cat = &cat;
        move || async move {
            let q = KflQuery {
                table: Table::Calls,
                filter: filter.into(),
                limit: Some(100),
                columns: None,
                ..Default::default()
            };
            let r = cat.kfl(&q).await.unwrap();
            assert_eq!(r.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100, "{filter}");
        }
    };
    time("KFL `http && status_code >= 400`, first 100 rows", "< 200 ms", runs, first100("http && status_code >= 400"))
        .await;
    time(
        "KFL `http && path.startsWith(\"/api\") && method == \"POST\"`, first 100 rows",
        "< 200 ms",
        runs,
        first100(r#"http && path.startsWith("/api") && method == "POST""#),
    )
    .await;
    time(
        "KFL `timestamp > now() - duration(\"1m\")`, first 100 rows",
        "< 200 ms",
        runs,
        first100(r#"timestamp > now() - duration("1m")"#),
    )
    .await;
    let by_time = || async {
        let b = cat
            .sql("SELECT * FROM calls WHERE protocol = 'http' AND status_code >= 400 ORDER BY timestamp LIMIT 100")
            .await
            .unwrap();
        assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
    };
    time("SQL: the same 100 rows in timestamp order (a full top-k)", "", runs, by_time).await;
    let first100_by_time = |filter: &'static str, offset: usize| {
        let cat = &cat;
        move || async move {
            let q = KflQuery {
                table: Table::Calls,
                filter: filter.into(),
                limit: Some(100),
                offset,
                order: trawl_query::Order::Time,
                columns: None,
                ..Default::default()
            };
            let r = cat.kfl(&q).await.unwrap();
            assert_eq!(r.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100, "{filter}");
        }
    };
    time(
        "KFL `http && status_code >= 400`, first 100 rows in time order (list_api_calls' default: keys by top-k, then rows by id)",
        "< 1 s",
        runs,
        first100_by_time("http && status_code >= 400", 0),
    )
    .await;
    time("KFL empty filter, first 100 rows in time order", "< 1 s", runs, first100_by_time("", 0)).await;
    time("KFL empty filter, rows 100,000-100,099 in time order", "< 1 s", runs, first100_by_time("", 100_000)).await;
    let count = |filter: &'static str| {
        let cat = &cat;
        move || async move {
            let n = cat.kfl_count(Table::Calls, filter).await.unwrap();
            assert!(n > 0);
        }
    };
    time("count(*) of all calls (KFL empty filter)", "< 1 s", runs, count("")).await;
    time("count of KFL `http && status_code >= 400`", "< 1 s", runs, count("http && status_code >= 400")).await;
    time(
        "count of KFL `http && request.headers[\"user-agent\"].contains(\"curl\")`",
        "< 1 s",
        runs,
        count(r#"http && request.headers["user-agent"].contains("curl")"#),
    )
    .await;
    let p = || async {
        let sql = "SELECT endpoint, count(*) AS n, \
                   approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY elapsed_time_us) AS p50_us, \
                   approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY elapsed_time_us) AS p99_us \
                   FROM calls GROUP BY endpoint ORDER BY n DESC";
        let b = cat.sql(sql).await.unwrap();
        assert!(b.iter().map(|b| b.num_rows()).sum::<usize>() > 10);
    };
    time("SQL p50/p99 latency grouped by endpoint (all rows)", "< 2 s", runs, p).await;
}

async fn time<F, Fut>(label: &str, target: &str, runs: usize, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| {label} | {:.0} ms | {:.0} ms | {target} |", ms(times[runs / 2]), ms(times[runs - 1]));
}
