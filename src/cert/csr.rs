//! Certificate signing requests (PKCS#10), as `show` reads them: what a CA will see (subject,
//! key) and whether the request's signature holds, checked with the request's own public key.
//! Requests are made by [`super::request_with`].

use super::dn;
use serde::Serialize;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// What a certificate request says. JSON field names are stable.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestValues {
    /// Always `certificateRequest`, to tell it from a certificate in mixed output.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Subject DN, as certificates show it.
    pub subject: String,
    /// `RSA` (or what else the key is).
    pub key_algorithm: String,
    /// Key size in bits (0 when unknown).
    pub key_size: usize,
    /// Signature algorithm name (`sha256WithRSAEncryption`).
    pub signature_algorithm: String,
    /// Whether the signature verifies with the request's public key.
    pub signature_valid: bool,
    /// What is wrong, empty when fine.
    pub problems: Vec<String>,
}

impl RequestValues {
    /// `name: value` lines for text output.
    pub fn text_lines(&self) -> Vec<(&'static str, String)> {
        vec![
            ("type", self.kind.to_string()),
            ("subject", self.subject.clone()),
            ("keyAlgorithm", self.key_algorithm.clone()),
            ("keySize", self.key_size.to_string()),
            ("signatureAlgorithm", self.signature_algorithm.clone()),
            ("signatureValid", self.signature_valid.to_string()),
            ("problems", if self.problems.is_empty() { "none".into() } else { self.problems.join("; ") }),
        ]
    }
}

/// sha256WithRSAEncryption.
const SHA256_RSA: &str = "1.2.840.113549.1.1.11";

/// The request in `bytes` (PEM `CERTIFICATE REQUEST` or DER), or `None` when `bytes` hold no
/// request (a certificate, a key).
pub fn read_request(bytes: &[u8]) -> Option<RequestValues> {
    let der = match pem::parse_many(bytes) {
        Ok(blocks) if !blocks.is_empty() => {
            match blocks.into_iter().find(|b| matches!(b.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST")) {
                Some(b) => b.into_contents(),
                None => return None,
            }
        }
        _ => bytes.to_vec(),
    };
    let Ok((_, req)) = X509CertificationRequest::from_der(&der) else { return None };
    let info = &req.certification_request_info;
    let spki = &info.subject_pki;
    let (key_algorithm, key_size, rsa) = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(r)) => ("RSA".to_string(), r.key_size(), true),
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => ("EC".to_string(), ec.key_size(), false),
        _ => (spki.algorithm.algorithm.to_id_string(), 0, false),
    };
    let alg_oid = req.signature_algorithm.algorithm.to_id_string();
    let signature_algorithm =
        x509_parser::objects::oid2sn(&req.signature_algorithm.algorithm, x509_parser::objects::oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| alg_oid.clone());
    let mut problems = Vec::new();
    let signature_valid = if rsa && alg_oid == SHA256_RSA {
        super::SignatureAlg::Rs256.verify(&spki.subject_public_key.data, info.raw, &req.signature_value.data)
    } else {
        problems.push(format!(
            "signature algorithm {signature_algorithm} is not checked (keycred checks sha256WithRSAEncryption)"
        ));
        false
    };
    if !signature_valid && problems.is_empty() {
        problems.push("the signature does not verify with the request's public key".into());
    }
    if !rsa {
        problems.push("not an RSA key: Entra certificate credentials need RSA".into());
    } else if key_size < super::MIN_RSA_BITS {
        problems.push(format!("key smaller than {} bits", super::MIN_RSA_BITS));
    }
    Some(RequestValues {
        kind: "certificateRequest",
        subject: dn::format(&info.subject),
        key_algorithm,
        key_size,
        signature_algorithm,
        signature_valid,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{generate, request_with, KeySize, NewCertificate, Validity};

    #[test]
    fn a_request_shows_its_subject_and_key_and_a_tampered_one_fails_its_signature() {
        let req = NewCertificate { subject: "CN=x".into(), key_size: KeySize::Rsa2048, validity: Validity::Days(1) };
        let (cert, key) = generate(&req).unwrap();
        let pem_text = request_with(&key, "CN=for a CA, O=Contoso").unwrap();
        let v = read_request(pem_text.as_bytes()).unwrap();
        assert_eq!((v.subject.as_str(), v.key_size, v.signature_valid), ("CN=for a CA, O=Contoso", 2048, true));
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        // One byte of the subject changed: the signature no longer holds.
        let mut der = pem::parse(&pem_text).unwrap().into_contents();
        let at = der.windows(7).position(|w| w == b"Contoso").unwrap();
        der[at] = b'K';
        let v = read_request(&der).unwrap();
        assert!(!v.signature_valid && v.subject.contains("Kontoso"));
        assert_eq!(read_request(cert.to_pem().as_bytes()), None);
    }
}
