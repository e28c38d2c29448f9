// The landing page behind the mailed https link. The token is in the URL fragment (never
// sent to any server by the browser); we read it, take it out of the address bar, ask the
// API whose link it is (which consumes nothing), and reset through the JSON API.
"use strict";

let token = null;
let strengthAsked = 0;

async function showTarget() {
  try {
    const target = await api("/users/password/inspect", { token });
    const until = new Date(target.expires_at * 1000).toLocaleString();
    $("target").textContent = t("page-reset-for", { address: target.email, until });
    $("open-app").href = "rekey://reset?token=" + encodeURIComponent(token);
    $("open-row").hidden = false;
    $("reset-form").hidden = false;
  } catch (e) {
    $("target").textContent = refusal(e) + " " + t("page-reset-ask-again");
  }
}

function showCodeForm() {
  $("target").textContent = t("page-reset-code-form");
  $("code-fields").hidden = false;
  $("reset-form").hidden = false;
}

async function rateStrength() {
  const asked = ++strengthAsked;
  const password = $("password").value;
  if (!password) { $("strength").textContent = ""; $("meter").value = 0; return; }
  try {
    const s = await api("/users/password/strength", { password, email: $("email").value || null });
    if (asked !== strengthAsked) return; // a newer keystroke has its own answer coming
    $("meter").value = s.score;
    const verdict = t("page-strength-" + s.score);
    $("strength").textContent = verdict + (s.problem ? ": " + s.problem : "") + (s.suggestions.length ? " " + s.suggestions.join(" ") : "");
  } catch (_) { /* the meter is a hint; the real check happens on submit */ }
}

async function submit(event) {
  event.preventDefault();
  say("");
  if ($("password").value !== $("confirm").value) { say(t("page-not-same")); return; }
  const body = { new_password: $("password").value };
  if (!token) { body.email = $("email").value; body.code = $("code").value; }
  $("submit").disabled = true;
  try {
    await api("/users/password/reset", body, token);
    $("reset-form").hidden = true;
    $("open-row").hidden = true;
    $("target").textContent = "";
    say(t("page-reset-done"), true);
    $("title").focus();
  } catch (e) {
    say(refusal(e));
  } finally {
    $("submit").disabled = false;
  }
}

// Shows the page for the link in the address bar (again when only its fragment changes,
// which a browser does without reloading the page).
function begin() {
  token = readToken();
  say("");
  $("reset-form").hidden = true;
  $("open-row").hidden = true;
  $("code-fields").hidden = true;
  $("target").textContent = t("page-checking");
  if (token) showTarget(); else showCodeForm();
}

let timer = null;
document.addEventListener("DOMContentLoaded", () => {
  $("reset-form").addEventListener("submit", submit);
  $("password").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(rateStrength, 150); });
  $("show").addEventListener("change", () => {
    const type = $("show").checked ? "text" : "password";
    $("password").type = type;
    $("confirm").type = type;
  });
  window.addEventListener("hashchange", () => { if (location.hash) begin(); });
  begin();
});
