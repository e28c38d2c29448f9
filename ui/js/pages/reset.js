// The reset page a mailed link opens: whose link, then a new password.

import { clearPasswords } from '../passwords.js';
import { call } from '../transport.js';
import { t, tParts } from '../words.js';
import { $, clearErrors, confirmProblem, el, newPasswordProblem, show, state, validate } from '../ui.js';

export function setResetMode(mode) { // 'checking' | 'ready' | 'bad'
  $('reset-fields').disabled = mode !== 'ready';
  $('reset-fields').hidden = mode === 'bad';
  $('reset-new-link').hidden = mode !== 'bad';
  $('reset-target').classList.toggle('is-error', mode === 'bad');
}

export function badLink(message) {
  setResetMode('bad');
  clearPasswords('page-reset');
  $('reset-target').textContent = message;
}

// Opens the reset page for a token (startup, event or mailbox), discarding whatever was
// shown, and checks the link before the person types anything.
export async function openReset(token) {
  const seq = ++state.resetSeq;
  state.resetToken = token;
  state.resetEmail = null;
  clearPasswords('page-reset');
  clearErrors($('page-reset'));
  setResetMode('checking');
  $('reset-target').textContent = t('app-checking-link');
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
  const until = new Date(Number(r.expiresAt) * 1000).toLocaleString(document.documentElement.lang || undefined);
  $('reset-target').replaceChildren(...tParts('app-reset-for', { email: el('strong', null, r.email), until }));
  setResetMode('ready');
}

export async function submitReset() {
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

export function finishReset(email) {
  state.doneEmail = email || '';
  if (email && email === state.signedInEmail) state.signedInEmail = null; // its sessions ended
  clearPasswords('page-reset');
  clearPasswords('page-code');
  show('page-done');
}
