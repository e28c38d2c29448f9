// Rekey's window: plain DOM code in ES modules, no framework, no bundler. The window runs
// under a strict CSP (no inline script or style), so all wiring lives here and looks are
// set by classes. Each page has its module under pages/; transport.js talks to the shell.

import { goHome, goStart, signOut, submitChange, submitFinish, submitMailLanguage, submitRegister, submitSignin } from './pages/account.js';
import { resend, submitCode, submitForgot } from './pages/forgot.js';
import { guardLinks, openMailbox, openMessage, refreshMailbox } from './pages/mailbox.js';
import { openReset, submitReset } from './pages/reset.js';
import { applyInfo, chooseLanguage, connectServer, openSettings, testServer, useLocal } from './pages/settings.js';
import { openVerify, submitVerify } from './pages/verify.js';
import { meters, scheduleStrength, setRevealed, setupStrength } from './passwords.js';
import { call, normalise } from './transport.js';
import { $, bindForm, setAlert, show, showForgot, showSignin, state } from './ui.js';
import { useWords } from './words.js';

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
  bindForm('mail-language-form', 'mail-language-submit', submitMailLanguage, { locale_: 'mail-language' });
  $('settings-language').addEventListener('change', chooseLanguage);

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

async function start() {
  // The words first: every page is written in them. Without them the page stays English.
  try { useWords(await call('window_words')); } catch (err) { console.error('no words', err); }
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
