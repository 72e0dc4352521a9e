"""MSAL Python gets app-only tokens from `keycred emulate --tls` with a keycred-made certificate.

Two credential shapes, as MSAL documents them: private key + SHA-1 thumbprint, and private key +
public certificate (MSAL then sends the certificate itself, `x5c`, and picks the thumbprint it
computes). Instance discovery is turned off; the emulator answers tenant discovery
(`/{tenant}/v2.0/.well-known/openid-configuration`), whose `token_endpoint` becomes the
assertion's `aud`.
"""

import sys

import msal

from common import check_token, env, expectations, sha1_thumbprint, split_bundle


def app(credential):
    return msal.ConfidentialClientApplication(
        env("KEYCRED_CLIENT_ID"),
        authority=f"{env('KEYCRED_AUTHORITY')}/{env('KEYCRED_TENANT')}",
        client_credential=credential,
        instance_discovery=False,
        token_cache=msal.TokenCache(),  # a fresh cache: every call below reaches the emulator
    )


def main():
    key, cert = split_bundle(env("KEYCRED_BUNDLE"))
    variants = {
        "thumbprint": {"private_key": key, "thumbprint": sha1_thumbprint(cert)},
        "public_certificate": {"private_key": key, "thumbprint": sha1_thumbprint(cert), "public_certificate": cert},
    }
    print(f"msal {msal.__version__}")
    for name, credential in variants.items():
        client = app(credential)
        for scope, roles in expectations().items():
            result = client.acquire_token_for_client(scopes=[scope])
            if "access_token" not in result:
                sys.exit(
                    f"msal ({name}): no token for {scope}: {result.get('error')}: {result.get('error_description')}"
                )
            check_token(f"msal ({name})", result["access_token"], scope, roles)
    # A wrong thumbprint must be refused with Entra's code, proving the emulator checked it.
    bad = app({"private_key": key, "thumbprint": "00" * 20})
    result = bad.acquire_token_for_client(scopes=[next(iter(expectations()))])
    assert "access_token" not in result, "a wrong thumbprint got a token"
    assert 700027 in result.get("error_codes", []), f"wrong thumbprint: {result}"
    print("ok msal (wrong thumbprint): refused with AADSTS700027")


if __name__ == "__main__":
    main()
