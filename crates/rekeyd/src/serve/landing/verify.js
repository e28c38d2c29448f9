// The page behind the mailed "finish creating your account" link. The token is in the URL
// fragment (never sent to any server by the browser); we read it, take it out of the address
// bar, ask the API whose account it finishes (which consumes nothing: mail scanners open
// links too), and finish it only when the person presses the button, with the password they
// chose when they asked for the account.
"use strict";

let token = null;

async function showTarget() {
  try {
    const target = await api("/users/verify/inspect", { token });
    const until = new Date(target.expires_at * 1000).toLocaleString();
    $("target").textContent = t("page-verify-for", { address: target.email, until });
    $("open-app").href = "rekey://verify?token=" + encodeURIComponent(token);
    $("open-row").hidden = false;
    $("verify-form").hidden = false;
  } catch (e) {
    $("target").textContent = refusal(e);
  }
}

function showCodeForm() {
  $("target").textContent = t("page-verify-code-form");
  $("code-fields").hidden = false;
  $("verify-form").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  say("");
  const body = token ? { token } : { email: $("email").value, code: $("code").value };
  body.password = $("password").value;
  $("submit").disabled = true;
  try {
    const account = await api("/users/verify", body);
    $("verify-form").hidden = true;
    $("open-row").hidden = true;
    $("target").textContent = "";
    say(t("page-verify-done", { address: account.email }), true);
    $("title").focus();
  } catch (e) {
    say(refusal(e));
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
  $("target").textContent = t("page-checking");
  if (token) showTarget(); else showCodeForm();
}

document.addEventListener("DOMContentLoaded", () => {
  $("verify-form").addEventListener("submit", submit);
  window.addEventListener("hashchange", () => { if (location.hash) begin(); });
  begin();
});
