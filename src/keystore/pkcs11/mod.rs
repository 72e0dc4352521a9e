//! Keys on PKCS#11 tokens (HSMs, smart cards, TPMs, SoftHSM2) through the `cryptoki` crate: a
//! [`TokenKey`] signs on the token (`CKM_SHA256_RSA_PKCS`, `CKM_SHA256_RSA_PKCS_PSS`) and never
//! holds key bytes; [`generate`] makes a key pair on the token that cannot leave it
//! (`CKA_SENSITIVE`, not `CKA_EXTRACTABLE`); the certificate is kept beside it (same `CKA_ID`).
//!
//! The module is a shared library loaded at run time (no C build): see [`session`].

pub mod session;

pub use session::{open_token, Access, Token};

use super::uri::{ObjectType, Pkcs11Uri};
use crate::cert::{Certificate, SignatureAlg, Signer};
use crate::{Error, Result};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use std::fmt;
use std::sync::Arc;

/// What was missing to reach a token, as an error's source: the caller names its own way of
/// giving it (an option, an environment variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// No module was named.
    Module,
    /// The token needs a PIN and none was given.
    Pin,
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Needs::Module => "no PKCS#11 module",
            Needs::Pin => "no PIN",
        })
    }
}

impl std::error::Error for Needs {}

/// A token's refusal, as an error naming the token and what was being done. A wrong or locked
/// PIN, a missing token and an unsupported mechanism are the user's to fix (exit 2).
pub(crate) fn token_error(e: CkError, token: &str, doing: &str) -> Error {
    let input = |msg: String, hint: &str| Error::input(msg).with_hint(hint.to_string());
    match &e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => input(
            format!("token '{token}' refused the PIN (CKR_PIN_INCORRECT)"),
            "check the PIN; tokens lock the PIN after a few wrong tries",
        ),
        CkError::Pkcs11(RvError::PinLocked, _) => input(
            format!("token '{token}': the user PIN is locked (CKR_PIN_LOCKED)"),
            "unlock it with the security officer PIN, using the token's own tools",
        ),
        CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _) => {
            input(format!("token '{token}' refused the PIN as malformed (wrong length or characters)"), "check the PIN")
        }
        CkError::Pkcs11(RvError::UserPinNotInitialized, _) => input(
            format!("token '{token}' has no user PIN yet"),
            "initialise the user PIN with the token's tools (softhsm2-util --init-token, pkcs11-tool --init-pin)",
        ),
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => {
            input(format!("token '{token}' was removed while {doing}"), "insert the token and try again")
        }
        CkError::Pkcs11(
            RvError::MechanismInvalid | RvError::MechanismParamInvalid | RvError::KeyTypeInconsistent,
            _,
        ) => input(
            format!("token '{token}' cannot do what was asked while {doing}: {e}"),
            "use a token that supports RSA keys and SHA-256 signatures",
        ),
        _ => Error::internal(format!("token '{token}' failed while {doing}")).caused_by(e),
    }
}

/// An RSA private key on a token: signs there, holds only its public half.
pub struct TokenKey {
    token: Arc<Token>,
    handle: ObjectHandle,
    /// PKCS#1 RSAPublicKey DER.
    public: Vec<u8>,
    /// The key's CKA_ID and CKA_LABEL, to find its certificate.
    id: Vec<u8>,
    label: Option<String>,
    name: String,
}

impl TokenKey {
    /// The certificate stored beside the key (same `CKA_ID`, else same label), if any.
    pub fn certificate(&self) -> Result<Option<Certificate>> {
        let mut found = self.find_cert(Attribute::Id(self.id.clone()))?;
        if found.is_none() && self.id.is_empty() {
            if let Some(label) = &self.label {
                found = self.find_cert(Attribute::Label(label.as_bytes().to_vec()))?;
            }
        }
        found.map(|der| Certificate::from_der(&der, &format!("the certificate of {}", self.name))).transpose()
    }

    fn find_cert(&self, by: Attribute) -> Result<Option<Vec<u8>>> {
        let label = &self.token.label;
        self.token.with_session(|s| {
            let certs = s
                .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), by])
                .map_err(|e| token_error(e, label, "looking for the certificate"))?;
            let Some(h) = certs.first() else { return Ok(None) };
            let attrs = s
                .get_attributes(*h, &[AttributeType::Value])
                .map_err(|e| token_error(e, label, "reading the certificate"))?;
            Ok(attrs.into_iter().find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            }))
        })?
    }

    /// Stores `cert` on the token beside the key (`CKO_CERTIFICATE`, same `CKA_ID` and label).
    pub fn store_certificate(&self, cert: &Certificate) -> Result<()> {
        let mut template = vec![
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Id(self.id.clone()),
            Attribute::Subject(cert.subject_der().to_vec()),
            Attribute::Issuer(cert.issuer_der().to_vec()),
            Attribute::Value(cert.der().to_vec()),
        ];
        if let Some(l) = &self.label {
            template.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        let label = &self.token.label;
        self.token
            .with_session(|s| s.create_object(&template))?
            .map_err(|e| token_error(e, label, "storing the certificate"))?;
        Ok(())
    }

    /// Removes the key pair (and a certificate stored beside it) from the token: undoes a
    /// [`generate`] whose certificate could not be made, stored or written out, so that the
    /// token is left as it was.
    pub fn destroy(&self) -> Result<()> {
        let label = &self.token.label;
        self.token.with_session(|s| {
            let mut others = Vec::new();
            for class in [ObjectClass::PUBLIC_KEY, ObjectClass::CERTIFICATE] {
                others.extend(
                    s.find_objects(&[Attribute::Class(class), Attribute::Id(self.id.clone())]).unwrap_or_default(),
                );
            }
            for h in others.into_iter().chain([self.handle]) {
                s.destroy_object(h).map_err(|e| token_error(e, label, "removing the new key"))?;
            }
            Ok(())
        })?
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKey({})", self.name)
    }
}

impl Signer for TokenKey {
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn rsa_public_key(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, alg: SignatureAlg, msg: &[u8]) -> Result<Vec<u8>> {
        let (mech, what) = match alg {
            SignatureAlg::Rs256 => (Mechanism::Sha256RsaPkcs, "SHA256-RSA-PKCS (RS256)"),
            SignatureAlg::Ps256 => (Mechanism::Sha256RsaPkcsPss(pss_params()), "SHA256-RSA-PKCS-PSS (PS256)"),
        };
        if !self.token.has(mech.mechanism_type()) {
            return Err(Error::input(format!(
                "token '{}' does not offer {what}, which {} needs to sign",
                self.token.label, self.name
            ))
            .with_hint("use the other algorithm (RS256 or PS256), or a token that offers it"));
        }
        let label = &self.token.label;
        self.token.with_session(|s| s.sign(&mech, self.handle, msg))?.map_err(|e| token_error(e, label, "signing"))
    }
}

/// RSASSA-PSS as JOSE's PS256 is: SHA-256, MGF1 with SHA-256, a 32-byte salt (RFC 7518 3.5).
fn pss_params() -> PkcsPssParams {
    PkcsPssParams { hash_alg: MechanismType::SHA256, mgf: PkcsMgfType::MGF1_SHA256, s_len: 32.into() }
}

/// The private key `uri` names, on its token, ready to sign.
pub fn open_key(uri: &Pkcs11Uri, access: &Access) -> Result<TokenKey> {
    if !uri.names_object() {
        return Err(Error::input(format!("{uri}: names a token but no key"))
            .with_hint("add the key's label (object=LABEL) or id (id=%01%02...) to the URI"));
    }
    if matches!(uri.object_type, Some(t) if t != ObjectType::Private) {
        return Err(Error::input(format!("{uri}: type= names something other than a private key"))
            .with_hint("use type=private, or leave type out"));
    }
    let token = open_token(uri, access)?;
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(o) = &uri.object {
        template.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let label = token.label.clone();
    let found = token
        .with_session(|s| s.find_objects(&template))?
        .map_err(|e| token_error(e, &label, "looking for the key"))?;
    let handle = match found.as_slice() {
        [h] => *h,
        [] => return Err(Error::input(format!("{uri}: no such private key on token '{label}'")).with_hint(
            "list the token's keys with `pkcs11-tool --module MODULE --login --list-objects`; check object= and id=",
        )),
        more => {
            return Err(Error::input(format!("{uri}: {} private keys match on token '{label}'", more.len()))
                .with_hint("name the key by its id as well (id=%01%02...)"))
        }
    };
    key_at(token, handle, uri)
}

/// The [`TokenKey`] of the private key `handle`: checks it is RSA and reads its public half.
fn key_at(token: Arc<Token>, handle: ObjectHandle, uri: &Pkcs11Uri) -> Result<TokenKey> {
    let label = token.label.clone();
    let wanted = [
        AttributeType::KeyType,
        AttributeType::Id,
        AttributeType::Label,
        AttributeType::Modulus,
        AttributeType::PublicExponent,
    ];
    let attrs = token
        .with_session(|s| s.get_attributes(handle, &wanted))?
        .map_err(|e| token_error(e, &label, "reading the key's attributes"))?;
    let (mut key_type, mut id, mut obj_label, mut n, mut e) = (None, Vec::new(), None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(v) => id = v,
            Attribute::Label(l) => obj_label = String::from_utf8(l).ok(),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    if key_type != Some(KeyType::RSA) {
        let what = key_type.map_or("of an unknown type".to_string(), |t| format!("a {t} key"));
        return Err(Error::input(format!("{uri}: {what}, not RSA"))
            .with_hint("Entra certificate credentials need an RSA key: generate an RSA key on the token"));
    }
    if !token.has(MechanismType::SHA256_RSA_PKCS) {
        return Err(Error::input(format!(
            "token '{label}' does not offer RSA signatures with SHA-256 (CKM_SHA256_RSA_PKCS)"
        ))
        .with_hint("use a token that supports RSA keys and SHA-256 signatures"));
    }
    let (Some(n), Some(e)) = (n, e) else {
        return Err(Error::input(format!("{uri}: the token does not show the key's public half (modulus, exponent)"))
            .with_hint("use a token that exposes CKA_MODULUS on private keys"));
    };
    let name = uri.key_name();
    Ok(TokenKey { token, handle, public: crate::cert::signer::rsa_public_key_der(&n, &e)?, id, label: obj_label, name })
}

/// Generates an RSA key pair of `bits` on the token `uri` names, labelled by `object=` and with
/// `id=` or a random 16-byte CKA_ID: the private half sensitive and not extractable, both on the
/// token (`CKA_TOKEN`), for signing only (no decryption, no wrapping). A label or id already used
/// by a key or certificate there is refused.
pub fn generate(uri: &Pkcs11Uri, access: &Access, bits: u32) -> Result<TokenKey> {
    let Some(object) = uri.object.clone() else {
        return Err(Error::input(format!("{uri}: no object= label for the new key"))
            .with_hint("name the new key: pkcs11:token=T;object=LABEL"));
    };
    let token = open_token(uri, access)?;
    let label = token.label.clone();
    if !token.has(MechanismType::RSA_PKCS_KEY_PAIR_GEN) || !token.has(MechanismType::SHA256_RSA_PKCS) {
        return Err(Error::input(format!("token '{label}' cannot generate RSA keys or sign with them (CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_SHA256_RSA_PKCS)"))
            .with_hint("use a token that supports RSA keys and SHA-256 signatures"));
    }
    let id = uri.id.clone().unwrap_or_else(|| rand::random::<[u8; 16]>().to_vec());
    let taken = token.with_session(|s| {
        let by_label = s.find_objects(&[Attribute::Label(object.as_bytes().to_vec())])?;
        let by_id = s.find_objects(&[Attribute::Id(id.clone())])?;
        Ok::<_, CkError>(!by_label.is_empty() || !by_id.is_empty())
    })?;
    if taken.map_err(|e| token_error(e, &label, "looking for existing objects"))? {
        return Err(Error::input(format!("{uri}: token '{label}' already holds an object with this label or id"))
            .with_hint("choose another object= label; the existing key stays as it is"));
    }
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Id(id.clone()),
            Attribute::Label(object.as_bytes().to_vec()),
        ]
    };
    let mut public = common(false);
    public.extend([
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::ModulusBits((bits as u64).into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
    ]);
    let mut private = common(true);
    private.extend([
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ]);
    let (_, handle) = token
        .with_session(|s| s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private))?
        .map_err(|e| token_error(e, &label, "generating the key pair"))?;
    let uri = Pkcs11Uri { id: Some(id), ..uri.clone() };
    key_at(token, handle, &uri)
}
