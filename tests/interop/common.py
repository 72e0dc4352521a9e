"""Shared helpers for the interop scripts run by `cargo xtask interop`.

The runner starts `keycred emulate --tls` and passes everything through the environment:
KEYCRED_AUTHORITY (https base URL), KEYCRED_TENANT, KEYCRED_CLIENT_ID, KEYCRED_BUNDLE (PEM with
the private key and the certificate, as `keycred new` writes NAME.pem), KEYCRED_EXPECT (JSON:
scope -> roles the token must carry), and REQUESTS_CA_BUNDLE (the emulator's CA file).
Nothing here trusts keycred: thumbprints and token claims are computed with the standard library.
"""

import base64
import hashlib
import json
import os
import re
import sys
import uuid


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"interop: {name} is not set (run through `cargo xtask interop`)")
    return value


def pem_blocks(text):
    """(label, base64 body) of each PEM block, in order."""
    return re.findall(r"-----BEGIN ([A-Z ]+)-----\s*(.*?)\s*-----END \1-----", text, re.S)


def split_bundle(path):
    """The private key PEM and the certificate PEM of a keycred bundle."""
    with open(path, encoding="ascii") as f:
        text = f.read()
    key = cert = None
    for label, body in pem_blocks(text):
        block = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"
        if label.endswith("PRIVATE KEY") and key is None:
            key = block
        elif label == "CERTIFICATE" and cert is None:
            cert = block
    if key is None or cert is None:
        sys.exit(f"interop: {path} must hold a private key and a certificate")
    return key, cert


def sha1_thumbprint(cert_pem):
    """SHA-1 of the certificate's DER, upper-case hex (what the portal shows)."""
    body = pem_blocks(cert_pem)[0][1]
    der = base64.b64decode("".join(body.split()))
    return hashlib.sha1(der).hexdigest().upper()


def claims(token):
    """The claims of a JWT, decoded without verification (the emulator's tests verify)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionError(f"not a JWT: {len(parts)} segments")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def expectations():
    """scope -> roles the token for that scope must carry."""
    return json.loads(env("KEYCRED_EXPECT"))


def expected_aud(resource, ver):
    """v1 tokens name the resource as asked; v2 tokens its app id (PROTOCOL.md section 5): Graph's
    well-known id, or for another URI the id the emulator derives from it (SHA-256 of
    "keycred-emulator resource <uri>", first 16 bytes as a version-4 UUID)."""
    r = resource.rstrip("/")
    if ver != "2.0":
        return r
    if r.lower() == "https://graph.microsoft.com":
        return "00000003-0000-0000-c000-000000000000"
    b = bytearray(hashlib.sha256(f"keycred-emulator resource {r.lower()}".encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def check_token(label, token, scope, roles):
    c = claims(token)
    resource = scope[: -len("/.default")]
    want = expected_aud(resource, c.get("ver"))
    assert c.get("aud", "").rstrip("/") == want, f"{label}: aud {c.get('aud')!r} != {want!r} (for {resource!r})"
    assert c.get("tid") == env("KEYCRED_TENANT").lower(), f"{label}: tid {c.get('tid')!r}"
    assert sorted(c.get("roles", [])) == sorted(roles), f"{label}: roles {c.get('roles')!r} != {roles!r}"
    assert c.get("idtyp") == "app", f"{label}: idtyp {c.get('idtyp')!r}"
    print(f"ok {label}: {scope} -> roles {c.get('roles', [])}")
