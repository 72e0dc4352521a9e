//! Names print and parse in RFC 4514 order (last RDN first), checked against openssl `-nameopt
//! RFC2253` and Python cryptography's `rfc4514_string()` on certificates from keycred, openssl
//! and Java keytool.

use crate::common::{keycred_command, TempDir, OPENSSL};
use crate::tools_support::{self, keytool};
use serde_json::Value;
use std::path::Path;

fn keycred(dir: &Path, args: &[&str]) -> Value {
    let o = keycred_command(args, &[]).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "keycred {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

const RFC4514: &str = r#"
import sys
from cryptography import x509
c = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
print(c.subject.rfc4514_string())
print(",".join(a.oid.dotted_string for a in c.subject))
"#;

/// openssl's RFC 2253 subject, and the same with the RDNs in encoding order.
fn openssl_names(t: &TempDir, pem: &str) -> (String, String) {
    let run = |opt: &str| {
        let o = tools_support::run(&t.0, OPENSSL, &["x509", "-in", pem, "-noout", "-subject", "-nameopt", opt]);
        String::from_utf8(o.stdout).unwrap().trim().trim_start_matches("subject=").to_string()
    };
    (run("RFC2253"), run("RFC2253,-dn_rev"))
}

/// keycred's `show` subject, with its `, ` separators (the commas no backslash escapes) written
/// as RFC 4514's `,`.
fn keycred_subject(t: &TempDir, file: &str) -> String {
    let v = keycred(&t.0, &["show", file, "-o", "json"]);
    assert_eq!(v["issuer"], v["subject"], "self-signed");
    let (mut out, mut escaped, mut separator) = (String::new(), false, false);
    for c in v["subject"].as_str().unwrap().chars() {
        if !(separator && c == ' ') {
            out.push(c);
        }
        separator = c == ',' && !escaped;
        escaped = c == '\\' && !escaped;
    }
    out
}

#[test]
fn new_encodes_the_last_attribute_first_as_rfc_4514_reads_it() {
    let t = TempDir::new("names-new");
    let subject = "CN=App, O=Contoso\\, Inc., OU=Ops, C=FR";
    keycred(&t.0, &["new", "--name", "app", "--subject", subject, "-o", "json"]);
    let (rfc2253, encoded) = openssl_names(&t, "app.cer");
    assert_eq!(rfc2253, "CN=App,O=Contoso\\, Inc.,OU=Ops,C=FR");
    // In the DER, C comes first and CN last.
    assert_eq!(encoded, "C=FR,OU=Ops,O=Contoso\\, Inc.,CN=App");
    let py = tools_support::run_python(&t.0, RFC4514, &["app.cer"]);
    let mut lines = py.lines();
    assert_eq!(lines.next().unwrap(), "CN=App,O=Contoso\\, Inc.,OU=Ops,C=FR");
    assert_eq!(lines.next().unwrap(), "2.5.4.6,2.5.4.11,2.5.4.10,2.5.4.3");
    assert_eq!(keycred_subject(&t, "app.cer"), rfc2253);
    // What keycred prints makes the same certificate name again.
    let printed = keycred(&t.0, &["show", "app.cer", "-o", "json"])["subject"].as_str().unwrap().to_string();
    keycred(&t.0, &["new", "--name", "again", "--subject", &printed, "-o", "json"]);
    assert_eq!(openssl_names(&t, "again.cer"), (rfc2253, encoded));
}

#[test]
fn show_prints_openssl_and_keytool_certificates_as_openssl_and_python_do() {
    let t = TempDir::new("names-others");
    // openssl -subj lists RDNs in encoding order: C first.
    tools_support::run(
        &t.0,
        OPENSSL,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "o.key",
            "-out",
            "o.pem",
            "-days",
            "5",
            "-subj",
            "/C=DE/L=Berlin/O=Fabrikam/CN=openssl made",
        ],
    );
    // keytool -dname is an RFC 4514-ordered string: CN is encoded last.
    let kt = keytool();
    tools_support::run(
        &t.0,
        &kt,
        &[
            "-genkeypair",
            "-keystore",
            "k.p12",
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
            "-alias",
            "k",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "5",
            "-dname",
            "CN=keytool made, OU=Dev, O=Northwind, C=US",
        ],
    );
    tools_support::run(
        &t.0,
        &kt,
        &["-exportcert", "-rfc", "-keystore", "k.p12", "-storepass", "changeit", "-alias", "k", "-file", "k.pem"],
    );
    for (file, want) in
        [("o.pem", "CN=openssl made,O=Fabrikam,L=Berlin,C=DE"), ("k.pem", "CN=keytool made,OU=Dev,O=Northwind,C=US")]
    {
        let (rfc2253, _) = openssl_names(&t, file);
        assert_eq!(rfc2253, want, "openssl on {file}");
        let py = tools_support::run_python(&t.0, RFC4514, &[file]);
        assert_eq!(py.lines().next().unwrap(), want, "python on {file}");
        assert_eq!(keycred_subject(&t, file), want, "keycred on {file}");
    }
}
