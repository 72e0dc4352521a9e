// Secretless sign-in from JavaScript: azure-identity for JS (@azure/identity) exchanges a
// workload token for an Entra token.
//
// The runner (`cargo xtask interop`) starts `keycred emulate --tls --issuer github`, adds a
// federated identity credential for KEYCRED_FIC_SUBJECT on the interop app, installs the pinned
// @azure/identity with npm and points NODE_PATH at it, and trusts the emulator's CA through
// NODE_EXTRA_CA_CERTS. Here `keycred fic mint` gets a workload token from the emulated issuer
// (standing in for the CI runner), and it is handed to:
//
// - WorkloadIdentityCredential, configured only by the variables it reads
//   (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_AUTHORITY_HOST);
// - ClientAssertionCredential, with a callback returning the token.
//
// Each must get a token whose claims (decoded here, not by keycred) carry the app's roles and
// appid; a token whose subject differs in letter case must be refused with AADSTS7002138.
"use strict";

const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { ClientAssertionCredential, WorkloadIdentityCredential } = require("@azure/identity");

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`interop: ${name} is not set (run through \`cargo xtask interop\`)`);
    process.exit(1);
  }
  return v;
}

/** A JWT's segment `i`, decoded without verification. */
function segment(token, i) {
  const parts = token.split(".");
  assert.equal(parts.length, 3, "not a JWT");
  return JSON.parse(Buffer.from(parts[i], "base64url").toString("utf8"));
}

/** A workload token minted by the emulated issuer through `keycred fic mint`. */
function mint(subject) {
  const token = execFileSync(
    env("KEYCRED_BIN"),
    ["fic", "mint", "--issuer", env("KEYCRED_FIC_ISSUER"), "--subject", subject, "--ca-file", env("NODE_EXTRA_CA_CERTS")],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  ).trim();
  const c = segment(token, 1);
  assert.equal(c.iss, env("KEYCRED_FIC_ISSUER"));
  assert.equal(c.sub, subject);
  assert.equal(c.aud, "api://AzureADTokenExchange");
  return token;
}

/** The token's claims against what the app was granted for `scope` (a v1 app-only token). */
function checkToken(label, token, scope, roles) {
  const c = segment(token, 1);
  const resource = scope.slice(0, -"/.default".length);
  const tenant = env("KEYCRED_TENANT").toLowerCase();
  assert.equal(c.ver, "1.0", `${label}: ver`);
  assert.equal(String(c.aud).replace(/\/$/, ""), resource.replace(/\/$/, ""), `${label}: aud`);
  assert.equal(c.iss, `https://sts.windows.net/${tenant}/`, `${label}: iss`);
  assert.equal(c.tid, tenant, `${label}: tid`);
  assert.equal(c.appid, env("KEYCRED_CLIENT_ID").toLowerCase(), `${label}: appid`);
  assert.deepEqual([...(c.roles || [])].sort(), [...roles].sort(), `${label}: roles`);
  console.log(`ok ${label}: ${scope} -> appid ${c.appid}, roles ${JSON.stringify(c.roles || [])}`);
}

async function main() {
  const expect = JSON.parse(env("KEYCRED_EXPECT"));
  const subject = env("KEYCRED_FIC_SUBJECT");
  const token = mint(subject);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "keycred-fic-js-"));
  try {
    const file = path.join(dir, "azure-identity-token");
    fs.writeFileSync(file, token, { mode: 0o600 });
    // Only the variables azure-identity documents for workload identity.
    process.env.AZURE_FEDERATED_TOKEN_FILE = file;
    process.env.AZURE_CLIENT_ID = env("KEYCRED_CLIENT_ID");
    process.env.AZURE_TENANT_ID = env("KEYCRED_TENANT");
    process.env.AZURE_AUTHORITY_HOST = env("KEYCRED_AUTHORITY");
    const cred = new WorkloadIdentityCredential({ disableInstanceDiscovery: true });
    for (const [scope, roles] of Object.entries(expect)) {
      checkToken("@azure/identity WorkloadIdentityCredential", (await cred.getToken(scope)).token, scope, roles);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const assertion = new ClientAssertionCredential(
    env("KEYCRED_TENANT"),
    env("KEYCRED_CLIENT_ID"),
    async () => token,
    { authorityHost: env("KEYCRED_AUTHORITY"), disableInstanceDiscovery: true },
  );
  for (const [scope, roles] of Object.entries(expect)) {
    checkToken("@azure/identity ClientAssertionCredential", (await assertion.getToken(scope)).token, scope, roles);
  }

  // The same subject in another letter case: Entra's case-sensitive refusal.
  const wrong = mint(subject.replace("keycred", "Keycred"));
  const refused = new ClientAssertionCredential(
    env("KEYCRED_TENANT"),
    env("KEYCRED_CLIENT_ID"),
    async () => wrong,
    { authorityHost: env("KEYCRED_AUTHORITY"), disableInstanceDiscovery: true },
  );
  await assert.rejects(refused.getToken(Object.keys(expect)[0]), (e) => {
    assert.match(String(e && e.message), /AADSTS7002138/);
    return true;
  });
  console.log("ok @azure/identity (subject in another letter case): refused with AADSTS7002138");
}

main().catch((e) => {
  console.error(`interop: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
