// What the landing pages share (loaded before each page's own script). The token of a mailed
// link is in the URL fragment, never sent to any server by the browser; a page reads it,
// takes it out of the address bar, and talks to the JSON API.
"use strict";

const $ = (id) => document.getElementById(id);

// The page's words in the language the server chose for it (from Accept-Language), by
// message id; `{name}` in a message is filled from `vars`.
const words = JSON.parse($("words").textContent);
function t(id, vars) {
  let text = words[id] || id;
  for (const [name, value] of Object.entries(vars || {})) text = text.split("{" + name + "}").join(value);
  return text;
}

// A refusal in the page's language where there are words for its code, else the server's.
function refusal(e) {
  return words["page-error-" + e.code] || e.message;
}

// Shows a message under the form (green when `ok`).
function say(text, ok) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("ok", !!ok);
}

// POSTs JSON; resolves to the answer's JSON (null for 204), rejects with {code, message}.
async function api(path, body, bearer) {
  const headers = { "Content-Type": "application/json" };
  if (bearer) headers.Authorization = "Bearer " + bearer;
  const res = await fetch(path, { method: "POST", headers, body: JSON.stringify(body), referrerPolicy: "no-referrer", cache: "no-store" });
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch (_) { /* an empty or non-JSON answer */ }
  if (!res.ok) throw (data && data.message) ? data : { code: "http_" + res.status, message: t("page-unreachable") };
  return data;
}

// The token in the fragment, if it has a token's shape; the fragment is removed either way,
// to keep the token out of the history and out of anything copied from the address bar.
function readToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const t = params.get("token");
  if (location.hash) history.replaceState(null, "", location.pathname);
  return t && /^[A-Za-z0-9_\-.]{20,4096}$/.test(t) ? t : null;
}
