// Forgot: ask for a reset, check your mail (send again), and the typed code.

import { finishReset } from './reset.js';
import { call } from '../transport.js';
import { t } from '../words.js';
import { $, codeProblem, confirmProblem, el, emailProblem, formatCode, newPasswordProblem, normaliseCode, poll, setAlert, setStatus, setText, show, state, validate, whenShown } from '../ui.js';

whenShown('page-check', () => poll(refreshMailStatus));

export async function submitForgot() {
  const email = $('forgot-email').value.trim();
  if (!validate([['forgot-email', emailProblem(email)]])) return;
  const r = await call('request_reset', { email });
  state.forgotEmail = email;
  $('check-email').textContent = email;
  $('code-email').value = email;
  startCountdown(r && r.resendAfterSecs);
  show('page-check');
}

export const countdown = { until: 0, timer: null, sending: false };

export function startCountdown(secs) {
  clearInterval(countdown.timer);
  countdown.until = Date.now() + Math.max(0, Number(secs) || 0) * 1000;
  tickCountdown();
  countdown.timer = setInterval(tickCountdown, 1000);
}

export function tickCountdown() {
  const left = Math.ceil((countdown.until - Date.now()) / 1000);
  if (left <= 0) clearInterval(countdown.timer);
  $('check-resend').disabled = left > 0 || countdown.sending;
  setText($('check-resend'), left > 0 ? t('app-send-again-in', { seconds: left }) : t('app-send-again'));
}

export async function resend() {
  if (countdown.sending) return;
  countdown.sending = true;
  $('check-title').focus(); // the button is about to be disabled; keep focus in the page
  $('check-resend').disabled = true;
  setStatus('');
  setAlert('');
  let secs = 0;
  try {
    secs = (await call('request_reset', { email: state.forgotEmail }) || {}).resendAfterSecs;
    setStatus(t('app-sent-again', { email: state.forgotEmail }));
  } catch (err) {
    setAlert(err.message);
  }
  countdown.sending = false;
  startCountdown(secs);
}

export async function refreshMailStatus() {
  const s = await call('mail_status');
  if (state.page !== 'page-check' || !s) return;
  const lines = [[null, s.mode === 'mailbox' ? t('app-mail-to-mailbox')
                     : s.mode === 'server' ? t('app-mail-from-server', { where: s.where })
                     : t('app-mail-through', { where: s.where })]];
  // A stuck queue is how a person learns the mail will not arrive soon.
  if (s.lastError && s.depth > 0) lines.push(['warn', t('app-mail-waiting', { problem: s.lastError })]);
  if (s.dead > 0) lines.push(['bad', t('app-mail-undelivered', { count: s.dead })]);
  const box = $('check-mail-status');
  const key = JSON.stringify(lines);
  if (box.dataset.key === key) return; // unchanged: do not announce it again
  box.dataset.key = key;
  box.replaceChildren(...lines.map(([cls, text]) => el('p', cls, text)));
}

/* ---------- Typed code ---------- */

export async function submitCode() {
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
