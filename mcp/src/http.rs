//! Streamable HTTP with a bearer token.
//!
//! Every request to `/mcp` must carry `Authorization: Bearer TOKEN`;
//! anything else gets 401 before it reaches the MCP layer. The token is
//! compared in constant time.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use crate::server::TrawlServer;

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("--listen {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(
        "--listen {0}: a non-loopback address needs a token (--token or TRAWL_MCP_TOKEN): anyone who can reach it could read the captures"
    )]
    NeedsToken(SocketAddr),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

/// A fresh random token (32 bytes from the system's generator, as hex).
pub fn generate_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(token): State<Arc<String>>, req: Request<Body>, next: Next) -> Response {
    let given =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if same(t.trim().as_bytes(), token.as_bytes()) => {
            let delete = req.method() == axum::http::Method::DELETE;
            let (alive, gone) = tokio::sync::watch::channel(());
            let mut req = req;
            req.extensions_mut().insert(ClientGone(gone));
            let r = next.run(req).await;
            // The response (an SSE stream while the tool runs) holds the
            // sender: when the client goes away, hyper drops the body, and
            // the call's handler hears of it (server.rs).
            let mut r = r.map(|inner| Body::new(Watched { inner, _alive: alive }));
            // A session ended by DELETE: rmcp answers 202, which clients
            // (the Python SDK among them) take as a failed termination; the
            // session is gone, which is 204.
            if delete && r.status() == StatusCode::ACCEPTED {
                *r.status_mut() = StatusCode::NO_CONTENT;
            }
            r
        }
        _ => {
            let mut r = (
                StatusCode::UNAUTHORIZED,
                "{\"error\":\"missing or wrong bearer token: send Authorization: Bearer TOKEN\"}",
            )
                .into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"trawl\""));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
    }
}

/// Closes when the HTTP response of the request that carries it is
/// dropped: the client went away (or the response was sent in full).
#[derive(Clone, Debug)]
pub struct ClientGone(tokio::sync::watch::Receiver<()>);

impl ClientGone {
    /// Resolves once the client is gone.
    pub async fn gone(&self) {
        let mut rx = self.0.clone();
        while rx.changed().await.is_ok() {}
    }
}

/// A response body that keeps its request's [`ClientGone`] open.
struct Watched {
    inner: Body,
    _alive: tokio::sync::watch::Sender<()>,
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `server` at `http://ADDR/mcp` until `shutdown` resolves.
/// `on_bound` receives the bound address (port 0 picks a free one).
pub async fn serve_http(
    server: TrawlServer,
    addr: SocketAddr,
    token: Option<String>,
    on_bound: impl FnOnce(SocketAddr, &str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let token = match token {
        Some(t) => t,
        None if addr.ip().is_loopback() => generate_token().map_err(HttpError::Serve)?,
        None => return Err(HttpError::NeedsToken(addr)),
    };
    let mut config = StreamableHttpServerConfig::default();
    if !addr.ip().is_loopback() {
        // Host checks guard loopback servers against DNS rebinding; a
        // server reachable from other hosts is guarded by its token.
        config = config.disable_allowed_hosts();
    }
    let service: StreamableHttpService<TrawlServer, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.clone()), LocalSessionManager::default().into(), config);
    let app = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(Arc::new(token.clone()), auth));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| HttpError::Bind { addr, source })?;
    on_bound(bound, &token);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(HttpError::Serve)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (super::generate_token().unwrap_or_default(), super::generate_token().unwrap_or_default());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(super::same(a.as_bytes(), a.as_bytes()));
        assert!(!super::same(a.as_bytes(), &a.as_bytes()[..63]));
        assert!(!super::same(a.as_bytes(), b.as_bytes()));
    }
}
