//! The baseline: a bare hyper server that answers every request with the
//! same fixed body. What it costs to answer is the floor our server is
//! compared against, on the same machine, in the same run.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Serves `body_bytes` bytes of JSON-looking filler on `listen` until killed.
pub async fn serve(listen: SocketAddr, body_bytes: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // The address line is how the benchmark finds the port.
    eprintln!("listening on http://{}", listener.local_addr()?);
    let body = Bytes::from(filler(body_bytes));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let body = body.clone();
                async move {
                    // Read the request body, as a real server must.
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(body))
                            .expect("a valid response"),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A JSON string of exactly `n` bytes (at least 2).
fn filler(n: usize) -> Vec<u8> {
    let n = n.max(2);
    let mut body = vec![b'x'; n];
    body[0] = b'"';
    body[n - 1] = b'"';
    body
}
