//! The bad-input corpus: one table of hostile or broken inputs for every parser and command
//! (certificates, keys, PFX, manifests, JWTs, token and Graph answers). Every case runs the real
//! binary and checks the documented exit code, that the message names the input, that nothing
//! panicked, and that no file in the working directory changed.
//!
//! The certificates and PFX files are made with the openssl CLI (not with keycred), so odd
//! serials, unknown critical extensions and legacy PFX encryption come from a tool we did not
//! write.

use crate::hardening_support;

use hardening_support::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// One corpus case: arguments (`{d}` is replaced by the fixture directory, `{srv:NAME}` by the
/// URL of a canned loopback server), expected exit code and text the error must contain.
struct Case {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    code: i32,
    must_contain: Vec<&'static str>,
}

fn case(name: &'static str, args: &str, code: i32, must_contain: &[&'static str]) -> Case {
    Case {
        name,
        args: args.split_whitespace().map(str::to_string).collect(),
        env: vec![],
        code,
        must_contain: must_contain.to_vec(),
    }
}

fn with_env(mut c: Case, env: &[(&'static str, &'static str)]) -> Case {
    c.env = env.to_vec();
    c
}

/// The fixture files, made once per run with openssl.
fn make_fixtures(d: &Path) {
    let sh = |script: &str| {
        let o = Command::new("sh").arg("-ec").arg(script).current_dir(d).output().unwrap();
        assert!(o.status.success(), "fixture script failed: {script}\n{}", String::from_utf8_lossy(&o.stderr));
    };
    let subj = "-subj /CN=corpus";
    sh(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout good.key -out good.pem -days 30 {subj} 2>/dev/null
         cat good.key good.pem > both.pem
         openssl x509 -in good.pem -outform DER -out good.der
         openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 30 {subj} 2>/dev/null
         openssl req -x509 -newkey rsa:1024 -nodes -keyout small.key -out small.pem -days 30 {subj} 2>/dev/null
         openssl ecparam -name prime256v1 -genkey -noout -out ec.key
         openssl req -x509 -key ec.key -out ec.pem -days 30 {subj}
         openssl req -x509 -key good.key -out serial0.pem -days 30 -set_serial 0 {subj}
         openssl req -x509 -key good.key -out serialneg.pem -days 30 -set_serial -1234 {subj}
         openssl req -x509 -key good.key -out serialbig.pem -days 30 -set_serial 0x7f{big} {subj}
         openssl req -x509 -key good.key -out critext.pem -days 30 -addext 1.2.3.4.5=critical,DER:01:02:03 {subj}
         openssl req -x509 -key good.key -out manyext.pem -days 30 -addext 'subjectAltName={sans}' -addext 'nameConstraints=permitted;DNS:.example' -addext 'certificatePolicies=1.2.3.4' {subj}
         mkdir ca && touch ca/index.txt && echo 01 > ca/serial
         printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=ca/index.txt\\nserial=ca/serial\\nnew_certs_dir=ca\\ndefault_md=sha256\\npolicy=p\\nunique_subject=no\\n[p]\\ncommonName=supplied\\n' > ca/ca.cnf
         openssl req -new -key good.key {subj} -out ca/c.csr
         openssl ca -batch -config ca/ca.cnf -selfsign -keyfile good.key -in ca/c.csr -startdate 20200101000000Z -enddate 20210101000000Z -out expired.pem -notext 2>/dev/null
         openssl ca -batch -config ca/ca.cnf -selfsign -keyfile good.key -in ca/c.csr -startdate 20990101000000Z -enddate 21000101000000Z -out future.pem -notext 2>/dev/null
         cat good.key expired.pem > expired-both.pem
         openssl pkcs12 -export -inkey good.key -in good.pem -out aes.pfx -passout pass:right
         openssl pkcs12 -export -inkey good.key -in good.pem -out 3des.pfx -passout pass:right -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1
         openssl pkcs12 -export -legacy -inkey good.key -in good.pem -out rc2.pfx -passout pass:right -certpbe PBE-SHA1-RC2-40 -keypbe PBE-SHA1-3DES -macalg sha1
         openssl pkcs8 -topk8 -in good.key -out enc.key -passout pass:right -v2 aes-256-cbc
         cat enc.key good.pem > enc-both.pem",
        big = "ab".repeat(40),
        sans = (0..200).map(|i| format!("DNS:host{i}.example")).collect::<Vec<_>>().join(","),
    ));
    let w = |name: &str, data: &[u8]| std::fs::write(d.join(name), data).unwrap();
    let good_pem = std::fs::read_to_string(d.join("good.pem")).unwrap();
    let good_der = std::fs::read(d.join("good.der")).unwrap();
    w("empty.pem", b"");
    w("truncated.pem", &good_pem.as_bytes()[..good_pem.len() / 2]);
    w("nobase64.pem", b"-----BEGIN CERTIFICATE-----\n!!!! not base64 $$$\n-----END CERTIFICATE-----\n");
    w("garbage-in-pem.pem", b"-----BEGIN CERTIFICATE-----\nMIIBAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n");
    w("noend.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
    w("truncated.der", &good_der[..good_der.len() / 3]);
    w("garbage.der", &[0x30, 0x82, 0xff, 0xff, 0x01, 0x02, 0x03]);
    w("random.bin", &(0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1).collect::<Vec<_>>());
    w("text.txt", b"hello, I am not a certificate\n");
    let pfx = std::fs::read(d.join("aes.pfx")).unwrap();
    w("truncated.pfx", &pfx[..pfx.len() / 2]);
    w("key-only.pem", &std::fs::read(d.join("good.key")).unwrap());

    // Manifests.
    let m = |kc: &str| {
        format!("{{\"id\":\"0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d\",\"appId\":\"{APP}\",\"web\":{{}},\"keyCredentials\":{kc}}}")
    };
    w("m-ok.json", m("[]").as_bytes());
    w("m-kc-object.json", m("{\"keyId\":\"x\"}").as_bytes());
    w("m-kc-string.json", m("\"nope\"").as_bytes());
    w("m-entry-number.json", m("[42]").as_bytes());
    w(
        "m-keyid-notguid.json",
        m(r#"[{"customKeyIdentifier":null,"keyId":"not-a-guid","type":"AsymmetricX509Cert","usage":"Verify","key":null}]"#)
            .as_bytes(),
    );
    w(
        "m-hex-cki.json",
        m(r#"[{"customKeyIdentifier":"5B2E0F3A9C1D4E7F8A6B5C4D3E2F1A0B9C8D7E6F","keyId":"11111111-1111-4111-8111-111111111111","type":"AsymmetricX509Cert","usage":"Verify","key":null}]"#)
            .as_bytes(),
    );
    w("m-bad-date.json", m(r#"[{"keyId":"11111111-1111-4111-8111-111111111111","type":"AsymmetricX509Cert","usage":"Verify","key":null,"endDateTime":"tomorrow"}]"#).as_bytes());
    w("m-bad-key.json", m(r#"[{"keyId":"11111111-1111-4111-8111-111111111111","type":"AsymmetricX509Cert","usage":"Verify","key":"%%%not base64%%%"}]"#).as_bytes());
    let big = format!("{{\"appId\":\"{APP}\",\"notes\":\"{}\",\"keyCredentials\":[]}}", "x".repeat(1024 * 1024));
    w("m-1mb.json", big.as_bytes());
    let deep =
        format!("{{\"appId\":\"{APP}\",\"keyCredentials\":[],\"deep\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    w("m-deep.json", deep.as_bytes());
    w("m-notjson.json", b"<html>not json</html>");
    w("m-empty.json", b"");
    w("m-array.json", b"[]");
    w("m-trailing.json", format!("{}  , garbage", m("[]")).as_bytes());
    w("m-dupkey.json", format!("{{\"appId\":\"{APP}\",\"keyCredentials\":[],\"keyCredentials\":[]}}").as_bytes());
    w("m-latin1.json", b"{\"appId\":\"\xe9t\xe9\",\"keyCredentials\":[]}");
    w("m-appid-number.json", b"{\"appId\":12,\"keyCredentials\":[]}");

    // JWTs.
    let b64 = |s: &str| keycred::thumbprint::b64url(s.as_bytes());
    let hdr = b64(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64(r#"{"aud":"x","iss":"y"}"#);
    w("jwt-badb64.txt", format!("{hdr}.@@@###.sig").as_bytes());
    w("jwt-onesegment.txt", hdr.as_bytes());
    w("jwt-twosegments.txt", format!("{hdr}.{claims}").as_bytes());
    w("jwt-foursegments.txt", format!("{hdr}.{claims}.sig.extra").as_bytes());
    w("jwt-header-notjson.txt", format!("{}.{claims}.sig", b64("not json")).as_bytes());
    w("jwt-header-array.txt", format!("{}.{claims}.sig", b64("[1,2]")).as_bytes());
    w(
        "jwt-huge-header.txt",
        format!("{}.{claims}.sig", b64(&format!("{{\"alg\":\"RS256\",\"x\":\"{}\"}}", "a".repeat(20_000)))).as_bytes(),
    );
    w("jwt-dup-claims.txt", format!("{hdr}.{}.sig", b64(r#"{"aud":"a","aud":"b"}"#)).as_bytes());
    w("jwt-empty.txt", b"");
    w(
        "jwt-deep.txt",
        format!("{hdr}.{}.sig", b64(&format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000)))).as_bytes(),
    );
}

/// Canned loopback HTTP servers: each name answers every request the same way.
fn start_servers() -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let html = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 44\r\nConnection: close\r\n\r\n<html><body>Sign in to the proxy</body></html>";
    let html = html.replace("44", &"<html><body>Sign in to the proxy</body></html>".len().to_string());
    m.insert("html", canned(Answer::Fixed(html)));
    m.insert(
        "empty",
        canned(Answer::Fixed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into())),
    );
    m.insert(
        "500",
        canned(Answer::Fixed(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\noops!".into(),
        )),
    );
    m.insert("silent", canned(Answer::Silent));
    m.insert("huge", canned(Answer::Huge));
    m.insert("huge-chunked", canned(Answer::HugeChunked));
    m.insert("ok-no-token", canned(Answer::Fixed(json_answer(r#"{"token_type":"Bearer","expires_in":3599}"#))));
    m.insert("json-array", canned(Answer::Fixed(json_answer("[1,2,3]"))));
    m
}

fn json_answer(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

enum Answer {
    Fixed(String),
    /// Accepts, reads, never answers (holds the connection).
    Silent,
    /// Announces 64 MB and streams zeros until the client goes away.
    Huge,
    /// Chunked, without a length, streams forever.
    HugeChunked,
}

fn canned(answer: Answer) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                match &*answer {
                    Answer::Fixed(a) => {
                        let _ = s.write_all(a.as_bytes());
                    }
                    Answer::Silent => std::thread::sleep(Duration::from_secs(30)),
                    Answer::Huge => {
                        let _ = s.write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                64 << 20
                            )
                            .as_bytes(),
                        );
                        let zeros = vec![b' '; 65536];
                        for _ in 0..1024 {
                            if s.write_all(&zeros).is_err() {
                                break;
                            }
                        }
                    }
                    Answer::HugeChunked => {
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                        );
                        let chunk = format!("10000\r\n{}\r\n", " ".repeat(65536));
                        for _ in 0..1024 {
                            if s.write_all(chunk.as_bytes()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    url
}

fn cases() -> Vec<Case> {
    let pw = [("PW", "right")];
    let wrong = [("PW", "wrong")];
    let mut v = vec![
        // Certificates: show.
        case("empty file", "show {d}/empty.pem", 2, &["empty.pem", "empty"]),
        case("truncated PEM", "show {d}/truncated.pem", 2, &["truncated.pem"]),
        case("PEM with non-base64 body", "show {d}/nobase64.pem", 2, &["nobase64.pem"]),
        case("PEM with garbage DER", "show {d}/garbage-in-pem.pem", 2, &["garbage-in-pem.pem"]),
        case("PEM without END line", "show {d}/noend.pem", 2, &["noend.pem"]),
        case("truncated DER", "show {d}/truncated.der", 2, &["truncated.der"]),
        case("garbage DER", "show {d}/garbage.der", 2, &["garbage.der"]),
        case("random bytes", "show {d}/random.bin", 2, &["random.bin"]),
        case("text file", "show {d}/text.txt", 2, &["text.txt"]),
        case("missing file", "show {d}/does-not-exist.pem", 2, &["does-not-exist.pem"]),
        case("directory as file (pins exit 1 -> 2)", "show {d}", 2, &["{d}", "Is a directory"]),
        case("key without certificate", "show {d}/key-only.pem", 2, &["key-only.pem"]),
        case("truncated PFX", "show {d}/truncated.pfx", 2, &["truncated.pfx"]),
        with_env(case("PFX wrong password", "show {d}/aes.pfx --password-env PW", 2, &["aes.pfx", "password"]), &wrong),
        case("PFX no password", "show {d}/aes.pfx", 2, &["aes.pfx", "password"]),
        case("PFX password variable unset", "show {d}/aes.pfx --password-env KEYCRED_UNSET_VAR", 2, &["KEYCRED_UNSET_VAR"]),
        with_env(case("PFX 3DES legacy is read", "show {d}/3des.pfx --password-env PW", 0, &[]), &pw),
        with_env(case("PFX RC2-40 legacy is read", "show {d}/rc2.pfx --password-env PW", 0, &[]), &pw),
        with_env(case("PFX AES is read", "show {d}/aes.pfx --password-env PW", 0, &[]), &pw),
        with_env(case("encrypted key wrong password", "assertion --cert {d}/enc-both.pem --password-env PW --client-id {app} --tenant {tenant}", 2, &["enc-both.pem"]), &wrong),
        case("serial zero is shown", "show {d}/serial0.pem", 0, &[]),
        case("negative serial is shown", "show {d}/serialneg.pem", 0, &[]),
        case("41-byte serial is shown", "show {d}/serialbig.pem", 0, &[]),
        case("unknown critical extension is shown", "show {d}/critext.pem", 0, &[]),
        case("200 SANs and name constraints are shown", "show {d}/manyext.pem", 0, &[]),
        case("EC certificate is shown", "show {d}/ec.pem", 0, &[]),
        // Certificates: manifest add refuses unusable ones, the file stays.
        case("add EC certificate", "manifest add {d}/m-ok.json --cert {d}/ec.pem", 2, &["RSA"]),
        case("add 1024-bit certificate", "manifest add {d}/m-ok.json --cert {d}/small.pem", 2, &["1024", "2048"]),
        case("add expired certificate", "manifest add {d}/m-ok.json --cert {d}/expired.pem", 2, &["expired"]),
        case("add not-yet-valid certificate (staged rotation)", "manifest add {d}/m-ok.json --cert {d}/future.pem --dry-run", 0, &[]),
        case("show expired certificate", "show {d}/expired.pem", 0, &[]),
        case("add garbage certificate", "manifest add {d}/m-ok.json --cert {d}/garbage.der", 2, &["garbage.der"]),
        case("add truncated PEM", "manifest add {d}/m-ok.json --cert {d}/truncated.pem", 2, &["truncated.pem"]),
        // Keys: signing commands.
        case("assertion EC key", "assertion --cert {d}/ec.pem --key {d}/ec.key --client-id {app} --tenant {tenant}", 2, &["RSA"]),
        case("assertion 1024-bit key", "assertion --cert {d}/small.pem --key {d}/small.key --client-id {app} --tenant {tenant}", 2, &["2048"]),
        case("assertion key of another certificate", "assertion --cert {d}/good.pem --key {d}/other.key --client-id {app} --tenant {tenant}", 2, &["other.key"]),
        case("assertion certificate without key", "assertion --cert {d}/good.pem --client-id {app} --tenant {tenant}", 2, &["good.pem", "key"]),
        case("assertion garbage key", "assertion --cert {d}/good.pem --key {d}/random.bin --client-id {app} --tenant {tenant}", 2, &["random.bin"]),
        case("assertion tenant with a slash (pins path injection)", "assertion --cert {d}/both.pem --client-id {app} --tenant bad/../tenant", 2, &["bad/../tenant"]),
        case("token tenant with a query", "token --cert {d}/both.pem --client-id {app} --tenant t?x=1 --scope api://x/.default --authority http://127.0.0.1:9", 2, &["t?x=1"]),
        // Manifests.
        case("keyCredentials an object: list", "manifest list {d}/m-kc-object.json", 2, &["m-kc-object.json", "keyCredentials"]),
        case("keyCredentials an object: add", "manifest add {d}/m-kc-object.json --cert {d}/good.pem", 2, &["m-kc-object.json", "keyCredentials"]),
        case("keyCredentials a string", "manifest list {d}/m-kc-string.json", 2, &["m-kc-string.json", "keyCredentials"]),
        case("entry a number", "manifest list {d}/m-entry-number.json", 0, &[]),
        case("keyId not a GUID: remove by it", "manifest remove {d}/m-keyid-notguid.json --key-id not-a-guid", 2, &["not-a-guid"]),
        case("hex customKeyIdentifier: remove by thumbprint absent", "manifest remove {d}/m-hex-cki.json --thumbprint 0000000000000000000000000000000000000000", 2, &["m-hex-cki.json"]),
        case("bad thumbprint argument", "manifest remove {d}/m-ok.json --thumbprint zz", 2, &["zz"]),
        case("bad key id argument", "manifest add {d}/m-ok.json --cert {d}/good.pem --key-id 1234", 2, &["1234"]),
        case("bad --start date", "manifest add {d}/m-ok.json --cert {d}/good.pem --start yesterday", 2, &["yesterday"]),
        case("1 MB string is listed", "manifest list {d}/m-1mb.json", 0, &[]),
        case("deep nesting 10k", "manifest list {d}/m-deep.json", 2, &["m-deep.json"]),
        case("deep nesting 10k: add", "manifest add {d}/m-deep.json --cert {d}/good.pem", 2, &["m-deep.json"]),
        case("manifest not JSON", "manifest list {d}/m-notjson.json", 2, &["m-notjson.json"]),
        case("manifest empty", "manifest add {d}/m-empty.json --cert {d}/good.pem", 2, &["m-empty.json"]),
        case("manifest top-level array", "manifest list {d}/m-array.json", 2, &["m-array.json"]),
        case("manifest trailing garbage", "manifest add {d}/m-trailing.json --cert {d}/good.pem", 2, &["m-trailing.json"]),
        case("manifest duplicate keyCredentials", "manifest add {d}/m-dupkey.json --cert {d}/good.pem --format ms-graph", 2, &["m-dupkey.json", "more than once"]),
        case("manifest not UTF-8", "manifest list {d}/m-latin1.json", 2, &["m-latin1.json"]),
        case("manifest missing", "manifest add {d}/missing.json --cert {d}/good.pem", 2, &["missing.json"]),
        case("emulate with a broken manifest", "emulate --manifest {d}/m-notjson.json", 2, &["m-notjson.json"]),
        case("rotate a broken manifest", "rotate --manifest {d}/m-deep.json --name rot --out-dir {d}", 2, &["m-deep.json"]),
        case("rotate --help (pins the clap group panic)", "rotate --help", 0, &[]),
        // JWTs.
        case("decode bad base64", "decode @{d}/jwt-badb64.txt", 2, &["base64"]),
        case("decode one segment", "decode @{d}/jwt-onesegment.txt", 2, &["segment"]),
        case("decode two segments", "decode @{d}/jwt-twosegments.txt", 2, &["segment"]),
        case("decode four segments", "decode @{d}/jwt-foursegments.txt", 2, &["segment"]),
        case("decode header not JSON", "decode @{d}/jwt-header-notjson.txt", 2, &["header"]),
        case("decode header an array", "decode @{d}/jwt-header-array.txt", 2, &["header"]),
        case("decode huge header", "decode @{d}/jwt-huge-header.txt", 2, &["16"]),
        case("decode duplicate claims", "decode @{d}/jwt-dup-claims.txt", 2, &["repeats a member name"]),
        case("decode empty", "decode @{d}/jwt-empty.txt", 2, &[]),
        case("decode deep nesting", "decode @{d}/jwt-deep.txt", 2, &[]),
        // Remote answers.
        case("token: HTML answer", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:html}", 3, &["not JSON", "HTML"]),
        case("token: empty answer", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:empty}", 3, &["empty"]),
        case("token: 500", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:500} --timeout 2", 3, &["500"]),
        case("token: silent server", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:silent} --timeout 1", 3, &["within", "--timeout"]),
        case("token: oversized answer", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:huge} --timeout 20", 3, &["over 1048576 bytes"]),
        case("token: oversized chunked answer", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:huge-chunked} --timeout 20", 3, &["over 1048576 bytes"]),
        case("token: no access_token", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:ok-no-token}", 3, &["access_token"]),
        case("token: JSON array", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority {srv:json-array}", 3, &["not JSON"]),
        case("token: nothing listening", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority http://127.0.0.1:9 --timeout 2", 3, &["127.0.0.1:9"]),
        case("token: authority not http(s)", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority ftp://example.com", 2, &["ftp://example.com"]),
        case("token: http to a remote host", "token --cert {d}/both.pem --client-id {app} --tenant {tenant} --scope api://x/.default --authority http://example.com", 2, &["http://example.com"]),
        with_env(case("graph: HTML answer", "graph list --app-id {app} --tenant {tenant} --graph-token-env GT --graph-url {srv:html}", 3, &["not JSON"]), &[("GT", "graph-token")]),
        with_env(case("graph: 500", "graph list --app-id {app} --tenant {tenant} --graph-token-env GT --graph-url {srv:500}", 3, &["500"]), &[("GT", "graph-token")]),
        with_env(case("graph: silent server", "graph list --app-id {app} --tenant {tenant} --graph-token-env GT --graph-url {srv:silent} --timeout 1", 3, &[]), &[("GT", "graph-token")]),
        with_env(case("graph: oversized answer", "graph list --app-id {app} --tenant {tenant} --graph-token-env GT --graph-url {srv:huge} --timeout 20", 3, &["over 1048576 bytes"]), &[("GT", "graph-token")]),
        with_env(case("graph: empty answer", "graph list --app-id {app} --tenant {tenant} --graph-token-env GT --graph-url {srv:empty}", 3, &[]), &[("GT", "graph-token")]),
        // Other commands' arguments.
        case("new 1024-bit", "new --name weak --out-dir {d} --key-size 1024", 2, &["1024"]),
        case("new bad subject", "new --name bad --out-dir {d} --subject garbage", 2, &["garbage"]),
        case("new negative days", "new --name neg --out-dir {d} --days -5", 2, &[]),
        case("new into a directory under a file", "new --name x --out-dir {d}/empty.pem/dir", 2, &["{d}/empty.pem"]),
        case("new over an existing file", "new --name good --out-dir {d} --subject CN=x", 2, &["already exist"]),
        case("consent-url parse garbage", "consent-url --parse ::::not-a-url", 2, &["not-a-url"]),
    ];
    for c in &mut v {
        for a in &mut c.args {
            *a = a.replace("{app}", APP).replace("{tenant}", TENANT);
        }
    }
    v
}

#[test]
fn bad_input_corpus() {
    let dir = TempDir::new("corpus");
    let d = dir.0.clone();
    make_fixtures(&d);
    // A file named good.cer exists so that `new --name good` must refuse to overwrite it.
    std::fs::copy(d.join("good.pem"), d.join("good.cer")).unwrap();
    let servers = start_servers();
    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let ds = d.to_str().unwrap();
        let mut args: Vec<String> = c.args.iter().map(|a| a.replace("{d}", ds)).collect();
        for a in &mut args {
            for (name, url) in &servers {
                *a = a.replace(&format!("{{srv:{name}}}"), url);
            }
            if let Some(path) = a.strip_prefix('@') {
                // Tokens are passed by value, read from the fixture file.
                *a = std::fs::read_to_string(path).unwrap();
            }
        }
        let before = snapshot(&d);
        let out = keycred(&args, &c.env);
        let after = snapshot(&d);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let code = out.status.code();
        let mut problems = Vec::new();
        if code != Some(c.code) {
            problems.push(format!("exit {code:?}, expected {}", c.code));
        }
        if stderr.contains("panicked") || code == Some(101) {
            problems.push("panicked".into());
        }
        for want in &c.must_contain {
            let want = want.replace("{d}", ds);
            if !stderr.contains(&want) {
                problems.push(format!("stderr lacks {want:?}"));
            }
        }
        if c.code != 0 && !stderr.contains("error") {
            problems.push("no error line".into());
        }
        if before != after {
            let changed: Vec<_> = after
                .keys()
                .chain(before.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .map(|k| k.display().to_string())
                .collect();
            problems.push(format!("files changed: {changed:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!("[{}] {}\n    stderr: {}", c.name, problems.join("; "), stderr.trim()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
