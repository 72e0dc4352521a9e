"""azure-identity's OnBehalfOfCredential against `keycred emulate --tls`: the user assertion comes
from MSAL's authorization code flow (see msal_user_flows.py), the credential is keycred's PEM
bundle, and the Graph token must have the v1 shape Graph takes.
"""

from azure.identity import OnBehalfOfCredential

from common import check_v1_shape, claims, env
from msal_user_flows import API_SCOPE, app, sign_in


def main():
    import azure.identity

    print(f"azure-identity {azure.identity.__version__}")
    incoming = sign_in(app(), [API_SCOPE])["access_token"]
    with open(env("KEYCRED_BUNDLE"), "rb") as f:
        bundle = f.read()
    cred = OnBehalfOfCredential(
        env("KEYCRED_TENANT"),
        env("KEYCRED_CLIENT_ID"),
        client_certificate=bundle,
        user_assertion=incoming,
        authority=env("KEYCRED_AUTHORITY"),
        disable_instance_discovery=True,
    )
    token = cred.get_token("https://graph.microsoft.com/.default")
    c = claims(token.token)
    check_v1_shape("azure-identity on-behalf-of", c)
    assert c.get("aud") == "https://graph.microsoft.com", f"aud {c.get('aud')!r}"
    # `.default`: every delegated permission consented, the admin's User.Read among them.
    assert "User.Read" in c.get("scp", "").split(), f"scp {c.get('scp')!r}"
    assert c.get("oid") == claims(incoming).get("oid"), "the same user"
    print(f"ok azure-identity on-behalf-of: aud {c['aud']} scp {c['scp']!r}")
    cred.close()


if __name__ == "__main__":
    main()
