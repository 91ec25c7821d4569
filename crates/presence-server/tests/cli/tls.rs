//! HTTPS with `--tls-cert` and `--tls-key`: the server answers over TLS
//! with the certificate the test made, and on SIGHUP takes new files for
//! the next handshakes while connections already open keep answering; a
//! reload of bad files keeps the certificate in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::support::{ServerProcess, eventually};

/// A self-signed certificate for `localhost` and its key, as PEM.
struct Pair {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn new_pair() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pair {
        der: made.cert.der().clone(),
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
    }
}

/// Writes `pair` where the server reads its certificate and key.
fn install(pair: &Pair, cert: &Path, key: &Path) {
    std::fs::write(cert, &pair.cert_pem).unwrap();
    std::fs::write(key, &pair.key_pem).unwrap();
}

/// A client that trusts exactly these certificates.
fn connector(trusted: &[&Pair]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for pair in trusted {
        roots.add(pair.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Opens a TLS connection to the server's address.
async fn connect(server: &ServerProcess, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let address = server.base.strip_prefix("https://").expect("an https base");
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector
        .connect(name, tcp)
        .await
        .expect("the handshake succeeds")
}

/// The certificate the server presented on `stream`.
fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Sends `GET path` on a kept-alive connection and reads the answer: its
/// status line and body.
async fn get(stream: &mut TlsStream<TcpStream>, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-answer");
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .expect("a content length")
            .parse()
            .unwrap();
        if body.len() >= length {
            let status = head.lines().next().unwrap().to_owned();
            return (status, body[..length].to_owned());
        }
    }
}

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("tls.crt"), dir.join("tls.key"))
}

#[tokio::test]
async fn https_answers_with_the_given_certificate_and_a_sighup_swaps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = files(dir.path());
    let (first, second) = (new_pair(), new_pair());
    install(&first, &cert, &key);
    let server = ServerProcess::start(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let trusting_both = connector(&[&first, &second]);
    let mut kept = connect(&server, &trusting_both).await;
    assert_eq!(presented(&kept), first.der.to_vec());
    let (status, body) = get(&mut kept, "/health/ready").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(body, r#"{"result":"success","msg":""}"#);
    // The official client's first request, over HTTPS, to a client that
    // trusts the certificate.
    let (status, body) = get(&mut kept, "/api/v1/server_settings").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");

    install(&second, &cert, &key);
    server.signal("HUP");
    eventually(Duration::from_secs(10), || async {
        presented(&connect(&server, &trusting_both).await) == second.der.to_vec()
    })
    .await;
    // A client that trusts only the new certificate gets through now.
    let mut fresh = connect(&server, &connector(&[&second])).await;
    assert_eq!(get(&mut fresh, "/health/live").await.0, "HTTP/1.1 200 OK");
    // The connection made before the reload still answers.
    assert_eq!(get(&mut kept, "/health/live").await.0, "HTTP/1.1 200 OK");

    // Bad files: the reload is refused and logged, the certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal("HUP");
    server
        .until_logged("the failed reload", Duration::from_secs(10), |line| {
            line.contains("TLS certificate not reloaded")
        })
        .await;
    let mut after = connect(&server, &trusting_both).await;
    assert_eq!(presented(&after), second.der.to_vec());
    assert_eq!(get(&mut after, "/health/live").await.0, "HTTP/1.1 200 OK");
    assert_eq!(get(&mut kept, "/health/live").await.0, "HTTP/1.1 200 OK");
}

#[test]
fn a_certificate_without_its_key_or_that_cannot_be_read_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = files(dir.path());
    let out = crate::support::run(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("tls_cert and tls_key go together"), "{said}");
    let out = crate::support::run(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("cannot read certificate from") && said.contains("tls.crt"),
        "{said}"
    );
}
