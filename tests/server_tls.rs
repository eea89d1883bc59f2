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
    let host_cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .unwrap()
        .cert
        .pem();
    let plugin = common::launch(
        &common::example("kv_plugin"),
        &[],
        &[("PLUGIN_CLIENT_CERT", &host_cert)],
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

/// A host certificate (PEM) valid from `not_before` to `not_after`.
fn cert_valid(not_before: time::OffsetDateTime, not_after: time::OffsetDateTime) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = not_before;
    params.not_after = not_after;
    params.self_signed(&key).unwrap().pem()
}

/// Runs kv_plugin with `PLUGIN_CLIENT_CERT=pem`, expecting it to refuse to
/// start: exit status 1 within 10 s, nothing on stdout. Gives its stderr.
fn refused_with_cert(pem: &str) -> String {
    use std::io::Read;
    // A plugin that starts after all leaves no socket in /tmp when killed.
    let sockets = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::example("kv_plugin"))
        .env("BASIC_PLUGIN", "hello")
        .env("PLUGIN_UNIX_SOCKET_DIR", sockets.path())
        .env("PLUGIN_CLIENT_CERT", pem)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = status.unwrap_or_else(|| {
        panic!("the plugin started instead of refusing: stdout {stdout:?}, stderr {stderr:?}")
    });
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "", "nothing on stdout, no handshake line");
    stderr
}

#[test]
fn an_expired_host_certificate_is_refused_at_start_naming_its_dates() {
    let pem = cert_valid(
        rcgen::date_time_ymd(2020, 1, 2),
        rcgen::date_time_ymd(2021, 3, 4),
    );
    let stderr = refused_with_cert(&pem);
    assert!(stderr.contains("PLUGIN_CLIENT_CERT is expired"), "{stderr}");
    assert!(
        stderr.contains("valid from 2020-01-02T00:00:00Z to 2021-03-04T00:00:00Z"),
        "{stderr}"
    );
}

#[test]
fn a_host_certificate_not_valid_for_years_is_refused_at_start() {
    let pem = cert_valid(
        rcgen::date_time_ymd(2090, 5, 6),
        rcgen::date_time_ymd(2091, 7, 8),
    );
    let stderr = refused_with_cert(&pem);
    assert!(
        stderr.contains("PLUGIN_CLIENT_CERT is not valid yet")
            && stderr.contains("valid from 2090-05-06T00:00:00Z to 2091-07-08T00:00:00Z"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_host_certificate_made_this_instant_is_accepted() {
    // A host that does not backdate: valid from now, not from 30 s ago.
    let now = time::OffsetDateTime::now_utc();
    let pem = cert_valid(now, now + time::Duration::days(1));
    let plugin = common::launch(
        &common::example("kv_plugin"),
        &[],
        &[("PLUGIN_CLIENT_CERT", &pem)],
    );
    assert!(plugin.line.server_cert().is_some(), "{}", plugin.raw_line);
}
