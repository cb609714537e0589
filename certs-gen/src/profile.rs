//! X.509 parameters of each kind of certificate in the test PKI.

use crate::{CertsError, KeyType};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use time::OffsetDateTime;

/// The organisation every generated certificate names, so that a stray
/// test certificate is recognisable wherever it turns up.
const ORGANIZATION: &str = "mqtls-harness test PKI";

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

/// What a leaf certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    ServerAuth,
    ClientAuth,
}

/// Parses a subject alternative name: an IP address, else a DNS name valid
/// by the same rules rustls applies when it checks the name.
pub(crate) fn san(name: &str) -> Result<SanType, CertsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = |reason: String| CertsError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if rustls_pki_types::DnsName::try_from(name).is_err() {
        return Err(invalid(
            "not a valid DNS name (letters, digits, hyphens and dots only)".to_owned(),
        ));
    }
    Ok(SanType::DnsName(
        name.try_into()
            .map_err(|e: rcgen::Error| invalid(e.to_string()))?,
    ))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A CA that signs leaves only (path length 0).
pub(crate) fn ca(common_name: &str, window: Window) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = window.not_before;
    p.not_after = window.not_after;
    p
}

/// An end-entity certificate.
pub(crate) fn leaf(
    common_name: &str,
    names: Vec<SanType>,
    usage: Usage,
    key_type: KeyType,
    window: Window,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(common_name);
    p.subject_alt_names = names;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if key_type == KeyType::Rsa2048 {
        // OpenSSL peers negotiating TLS 1.2 RSA key transport check it.
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    p.extended_key_usages = vec![match usage {
        Usage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    // OpenSSL builds chains faster and reports better with an AKI.
    p.use_authority_key_identifier_extension = true;
    p.not_before = window.not_before;
    p.not_after = window.not_after;
    p
}
