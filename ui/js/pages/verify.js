// Finishing a new account from a mailed rekey://verify link.

import { call } from '../transport.js';
import { t, tParts } from '../words.js';
import { $, el, show, showSignin, state, validate } from '../ui.js';

// Shows whose account a verification link finishes; nothing happens until the button.
export async function openVerify(token) {
  const seq = ++state.resetSeq;
  state.verifyToken = token;
  $('verify-error').textContent = '';
  $('verify-form').hidden = true;
  $('verify-password').value = '';
  $('verify-target').classList.remove('is-error');
  $('verify-target').textContent = t('app-checking-link');
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
  const until = new Date(Number(r.expiresAt) * 1000).toLocaleString(document.documentElement.lang || undefined);
  $('verify-target').replaceChildren(...tParts('app-verify-for', { email: el('strong', null, r.email), until }));
  $('verify-form').hidden = false;
  $('verify-password').focus();
}

export async function submitVerify() {
  const password = $('verify-password').value;
  if (!validate([['verify-password', password ? null : t('app-type-chosen-password')]])) return;
  const seq = state.resetSeq;
  const account = await call('verify_account', { token: state.verifyToken, password });
  if (seq !== state.resetSeq) return;
  $('verify-password').value = '';
  showSignin({ email: account.email, status: t('app-account-ready') });
}
