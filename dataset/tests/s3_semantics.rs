//! What trawl relies on from an S3-compatible server, checked against the
//! one the tests use (moto's server mode, started here on 127.0.0.1):
//!
//! - a conditional put (`If-None-Match: *`) creates an object once and
//!   fails with "already exists" after: Delta commits and node numbers
//!   depend on it;
//! - listing a prefix returns every object under it (the Delta logs, the
//!   node numbers and the index records are found by listing);
//! - a multipart upload stores exactly the bytes written (data files and
//!   uploaded captures above 10 MB go up in parts).

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

#[tokio::test(flavor = "multi_thread")]
async fn conditional_put_listing_and_multipart() {
    let moto = trawl_dataset::test_server::S3TestServer::start("semantics");
    let store: Arc<dyn ObjectStore> = Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&moto.endpoint)
            .with_allow_http(true)
            .with_bucket_name("semantics")
            .with_region("us-east-1")
            .with_access_key_id("trawl-test")
            .with_secret_access_key("trawl-test")
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
    );

    // Conditional put: the first create wins, the second is refused.
    let create = || PutOptions { mode: PutMode::Create, ..Default::default() };
    let key = Path::from("ds/api_calls/_delta_log/00000000000000000001.json");
    store.put_opts(&key, PutPayload::from("first"), create()).await.unwrap_or_else(|e| panic!("{e}"));
    match store.put_opts(&key, PutPayload::from("second"), create()).await {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        other => panic!("a second create must fail with AlreadyExists, got {other:?}"),
    }
    let got = store.get(&key).await.unwrap_or_else(|e| panic!("{e}")).bytes().await.unwrap_or_default();
    assert_eq!(&got[..], b"first", "the first writer's commit stands");

    // Listing: every object under a prefix, and nothing outside it.
    for i in 0..25 {
        store
            .put(&Path::from(format!("ds/_trawl/nodes/{i:06}.json")), PutPayload::from("{}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let listed: Vec<_> =
        store.list(Some(&Path::from("ds/_trawl/nodes"))).try_collect().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), 25);
    assert!(listed.iter().all(|m| m.location.as_ref().starts_with("ds/_trawl/nodes/")));

    // Multipart: 12 MB through the buffered writer (parts above 10 MB).
    let data: Vec<u8> = (0..12u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let big = Path::from("ds/captures/node=a/big.pcap");
    let mut w = object_store::buffered::BufWriter::new(store.clone(), big.clone());
    use tokio::io::AsyncWriteExt;
    w.write_all(&data).await.unwrap_or_else(|e| panic!("{e}"));
    w.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    let back = store.get(&big).await.unwrap_or_else(|e| panic!("{e}")).bytes().await.unwrap_or_default();
    assert_eq!(back.len(), data.len());
    assert!(back[..] == data[..], "the multipart upload stored other bytes");
}
