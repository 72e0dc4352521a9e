"""The Azure CLI (`az`) manages an app's credentials in `keycred emulate --tls` as in a real tenant.

The Azure CLI was written against the real Microsoft Graph, not against keycred, so it is the
sharpest check of the emulator's Graph side. The script registers the emulator as a custom cloud
(its own base URL as the Graph endpoint and resource id), signs in with a keycred certificate and
runs what a setup engineer runs: `az account get-access-token`, `az ad app show`, `az ad app
credential list|reset|delete`, with certificates and passwords. After each change, MSAL (another
client keycred did not write) gets a token with the credentials that must work, and is refused
AADSTS700027 (or 7000215 for a secret) with those that were removed. Last, secretless sign-in:
`az ad app federated-credential create`, then `az login --federated-token` with a token of the
emulated GitHub issuer (and AADSTS700213 for a token of another subject).

Nothing leaves the loopback: the proxy variables point at a local listener that closes every
connection (az's first-run version check is refused there), and NO_PROXY lets requests reach the
emulator directly. az keeps its state in a temporary AZURE_CONFIG_DIR and HOME.

Environment (set by `cargo xtask interop`): KEYCRED_BIN (the keycred binary), KEYCRED_AZ (the az
entry point of the interop virtual environment), KEYCRED_TEMPLATE (a Graph-format manifest),
KEYCRED_WORK (a scratch directory).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid

import msal

from common import claims, env, header, sha1_thumbprint, split_bundle

GRAPH_ROLE = "Application.ReadWrite.OwnedBy"


def refusing_listener():
    """A loopback port that accepts and at once closes every connection; returns (url, counter)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    seen = []

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            seen.append(1)
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{s.getsockname()[1]}", seen


def run(cmd, env_vars, cwd):
    r = subprocess.run(cmd, env=env_vars, cwd=cwd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"interop: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


class Az:
    def __init__(self, az, env_vars, cwd):
        self.az, self.env, self.cwd = az, env_vars, cwd

    def __call__(self, *args):
        out = run([self.az, *args, "--only-show-errors", "-o", "json"], self.env, self.cwd)
        return json.loads(out) if out.strip() else None


def token(base, tenant, client_id, credential):
    """MSAL client credentials for the emulator's Graph; the result dict."""
    app = msal.ConfidentialClientApplication(
        client_id,
        authority=f"{base}/{tenant}",
        client_credential=credential,
        instance_discovery=False,
        token_cache=msal.TokenCache(),
    )
    return app.acquire_token_for_client(scopes=[f"{base}//.default"])


def cert_credential(path):
    key, cert = split_bundle(path)
    return {"private_key": key, "thumbprint": sha1_thumbprint(cert)}


def must_work(label, result):
    assert "access_token" in result, f"{label}: no token: {result.get('error_description')}"
    print(f"ok {label}: token issued")


def must_fail(label, result, code):
    assert "access_token" not in result, f"{label}: a removed credential still got a token"
    assert code in result.get("error_codes", []), f"{label}: expected AADSTS{code}, got {result}"
    print(f"ok {label}: refused with AADSTS{code}")


def secretless(az, bin_, base_env, work, ready, app_id):
    """A federated credential made by `az ad app federated-credential create` on the emulator's
    Graph, then `az login --federated-token` with a workload token of the emulated GitHub issuer:
    secretless sign-in as the Azure CLI does it."""
    issuer, tenant, ca = ready["issuers"][0]["url"], ready["tenant"], ready["caFile"]
    subject = "repo:contoso/app:ref:refs/heads/main"
    params = {"name": "gh-main", "issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}
    created = az("ad", "app", "federated-credential", "create", "--id", app_id, "--parameters", json.dumps(params))
    assert created["issuer"] == issuer and created["subject"] == subject, created
    listed = az("ad", "app", "federated-credential", "list", "--id", app_id)
    assert [f["name"] for f in listed] == ["gh-main"], listed
    print("ok az ad app federated-credential create / list")
    workload = run([bin_, "fic", "mint", "--issuer", issuer, "--subject", subject, "--ca-file", ca],
                   base_env, work).strip()
    accounts = az("login", "--service-principal", "-u", app_id, "--federated-token", workload,
                  "--tenant", tenant, "--skip-subscription-discovery")
    assert accounts[0]["user"]["name"] == app_id, accounts
    c = claims(az("account", "get-access-token")["accessToken"])
    assert c.get("appid", c.get("azp")) == app_id and c["tid"] == tenant, c
    print("ok az login --service-principal --federated-token")
    # A workload token for another branch is not trusted: Entra's 700213, as az reports it.
    other = run([bin_, "fic", "mint", "--issuer", issuer, "--subject", "repo:contoso/app:ref:refs/heads/dev",
                 "--ca-file", ca], base_env, work).strip()
    # az keeps the first login's tokens in its cache and would not ask again: cleared, so that
    # this login reaches the emulator.
    az("account", "clear")
    r = subprocess.run([az.az, "login", "--service-principal", "-u", app_id, "--federated-token", other,
                        "--tenant", tenant, "--skip-subscription-discovery", "--only-show-errors", "-o", "json"],
                       env=az.env, cwd=az.cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "AADSTS700213" in r.stdout + r.stderr, (r.returncode, r.stdout, r.stderr)
    print("ok az login --federated-token with another subject: AADSTS700213")


def main():
    bin_, az_bin, work = env("KEYCRED_BIN"), env("KEYCRED_AZ"), env("KEYCRED_WORK")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    home, config = os.path.join(work, "home"), os.path.join(work, "azure")
    os.makedirs(home)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "KEYCRED_", "MSAL_"))}

    # The application: a keycred certificate in a Graph-format manifest that lists the app among
    # its own owners, so Application.ReadWrite.OwnedBy lets it manage its own credentials.
    run([bin_, "new", "--name", "app", "--days", "30"], base_env, work)
    run([bin_, "new", "--name", "second", "--days", "60"], base_env, work)
    with open(env("KEYCRED_TEMPLATE"), encoding="utf-8") as f:
        manifest = json.load(f)
    app_id, object_id = str(uuid.uuid4()), str(uuid.uuid4())
    manifest.update({"appId": app_id, "id": object_id, "displayName": "keycred az interop", "owners": [app_id]})
    with open(os.path.join(work, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    run([bin_, "manifest", "add", "manifest.json", "--cert", "app.cer"], base_env, work)

    proxy, proxied = refusing_listener()
    emu = subprocess.Popen(
        [bin_, "emulate", "--tls", "--manifest", "manifest.json", "--grant",
         f"https://graph.microsoft.com={GRAPH_ROLE}", "--issuer", "github", "-o", "json"],
        cwd=work, env=base_env, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "emulator.log"), "w"),
        text=True,
    )
    try:
        ready = json.loads(emu.stdout.readline())
        base, tenant, ca = ready["baseUrl"], ready["tenant"], ready["caFile"]
        os.environ["REQUESTS_CA_BUNDLE"] = ca  # for MSAL in this process
        az_env = dict(base_env)
        az_env.update({
            "AZURE_CONFIG_DIR": config, "HOME": home, "REQUESTS_CA_BUNDLE": ca,
            "AZURE_CORE_COLLECT_TELEMETRY": "no", "AZURE_CORE_NO_COLOR": "1",
            "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        })
        az = Az(az_bin, az_env, work)
        print(f"az {az('version')['azure-cli']} against {base}")

        # The three settings a user needs (README "Point the Azure CLI at the emulator").
        az("cloud", "register", "-n", "KeycredEmulator", "--skip-endpoint-discovery",
           "--endpoint-active-directory", base, "--endpoint-microsoft-graph-resource-id", f"{base}/",
           "--endpoint-active-directory-resource-id", f"{base}/", "--endpoint-resource-manager", f"{base}/")
        az("cloud", "set", "-n", "KeycredEmulator")
        az("config", "set", "core.instance_discovery=false")
        accounts = az("login", "--service-principal", "-u", app_id, "--certificate", "app.pem",
                      "--tenant", tenant, "--skip-subscription-discovery")
        assert accounts[0]["tenantId"] == tenant and accounts[0]["user"]["name"] == app_id, accounts
        print("ok az login --service-principal --certificate")

        t = az("account", "get-access-token")
        c = claims(t["accessToken"])
        assert c.get("appid", c.get("azp")) == app_id and c["tid"] == tenant, c
        # The cloud's Graph resource id is the emulator's base URL (with its `/`), and a Graph
        # token for it names it as `aud`, as a national cloud's Graph tokens name its own URL.
        assert c["aud"] == f"{base}/", c
        assert GRAPH_ROLE in c.get("roles", []), c
        # A Graph token, as Graph's are: a nonce header, signed over its hash (the Azure CLI, which
        # never verifies access tokens, takes it; the emulator's Graph below checks it).
        assert "nonce" in header(t["accessToken"]) and c.get("idtyp") == "app", (header(t["accessToken"]), c)
        print(f"ok az account get-access-token: aud {c['aud']}")

        for ident in (app_id, object_id):
            shown = az("ad", "app", "show", "--id", ident)
            assert shown["id"] == object_id and shown["appId"] == app_id, shown
            assert shown["passwordCredentials"] == [] and len(shown["keyCredentials"]) == 1, shown
        print("ok az ad app show --id (app id and object id)")

        def certs():
            return az("ad", "app", "credential", "list", "--id", app_id, "--cert")

        first = certs()
        assert len(first) == 1 and first[0]["key"] is None, first
        assert az("ad", "app", "credential", "list", "--id", app_id) == []
        print("ok az ad app credential list (certificates and passwords)")

        app_cred, second_cred = cert_credential(os.path.join(work, "app.pem")), cert_credential(
            os.path.join(work, "second.pem"))
        second_thumb = second_cred["thumbprint"]

        az("ad", "app", "credential", "reset", "--id", app_id, "--cert", "@second.cer", "--append")
        now = certs()
        assert len(now) == 2, now
        added = next(e for e in now if e["keyId"] != first[0]["keyId"])
        # Graph fills what az leaves out: the hex thumbprint and the subject.
        assert added["customKeyIdentifier"] == second_thumb and added["displayName"] == "CN=second", added
        must_work("reset --cert @file --append: the new certificate", token(base, tenant, app_id, second_cred))
        must_work("reset --cert @file --append: the first certificate", token(base, tenant, app_id, app_cred))

        created = az("ad", "app", "credential", "reset", "--id", app_id, "--create-cert", "--append")
        created_file = created["fileWithCertAndPrivateKey"]
        assert created_file.startswith(home), f"az wrote {created_file} outside its HOME"
        created_cred = cert_credential(created_file)
        assert len(certs()) == 3
        must_work("reset --create-cert --append: the created certificate", token(base, tenant, app_id, created_cred))

        az("ad", "app", "credential", "reset", "--id", app_id, "--cert", "@second.cer")
        now = certs()
        assert [e["customKeyIdentifier"] for e in now] == [second_thumb], now
        must_work("reset --cert @file (replace all): the certificate kept", token(base, tenant, app_id, second_cred))
        must_fail("reset --cert @file (replace all): the first certificate", token(base, tenant, app_id, app_cred),
                  700027)
        must_fail("reset --cert @file (replace all): the created certificate",
                  token(base, tenant, app_id, created_cred), 700027)

        secret = az("ad", "app", "credential", "reset", "--id", app_id, "--append")["password"]
        passwords = az("ad", "app", "credential", "list", "--id", app_id)
        assert len(passwords) == 1 and passwords[0]["hint"] == secret[:3] and passwords[0]["secretText"] is None
        must_work("reset (password) --append: the secret", token(base, tenant, app_id, secret))
        with open(os.path.join(work, "manifest.json"), encoding="utf-8") as f:
            assert secret not in f.read(), "the manifest holds the secret"

        az("ad", "app", "credential", "delete", "--id", app_id, "--key-id", passwords[0]["keyId"])
        assert az("ad", "app", "credential", "list", "--id", app_id) == []
        must_fail("delete --key-id (password): the secret", token(base, tenant, app_id, secret), 7000215)

        az("ad", "app", "credential", "delete", "--id", app_id, "--key-id", now[0]["keyId"], "--cert")
        assert certs() == []
        must_fail("delete --key-id --cert: the certificate", token(base, tenant, app_id, second_cred), 700027)
        secretless(az, bin_, base_env, work, ready, app_id)
        # az's own calls outside the emulator (its first-run version check) went to the refusing
        # listener: at least one proves the proxy settings were in force, so nothing left loopback.
        assert len(proxied) >= 1, "no connection reached the refusing proxy listener: were the proxy variables used?"
        print(f"ok nothing left the loopback ({len(proxied)} connection(s) refused by the proxy listener)")
    finally:
        emu.terminate()
        emu.wait(timeout=30)


if __name__ == "__main__":
    main()
