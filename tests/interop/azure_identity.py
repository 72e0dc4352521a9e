"""azure-identity's CertificateCredential gets a token from `keycred emulate --tls`.

`certificate_path` is keycred's PEM bundle (key + certificate), exactly what
AZURE_CLIENT_CERTIFICATE_PATH would name; `authority` is the emulator's https base URL and
instance discovery is off.
"""

from azure.identity import CertificateCredential

from common import check_token, env, expectations


def main():
    import azure.identity

    print(f"azure-identity {azure.identity.__version__}")
    for send_chain in (False, True):
        cred = CertificateCredential(
            env("KEYCRED_TENANT"),
            env("KEYCRED_CLIENT_ID"),
            certificate_path=env("KEYCRED_BUNDLE"),
            authority=env("KEYCRED_AUTHORITY"),
            disable_instance_discovery=True,
            send_certificate_chain=send_chain,
        )
        for scope, roles in expectations().items():
            token = cred.get_token(scope)
            check_token(f"azure-identity (send_certificate_chain={send_chain})", token.token, scope, roles)
        cred.close()


if __name__ == "__main__":
    main()
