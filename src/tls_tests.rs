use super::*;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A go-plugin peer's key: ECDSA P-521, which ring can neither generate nor
/// sign with, so the tests sign with RustCrypto's `p521`, as a Go peer would.
#[derive(Debug, Clone)]
struct P521Key {
    key: p521::ecdsa::SigningKey,
    public: Vec<u8>,
}

impl P521Key {
    fn generate() -> Self {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        loop {
            let mut scalar = [0u8; 66];
            rng.fill(&mut scalar).unwrap();
            scalar[0] &= 1; // 521 bits; the rare value ≥ the order is drawn again
            if let Ok(key) = p521::ecdsa::SigningKey::from_slice(&scalar) {
                let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
                return P521Key { key, public };
            }
        }
    }

    /// A DER ECDSA signature of `message` with SHA-512.
    fn sign_sha512(&self, message: &[u8]) -> Vec<u8> {
        use p521::ecdsa::signature::Signer;
        let signature: p521::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

impl rustls::sign::SigningKey for P521Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for P521Key {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(self.sign_sha512(message))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP521_SHA512
    }
}

/// A go-plugin peer: P-521, `CA:TRUE`, SAN localhost, signing its TLS
/// handshakes with ECDSA P-521 SHA-512 as Go does.
struct GoPeer {
    cert: CertificateDer<'static>,
    key: P521Key,
}

impl GoPeer {
    /// go-plugin 1.0.1's own certificate with a fresh key put in place of
    /// its public key (neither ring nor rcgen on ring can make a P-521
    /// certificate). Its self-signature no longer matches, which nothing
    /// checks: the certificate is pinned, not chained.
    fn new() -> Self {
        use base64::Engine;
        let line = include_str!("../tests/data/go-plugin-1.0.1-automtls.line");
        let field = line.trim_end().rsplit('|').next().unwrap();
        let mut der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(field.trim_end_matches('='))
            .unwrap();
        // BIT STRING of 134 bytes, no unused bits, an uncompressed point.
        let prefix = [0x03, 0x81, 0x86, 0x00, 0x04];
        let at = der.windows(prefix.len()).position(|w| w == prefix).unwrap() + 4;
        let key = P521Key::generate();
        der[at..at + key.public.len()].copy_from_slice(&key.public);
        GoPeer {
            cert: CertificateDer::from(der),
            key,
        }
    }

    fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        Arc::new(rustls::sign::CertifiedKey::new(
            vec![self.cert.clone()],
            Arc::new(self.key.clone()),
        ))
    }

    /// A Go plugin's TLS server, pinned to `client`.
    fn server_config(&self, client: &Identity) -> Arc<ServerConfig> {
        let provider = provider();
        let verifier = PinnedClientVerifier(Pinned::new(client.cert.clone(), &provider));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                self.certified_key(),
            )));
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Arc::new(config)
    }

    /// A Go host's TLS client, pinned to `server`.
    fn client_config(&self, server: &Identity) -> Arc<ClientConfig> {
        let provider = provider();
        let verifier = PinnedServerVerifier(Pinned::new(server.cert.clone(), &provider));
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                self.certified_key(),
            )));
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Arc::new(config)
    }
}

/// Runs one TLS handshake over an in-memory pipe and a round trip of data.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> Result<Option<Vec<u8>>, std::io::Error> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server_side = tokio::spawn(async move {
        let mut tls = TlsAcceptor::from(server).accept(a).await?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await?;
        tls.write_all(&buf).await?;
        tls.flush().await?;
        Ok::<_, std::io::Error>(alpn)
    });
    let name = ServerName::try_from("localhost").unwrap();
    let client_result = async {
        let mut tls = TlsConnector::from(client).connect(name, b).await?;
        tls.write_all(b"hello").await?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"hello");
        Ok::<_, std::io::Error>(())
    }
    .await;
    let server_result = server_side.await.unwrap();
    client_result?;
    server_result
}

#[test]
fn generated_identity_has_go_plugins_shape_on_p256() {
    let identity = Identity::generate().unwrap();
    let (cert, rest) = decode_cert(identity.cert_der()).unwrap();
    assert_eq!(rest, 0);
    let tbs = cert.tbs_certificate();
    let curve = tbs
        .subject_public_key_info()
        .algorithm
        .parameters
        .as_ref()
        .unwrap()
        .decode_as::<x509_cert::der::asn1::ObjectIdentifier>()
        .unwrap();
    assert_eq!(curve.to_string(), "1.2.840.10045.3.1.7", "P-256");
    let (_, san) = tbs
        .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
        .unwrap()
        .unwrap();
    assert_eq!(
        format!("{:?}", san.0),
        "[DnsName(Ia5String(\"localhost\"))]"
    );
    let (_, constraints) = tbs
        .get_extension::<x509_cert::ext::pkix::BasicConstraints>()
        .unwrap()
        .unwrap();
    assert!(constraints.ca);
    let (_, eku) = tbs
        .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        .unwrap()
        .unwrap();
    let (client_auth, server_auth) = (
        x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2"),
        x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1"),
    );
    assert!(eku.0.contains(&client_auth) && eku.0.contains(&server_auth));
    let (not_before, not_after) = validity(identity.cert_der()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(not_before <= now - 29);
    assert!(not_after > now + 29 * 365 * 24 * 3600);
    assert!(
        identity
            .cert_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(
        parse_pem_cert("test", identity.cert_pem())
            .unwrap()
            .as_ref(),
        identity.cert_der()
    );
}

#[tokio::test]
async fn pinned_mutual_tls_between_our_identities() {
    let plugin = Identity::generate().unwrap();
    let host = Identity::generate().unwrap();
    let server = server_config(&plugin, host.cert.clone()).unwrap();
    let client = client_config(&host, plugin.cert.clone()).unwrap();
    let alpn = handshake(server, client).await.unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn go_shaped_p521_ca_certificates_are_accepted_on_both_sides() {
    let ours = Identity::generate().unwrap();
    // A Go host (P-521 client certificate) talking to our plugin.
    let go_host = GoPeer::new();
    let server = server_config(&ours, go_host.cert.clone()).unwrap();
    handshake(server, go_host.client_config(&ours))
        .await
        .unwrap();
    // Our host talking to a Go plugin (P-521 server certificate).
    let go_plugin = GoPeer::new();
    let client = client_config(&ours, go_plugin.cert.clone()).unwrap();
    handshake(go_plugin.server_config(&ours), client)
        .await
        .unwrap();
}

/// A P-521 signature is checked, not just accepted: a peer holding the
/// pinned certificate but another key is refused.
#[tokio::test]
async fn a_p521_peer_without_the_pinned_key_is_refused() {
    let ours = Identity::generate().unwrap();
    let go_host = GoPeer::new();
    let impostor = GoPeer {
        cert: go_host.cert.clone(),
        key: P521Key::generate(),
    };
    let server = server_config(&ours, go_host.cert.clone()).unwrap();
    assert!(
        handshake(server, impostor.client_config(&ours))
            .await
            .is_err()
    );
}

#[test]
fn p521_signatures_are_verified_with_each_hash() {
    let key = P521Key::generate();
    let message = b"TLS 1.2 lets a P-521 key sign with any hash";
    for (algorithm, digest) in [
        (&ECDSA_P521_SHA256, &ring::digest::SHA256),
        (&ECDSA_P521_SHA384, &ring::digest::SHA384),
        (&ECDSA_P521_SHA512, &ring::digest::SHA512),
    ] {
        use p521::ecdsa::signature::hazmat::PrehashSigner;
        let prehash = ring::digest::digest(digest, message);
        let signature: p521::ecdsa::Signature = key.key.sign_prehash(prehash.as_ref()).unwrap();
        let der = signature.to_der();
        algorithm
            .verify_signature(&key.public, message, der.as_bytes())
            .unwrap();
        assert!(
            algorithm
                .verify_signature(&key.public, b"another message", der.as_bytes())
                .is_err()
        );
        let other = P521Key::generate();
        assert!(
            algorithm
                .verify_signature(&other.public, message, der.as_bytes())
                .is_err()
        );
        assert!(
            algorithm
                .verify_signature(&key.public, message, &der.as_bytes()[1..])
                .is_err()
        );
    }
}

#[tokio::test]
async fn another_client_certificate_is_refused() {
    let plugin = Identity::generate().unwrap();
    let host = Identity::generate().unwrap();
    let intruder = Identity::generate().unwrap();
    let server = server_config(&plugin, host.cert.clone()).unwrap();
    let client = client_config(&intruder, plugin.cert.clone()).unwrap();
    assert!(handshake(server, client).await.is_err());
}

#[tokio::test]
async fn a_client_without_certificate_is_refused() {
    let plugin = Identity::generate().unwrap();
    let host = Identity::generate().unwrap();
    let server = server_config(&plugin, host.cert.clone()).unwrap();
    let verifier = Arc::new(PinnedServerVerifier(Pinned::new(
        plugin.cert.clone(),
        &provider(),
    )));
    let mut anonymous = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    anonymous.alpn_protocols = vec![b"h2".to_vec()];
    assert!(handshake(server, Arc::new(anonymous)).await.is_err());
}

#[tokio::test]
async fn a_server_with_another_certificate_is_refused() {
    let plugin = Identity::generate().unwrap();
    let impostor = Identity::generate().unwrap();
    let host = Identity::generate().unwrap();
    let server = server_config(&impostor, host.cert.clone()).unwrap();
    let client = client_config(&host, plugin.cert.clone()).unwrap();
    let err = handshake(server, client).await.unwrap_err();
    assert!(
        err.to_string().contains("ApplicationVerificationFailure"),
        "{err}"
    );
}

#[test]
fn pinned_certificate_outside_its_validity_is_refused() {
    let identity = Identity::generate().unwrap();
    let pinned = Pinned::new(identity.cert.clone(), &provider());
    let now = UnixTime::now();
    assert!(pinned.check(&identity.cert, now).is_ok());
    let before = UnixTime::since_unix_epoch(Duration::from_secs(1_000_000));
    assert!(matches!(
        pinned.check(&identity.cert, before),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet
        ))
    ));
    let after = UnixTime::since_unix_epoch(Duration::from_secs(i64::MAX as u64 / 2));
    assert!(matches!(
        pinned.check(&identity.cert, after),
        Err(rustls::Error::InvalidCertificate(CertificateError::Expired))
    ));
}

#[test]
fn bad_pem_is_named() {
    let two = format!("{0}{0}", Identity::generate().unwrap().cert_pem());
    for (pem, needle) in [
        ("", "no PEM CERTIFICATE block"),
        ("not a certificate", "no PEM CERTIFICATE block"),
        (two.as_str(), "more than one"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "not a DER X.509",
        ),
    ] {
        let err = parse_pem_cert("PLUGIN_CLIENT_CERT", pem).unwrap_err();
        let text = crate::chain::Chain(&err).to_string();
        assert!(
            text.contains("PLUGIN_CLIENT_CERT") && text.contains(needle),
            "{pem:?}: {text}"
        );
    }
}

#[test]
fn validity_is_checked_with_a_margin_only_before_not_before() {
    use std::time::{Duration, UNIX_EPOCH};
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2030, 1, 1);
    params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let start = UNIX_EPOCH + Duration::from_secs(1_893_456_000); // 2030-01-01
    let end = UNIX_EPOCH + Duration::from_secs(1_924_992_000); // 2031-01-01
    let at = |t| check_validity("cert", &der, t);
    assert!(at(start).is_ok());
    assert!(at(end).is_ok());
    assert!(at(start - NOT_YET_VALID_MARGIN).is_ok());
    let early = at(start - NOT_YET_VALID_MARGIN - Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(
            early,
            TlsError::OutsideValidity {
                state: "not valid yet",
                ..
            }
        ),
        "{early:?}"
    );
    let late = at(end + Duration::from_secs(1)).unwrap_err();
    assert_eq!(
        late.to_string(),
        "cert is expired: valid from 2030-01-01T00:00:00Z to 2031-01-01T00:00:00Z, \
         and it is now 2031-01-01T00:00:01Z"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_launch_gets_an_identity_of_its_own() {
    // Made ahead or made at once, no key pair serves two launches: one
    // after another (the next made ahead in between) and many at once.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let identity = Identity::for_launch().unwrap();
        assert!(
            seen.insert(identity.cert_der().to_vec()),
            "an identity reused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at_once: Vec<_> = (0..8)
        .map(|_| tokio::spawn(async { Identity::for_launch().unwrap() }))
        .collect();
    for launch in at_once {
        let identity = launch.await.unwrap();
        assert!(
            seen.insert(identity.cert_der().to_vec()),
            "an identity reused"
        );
    }
}
