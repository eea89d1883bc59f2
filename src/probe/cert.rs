//! The plugin's AutoMTLS certificate as a person reads it: key type, names,
//! validity, CA flag.

use x509_parser::prelude::*;

/// What a certificate says, and what is wrong with it for go-plugin.
pub(crate) struct CertSummary {
    pub(crate) text: String,
    /// What makes go-plugin hosts refuse it.
    pub(crate) problems: Vec<String>,
    /// What some hosts may mind.
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn summarize(der: &[u8], now: i64) -> CertSummary {
    let cert = match parse_x509_certificate(der) {
        Ok((_, cert)) => cert,
        Err(err) => {
            return CertSummary {
                text: format!("{} bytes, unparsable", der.len()),
                problems: vec![format!("not an X.509 certificate: {err}")],
                warnings: Vec::new(),
            };
        }
    };
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let key = key_type(&cert);
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| n.to_string())
                .collect()
        })
        .unwrap_or_default();
    if !names.iter().any(|n| n == "DNSName(localhost)") {
        // go-plugin hosts verify the server name "localhost".
        problems.push(format!("no DNS name localhost among {names:?}"));
    }
    let validity = cert.validity();
    let (from, until) = (validity.not_before, validity.not_after);
    if now < from.timestamp() || now > until.timestamp() {
        problems.push(format!("not valid now (valid {from} to {until})"));
    }
    let ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !ca {
        // go-plugin hosts put the certificate in their root pool; Go
        // accepts a leaf found there as is, stricter verifiers (webpki)
        // want a CA.
        warnings.push("not a CA (go-plugin's certificates are CA:TRUE)".into());
    }
    CertSummary {
        text: format!(
            "{key}, subject {}, names {}, valid {from} to {until}, CA:{}",
            cert.subject(),
            names.join(" "),
            if ca { "TRUE" } else { "FALSE" },
        ),
        problems,
        warnings,
    }
}

fn key_type(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    match cert.public_key().parsed() {
        Ok(PublicKey::EC(point)) => {
            let curve = match point.key_size() {
                256 => "P-256",
                384 => "P-384",
                528 | 521 => "P-521",
                _ => "EC",
            };
            format!("ECDSA {curve}")
        }
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::Unknown(_)) | Err(_) => "unknown key type".into(),
        Ok(_) => "other key type".into(),
    }
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
