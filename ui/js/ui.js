// What every page shares: the page state, small DOM helpers, errors next to fields, the
// checks made before calling, the router and the one submit path of a form.

import { normalise } from './transport.js';
import { t } from './words.js';

export const $ = (id) => document.getElementById(id);
export const POLL_MS = 2000;

export const state = {
  page: null,             // id of the visible page
  minLength: 8,           // replaced by app_info().minLength
  signedInEmail: null,
  forgotEmail: '',        // the address the last reset mail was asked for
  doneEmail: '',          // the address whose password was just reset
  resetToken: null,
  resetEmail: null,       // the account a good link belongs to
  resetSeq: 0,            // bumps on every new link, so stale answers are dropped
  verifyToken: null,      // the token of a verification link being shown
  registerEmail: '',      // the address a server is finishing an account for
  settingsReturn: 'page-signin',
  settingsPlace: null,    // where accounts live, as the settings page last heard
  appLanguage: '',        // the window's chosen language; '' follows the system
  mailboxReturn: 'page-signin',
  mailboxOpenId: null,
  mailboxIds: new Map(),  // data-id string -> the id exactly as the shell gave it
  mailboxKey: '',         // the list last drawn; redrawing needlessly would lose focus
  stopPoll: null,         // stops the visible page's poll, if it has one
};

/* ---------- Small DOM helpers ---------- */

export function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children.filter((c) => c != null));
  return node;
}

// Writing the same text again would make screen readers repeat it.
export function setText(node, text) { if (node.textContent !== (text || '')) node.textContent = text || ''; }
export function setStatus(text) { setText($('status'), text); }
export function setAlert(text) { setText($('alert'), text); }

/* ---------- Errors next to fields and forms ---------- */

export function fieldError(inputId, message) {
  $(inputId).setAttribute('aria-invalid', 'true');
  $(inputId + '-msg').textContent = message;
}
export function clearFieldError(input) {
  input.removeAttribute('aria-invalid');
  if ($(input.id + '-msg')) $(input.id + '-msg').textContent = '';
}
export function clearErrors(root) {
  root.querySelectorAll('input').forEach(clearFieldError);
  root.querySelectorAll('.form-error').forEach((node) => { node.textContent = ''; });
}

// Shows a refusal at the field it is about, else under the form. `fields` maps a code,
// or a code prefix ending in "_", to an input id.
export function routeError(err, formErrorId, fields = {}) {
  const key = Object.keys(fields).find((k) => (k.endsWith('_') ? err.code.startsWith(k) : err.code === k));
  if (!key) { $(formErrorId).textContent = err.message; return; }
  fieldError(fields[key], err.message);
  $(fields[key]).focus();
}

/* ---------- Checks before calling (the shell has the last word) ---------- */

export function emailProblem(v) {
  if (!v) return t('app-enter-email');
  return /^[^\s@]+@[^\s@]+$/.test(v) ? null : t('app-email-like');
}
export function newPasswordProblem(v) {
  if (!v) return t('app-enter-new-password');
  return [...v].length < state.minLength ? t('app-at-least', { min: state.minLength }) : null;
}
export function confirmProblem(password, confirm) {
  if (!confirm) return t('app-type-again');
  return password === confirm ? null : t('app-not-same');
}

// Codes look like ABCD-EFGH: any case, dash optional, spaces ignored.
export const normaliseCode = (raw) => raw.replace(/[\s-]/g, '').toUpperCase();
export const formatCode = (code) => code.slice(0, 4) + '-' + code.slice(4);
export function codeProblem(code) {
  if (!code) return t('app-enter-code');
  return /^[A-Z0-9]{8}$/.test(code) ? null : t('app-code-like');
}

// Marks every failed check, focuses the first one; true when all passed.
export function validate(checks) {
  const failed = checks.filter(([, problem]) => problem);
  failed.forEach(([id, problem]) => fieldError(id, problem));
  if (failed.length) $(failed[0][0]).focus();
  return !failed.length;
}

/* ---------- Router ---------- */

// What a page starts when it is shown (a poll), by page id; returns its stopper. Pages
// register here, so the router needs to know none of them.
export const onEnter = {};
export function whenShown(pageId, start) { onEnter[pageId] = start; }

// Shows one page, replaces the global messages, starts its poll and moves focus to its
// heading (or to opts.focus) so screen readers announce the change.
export function show(pageId, opts = {}) {
  if (state.stopPoll) state.stopPoll();
  state.stopPoll = null;
  document.querySelectorAll('section.page').forEach((s) => { s.hidden = s.id !== pageId; });
  if (state.page !== pageId) clearErrors($(pageId));
  state.page = pageId;
  setStatus(opts.status);
  setAlert(opts.alert);
  if (onEnter[pageId]) state.stopPoll = onEnter[pageId]();
  ((opts.focus && $(opts.focus)) || $(pageId).querySelector('h1')).focus();
}

export function showSignin(opts = {}) { // prefilled address: straight to the password
  if (opts.email) $('signin-email').value = opts.email;
  show('page-signin', { ...opts, focus: opts.email ? 'signin-password' : null });
}

export function showForgot(opts = {}) {
  const email = $('forgot-email');
  if (!email.value) email.value = state.forgotEmail || $('signin-email').value.trim();
  show('page-forgot', opts);
}

// Calls fn now and every POLL_MS after it settles (never overlapping); returns a stopper.
export function poll(fn) {
  let stopped = false, timer = null;
  const run = async () => {
    try { await fn(); } catch (err) { /* retried on the next round */ }
    if (!stopped) timer = setTimeout(run, POLL_MS);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

/* ---------- Forms: one submit path with a busy state ---------- */

// A refusal thrown by the handler is shown by routeError with `fields` (see there).
export function bindForm(formId, submitId, handler, fields) {
  const form = $(formId);
  const button = $(submitId);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (form.dataset.busy) return; // Enter pressed again while waiting
    clearErrors(form);
    setStatus(''); // cleared so that the outcome is announced even if it reads the same
    setAlert('');
    form.dataset.busy = '1';
    button.disabled = true;
    const page = state.page;
    try {
      await handler();
    } catch (err) {
      routeError(normalise(err), formId.replace(/-form$/, '-error'), fields);
    } finally {
      delete form.dataset.busy;
      button.disabled = false;
      // Disabling the focused button drops focus to <body>; give it back.
      if (state.page === page && document.activeElement === document.body) button.focus();
    }
  });
  form.addEventListener('input', (ev) => clearFieldError(ev.target)); // edited: old complaint goes
}
