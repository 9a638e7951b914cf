// Passkey ceremonies of the board desk. The server picks every challenge; this
// file only carries options to navigator.credentials and the answer back.
"use strict";

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || data.detail || `refused (${response.status})`);
  return data;
}

function say(text, bad) {
  const status = document.getElementById("status");
  if (!status) return;
  status.textContent = text;
  status.className = "status " + (bad ? "bad" : "ok");
}

async function signIn(form) {
  const member = form.member.value.trim();
  const options = await postJSON("/api/signin/options", { member });
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
  });
  await postJSON("/api/signin/verify", { member, credential: credential.toJSON() });
  say("Signed in.");
  window.location.assign("/");
}

async function enrol(form) {
  const member = form.member.value.trim();
  const code = form.code.value.trim();
  const options = await postJSON("/api/enrol/options", { member, code });
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
  });
  const done = await postJSON("/api/enrol/verify", { member, code, credential: credential.toJSON() });
  say(`Passkey for ${done.member} (key ${done.fingerprint}) ${done.status}.`);
}

async function decide(form, decision) {
  const version = form.dataset.version ? Number(form.dataset.version) : null;
  const rationale = form.rationale.value;
  const options = await postJSON("/api/decisions/options", { decision, version, rationale });
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
  });
  const done = await postJSON("/api/decisions/submit", { credential: credential.toJSON() });
  // Reload to show the signed record; the outcome is said again after the reload.
  window.sessionStorage.setItem("desk-status",
    `Signed ${done.decision} of version ${done.version} with key ${done.fingerprint}: ` +
    `${done.status}; production is version ${done.production ?? "none"}.`);
  window.location.reload();
}

// The script is deferred, so the page is parsed by now.
const said = window.sessionStorage.getItem("desk-status");
if (said) {
  window.sessionStorage.removeItem("desk-status");
  say(said);
}

async function signAmendment(form) {
  const policy_sha256 = form.dataset.sha;
  const options = await postJSON("/api/amendments/options", { policy_sha256 });
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
  });
  const done = await postJSON("/api/amendments/submit", { credential: credential.toJSON() });
  window.sessionStorage.setItem("desk-status",
    `Signed amendment ${policy_sha256.slice(0, 12)} with key ${done.fingerprint}: ` +
    (done.adopted ? "adopted, the new policy is in force." :
      `${done.signed_by.length} of ${done.quorum} signatures.`));
  window.location.reload();
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  const kind = form.dataset && form.dataset.ceremony;
  if (!kind) return;
  event.preventDefault();
  const decision = (event.submitter && event.submitter.value) || form.dataset.decision;
  const run = {
    signin: () => signIn(form),
    enrol: () => enrol(form),
    decision: () => decide(form, decision),
    amendment: () => signAmendment(form),
  }[kind];
  say("Waiting for your passkey…");
  run().catch((error) => say(error.message, true));
});
