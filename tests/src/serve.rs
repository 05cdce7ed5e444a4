//! The plumbing the harness's fake services share: a hyper server on a free port of 127.0.0.1,
//! plain or behind TLS with a private CA made for the run, and JSON answers.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) type Body = Full<Bytes>;

/// A TLS identity for 127.0.0.1 and localhost, issued by a CA that exists only for this run.
pub(crate) struct SelfSignedTls {
    /// The CA certificate a client must trust (what keymint gets as `*_ca_pem`).
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

impl SelfSignedTls {
    pub fn new() -> SelfSignedTls {
        let ca_key = rcgen::KeyPair::generate().expect("generate the CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "keymint test CA");
        ca_params.key_usages =
            vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let ca = ca_params.self_signed(&ca_key).expect("self-sign the CA");

        let leaf_key = rcgen::KeyPair::generate().expect("generate the server key");
        let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server certificate parameters");
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).expect("sign the server certificate");

        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        // The provider the rest of the workspace's rustls uses (the AWS SDK builds aws-lc-rs).
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the certificate and its key make a TLS identity");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        SelfSignedTls { ca_pem: ca.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) }
    }
}

/// A server running on a task; it stops accepting when dropped.
pub(crate) struct Serving {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `handler` on a free port of 127.0.0.1, over TLS when `tls` is given.
pub(crate) async fn serve<H, F>(tls: Option<TlsAcceptor>, handler: H) -> Serving
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a test server on 127.0.0.1");
    let port = listener.local_addr().expect("the test server's address").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                // A client that hangs up or fails the handshake ends its connection, no more.
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
    Serving { port, task }
}

/// A JSON answer.
pub(crate) fn json(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a status code and a fixed header make a response")
}

/// The whole request body; empty when the client broke off.
pub(crate) async fn body_bytes(req: Request<Incoming>) -> Bytes {
    req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default()
}
