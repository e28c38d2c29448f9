// Finishing a new account from a mailed rekey://verify link.

import { call } from '../transport.js';
import { $, el, show, showSignin, state, validate } from '../ui.js';

// Shows whose account a verification link finishes; nothing happens until the button.
export async function openVerify(token) {
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

export async function submitVerify() {
  const password = $('verify-password').value;
  if (!validate([['verify-password', password ? null : 'Type the password you chose for this account.']])) return;
  const seq = state.resetSeq;
  const account = await call('verify_account', { token: state.verifyToken, password });
  if (seq !== state.resetSeq) return;
  $('verify-password').value = '';
  showSignin({ email: account.email, status: 'Your account is ready. Sign in with the password you chose.' });
}
