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


def _segment(token, i):
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionError(f"not a JWT: {len(parts)} segments")
    return json.loads(base64.urlsafe_b64decode(parts[i] + "=" * (-len(parts[i]) % 4)))


def claims(token):
    """The claims of a JWT, decoded without verification (the emulator's tests verify)."""
    return _segment(token, 1)


def header(token):
    """The header of a JWT."""
    return _segment(token, 0)


def expectations():
    """scope -> roles the token for that scope must carry."""
    return json.loads(env("KEYCRED_EXPECT"))


def expected_aud(resource, ver):
    """The token's shape follows the resource (PROTOCOL.md section 5): Microsoft Graph and every
    resource without a manifest asking for v2 take v1 tokens, whose `aud` names the resource as
    it was asked for, whichever endpoint was called."""
    if ver != "1.0":
        raise AssertionError(f"{resource}: a v{ver} token; this resource takes v1 tokens")
    return resource.rstrip("/")


def check_v1_shape(label, c):
    """What a v1 token carries and what it must not."""
    tid = env("KEYCRED_TENANT").lower()
    assert c.get("ver") == "1.0", f"{label}: ver {c.get('ver')!r}"
    assert c.get("iss") == f"https://sts.windows.net/{tid}/", f"{label}: iss {c.get('iss')!r}"
    assert "azp" not in c, f"{label}: azp in a v1 token"
    assert c.get("appid") == env("KEYCRED_CLIENT_ID").lower(), f"{label}: appid {c.get('appid')!r}"


def check_token(label, token, scope, roles):
    c = claims(token)
    resource = scope[: -len("/.default")]
    want = expected_aud(resource, c.get("ver"))
    assert c.get("aud", "").rstrip("/") == want, f"{label}: aud {c.get('aud')!r} != {want!r} (for {resource!r})"
    assert c.get("tid") == env("KEYCRED_TENANT").lower(), f"{label}: tid {c.get('tid')!r}"
    assert sorted(c.get("roles", [])) == sorted(roles), f"{label}: roles {c.get('roles')!r} != {roles!r}"
    # idtyp is an optional claim the resource asks for (Microsoft's optional-claims reference):
    # Microsoft Graph's tokens carry it, the interop API's manifest does not ask for it.
    graph = resource.rstrip("/") == "https://graph.microsoft.com"
    want_idtyp = "app" if graph else None
    assert c.get("idtyp") == want_idtyp, f"{label}: idtyp {c.get('idtyp')!r}, expected {want_idtyp!r}"
    # Graph's tokens carry a nonce header and are signed over its hash, as Graph's are.
    assert ("nonce" in header(token)) == graph, f"{label}: header {header(token)}"
    check_v1_shape(label, c)
    print(f"ok {label}: {scope} -> roles {c.get('roles', [])}")
