//! The development PKI (a CA, a server certificate, one client certificate per identity) made
//! with rcgen, and reading the URI SANs a client certificate presents.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// PKI failures.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what} is not a valid URI for a certificate: {detail}")]
    BadUri { what: String, detail: String },
    #[error("not a valid certificate: {0}")]
    Parse(String),
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate authority that signs the server and client certificates of a workspace.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Validity of generated certificates: from yesterday (clock skew) for a year.
fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
}

impl DevCa {
    /// A fresh P-256 CA named `name`.
    pub fn generate(name: &str) -> Result<DevCa, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "hessra-console demo");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(DevCa {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A server certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, hosts: &[&str]) -> Result<Issued, PkiError> {
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("localhost"),
        );
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        self.sign(params)
    }

    /// A client certificate whose URI SAN is `identity` without its leading `uri:`.
    pub fn issue_client(&self, identity: &str) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        validity(&mut params);
        self.issue_client_for(&[identity], params.not_before, params.not_after)
    }

    /// A client certificate with a URI SAN per identity, valid from `not_before` to `not_after`
    /// (tests use it for expired, not yet valid and multi-identity certificates).
    pub fn issue_client_for(
        &self,
        identities: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut sans = Vec::new();
        for identity in identities {
            let uri = identity.strip_prefix("uri:").unwrap_or(identity);
            let san = uri.try_into().map_err(|e: rcgen::Error| PkiError::BadUri {
                what: identity.to_string(),
                detail: e.to_string(),
            })?;
            sans.push(SanType::URI(san));
        }
        params.subject_alt_names = sans;
        let mut dn = DistinguishedName::new();
        let first = identities.first().copied().unwrap_or("client");
        dn.push(
            DnType::CommonName,
            first.strip_prefix("uri:").unwrap_or(first),
        );
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The file name for an identity's certificate: the identifier without a leading `uri:`, with
/// `:` replaced by `_` (`uri:urn:company:alice` → `urn_company_alice`).
pub fn slug(identity: &str) -> String {
    identity
        .strip_prefix("uri:")
        .unwrap_or(identity)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The URI SANs of a DER certificate, as written (some issuers prefix them with `URI:`).
pub fn san_uris(der: &[u8]) -> Result<Vec<String>, PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Parse(e.to_string()))?;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Ok(Vec::new());
    };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect())
}

/// True when a certificate URI SAN names `identity`. Decided: the schemes are compared without
/// regard to case (a leading `uri:`, present or not, as in Hessra's test certificates'
/// `URI:urn:…`, and the `urn:` scheme itself, which RFC 3986 makes case-insensitive); the rest
/// must match exactly, because identities are compared exactly everywhere else — in tokens, in
/// the policy, in delegation — so a certificate for `urn:company:Alice` must not authenticate
/// `uri:urn:company:alice`.
pub fn san_matches(san: &str, identity: &str) -> bool {
    san_key(san) == san_key(identity)
}

/// Strips a leading `uri:` in any case.
fn bare(text: &str) -> &str {
    strip_scheme(text, "uri:").unwrap_or(text)
}

fn strip_scheme<'t>(text: &'t str, scheme: &str) -> Option<&'t str> {
    let prefix = text.get(..scheme.len())?;
    prefix
        .eq_ignore_ascii_case(scheme)
        .then(|| &text[scheme.len()..])
}

/// The key under which `san_matches` compares: no leading `uri:`, the `urn:` scheme in lower
/// case, the rest as written. Two texts match exactly when their keys are equal.
pub fn san_key(text: &str) -> String {
    let text = bare(text);
    match strip_scheme(text, "urn:") {
        Some(rest) => format!("urn:{rest}"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_keys_are_equal_exactly_when_sans_match() {
        let texts = [
            "uri:urn:company:alice",
            "URI:urn:company:alice",
            "URI:URN:company:alice",
            "urn:Company:Alice",
            "urn:company:alice2",
            "uri:",
            "",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(san_matches(a, b), san_key(a) == san_key(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn schemes_match_in_any_case_and_the_identity_exactly() {
        for san in [
            "urn:company:alice",
            "URI:urn:company:alice",
            "Uri:URN:company:alice",
        ] {
            assert!(san_matches(san, "uri:urn:company:alice"), "{san}");
        }
        for san in [
            "urn:company:Alice",
            "URI:urn:Company:alice",
            "urn:COMPANY:ALICE",
        ] {
            assert!(!san_matches(san, "uri:urn:company:alice"), "{san}");
        }
    }
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn client_certificates_carry_the_identity_as_uri_san() {
        let ca = DevCa::generate("Test CA").unwrap();
        let issued = ca.issue_client("uri:urn:company:alice").unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let sans = san_uris(&der).unwrap();
        assert_eq!(sans, vec!["urn:company:alice"]);
        assert!(san_matches(&sans[0], "uri:urn:company:alice"));
        assert!(san_matches(
            "URI:urn:test:argo-cli0",
            "uri:urn:test:argo-cli0"
        ));
        assert!(!san_matches("urn:company:alice2", "uri:urn:company:alice"));
        assert!(issued.key_pem.contains("PRIVATE KEY"));
    }

    #[test]
    fn server_certificates_and_slugs() {
        let ca = DevCa::generate("Test CA").unwrap();
        let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"]).unwrap();
        let der = CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).unwrap();
        assert!(san_uris(&der).unwrap().is_empty());
        assert_eq!(slug("uri:urn:company:alice"), "urn_company_alice");
        assert_eq!(
            slug("uri:urn:company:alice:agent1"),
            "urn_company_alice_agent1"
        );
        assert!(san_uris(b"junk").is_err());
    }
}
