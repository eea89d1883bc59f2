//! AutoMTLS on the plugin side, checked with independent peers: a client
//! presenting the host's certificate gets in (ALPN h2); another certificate,
//! no certificate, or plaintext is refused.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A P-256 certificate and key made by openssl (an independent peer).
fn openssl_identity(dir: &Path, name: &str) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}; {}", common::INSTALL_HINT));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (std::fs::read_to_string(&cert).unwrap(), cert, key)
}

/// One TLS 1.2 handshake with `openssl s_client` (TLS 1.2, so that a
/// refused client certificate fails the handshake itself); the exit status
/// and output.
fn s_client(socket: &Path, identity: Option<(&Path, &Path)>) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-tls1_2",
        "-alpn",
        "h2",
        "-servername",
        "localhost",
        "-unix",
    ])
    .arg(socket)
    .stdin(std::process::Stdio::null());
    if let Some((cert, key)) = identity {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
#[ignore = "needs the openssl command line tool as an independent TLS peer: run .ci/install-peers"]
fn only_the_hosts_certificate_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let (host_pem, host_cert, host_key) = openssl_identity(dir.path(), "host");
    let (_, other_cert, other_key) = openssl_identity(dir.path(), "other");
    let plugin = common::launch(
        &common::example("kv_plugin"),
        &[],
        &[("PLUGIN_CLIENT_CERT", &host_pem)],
    );
    assert!(
        plugin.line.server_cert().is_some(),
        "AutoMTLS puts the certificate in field 6"
    );
    let socket = plugin.line.endpoint().unix_path().unwrap().to_owned();

    let (ok, text) = s_client(&socket, Some((&host_cert, &host_key)));
    assert!(ok, "the host's certificate was refused:\n{text}");
    assert!(text.contains("ALPN protocol: h2"), "{text}");

    let (ok, text) = s_client(&socket, Some((&other_cert, &other_key)));
    assert!(!ok, "another certificate got in:\n{text}");
    assert!(text.contains("alert"), "{text}");

    let (ok, text) = s_client(&socket, None);
    assert!(!ok, "a client without certificate got in:\n{text}");
    assert!(text.contains("certificate required"), "{text}");
}

#[tokio::test]
async fn plaintext_clients_are_refused_when_automtls_is_on() {
    let identity = rpcplugin::Identity::generate().unwrap();
    let plugin = common::launch(
        &common::example("kv_plugin"),
        &[],
        &[("PLUGIN_CLIENT_CERT", identity.cert_pem())],
    );
    let channel = plugin.channel().await;
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest {
        service: "plugin".into(),
    });
    let result = tokio::time::timeout(Duration::from_secs(10), check)
        .await
        .expect("refused, not hung");
    assert!(
        result.is_err(),
        "a plaintext health check succeeded against an AutoMTLS plugin"
    );
}
