//! The plugin's AutoMTLS certificate as a person reads it: key type, names,
//! validity, CA flag.

use x509_cert::Certificate;
use x509_cert::der::asn1::{ObjectIdentifier, UintRef};
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};

use crate::tls::{decode_cert, rfc3339};

/// What a certificate says, and what is wrong with it for go-plugin.
pub(crate) struct CertSummary {
    pub(crate) text: String,
    /// What makes go-plugin hosts refuse it.
    pub(crate) problems: Vec<String>,
    /// What some hosts may mind.
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn summarize(der: &[u8], now: i64) -> CertSummary {
    let cert = match decode_cert(der) {
        Ok((cert, _)) => cert,
        Err(err) => {
            return CertSummary {
                text: format!("{} bytes, unparsable", der.len()),
                problems: vec![format!("not an X.509 certificate: {err}")],
                warnings: Vec::new(),
            };
        }
    };
    let tbs = cert.tbs_certificate();
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let key = key_type(&cert);
    let names: Vec<String> = match tbs.get_extension::<SubjectAltName>() {
        Ok(Some((_, san))) => san.0.iter().map(general_name).collect(),
        _ => Vec::new(),
    };
    if !names.iter().any(|n| n == "DNSName(localhost)") {
        // go-plugin hosts verify the server name "localhost".
        problems.push(format!("no DNS name localhost among {names:?}"));
    }
    let secs = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    let (from, until) = (
        secs(tbs.validity().not_before),
        secs(tbs.validity().not_after),
    );
    let (from_text, until_text) = (rfc3339(from), rfc3339(until));
    if now < from || now > until {
        problems.push(format!("not valid now (valid {from_text} to {until_text})"));
    }
    let ca = matches!(
        tbs.get_extension::<BasicConstraints>(),
        Ok(Some((_, BasicConstraints { ca: true, .. })))
    );
    if !ca {
        // go-plugin hosts put the certificate in their root pool; Go
        // accepts a leaf found there as is, stricter verifiers (webpki)
        // want a CA.
        warnings.push("not a CA (go-plugin's certificates are CA:TRUE)".into());
    }
    CertSummary {
        text: format!(
            "{key}, subject {}, names {}, valid {from_text} to {until_text}, CA:{}",
            tbs.subject(),
            names.join(" "),
            if ca { "TRUE" } else { "FALSE" },
        ),
        problems,
        warnings,
    }
}

fn general_name(name: &GeneralName) -> String {
    match name {
        GeneralName::DnsName(dns) => format!("DNSName({dns})"),
        GeneralName::IpAddress(ip) => match ip.as_bytes() {
            &[a, b, c, d] => format!("IPAddress({})", std::net::Ipv4Addr::new(a, b, c, d)),
            bytes => match <[u8; 16]>::try_from(bytes) {
                Ok(v6) => format!("IPAddress({})", std::net::Ipv6Addr::from(v6)),
                Err(_) => format!("IPAddress({bytes:02x?})"),
            },
        },
        GeneralName::Rfc822Name(mail) => format!("RFC822Name({mail})"),
        GeneralName::UniformResourceIdentifier(uri) => format!("URI({uri})"),
        other => format!("{other:?}"),
    }
}

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

fn key_type(cert: &Certificate) -> String {
    let spki = cert.tbs_certificate().subject_public_key_info();
    match spki.algorithm.oid {
        EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .map(|oid| oid.to_string());
            let curve = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "P-256",
                Some("1.3.132.0.34") => "P-384",
                Some("1.3.132.0.35") => "P-521",
                _ => "EC",
            };
            format!("ECDSA {curve}")
        }
        RSA_ENCRYPTION => match spki.subject_public_key.as_bytes().and_then(rsa_bits) {
            Some(bits) => format!("RSA {bits}"),
            None => "RSA".into(),
        },
        ED25519 => "Ed25519".into(),
        _ => "other key type".into(),
    }
}

/// The modulus size of a PKCS #1 RSA public key (SEQUENCE { n, e }).
fn rsa_bits(key: &[u8]) -> Option<usize> {
    let mut reader = SliceReader::new(key).ok()?;
    let modulus = reader
        .sequence(|seq| {
            let n = UintRef::decode(seq)?;
            UintRef::decode(seq)?;
            Ok::<_, x509_cert::der::Error>(n.as_bytes().to_vec())
        })
        .ok()?;
    let first = *modulus.first()?;
    Some(modulus.len() * 8 - first.leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_certificate_is_p256_localhost_ca() {
        let identity = crate::tls::Identity::generate().unwrap();
        let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
        let summary = summarize(identity.cert_der(), now);
        assert!(summary.problems.is_empty(), "{:?}", summary.problems);
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        assert!(summary.text.starts_with("ECDSA P-256,"), "{}", summary.text);
        assert!(
            summary.text.contains("DNSName(localhost)"),
            "{}",
            summary.text
        );
        assert!(summary.text.ends_with("CA:TRUE"), "{}", summary.text);
        let later = summarize(identity.cert_der(), now + 40 * 365 * 86400);
        assert!(
            later.problems[0].starts_with("not valid now"),
            "{:?}",
            later.problems
        );
    }

    #[test]
    fn go_plugins_p521_certificate_is_recognized() {
        let line = include_str!("../../tests/data/go-plugin-1.0.1-automtls.line");
        let line = crate::handshake::HandshakeLine::parse(line).unwrap();
        let summary = summarize(line.server_cert().unwrap(), 1_800_000_000);
        assert!(summary.text.starts_with("ECDSA P-521,"), "{}", summary.text);
        assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    }
}
