"""Secretless sign-in: Microsoft's libraries exchange a workload token for an Entra token.

The runner starts the emulator with `--issuer github` (an emulated GitHub Actions issuer) and
registers a federated identity credential on the interop app for KEYCRED_FIC_SUBJECT with
`keycred graph fic add`. Here a workload token is minted by the emulated issuer (its
emulator-only mint endpoint, standing in for the runner) and handed to:

- azure-identity's WorkloadIdentityCredential, configured only by the variables it reads
  (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_AUTHORITY_HOST);
- azure-identity's ClientAssertionCredential, with a callback returning the token;
- MSAL Python, `client_credential={"client_assertion": callable returning the token}`.

Each must get a token carrying the app's roles; a token whose subject differs in letter case
must be refused with Entra's AADSTS7002138.
"""

import json
import os
import sys
import tempfile
import urllib.request

import msal
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, WorkloadIdentityCredential

from common import check_token, env, expectations


def mint(subject):
    """A workload token from the emulated issuer (trusting the emulator's CA like requests does)."""
    import ssl

    ctx = ssl.create_default_context(cafile=env("REQUESTS_CA_BUNDLE"))
    req = urllib.request.Request(
        f"{env('KEYCRED_FIC_ISSUER')}/token",
        data=json.dumps({"subject": subject}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
        token = json.load(r)["token"]
    claims = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["iss"] == env("KEYCRED_FIC_ISSUER"), claims
    assert claims["sub"] == subject, claims
    assert claims["aud"] == "api://AzureADTokenExchange", claims
    return token


def main():
    subject = env("KEYCRED_FIC_SUBJECT")
    token = mint(subject)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "azure-identity-token")
        with open(path, "w", encoding="ascii") as f:
            f.write(token)
        # Only the variables azure-identity documents for workload identity.
        os.environ["AZURE_FEDERATED_TOKEN_FILE"] = path
        os.environ["AZURE_CLIENT_ID"] = env("KEYCRED_CLIENT_ID")
        os.environ["AZURE_TENANT_ID"] = env("KEYCRED_TENANT")
        os.environ["AZURE_AUTHORITY_HOST"] = env("KEYCRED_AUTHORITY")
        cred = WorkloadIdentityCredential(disable_instance_discovery=True)
        for scope, roles in expectations().items():
            check_token("azure-identity WorkloadIdentityCredential", cred.get_token(scope).token, scope, roles)
        cred.close()

    cred = ClientAssertionCredential(
        env("KEYCRED_TENANT"),
        env("KEYCRED_CLIENT_ID"),
        lambda: token,
        authority=env("KEYCRED_AUTHORITY"),
        disable_instance_discovery=True,
    )
    for scope, roles in expectations().items():
        check_token("azure-identity ClientAssertionCredential", cred.get_token(scope).token, scope, roles)
    cred.close()

    app = msal.ConfidentialClientApplication(
        env("KEYCRED_CLIENT_ID"),
        authority=f"{env('KEYCRED_AUTHORITY')}/{env('KEYCRED_TENANT')}",
        # A callable, as MSAL asks (it re-reads the assertion whenever it needs one).
        client_credential={"client_assertion": lambda: token},
        instance_discovery=False,
        token_cache=msal.TokenCache(),
    )
    for scope, roles in expectations().items():
        result = app.acquire_token_for_client(scopes=[scope])
        if "access_token" not in result:
            sys.exit(f"msal (client_assertion): no token for {scope}: {result.get('error_description')}")
        check_token("msal (client_assertion)", result["access_token"], scope, roles)

    # The same subject in another letter case: Entra's case-sensitive refusal.
    wrong = mint(subject.replace("keycred", "Keycred", 1))
    cred = ClientAssertionCredential(
        env("KEYCRED_TENANT"),
        env("KEYCRED_CLIENT_ID"),
        lambda: wrong,
        authority=env("KEYCRED_AUTHORITY"),
        disable_instance_discovery=True,
    )
    try:
        cred.get_token(next(iter(expectations())))
        sys.exit("azure-identity: a subject in another letter case got a token")
    except ClientAuthenticationError as e:
        assert "AADSTS7002138" in str(e), str(e)
        print("ok azure-identity (subject in another letter case): refused with AADSTS7002138")


if __name__ == "__main__":
    main()
