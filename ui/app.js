'use strict';
// Rekey front end. Plain DOM code, no framework. The window runs under a strict CSP
// (no inline script or style), so all wiring lives here and looks are set by classes.

const $ = (id) => document.getElementById(id);
const GENERIC = 'Something went wrong; try again.';
const WORDS = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'];
const POLL_MS = 2000;

const state = {
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
  mailboxReturn: 'page-signin',
  mailboxOpenId: null,
  mailboxIds: new Map(),  // data-id string -> the id exactly as the shell gave it
  mailboxKey: '',         // the list last drawn; redrawing needlessly would lose focus
  stopPoll: null,         // stops the visible page's poll, if it has one
};

/* ---------- Talking to the shell: the one place for calls ---------- */

// Rust rejects with {code, message}. Anything else (a string, a JS error) is not fit to
// show a person, so it becomes the generic message.
function normalise(err) {
  if (err && typeof err === 'object' && !(err instanceof Error) &&
      typeof err.message === 'string' && err.message.trim()) {
    return { code: typeof err.code === 'string' ? err.code : 'unknown', message: err.message };
  }
  if (err instanceof Error) console.error(err);
  return { code: 'unknown', message: GENERIC };
}

async function call(name, args) {
  const core = window.__TAURI__ && window.__TAURI__.core;
  if (!core || typeof core.invoke !== 'function') throw { code: 'no_shell', message: GENERIC };
  try { return await core.invoke(name, args || {}); } catch (err) { throw normalise(err); }
}

/* ---------- Small DOM helpers ---------- */

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children.filter((c) => c != null));
  return node;
}

// Writing the same text again would make screen readers repeat it.
function setText(node, text) { if (node.textContent !== (text || '')) node.textContent = text || ''; }
function setStatus(text) { setText($('status'), text); }
function setAlert(text) { setText($('alert'), text); }

/* ---------- Errors next to fields and forms ---------- */

function fieldError(inputId, message) {
  $(inputId).setAttribute('aria-invalid', 'true');
  $(inputId + '-msg').textContent = message;
}
function clearFieldError(input) {
  input.removeAttribute('aria-invalid');
  if ($(input.id + '-msg')) $(input.id + '-msg').textContent = '';
}
function clearErrors(root) {
  root.querySelectorAll('input').forEach(clearFieldError);
  root.querySelectorAll('.form-error').forEach((node) => { node.textContent = ''; });
}

// Shows a refusal at the field it is about, else under the form. `fields` maps a code,
// or a code prefix ending in "_", to an input id.
function routeError(err, formErrorId, fields = {}) {
  const key = Object.keys(fields).find((k) => (k.endsWith('_') ? err.code.startsWith(k) : err.code === k));
  if (!key) { $(formErrorId).textContent = err.message; return; }
  fieldError(fields[key], err.message);
  $(fields[key]).focus();
}

/* ---------- Checks before calling (the shell has the last word) ---------- */

function emailProblem(v) {
  if (!v) return 'Enter your email address.';
  return /^[^\s@]+@[^\s@]+$/.test(v) ? null : 'Enter an email address like name@example.com.';
}
function newPasswordProblem(v) {
  if (!v) return 'Enter a new password.';
  return [...v].length < state.minLength ? `Use at least ${state.minLength} characters.` : null;
}
function confirmProblem(password, confirm) {
  if (!confirm) return 'Type the new password again.';
  return password === confirm ? null : 'The two passwords are not the same.';
}

// Codes look like ABCD-EFGH: any case, dash optional, spaces ignored.
const normaliseCode = (raw) => raw.replace(/[\s-]/g, '').toUpperCase();
const formatCode = (code) => code.slice(0, 4) + '-' + code.slice(4);
function codeProblem(code) {
  if (!code) return 'Enter the code from the mail.';
  return /^[A-Z0-9]{8}$/.test(code) ? null : 'The code has 8 letters and digits, like ABCD-EFGH.';
}

// Marks every failed check, focuses the first one; true when all passed.
function validate(checks) {
  const failed = checks.filter(([, problem]) => problem);
  failed.forEach(([id, problem]) => fieldError(id, problem));
  if (failed.length) $(failed[0][0]).focus();
  return !failed.length;
}

/* ---------- Router ---------- */

const onEnter = {
  'page-check': () => poll(refreshMailStatus),
  'page-mailbox': () => { state.mailboxKey = ''; return poll(refreshMailbox); },
};

// Shows one page, replaces the global messages, starts its poll and moves focus to its
// heading (or to opts.focus) so screen readers announce the change.
function show(pageId, opts = {}) {
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

function showSignin(opts = {}) { // prefilled address: straight to the password
  if (opts.email) $('signin-email').value = opts.email;
  show('page-signin', { ...opts, focus: opts.email ? 'signin-password' : null });
}

// "Back": to the signed-in page if there is a session, else to sign in.
function goStart() {
  if (state.signedInEmail) goHome(state.signedInEmail);
  else showSignin();
}

function showForgot(opts = {}) {
  const email = $('forgot-email');
  if (!email.value) email.value = state.forgotEmail || $('signin-email').value.trim();
  show('page-forgot', opts);
}

// Calls fn now and every POLL_MS after it settles (never overlapping); returns a stopper.
function poll(fn) {
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
function bindForm(formId, submitId, handler, fields) {
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

/* ---------- Password fields: show/hide and strength ---------- */

function setRevealed(button, revealed) {
  $(button.dataset.for).type = revealed ? 'text' : 'password';
  button.setAttribute('aria-pressed', String(revealed));
  button.setAttribute('aria-label', revealed ? 'Hide password' : 'Show password');
  button.textContent = revealed ? 'Hide' : 'Show';
}

const meters = {}; // input id -> strength widget

// The address the strength check treats as context (it penalises look-alikes).
const strengthEmail = {
  'register-password': () => $('register-email').value.trim() || null,
  'code-password': () => $('code-email').value.trim() || null,
  'reset-password': () => state.resetEmail,
  'change-new': () => state.signedInEmail,
};

function setupStrength(box) {
  const input = $(box.dataset.for);
  const meter = el('div', 'meter', ...[0, 1, 2, 3, 4].map(() => el('span')));
  meter.setAttribute('aria-hidden', 'true');
  const [word, problem, tips] = [el('p', 'strength-word'), el('p', 'strength-problem'), el('ul', 'strength-tips')];
  word.setAttribute('aria-live', 'polite');
  problem.setAttribute('aria-live', 'polite');
  if (box.dataset.problemId) problem.id = box.dataset.problemId; // e.g. #reset-reasons
  box.append(meter, word, problem, tips);
  const w = { box, input, meter, word, problem, tips, seq: 0, timer: null };
  meters[input.id] = w;
  input.addEventListener('input', () => scheduleStrength(w));
  renderStrength(w, null);
}

// Debounced; an answer that arrives after a newer keystroke is dropped.
function scheduleStrength(w) {
  clearTimeout(w.timer);
  const seq = ++w.seq;
  const password = w.input.value;
  if (!password) { renderStrength(w, null); return; }
  w.timer = setTimeout(async () => {
    let result = null;
    try {
      result = await call('password_strength', { password, email: strengthEmail[w.input.id]() });
    } catch (err) { /* advisory only: a failure hides the meter, never blocks typing */ }
    if (seq === w.seq) renderStrength(w, result);
  }, 150);
}

function renderStrength(w, result) {
  w.box.hidden = !result;
  const score = result ? Math.max(0, Math.min(4, Number(result.score) || 0)) : null;
  w.meter.dataset.score = score == null ? '' : String(score);
  setText(w.word, result ? 'Strength: ' + WORDS[score] : '');
  setText(w.problem, result && result.problem);
  const tips = result && Array.isArray(result.suggestions) ? result.suggestions : [];
  w.tips.replaceChildren(...tips.map((t) => el('li', null, t)));
}

// Empties a page's password fields, masks them again and resets their meters.
function clearPasswords(pageId) {
  const root = $(pageId);
  root.querySelectorAll('.pw-toggle').forEach((b) => setRevealed(b, false));
  root.querySelectorAll('input[type="password"]').forEach((input) => {
    input.value = '';
    const w = meters[input.id];
    if (w) { clearTimeout(w.timer); w.seq++; renderStrength(w, null); }
  });
}

/* ---------- Sign in, create an account, signed in ---------- */

async function submitSignin() {
  const email = $('signin-email').value.trim();
  const password = $('signin-password').value;
  if (!validate([['signin-email', emailProblem(email)],
                 ['signin-password', password ? null : 'Enter your password.']])) return;
  const r = await call('sign_in', { email, password });
  clearPasswords('page-signin');
  goHome((r && r.email) || email);
}

async function submitRegister() {
  const email = $('register-email').value.trim();
  const password = $('register-password').value;
  if (!validate([['register-email', emailProblem(email)],
                 ['register-password', newPasswordProblem(password)]])) return;
  const r = await call('register', { email, password });
  clearPasswords('page-register');
  if (r && r.verifyByMail) { // a server: the mail finishes the account
    state.registerEmail = r.email || email;
    $('check-register-email').textContent = state.registerEmail;
    $('finish-code').value = '';
    show('page-check-register');
    return;
  }
  showSignin({ email: (r && r.email) || email, status: 'Account created. Sign in with your new password.' });
}

// The code from the mail that finishes an account a server made.
async function submitFinish() {
  const code = normaliseCode($('finish-code').value);
  const password = $('finish-password').value;
  if (!validate([['finish-code', codeProblem(code)],
                 ['finish-password', password ? null : 'Type the password you chose for this account.']])) return;
  const account = await call('verify_account', { email: state.registerEmail, code, password });
  $('finish-password').value = '';
  showSignin({ email: account.email, status: 'Your account is ready. Sign in with the password you chose.' });
}

function goHome(email, opts = {}) {
  state.signedInEmail = email;
  $('home-email').textContent = email;
  $('change-username').value = email; // lets password managers file the new password
  clearPasswords('page-home');
  show('page-home', opts);
}

function leaveHome(opts) {
  const email = state.signedInEmail;
  state.signedInEmail = null;
  clearPasswords('page-home');
  showSignin({ email, ...opts });
}

async function submitChange() {
  const current = $('change-current').value;
  const newPassword = $('change-new').value;
  if (!validate([['change-current', current ? null : 'Enter your current password.'],
                 ['change-new', newPasswordProblem(newPassword)]])) return;
  try {
    await call('change_password', { current, newPassword });
  } catch (err) {
    // The session ended under us (expired, or the password changed elsewhere).
    if (err.code === 'session_invalid') return leaveHome({ alert: err.message });
    throw err;
  }
  clearPasswords('page-home');
  setStatus('Your password was changed.');
}

async function signOut() {
  $('signout').disabled = true;
  try { await call('sign_out'); leaveHome({ status: 'You are signed out.' }); } catch (err) { setAlert(err.message); }
  $('signout').disabled = false;
}

/* ---------- Forgot, check your mail, send again ---------- */

async function submitForgot() {
  const email = $('forgot-email').value.trim();
  if (!validate([['forgot-email', emailProblem(email)]])) return;
  const r = await call('request_reset', { email });
  state.forgotEmail = email;
  $('check-email').textContent = email;
  $('code-email').value = email;
  startCountdown(r && r.resendAfterSecs);
  show('page-check');
}

const countdown = { until: 0, timer: null, sending: false };

function startCountdown(secs) {
  clearInterval(countdown.timer);
  countdown.until = Date.now() + Math.max(0, Number(secs) || 0) * 1000;
  tickCountdown();
  countdown.timer = setInterval(tickCountdown, 1000);
}

function tickCountdown() {
  const left = Math.ceil((countdown.until - Date.now()) / 1000);
  if (left <= 0) clearInterval(countdown.timer);
  $('check-resend').disabled = left > 0 || countdown.sending;
  setText($('check-resend'), left > 0 ? `Send again in ${left} s` : 'Send again');
}

async function resend() {
  if (countdown.sending) return;
  countdown.sending = true;
  $('check-title').focus(); // the button is about to be disabled; keep focus in the page
  $('check-resend').disabled = true;
  setStatus('');
  setAlert('');
  let secs = 0;
  try {
    secs = (await call('request_reset', { email: state.forgotEmail }) || {}).resendAfterSecs;
    setStatus(`If ${state.forgotEmail} has an account, another message is on its way.`);
  } catch (err) {
    setAlert(err.message);
  }
  countdown.sending = false;
  startCountdown(secs);
}

async function refreshMailStatus() {
  const s = await call('mail_status');
  if (state.page !== 'page-check' || !s) return;
  const lines = [[null, s.mode === 'mailbox' ? 'Mail goes to the local mailbox on this computer.'
                     : s.mode === 'server' ? `Mail comes from your organisation's server (${s.where}). If none arrives, look in your spam folder, then ask your administrator.`
                     : `Mail is sent through ${s.where}.`]];
  // A stuck queue is how a person learns the mail will not arrive soon.
  if (s.lastError && s.depth > 0) lines.push(['warn', `Mail is waiting to be sent: ${s.lastError}`]);
  if (s.dead > 0) lines.push(['bad', `Some mail could not be delivered (${s.dead} message${s.dead === 1 ? '' : 's'}).`]);
  const box = $('check-mail-status');
  const key = JSON.stringify(lines);
  if (box.dataset.key === key) return; // unchanged: do not announce it again
  box.dataset.key = key;
  box.replaceChildren(...lines.map(([cls, text]) => el('p', cls, text)));
}

/* ---------- Typed code ---------- */

async function submitCode() {
  const email = $('code-email').value.trim();
  const code = normaliseCode($('code-value').value);
  const newPassword = $('code-password').value;
  if (!validate([['code-email', emailProblem(email)],
                 ['code-value', codeProblem(code)],
                 ['code-password', newPasswordProblem(newPassword)],
                 ['code-confirm', confirmProblem(newPassword, $('code-confirm').value)]])) return;
  $('code-value').value = formatCode(code);
  await call('confirm_reset', { email, code: formatCode(code), newPassword });
  $('code-value').value = '';
  finishReset(email);
}

/* ---------- Reset by link ---------- */

function setResetMode(mode) { // 'checking' | 'ready' | 'bad'
  $('reset-fields').disabled = mode !== 'ready';
  $('reset-fields').hidden = mode === 'bad';
  $('reset-new-link').hidden = mode !== 'bad';
  $('reset-target').classList.toggle('is-error', mode === 'bad');
}

function badLink(message) {
  setResetMode('bad');
  clearPasswords('page-reset');
  $('reset-target').textContent = message;
}

// Opens the reset page for a token (startup, event or mailbox), discarding whatever was
// shown, and checks the link before the person types anything.
async function openReset(token) {
  const seq = ++state.resetSeq;
  state.resetToken = token;
  state.resetEmail = null;
  clearPasswords('page-reset');
  clearErrors($('page-reset'));
  setResetMode('checking');
  $('reset-target').textContent = 'Checking the link…';
  show('page-reset');
  let r;
  try {
    r = await call('inspect_link', { token });
  } catch (err) {
    if (seq === state.resetSeq) badLink(err.message);
    return;
  }
  if (seq !== state.resetSeq) return; // a newer link arrived meanwhile
  state.resetEmail = r.email;
  $('reset-username').value = r.email;
  const until = new Date(Number(r.expiresAt) * 1000).toLocaleString();
  $('reset-target').replaceChildren('Choose a new password for ', el('strong', null, r.email),
                                    `. This link works until ${until}.`);
  setResetMode('ready');
}

async function submitReset() {
  const newPassword = $('reset-password').value;
  if (!validate([['reset-password', newPasswordProblem(newPassword)],
                 ['reset-confirm', confirmProblem(newPassword, $('reset-confirm').value)]])) return;
  const seq = state.resetSeq;
  try {
    await call('confirm_reset', { token: state.resetToken, newPassword });
  } catch (err) {
    if (seq !== state.resetSeq) return; // another link took over meanwhile
    if (!err.code.startsWith('token_')) throw err;
    badLink(err.message); // the link died: say why and offer a new one
    $('reset-new-link').focus();
    return;
  }
  if (seq === state.resetSeq) finishReset(state.resetEmail);
}

function finishReset(email) {
  state.doneEmail = email || '';
  if (email && email === state.signedInEmail) state.signedInEmail = null; // its sessions ended
  clearPasswords('page-reset');
  clearPasswords('page-code');
  show('page-done');
}

/* ---------- Finishing a new account (rekey://verify) ---------- */

// Shows whose account a verification link finishes; nothing happens until the button.
async function openVerify(token) {
  const seq = ++state.resetSeq;
  state.verifyToken = token;
  $('verify-error').textContent = '';
  $('verify-form').hidden = true;
  $('verify-password').value = '';
  $('verify-target').classList.remove('is-error');
  $('verify-target').textContent = 'Checking the link…';
  show('page-verify');
  let r;
  try {
    r = await call('inspect_verify_link', { token });
  } catch (err) {
    if (seq !== state.resetSeq) return;
    $('verify-target').classList.add('is-error');
    $('verify-target').textContent = err.message;
    return;
  }
  if (seq !== state.resetSeq) return;
  const until = new Date(Number(r.expiresAt) * 1000).toLocaleString();
  $('verify-target').replaceChildren('Finish the account for ', el('strong', null, r.email),
                                     `. This link works until ${until}.`);
  $('verify-form').hidden = false;
  $('verify-password').focus();
}

async function submitVerify() {
  const password = $('verify-password').value;
  if (!validate([['verify-password', password ? null : 'Type the password you chose for this account.']])) return;
  const seq = state.resetSeq;
  const account = await call('verify_account', { token: state.verifyToken, password });
  if (seq !== state.resetSeq) return;
  $('verify-password').value = '';
  showSignin({ email: account.email, status: 'Your account is ready. Sign in with the password you chose.' });
}

/* ---------- Settings: this computer, or a server ---------- */

function placeWords(place) {
  return place && place.mode === 'server' ? `Connected to ${place.url}` : 'This computer';
}

async function openSettings() {
  state.settingsReturn = state.page || 'page-signin';
  $('settings-result').textContent = '';
  $('settings-error').textContent = '';
  show('page-settings');
  const s = await call('settings');
  $('settings-place').textContent = s.place.mode === 'server'
    ? `Accounts live on your organisation's server, ${s.place.url}.`
    : 'Accounts live on this computer, in Rekey\'s own store.';
  $('settings-url').value = s.serverUrl || '';
  $('settings-ca').value = s.serverCaFile || '';
  $('settings-local').hidden = s.place.mode !== 'server';
}

function serverArgs() {
  return { url: $('settings-url').value.trim(), caFile: $('settings-ca').value.trim() || null };
}

async function testServer() {
  $('settings-result').textContent = '';
  $('settings-error').textContent = '';
  const args = serverArgs();
  if (!args.url) { fieldError('settings-url', 'Enter the server\'s address, like https://rekey.example.com.'); return; }
  $('settings-result').textContent = 'Trying the server…';
  try {
    const info = await call('server_test', args);
    $('settings-result').textContent = `The server answers: Rekey ${info.version}.`;
  } catch (err) {
    $('settings-result').textContent = '';
    $('settings-error').textContent = err.message;
  }
}

async function connectServer() {
  const args = serverArgs();
  if (!validate([['settings-url', args.url ? null : 'Enter the server\'s address, like https://rekey.example.com.']])) return;
  const place = await call('server_connect', args);
  await refreshInfo();
  state.signedInEmail = null;
  showSignin({ status: `${placeWords(place)}. Sign in with your account on that server.` });
}

async function useLocal() {
  $('settings-error').textContent = '';
  try {
    await call('server_disconnect');
  } catch (err) { $('settings-error').textContent = err.message; return; }
  await refreshInfo();
  state.signedInEmail = null;
  showSignin({ status: 'Accounts live on this computer again.' });
}

async function refreshInfo() {
  try { applyInfo(await call('app_info')); } catch (err) { setAlert(err.message); }
}

/* ---------- Local mailbox ---------- */

// Numbers are unix seconds (milliseconds if that large); strings are parsed; else shown as is.
function formatDate(d) {
  if (d == null || d === '') return '';
  const n = Number(d);
  const date = Number.isFinite(n) ? new Date(n < 1e12 ? n * 1000 : n) : new Date(d);
  return Number.isNaN(date.getTime()) ? String(d) : date.toLocaleString();
}

function openMailbox() {
  state.mailboxReturn = state.page || 'page-signin';
  show('page-mailbox');
}

async function refreshMailbox() {
  const list = await call('mailbox_list');
  const key = JSON.stringify(list);
  if (state.page !== 'page-mailbox' || key === state.mailboxKey) return;
  state.mailboxKey = key;
  renderMailboxList(Array.isArray(list) ? list : []);
}

function renderMailboxList(list) {
  const ul = $('mailbox-list');
  const active = document.activeElement;
  const focusedId = active && active.classList.contains('mailbox-item') ? active.dataset.id : null;
  if (!list.length) { ul.replaceChildren(el('li', 'mailbox-empty', 'No messages yet.')); return; }
  ul.replaceChildren(...list.map((m) => {
    const button = el('button', 'mailbox-item', el('span', 'mailbox-subject', m.subject || '(no subject)'),
                      el('span', 'mailbox-meta', `To ${m.to} · ${formatDate(m.date)}`));
    button.type = 'button';
    button.dataset.id = String(m.id);
    state.mailboxIds.set(String(m.id), m.id);
    return el('li', null, button);
  }));
  markOpenMessage();
  // The redraw replaced the focused button; focus its replacement.
  const again = focusedId && [...ul.querySelectorAll('.mailbox-item')].find((b) => b.dataset.id === focusedId);
  if (again) again.focus();
}

function markOpenMessage() {
  document.querySelectorAll('.mailbox-item').forEach((b) => {
    if (b.dataset.id === String(state.mailboxOpenId)) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  });
}

async function openMessage(id) {
  setAlert('');
  let m;
  try { m = await call('mailbox_open', { id }); } catch (err) { setAlert(err.message); return; }
  state.mailboxOpenId = m.id;
  markOpenMessage();
  renderMessage(m);
  $('mailbox-message-subject').focus();
}

function renderMessage(m) {
  const subject = el('h2', null, m.subject || '(no subject)');
  subject.id = 'mailbox-message-subject';
  subject.tabIndex = -1;
  const meta = el('dl', null, el('dt', null, 'To'), el('dd', null, m.to || ''),
                  el('dt', null, 'Date'), el('dd', null, formatDate(m.date)));
  const links = (m.links || []).map((link) => {
    const url = String(link.url || '');
    const a = el('a', 'mailbox-link');
    if (url.startsWith('rekey://')) {
      // Only Rekey links act, and only through the shell (see guardLinks).
      a.href = url;
      a.dataset.url = url;
      a.textContent = link.label || 'Open in Rekey';
    } else {
      // Other links are shown, not followed: this window is not a browser.
      a.textContent = link.label && link.label !== url ? `${link.label}: ${url}` : url;
    }
    return el('li', null, a);
  });
  const box = $('mailbox-message');
  box.hidden = false;
  box.replaceChildren(subject, meta, el('pre', null, m.text || ''),
                      links.length ? el('ul', 'mailbox-links', ...links) : null);
}

// Nothing may navigate this window; a Rekey link is handed to the shell, which answers
// with a reset-link, verify-link (or link-rejected) event.
async function guardLinks(ev) {
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a) return;
  ev.preventDefault();
  if (!a.dataset.url || !a.dataset.url.startsWith('rekey://')) return;
  setAlert('');
  try { await call('open_link', { url: a.dataset.url }); } catch (err) { setAlert(err.message); }
}

/* ---------- Wiring and startup ---------- */

function wire() {
  document.querySelectorAll('.pw-toggle').forEach((b) => b.addEventListener('click',
    () => setRevealed(b, b.getAttribute('aria-pressed') !== 'true')));
  document.querySelectorAll('.strength[data-for]').forEach(setupStrength);
  // The address is context for the strength check, so check again when it changes.
  $('register-email').addEventListener('input', () => scheduleStrength(meters['register-password']));
  $('code-email').addEventListener('input', () => scheduleStrength(meters['code-password']));

  bindForm('signin-form', 'signin-submit', submitSignin, { email_: 'signin-email' });
  bindForm('register-form', 'register-submit', submitRegister,
           { email_: 'register-email', password_: 'register-password' });
  bindForm('forgot-form', 'forgot-submit', submitForgot, { email_: 'forgot-email' });
  bindForm('code-form', 'code-submit', submitCode,
           { email_: 'code-email', code_invalid: 'code-value', password_: 'code-password' });
  bindForm('reset-form', 'reset-submit', submitReset, { password_: 'reset-password' });
  bindForm('change-form', 'change-submit', submitChange,
           { password_: 'change-new', bad_credentials: 'change-current' });
  bindForm('finish-form', 'finish-submit', submitFinish,
           { code_invalid: 'finish-code', password_mismatch: 'finish-password' });
  bindForm('verify-form', 'verify-submit', submitVerify, { password_mismatch: 'verify-password' });
  bindForm('settings-form', 'settings-connect', connectServer, { server_url_: 'settings-url' });

  const on = (id, fn) => $(id).addEventListener('click', fn);
  on('to-register', () => {
    if (!$('register-email').value) $('register-email').value = $('signin-email').value.trim();
    show('page-register');
  });
  on('to-forgot', () => showForgot());
  on('to-settings', () => openSettings().catch((e) => setAlert(e.message)));
  on('home-settings', () => openSettings().catch((e) => setAlert(e.message)));
  on('settings-test', testServer);
  on('settings-local', useLocal);
  on('settings-back', () => show(state.settingsReturn));
  on('check-register-to-signin', goStart);
  ['register-to-signin', 'forgot-to-signin', 'check-to-signin', 'code-to-signin', 'reset-to-signin',
   'verify-to-signin']
    .forEach((id) => on(id, goStart));
  on('check-enter-code', () => {
    if (!$('code-email').value) $('code-email').value = state.forgotEmail;
    show('page-code');
  });
  on('check-resend', resend);
  on('check-open-mailbox', openMailbox);
  on('code-open-mailbox', openMailbox);
  on('reset-new-link', () => showForgot());
  on('done-signin', () => showSignin({ email: state.doneEmail || $('signin-email').value }));
  on('signout', signOut);
  on('mailbox-refresh', () => { state.mailboxKey = ''; refreshMailbox().catch((e) => setAlert(e.message)); });
  on('mailbox-back', () => show(state.mailboxReturn));
  on('mailbox-list', (ev) => {
    const item = ev.target.closest('.mailbox-item');
    if (item) openMessage(state.mailboxIds.get(item.dataset.id) ?? item.dataset.id);
  });
  document.addEventListener('click', guardLinks);
}

async function listenEvents() {
  const events = window.__TAURI__ && window.__TAURI__.event;
  if (!events) return;
  await events.listen('reset-link', (e) => {
    if (e.payload && e.payload.token) openReset(e.payload.token);
  });
  await events.listen('verify-link', (e) => {
    if (e.payload && e.payload.token) openVerify(e.payload.token);
  });
  await events.listen('link-rejected', (e) => {
    showForgot();
    $('forgot-error').textContent = normalise(e.payload).message;
  });
}

function applyInfo(info) {
  if (Number(info.minLength) > 0) state.minLength = Number(info.minLength);
  // The operator's name for the product, wherever the page says it.
  const product = info.productName || 'Rekey';
  document.title = product;
  for (const el of document.querySelectorAll('.product-name')) el.textContent = product;
  const mailbox = info.mail && info.mail.mode === 'mailbox';
  $('check-open-mailbox').hidden = !mailbox;
  $('code-open-mailbox').hidden = !mailbox;
  if (info.place && info.place.mode === 'server') {
    $('app-footer').textContent = `${product} ${info.version || ''} · Connected to ${info.place.url}`;
  } else {
    const where = mailbox ? 'local mailbox' : (info.mail && info.mail.where) || 'mail server';
    $('app-footer').textContent = `${product} ${info.version || ''} · This computer · Mail: ${where}`;
  }
}

async function start() {
  wire();
  try { await listenEvents(); } catch (err) { console.error('listen failed', err); }
  let info = null, problem = null;
  try { info = await call('app_info'); applyInfo(info); } catch (err) { problem = err.message; }
  // A link event may already have opened a page; keep it.
  if (!state.page) {
    if (info && info.signedIn && info.signedIn.email) goHome(info.signedIn.email, { alert: problem });
    else showSignin({ alert: problem });
  }
  // Only now that the listeners exist, so no link can slip between the two.
  let pending = null;
  try { pending = await call('take_pending_link'); } catch (err) { setAlert(err.message); }
  if (pending && pending.token) {
    if (pending.action === 'verify') openVerify(pending.token); else openReset(pending.token);
  }
}

start();
