//! AutoMTLS: a fresh certificate per launch on each side, and verifiers
//! pinned to the exact certificate the peer announced.
//!
//! go-plugin's certificates are P-521 `CA:TRUE` leaves, which rustls'
//! webpki verifiers reject (`CaUsedAsEndEntity`). So verification here pins
//! the exact DER exchanged at start-up and still checks the handshake
//! signature. Our own certificates use P-256, which every peer can use
//! (grpcio, under pyvider-rpcplugin, cannot sign or verify with P-521).
//!
//! The crypto is rustls' `ring` provider (key generation, key exchange,
//! P-256/P-384/Ed25519/RSA signatures), plus RustCrypto's pure-Rust `p521`
//! for the one thing ring lacks: verifying the ECDSA P-521 signatures of a
//! Go peer. Not aws-lc-rs: aws-lc seeds its random generator from CPU
//! jitter entropy on the first draw of every process, unless aws-lc-sys is
//! built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`, an environment variable
//! that no dependency can set for the crate that depends on it (aws-lc-sys
//! 0.47 has no cargo feature and no runtime switch for it; its
//! `FIPS_is_entropy_cpu_jitter` only reports). Time from spawn to the
//! handshake line with AutoMTLS, median of 31 interleaved launches of the KV
//! plugin (`tests/dependent/measure.py`), 2 shared cores, load about 3:
//!
//! ```text
//!                                   aws-lc-rs    ring + p521
//! dependent crate (nothing set)       50.6 ms         2.7 ms
//! this repository (env var set)        3.0 ms         2.6 ms
//! Go's go-plugin 1.0.1 KV plugin      25.4 ms (its P-521 key)
//! ```
//!
//! ring and getrandom draw from the OS generator only, as Go's crypto/rand
//! does.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, PrivateKeyDer, PrivatePkcs8KeyDer,
    ServerName, SignatureVerificationAlgorithm, UnixTime, alg_id,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};

/// How far back a new certificate's validity starts, as go-plugin does, so
/// that a peer whose clock is slightly behind still accepts it.
const BACKDATE: Duration = Duration::from_secs(30);

/// How long a host's identity made ahead for its next launch may wait: a
/// host that launches a plugin several times in a row (Terraform's plan
/// launches a provider 3 times within seconds) gets it, and one that
/// launches rarely makes a new one then, as go-plugin always does.
const MADE_AHEAD_FOR: Duration = Duration::from_secs(60);

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
    #[error("cannot generate the AutoMTLS certificate")]
    Generate {
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// The peer's certificate (`PLUGIN_CLIENT_CERT`, or the handshake line's
    /// field) is not one PEM or DER X.509 certificate.
    #[error("{what} is not a usable certificate")]
    BadCertificate {
        /// Where it came from.
        what: &'static str,
        /// What is wrong with it.
        source: CertificateParseError,
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
    #[error("cannot configure TLS")]
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
pub(crate) struct Identity {
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
    pub(crate) fn generate() -> Result<Self, TlsError> {
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

    /// A fresh identity for a host's launch of a plugin: one made ahead,
    /// if an earlier launch left one, else one made now; then, on the
    /// runtime's blocking pool, the next one is made ahead. Each identity
    /// goes to one launch only, as go-plugin makes one per client; only
    /// when it is made changes. Made at launch, it held up every launch
    /// by the key generation and signing (a tenth of a millisecond or
    /// more on a 2-core machine), while the plugin's own start leaves a
    /// core idle.
    ///
    /// # Errors
    ///
    /// [`TlsError::Generate`] if the crypto library fails.
    pub(crate) fn for_launch() -> Result<Self, TlsError> {
        /// The identity made ahead, and when (by the wall clock).
        static NEXT: std::sync::Mutex<Option<(Identity, SystemTime)>> = std::sync::Mutex::new(None);
        let ready = NEXT.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Used only while young, and never once the clock went back past
        // the moment it was made: its validity begins `BACKDATE` before
        // that, and a plugin refuses a certificate not yet valid.
        let fresh = |made: SystemTime| {
            SystemTime::now()
                .duration_since(made)
                .is_ok_and(|age| age <= MADE_AHEAD_FOR)
        };
        let identity = match ready {
            Some((identity, made)) if fresh(made) => identity,
            _ => Identity::generate()?,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(|| {
                let made = SystemTime::now();
                if let Ok(next) = Identity::generate() {
                    *NEXT.lock().unwrap_or_else(|e| e.into_inner()) = Some((next, made));
                }
            });
        }
        Ok(identity)
    }

    /// The certificate, DER-encoded (what goes in the handshake line).
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert
    }

    /// The certificate, PEM-encoded (what goes in `PLUGIN_CLIENT_CERT`).
    pub(crate) fn cert_pem(&self) -> &str {
        &self.pem
    }

    fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )
    }
}

/// Why a peer's certificate (`PLUGIN_CLIENT_CERT`, or the handshake line's
/// field) is not one PEM or DER X.509 certificate: the source of
/// [`TlsError::BadCertificate`] and of
/// [`HandshakeError::CertificateDer`](crate::handshake::HandshakeError::CertificateDer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateParseError {
    /// The PEM text does not parse.
    #[error("bad PEM")]
    Pem {
        /// The PEM reader's error.
        source: rustls::pki_types::pem::Error,
    },
    /// The text holds no `CERTIFICATE` block.
    #[error("no PEM CERTIFICATE block found")]
    NoPemBlock,
    /// The text holds more than one certificate.
    #[error("more than one certificate; expected exactly one")]
    SeveralCertificates,
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate")]
    NotX509 {
        /// The DER decoder's error (it names the position).
        source: x509_cert::der::Error,
    },
    /// Bytes follow the certificate's DER.
    #[error("{count} bytes follow the certificate")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
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
    let bad = |source: CertificateParseError| TlsError::BadCertificate { what, source };
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    let cert = match certs.next() {
        Some(Ok(cert)) => cert,
        Some(Err(source)) => return Err(bad(CertificateParseError::Pem { source })),
        None => return Err(bad(CertificateParseError::NoPemBlock)),
    };
    if certs.next().is_some() {
        return Err(bad(CertificateParseError::SeveralCertificates));
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
    let (not_before, not_after) = validity(der).map_err(|source| TlsError::BadCertificate {
        what,
        source: CertificateParseError::NotX509 { source },
    })?;
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
pub(crate) fn rfc3339(secs: i64) -> String {
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

/// Decodes the X.509 certificate at the start of `der` (strict DER, RFC
/// 5280's profile); gives it and how many bytes follow it.
pub(crate) fn decode_cert(
    der: &[u8],
) -> Result<(x509_cert::Certificate, usize), x509_cert::der::Error> {
    use x509_cert::der::{Decode, Reader, SliceReader};
    let mut reader = SliceReader::new(der)?;
    let cert = x509_cert::Certificate::decode(&mut reader)?;
    let rest = usize::try_from(u32::from(reader.remaining_len())).unwrap_or(usize::MAX);
    Ok((cert, rest))
}

/// A certificate's validity window, in seconds since the Unix epoch.
fn validity(der: &[u8]) -> Result<(i64, i64), x509_cert::der::Error> {
    let (cert, _) = decode_cert(der)?;
    let validity = cert.tbs_certificate().validity();
    let secs = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    Ok((secs(validity.not_before), secs(validity.not_after)))
}

/// What is wrong with `der` as one X.509 certificate and nothing else;
/// `None` when nothing is.
pub(crate) fn der_problem(der: &[u8]) -> Option<CertificateParseError> {
    match decode_cert(der) {
        Ok((_, 0)) => None,
        Ok((_, count)) => Some(CertificateParseError::TrailingBytes { count }),
        Err(source) => Some(CertificateParseError::NotX509 { source }),
    }
}

/// Checks that `der` is one X.509 certificate and nothing else.
fn check_der(what: &'static str, der: &[u8]) -> Result<(), TlsError> {
    match der_problem(der) {
        None => Ok(()),
        Some(source) => Err(TlsError::BadCertificate { what, source }),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        signature_verification_algorithms: SIGNATURE_ALGORITHMS,
        ..rustls::crypto::ring::default_provider()
    })
}

/// The handshake signatures a peer may send: the `ring` provider's, and
/// ECDSA P-521 (go-plugin's keys). The order of `mapping` is our preference
/// as sent to the peer; it is the aws-lc-rs provider's. TLS 1.3 ties each
/// ECDSA scheme to one curve; TLS 1.2 does not, hence the extra curves.
static SIGNATURE_ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
        &ECDSA_P521_SHA256,
        &ECDSA_P521_SHA384,
        &ECDSA_P521_SHA512,
        webpki::ring::ED25519,
        webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[
                webpki::ring::ECDSA_P384_SHA384,
                webpki::ring::ECDSA_P256_SHA384,
                &ECDSA_P521_SHA384,
            ],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[
                webpki::ring::ECDSA_P256_SHA256,
                webpki::ring::ECDSA_P384_SHA256,
                &ECDSA_P521_SHA256,
            ],
        ),
        (
            SignatureScheme::ECDSA_NISTP521_SHA512,
            &[&ECDSA_P521_SHA512],
        ),
        (SignatureScheme::ED25519, &[webpki::ring::ED25519]),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[webpki::ring::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[webpki::ring::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[webpki::ring::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

static ECDSA_P521_SHA256: EcdsaP521 = EcdsaP521 {
    digest: &ring::digest::SHA256,
    signature_alg_id: alg_id::ECDSA_SHA256,
};
static ECDSA_P521_SHA384: EcdsaP521 = EcdsaP521 {
    digest: &ring::digest::SHA384,
    signature_alg_id: alg_id::ECDSA_SHA384,
};
static ECDSA_P521_SHA512: EcdsaP521 = EcdsaP521 {
    digest: &ring::digest::SHA512,
    signature_alg_id: alg_id::ECDSA_SHA512,
};

/// ECDSA on P-521 with one hash, verified by RustCrypto's `p521` (ring
/// cannot): the signature is DER, the key an SEC1 point, as in X.509.
struct EcdsaP521 {
    digest: &'static ring::digest::Algorithm,
    signature_alg_id: AlgorithmIdentifier,
}

impl std::fmt::Debug for EcdsaP521 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcdsaP521({:?})", self.digest)
    }
}

impl SignatureVerificationAlgorithm for EcdsaP521 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use p521::ecdsa::signature::hazmat::PrehashVerifier;
        let key =
            p521::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let signature =
            p521::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        let prehash = ring::digest::digest(self.digest, message);
        key.verify_prehash(prehash.as_ref(), &signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P521
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg_id
    }
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
    // Nobody resumes: each connection is new, and each process has keys
    // of its own. No tickets to make and send after every handshake.
    config.send_tls13_tickets = 0;
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
    config.resumption = rustls::client::Resumption::disabled();
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
        // Unparsable: an empty window refuses it at handshake time.
        let (not_before, not_after) = validity(&cert).unwrap_or((i64::MAX, i64::MIN));
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
