//! AutoMTLS: a fresh certificate per launch on each side, and verifiers
//! pinned to the exact certificate the peer announced.
//!
//! go-plugin's certificates are P-521 `CA:TRUE` leaves, which rustls'
//! webpki verifiers reject (`CaUsedAsEndEntity`) and which rustls' `ring`
//! provider cannot verify at all. So verification here pins the exact DER
//! exchanged at start-up and still checks the handshake signature with the
//! aws-lc-rs provider, which supports P-521. Our own certificates use P-256,
//! which every peer can use (grpcio, under pyvider-rpcplugin, cannot sign or
//! verify with P-521).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};

/// How far back a new certificate's validity starts, as go-plugin does, so
/// that a peer whose clock is slightly behind still accepts it.
const BACKDATE: Duration = Duration::from_secs(30);

/// How long a certificate is valid: go-plugin's 262980 hours (30 years).
/// Certificates live as long as one plugin process; expiry is not a concern.
const VALIDITY: Duration = Duration::from_secs(262_980 * 3600);

/// How far in the future a peer's certificate may start being valid and
/// still be accepted at start-up: two clocks of one machine agree, but a
/// peer that does not backdate (go-plugin backdates 30 s) signs with
/// not-before = now, and a clock step must not turn a wait of seconds into
/// a refused start. Expiry has no margin: an expired certificate stays
/// expired.
const NOT_YET_VALID_MARGIN: Duration = Duration::from_secs(300);

/// ALPN protocol for gRPC; grpc-go 1.67+ refuses a TLS peer without it.
const ALPN_H2: &[u8] = b"h2";

/// A failure to create or use AutoMTLS material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating a key pair or certificate failed.
    #[error("cannot generate the AutoMTLS certificate: {source}")]
    Generate {
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// The peer's certificate (`PLUGIN_CLIENT_CERT`, or the handshake line's
    /// field) is not one PEM or DER X.509 certificate.
    #[error("{what} is not a usable certificate: {reason}")]
    BadCertificate {
        /// Where it came from.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The peer's certificate is expired, or not valid yet: every TLS
    /// handshake with it would fail.
    #[error(
        "{what} is {state}: valid from {} to {}, and it is now {}",
        rfc3339(*not_before),
        rfc3339(*not_after),
        rfc3339(*now)
    )]
    OutsideValidity {
        /// Where it came from.
        what: &'static str,
        /// "expired" or "not valid yet".
        state: &'static str,
        /// Its notBefore, in seconds since the Unix epoch.
        not_before: i64,
        /// Its notAfter, in seconds since the Unix epoch.
        not_after: i64,
        /// The time of the check, in seconds since the Unix epoch.
        now: i64,
    },
    /// rustls refused the configuration.
    #[error("cannot configure TLS: {source}")]
    Config {
        /// rustls' error.
        source: rustls::Error,
    },
}

/// A certificate and private key generated for one launch.
///
/// ECDSA P-256, `CN=localhost`, SAN `DNS:localhost`, `CA:TRUE`, extended
/// key usage client and server authentication, valid from 30 s ago for 30
/// years: go-plugin's shape on a curve that every peer can use.
#[derive(Clone)]
pub struct Identity {
    cert: CertificateDer<'static>,
    key: Arc<PrivatePkcs8KeyDer<'static>>,
    pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_der_len", &self.cert.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Generates a fresh key pair and self-signed certificate.
    ///
    /// # Errors
    ///
    /// [`TlsError::Generate`] if the crypto library fails.
    pub fn generate() -> Result<Self, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let err = |source| TlsError::Generate { source };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(err)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "rpcplugin");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + VALIDITY;
        let cert = params.self_signed(&key).map_err(err)?;
        Ok(Identity {
            pem: cert.pem(),
            cert: cert.der().clone(),
            key: Arc::new(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }

    /// The certificate, DER-encoded (what goes in the handshake line).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert
    }

    /// The certificate, PEM-encoded (what goes in `PLUGIN_CLIENT_CERT`).
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )
    }
}

/// Parses exactly one PEM certificate, as found in `PLUGIN_CLIENT_CERT`.
///
/// # Errors
///
/// [`TlsError::BadCertificate`] when the text holds no certificate, more
/// than one, or one that is not valid X.509 DER.
pub(crate) fn parse_pem_cert(
    what: &'static str,
    pem: &str,
) -> Result<CertificateDer<'static>, TlsError> {
    let bad = |reason: String| TlsError::BadCertificate { what, reason };
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    let cert = match certs.next() {
        Some(Ok(cert)) => cert,
        Some(Err(err)) => return Err(bad(format!("bad PEM: {err}"))),
        None => return Err(bad("no PEM CERTIFICATE block found".into())),
    };
    if certs.next().is_some() {
        return Err(bad("more than one certificate; expected exactly one".into()));
    }
    check_der(what, &cert)?;
    Ok(cert)
}

/// Refuses a certificate that is expired at `now`, or that becomes valid
/// more than [`NOT_YET_VALID_MARGIN`] after it: the pinned verifiers would
/// refuse every handshake, so it is better said once, at start.
///
/// # Errors
///
/// [`TlsError::OutsideValidity`] naming both dates;
/// [`TlsError::BadCertificate`] when it does not parse.
pub(crate) fn check_validity(
    what: &'static str,
    der: &[u8],
    now: std::time::SystemTime,
) -> Result<(), TlsError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|err| TlsError::BadCertificate {
            what,
            reason: format!("not a DER X.509 certificate: {err}"),
        })?;
    let not_before = parsed.validity().not_before.timestamp();
    let not_after = parsed.validity().not_after.timestamp();
    let now = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let margin = NOT_YET_VALID_MARGIN.as_secs() as i64;
    let state = if now > not_after {
        "expired"
    } else if now.saturating_add(margin) < not_before {
        "not valid yet"
    } else {
        return Ok(());
    };
    Err(TlsError::OutsideValidity {
        what,
        state,
        not_before,
        not_after,
        now,
    })
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2026-12-05T18:30:00Z`).
fn rfc3339(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{secs} s after the Unix epoch"),
    }
}

/// What is wrong with `der` as one X.509 certificate and nothing else;
/// `None` when nothing is.
pub(crate) fn der_problem(der: &[u8]) -> Option<String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], _)) => None,
        Ok((rest, _)) => Some(format!("{} bytes follow the certificate", rest.len())),
        Err(err) => Some(format!("not a DER X.509 certificate: {err}")),
    }
}

/// Checks that `der` is one X.509 certificate and nothing else.
fn check_der(what: &'static str, der: &[u8]) -> Result<(), TlsError> {
    match der_problem(der) {
        None => Ok(()),
        Some(reason) => Err(TlsError::BadCertificate { what, reason }),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The plugin's TLS configuration: our identity, a client certificate
/// required and pinned to `client_cert`, ALPN `h2`.
pub(crate) fn server_config(
    identity: &Identity,
    client_cert: CertificateDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PinnedClientVerifier(Pinned::new(client_cert, &provider)));
    let (chain, key) = identity.chain_and_key();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
        })
        .map_err(|source| TlsError::Config { source })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The host's TLS configuration: our identity as client certificate, the
/// server pinned to `server_cert`, ALPN `h2`. Connect with server name
/// `localhost`.
pub(crate) fn client_config(
    identity: &Identity,
    server_cert: CertificateDer<'static>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PinnedServerVerifier(Pinned::new(server_cert, &provider)));
    let (chain, key) = identity.chain_and_key();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Config { source })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|source| TlsError::Config { source })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The one certificate a peer may present, and the algorithms that check
/// its handshake signature.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
    /// Validity window, read once from the pinned certificate.
    not_before: i64,
    not_after: i64,
}

impl Pinned {
    fn new(cert: CertificateDer<'static>, provider: &CryptoProvider) -> Self {
        let (not_before, not_after) = match x509_parser::parse_x509_certificate(&cert) {
            Ok((_, parsed)) => (
                parsed.validity().not_before.timestamp(),
                parsed.validity().not_after.timestamp(),
            ),
            // Unparsable: an empty window refuses it at handshake time.
            Err(_) => (i64::MAX, i64::MIN),
        };
        Pinned {
            cert,
            algorithms: provider.signature_verification_algorithms,
            not_before,
            not_after,
        }
    }

    /// The presented certificate must be exactly the pinned one, within its
    /// validity period. Intermediates are ignored: there is no chain.
    fn check(&self, presented: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        if presented.as_ref() != self.cert.as_ref() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now < self.not_before {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet,
            ));
        }
        if now > self.not_after {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(())
    }
}

/// The handshake-signature checks both pinned verifiers share: the
/// certificate is pinned, but the peer must still prove it holds its key.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.algorithms.supported_schemes()
        }
    };
}

#[derive(Debug)]
struct PinnedClientVerifier(Pinned);

impl ClientCertVerifier for PinnedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0.check(end_entity, now)?;
        Ok(ClientCertVerified::assertion())
    }

    signature_checks!();
}

#[derive(Debug)]
struct PinnedServerVerifier(Pinned);

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.check(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    signature_checks!();
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
