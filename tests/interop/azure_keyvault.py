"""Azure's Key Vault SDKs (azure-keyvault-keys, azure-keyvault-certificates) against
`keycred emulate --tls --vault NAME=APPID --vault DENIED=OTHERAPP`.

The credential is azure-identity's CertificateCredential with keycred's PEM bundle, against the
emulator's authority. The SDKs follow the vault's 401 challenge themselves and keep their check
that the vault's host lies under the challenge's resource (verify_challenge_resource stays on).
Signatures are checked with Python's `cryptography`, with the public key of the key as the vault
returns it and of the certificate's DER: nothing here trusts keycred.

Environment (besides common.py's): KEYCRED_VAULT_URL (the vault the app may use),
KEYCRED_DENIED_VAULT_URL (a vault granted to another app only).
"""

import hashlib
import socket
import sys

from common import env

# `*.localhost` names are loopback (RFC 6761), but glibc's resolver here does not know them: send
# the vault hosts to 127.0.0.1 while every client keeps the host name (TLS name check, the SDKs'
# challenge domain check).
_getaddrinfo = socket.getaddrinfo


def _loopback_vaults(host, *args, **kwargs):
    if isinstance(host, str) and host.lower().endswith(".vault.localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_vaults

from azure.core.exceptions import HttpResponseError  # noqa: E402
from azure.identity import CertificateCredential  # noqa: E402
from azure.keyvault.certificates import CertificateClient, CertificatePolicy, KeyType  # noqa: E402
from azure.keyvault.keys import KeyClient  # noqa: E402
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils  # noqa: E402


def fail(msg):
    sys.exit(f"interop azure-keyvault: {msg}")


def check_signature(public_key, alg, digest, signature, what):
    """Verifies with `cryptography`, then checks that a flipped byte fails."""
    pad = padding.PKCS1v15() if alg == SignatureAlgorithm.rs256 else padding.PSS(
        mgf=padding.MGF1(hashes.SHA256()), salt_length=32
    )
    public_key.verify(signature, digest, pad, utils.Prehashed(hashes.SHA256()))
    bad = bytes([signature[0] ^ 1]) + signature[1:]
    try:
        public_key.verify(bad, digest, pad, utils.Prehashed(hashes.SHA256()))
    except InvalidSignature:
        pass
    else:
        fail(f"{what}: a corrupted signature verified")


def sign_both_ways(crypto, public_key, what):
    digest = hashlib.sha256(f"keycred interop {what}".encode()).digest()
    for alg in (SignatureAlgorithm.rs256, SignatureAlgorithm.ps256):
        result = crypto.sign(alg, digest)
        check_signature(public_key, alg, digest, result.signature, f"{what} {alg}")
        if not crypto.verify(alg, digest, result.signature).is_valid:
            fail(f"{what}: the vault's verify refused its own {alg} signature")
    print(f"azure-keyvault: {what}: RS256 and PS256 signatures verified by cryptography")


def keys(cred, vault_url):
    client = KeyClient(vault_url, cred)
    key = client.create_rsa_key("interop-key", size=2048)
    if key.key_type != "RSA" or not key.id.startswith(f"{vault_url}/keys/interop-key/"):
        fail(f"create_rsa_key answered {key.key_type} {key.id}")
    got = client.get_key("interop-key")
    if got.id != key.id or got.key.n != key.key.n:
        fail("get_key returned another key")
    if getattr(got.key, "d", None):
        fail("the vault returned a private exponent")
    public = rsa.RSAPublicNumbers(int.from_bytes(got.key.e, "big"), int.from_bytes(got.key.n, "big")).public_key()
    if public.key_size != 2048:
        fail(f"the key is {public.key_size} bits")
    sign_both_ways(CryptographyClient(key, cred), public, "key")


def certificates(cred, vault_url):
    client = CertificateClient(vault_url, cred)
    policy = CertificatePolicy(
        issuer_name="Self",
        subject="CN=keycred interop",
        exportable=False,
        key_type=KeyType.rsa,
        key_size=2048,
        validity_in_months=12,
    )
    created = client.begin_create_certificate("interop-cert", policy).result()
    cert = client.get_certificate("interop-cert")
    if cert.id != created.id or cert.policy.exportable is not False or cert.policy.issuer_name != "Self":
        fail(f"get_certificate answered {cert.id}, exportable={cert.policy.exportable}")
    parsed = x509.load_der_x509_certificate(bytes(cert.cer))
    if parsed.subject.rfc4514_string() != "CN=keycred interop":
        fail(f"the certificate's subject is {parsed.subject.rfc4514_string()}")
    thumb = hashlib.sha1(bytes(cert.cer)).digest()
    if cert.properties.x509_thumbprint != thumb:
        fail("x5t is not the SHA-1 of the certificate")
    versions = list(client.list_properties_of_certificate_versions("interop-cert"))
    if len(versions) != 1 or versions[0].id != cert.id:
        fail(f"versions: {[v.id for v in versions]}")
    sign_both_ways(CryptographyClient(cert.key_id, cred), parsed.public_key(), "certificate's key")


def denied(cred, vault_url):
    try:
        KeyClient(vault_url, cred).create_rsa_key("not-mine", size=2048)
    except HttpResponseError as e:
        if e.status_code != 403 or e.error is None or e.error.code != "Forbidden":
            fail(f"a vault of another app answered {e.status_code} {e.error and e.error.code}")
        print("azure-keyvault: a vault granted to another app answers 403 Forbidden")
        return
    fail("a vault granted to another app let this app create a key")


def main():
    import azure.keyvault.keys

    print(f"azure-keyvault-keys {azure.keyvault.keys.__version__}")
    cred = CertificateCredential(
        env("KEYCRED_TENANT"),
        env("KEYCRED_CLIENT_ID"),
        certificate_path=env("KEYCRED_BUNDLE"),
        authority=env("KEYCRED_AUTHORITY"),
        disable_instance_discovery=True,
    )
    keys(cred, env("KEYCRED_VAULT_URL"))
    certificates(cred, env("KEYCRED_VAULT_URL"))
    denied(cred, env("KEYCRED_DENIED_VAULT_URL"))
    cred.close()


if __name__ == "__main__":
    main()
