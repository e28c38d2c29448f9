// Password fields: show/hide, and the strength meter under a new password.

import { call } from './transport.js';
import { $, el, setText, state } from './ui.js';
import { t, wordToggle } from './words.js';

export function setRevealed(button, revealed) {
  $(button.dataset.for).type = revealed ? 'text' : 'password';
  button.setAttribute('aria-pressed', String(revealed));
  wordToggle(button);
}

export const meters = {}; // input id -> strength widget

// The address the strength check treats as context (it penalises look-alikes).
export const strengthEmail = {
  'register-password': () => $('register-email').value.trim() || null,
  'code-password': () => $('code-email').value.trim() || null,
  'reset-password': () => state.resetEmail,
  'change-new': () => state.signedInEmail,
};

export function setupStrength(box) {
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
export function scheduleStrength(w) {
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

export function renderStrength(w, result) {
  w.box.hidden = !result;
  const score = result ? Math.max(0, Math.min(4, Number(result.score) || 0)) : null;
  w.meter.dataset.score = score == null ? '' : String(score);
  setText(w.word, result ? t('app-strength', { word: t(`app-strength-${score}`) }) : '');
  setText(w.problem, result && result.problem);
  const tips = result && Array.isArray(result.suggestions) ? result.suggestions : [];
  w.tips.replaceChildren(...tips.map((tip) => el('li', null, tip)));
}

// Empties a page's password fields, masks them again and resets their meters.
export function clearPasswords(pageId) {
  const root = $(pageId);
  root.querySelectorAll('.pw-toggle').forEach((b) => setRevealed(b, false));
  root.querySelectorAll('input[type="password"]').forEach((input) => {
    input.value = '';
    const w = meters[input.id];
    if (w) { clearTimeout(w.timer); w.seq++; renderStrength(w, null); }
  });
}
