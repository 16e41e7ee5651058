//! Any bytes as a KFL filter (on calls and on flows) and as SQL, against
//! a real snapshot (the demo capture, analysed once): parsing, typing,
//! lowering and planning return a result or a typed error, never panic.
//! KFL filters also run (the snapshot is small); SQL is planned, not run
//! (a fuzzer's cross join would run for hours, which the MCP server's
//! time limit, not a parser, answers).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trawl_query::Catalog;
use trawl_query::kfl::Table;

fn catalog() -> &'static (tokio::runtime::Runtime, Catalog) {
    static CAT: OnceLock<(tokio::runtime::Runtime, Catalog)> = OnceLock::new();
    CAT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let dir = std::env::temp_dir().join(format!("trawl-fuzz-kfl-{}", std::process::id()));
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/demo/checkout.pcap");
        let opts = trawl_analyze::Options { inputs: vec![demo.into()], threads: 1, ..Default::default() };
        trawl_analyze::analyze_to_snapshot(&opts, &dir, true, &Default::default()).expect("the demo capture analyses");
        let cat = rt.block_on(Catalog::open(&dir, 1)).expect("the demo snapshot opens");
        (rt, cat)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(text);
    let (rt, cat) = catalog();
    rt.block_on(async {
        match mode % 3 {
            0 | 1 => {
                let table = if mode % 3 == 0 { Table::Calls } else { Table::Flows };
                if let Ok(c) = cat.compile_kfl(table, &text).await
                    && let Ok(df) = cat.context().table(Catalog::kfl_table(table)).await
                {
                    let df = match c.expr {
                        Some(e) => df.filter(e),
                        None => Ok(df),
                    };
                    if let Ok(df) = df.and_then(|d| d.limit(0, Some(10))) {
                        let _ = df.collect().await;
                    }
                }
            }
            _ => {
                if let Ok(df) = cat.sql_frame(&text).await {
                    let _ = df.create_physical_plan().await;
                }
            }
        }
    });
});
