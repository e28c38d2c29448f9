// The page behind the mailed "finish creating your account" link. The token is in the URL
// fragment (never sent to any server by the browser); we read it, take it out of the address
// bar, ask the API whose account it finishes (which consumes nothing: mail scanners open
// links too), and finish it only when the person presses the button.
"use strict";

const $ = (id) => document.getElementById(id);
let token = null;

function say(text, ok) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("ok", !!ok);
}

async function api(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    referrerPolicy: "no-referrer",
    cache: "no-store",
  });
  let data = null;
  try { data = await res.json(); } catch (_) { /* an empty or non-JSON answer */ }
  if (!res.ok) throw (data && data.message) ? data : { code: "http_" + res.status, message: "The server could not be reached properly; try again." };
  return data;
}

function readToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const t = params.get("token");
  if (location.hash) history.replaceState(null, "", location.pathname);
  return t && /^[A-Za-z0-9_\-.]{20,4096}$/.test(t) ? t : null;
}

async function showTarget() {
  try {
    const target = await api("/users/verify/inspect", { token });
    const until = new Date(target.expires_at * 1000).toLocaleString();
    $("target").textContent = "Finish the account for " + target.email + ". This link works until " + until + ".";
    $("open-app").href = "rekey://verify?token=" + encodeURIComponent(token);
    $("open-row").hidden = false;
    $("verify-form").hidden = false;
  } catch (e) {
    $("target").textContent = e.message;
  }
}

function showCodeForm() {
  $("target").textContent = "Enter your email and the code from the mail.";
  $("code-fields").hidden = false;
  $("verify-form").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  say("");
  const body = token ? { token } : { email: $("email").value, code: $("code").value };
  $("submit").disabled = true;
  try {
    const account = await api("/users/verify", body);
    $("verify-form").hidden = true;
    $("open-row").hidden = true;
    $("target").textContent = "";
    say("Your account " + account.email + " is ready. Sign in with the password you chose.", true);
    $("title").focus();
  } catch (e) {
    say(e.message);
  } finally {
    $("submit").disabled = false;
  }
}

function begin() {
  token = readToken();
  say("");
  $("verify-form").hidden = true;
  $("open-row").hidden = true;
  $("code-fields").hidden = true;
  $("target").textContent = "Checking your link…";
  if (token) showTarget(); else showCodeForm();
}

document.addEventListener("DOMContentLoaded", () => {
  $("verify-form").addEventListener("submit", submit);
  window.addEventListener("hashchange", () => { if (location.hash) begin(); });
  begin();
});
