// Sign in, create an account (and finish one a server made), the signed-in page.

import { clearPasswords } from '../passwords.js';
import { call } from '../transport.js';
import { $, codeProblem, emailProblem, newPasswordProblem, normaliseCode, setAlert, setStatus, show, showSignin, state, validate } from '../ui.js';

export async function submitSignin() {
  const email = $('signin-email').value.trim();
  const password = $('signin-password').value;
  if (!validate([['signin-email', emailProblem(email)],
                 ['signin-password', password ? null : 'Enter your password.']])) return;
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
  showSignin({ email: (r && r.email) || email, status: 'Account created. Sign in with your new password.' });
}

// The code from the mail that finishes an account a server made.
export async function submitFinish() {
  const code = normaliseCode($('finish-code').value);
  const password = $('finish-password').value;
  if (!validate([['finish-code', codeProblem(code)],
                 ['finish-password', password ? null : 'Type the password you chose for this account.']])) return;
  const account = await call('verify_account', { email: state.registerEmail, code, password });
  $('finish-password').value = '';
  showSignin({ email: account.email, status: 'Your account is ready. Sign in with the password you chose.' });
}

export function goHome(email, opts = {}) {
  state.signedInEmail = email;
  $('home-email').textContent = email;
  $('change-username').value = email; // lets password managers file the new password
  clearPasswords('page-home');
  show('page-home', opts);
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

export async function signOut() {
  $('signout').disabled = true;
  try { await call('sign_out'); leaveHome({ status: 'You are signed out.' }); } catch (err) { setAlert(err.message); }
  $('signout').disabled = false;
}
