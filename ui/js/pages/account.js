// Sign in, create an account (and finish one a server made), the signed-in page.

import { clearPasswords } from '../passwords.js';
import { call } from '../transport.js';
import { language, languageName, t } from '../words.js';
import { $, codeProblem, el, emailProblem, newPasswordProblem, normaliseCode, setAlert, setStatus, show, showSignin, state, validate } from '../ui.js';

export async function submitSignin() {
  const email = $('signin-email').value.trim();
  const password = $('signin-password').value;
  if (!validate([['signin-email', emailProblem(email)],
                 ['signin-password', password ? null : t('app-enter-password')]])) return;
  const r = await call('sign_in', { email, password });
  clearPasswords('page-signin');
  goHome((r && r.email) || email);
}

export async function submitRegister() {
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
  showSignin({ email: (r && r.email) || email, status: t('app-account-created') });
}

// The code from the mail that finishes an account a server made.
export async function submitFinish() {
  const code = normaliseCode($('finish-code').value);
  const password = $('finish-password').value;
  if (!validate([['finish-code', codeProblem(code)],
                 ['finish-password', password ? null : t('app-type-chosen-password')]])) return;
  const account = await call('verify_account', { email: state.registerEmail, code, password });
  $('finish-password').value = '';
  showSignin({ email: account.email, status: t('app-account-ready') });
}

export function goHome(email, opts = {}) {
  state.signedInEmail = email;
  $('home-email').textContent = email;
  $('change-username').value = email; // lets password managers file the new password
  clearPasswords('page-home');
  show('page-home', opts);
  showMailLanguage().catch(() => { /* the choice stays on the default; saving says why */ });
}

// The language of the signed-in account's mail: the choices, the account's one selected.
export async function showMailLanguage() {
  const select = $('mail-language');
  const current = await call('mail_language');
  const options = [['', t('app-mail-language-default')],
                   ...language.choices.map((c) => [c.tag, c.name])];
  select.replaceChildren(...options.map(([tag, name]) => {
    const o = el('option', null, name);
    o.value = tag;
    return o;
  }));
  // The account's tag (de-AT) or, failing that, its language (de).
  const wanted = String(current || '').toLowerCase();
  const match = language.choices.find((c) => c.tag.toLowerCase() === wanted)
    || language.choices.find((c) => c.tag.toLowerCase() === wanted.split('-')[0]);
  select.value = match ? match.tag : '';
}

export async function submitMailLanguage() {
  const locale = $('mail-language').value || null;
  const saved = await call('set_mail_language', { locale });
  setStatus(t('app-mail-language-saved', { language: saved ? languageName(saved) : t('app-mail-language-default') }));
}

// "Back": to the signed-in page if there is a session, else to sign in.
export function goStart() {
  if (state.signedInEmail) goHome(state.signedInEmail);
  else showSignin();
}

export function leaveHome(opts) {
  const email = state.signedInEmail;
  state.signedInEmail = null;
  clearPasswords('page-home');
  showSignin({ email, ...opts });
}

export async function submitChange() {
  const current = $('change-current').value;
  const newPassword = $('change-new').value;
  if (!validate([['change-current', current ? null : t('app-enter-current-password')],
                 ['change-new', newPasswordProblem(newPassword)]])) return;
  try {
    await call('change_password', { current, newPassword });
  } catch (err) {
    // The session ended under us (expired, or the password changed elsewhere).
    if (err.code === 'session_invalid') return leaveHome({ alert: err.message });
    throw err;
  }
  clearPasswords('page-home');
  setStatus(t('app-password-changed'));
}

export async function signOut() {
  $('signout').disabled = true;
  try { await call('sign_out'); leaveHome({ status: t('app-signed-out') }); } catch (err) { setAlert(err.message); }
  $('signout').disabled = false;
}
