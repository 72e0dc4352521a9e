"""MSAL Python's user flows against `keycred emulate --tls --auto-consent`: authorization code
(the code read from the emulator's redirect, as a browser would follow it) and on-behalf-of.

The runner registers KEYCRED_REDIRECT as the app's reply URL and starts the emulator with the
app consented by an administrator. Token shapes are checked against PROTOCOL.md section 5:
Microsoft Graph takes v1 tokens, named in `aud` as requested (its app id for a bare scope such
as `User.Read`, its URI for `https://graph.microsoft.com/User.Read`).
"""

import sys
import urllib.parse

import msal
import requests

from common import check_v1_shape, claims, env, sha1_thumbprint, split_bundle

GRAPH_ID = "00000003-0000-0000-c000-000000000000"
API_SCOPE = "api://keycred-interop/access_as_user"


def app():
    key, cert = split_bundle(env("KEYCRED_BUNDLE"))
    return msal.ConfidentialClientApplication(
        env("KEYCRED_CLIENT_ID"),
        authority=f"{env('KEYCRED_AUTHORITY')}/{env('KEYCRED_TENANT')}",
        client_credential={"private_key": key, "thumbprint": sha1_thumbprint(cert)},
        instance_discovery=False,
        token_cache=msal.TokenCache(),
    )


def sign_in(client, scopes):
    """The authorization code flow, following the authorize URL to the emulator's redirect."""
    flow = client.initiate_auth_code_flow(scopes, redirect_uri=env("KEYCRED_REDIRECT"))
    r = requests.get(flow["auth_uri"], allow_redirects=False, verify=env("REQUESTS_CA_BUNDLE"), timeout=30)
    assert r.status_code == 302, f"authorize: {r.status_code} {r.text[:300]}"
    location = r.headers["Location"]
    assert location.startswith(env("KEYCRED_REDIRECT")), f"redirected to {location}"
    answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert "code" in answer and answer.get("state") == flow["state"], f"redirect: {answer}"
    result = client.acquire_token_by_auth_code_flow(flow, answer)
    if "access_token" not in result:
        sys.exit(f"msal auth code: {result.get('error')}: {result.get('error_description')}")
    return result


def main():
    print(f"msal {msal.__version__}")
    tid = env("KEYCRED_TENANT").lower()
    client = app()
    result = sign_in(client, ["User.Read"])
    c = claims(result["access_token"])
    check_v1_shape("msal auth code", c)
    assert c.get("aud") == GRAPH_ID, f"aud {c.get('aud')!r}"
    assert "User.Read" in c.get("scp", "").split(), f"scp {c.get('scp')!r}"
    assert c.get("upn") and c.get("oid"), f"user claims: {c}"
    idt = result.get("id_token_claims") or {}
    assert idt.get("tid") == tid and idt.get("aud") == env("KEYCRED_CLIENT_ID").lower(), f"id token: {idt}"
    print(f"ok msal auth code: {c['upn']} -> aud {c['aud']} scp {c['scp']!r}")

    # On-behalf-of: a user token for the app's own API, exchanged for Graph.
    incoming = sign_in(app(), [API_SCOPE])["access_token"]
    assert claims(incoming).get("aud") == "api://keycred-interop", claims(incoming)
    obo = client.acquire_token_on_behalf_of(incoming, ["https://graph.microsoft.com/User.Read"])
    if "access_token" not in obo:
        sys.exit(f"msal on-behalf-of: {obo.get('error')}: {obo.get('error_description')}")
    o = claims(obo["access_token"])
    check_v1_shape("msal on-behalf-of", o)
    assert o.get("aud") == "https://graph.microsoft.com", f"aud {o.get('aud')!r}"
    assert o.get("scp") == "User.Read", f"scp {o.get('scp')!r}"
    assert o.get("oid") == c.get("oid"), "the same user"
    print(f"ok msal on-behalf-of: aud {o['aud']} scp {o['scp']!r}")

    # An app-only token is not a user assertion: Entra's 7000114.
    app_only = client.acquire_token_for_client(["api://keycred-interop/.default"])["access_token"]
    refused = app().acquire_token_on_behalf_of(app_only, ["https://graph.microsoft.com/User.Read"])
    assert 7000114 in refused.get("error_codes", []), f"app-only assertion: {refused}"
    print("ok msal on-behalf-of (app-only assertion): refused with AADSTS7000114")


if __name__ == "__main__":
    main()
