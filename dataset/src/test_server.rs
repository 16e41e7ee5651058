//! A real S3-compatible server on 127.0.0.1 for tests and benchmarks:
//! moto's server mode (PyPI: `pip install 'moto[server]'`), started on a
//! free port with one bucket, stopped when dropped. Chosen because it
//! installs from the registries trawl's CI reaches, runs without a
//! container, and honours what trawl relies on: conditional puts
//! (`If-None-Match: *`), listing and multipart uploads
//! (dataset/tests/s3_semantics.rs checks each).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3TestServer {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3TestServer {
    /// Starts the server and creates `bucket`; panics when it cannot (a
    /// test needs it).
    pub fn start(bucket: &str) -> S3TestServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("moto_server (pip install 'moto[server]'): {e}"));
        let server = S3TestServer { child, endpoint: format!("http://127.0.0.1:{port}"), bucket: bucket.to_string() };
        let start = Instant::now();
        // Creating the bucket is also the readiness check.
        while !Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "-X", "PUT", &format!("{}/{bucket}", server.endpoint)])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The environment a trawl process needs to reach it.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "trawl-test"),
            ("AWS_SECRET_ACCESS_KEY", "trawl-test"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
