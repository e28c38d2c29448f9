// Settings: this computer's own accounts, or an organisation's server; and what the app
// shows of where it is (the footer, the product's name).

import { call } from '../transport.js';
import { language, t, useWords } from '../words.js';
import { $, el, fieldError, setAlert, show, showSignin, state, validate } from '../ui.js';

export async function openSettings() {
  state.settingsReturn = state.page || 'page-signin';
  $('settings-result').textContent = '';
  $('settings-error').textContent = '';
  show('page-settings');
  showLanguages();
  const s = await call('settings');
  state.settingsPlace = s.place;
  showPlace();
  $('settings-url').value = s.serverUrl || '';
  $('settings-ca').value = s.serverCaFile || '';
  $('settings-local').hidden = s.place.mode !== 'server';
}

export function serverArgs() {
  return { url: $('settings-url').value.trim(), caFile: $('settings-ca').value.trim() || null };
}

export async function testServer() {
  $('settings-result').textContent = '';
  $('settings-error').textContent = '';
  const args = serverArgs();
  if (!args.url) { fieldError('settings-url', t('app-settings-enter-url')); return; }
  $('settings-result').textContent = t('app-settings-trying');
  try {
    const info = await call('server_test', args);
    $('settings-result').textContent = t('app-settings-answers', { version: info.version });
  } catch (err) {
    $('settings-result').textContent = '';
    $('settings-error').textContent = err.message;
  }
}

export async function connectServer() {
  const args = serverArgs();
  if (!validate([['settings-url', args.url ? null : t('app-settings-enter-url')]])) return;
  const place = await call('server_connect', args);
  await refreshInfo();
  state.signedInEmail = null;
  showSignin({ status: t('app-settings-connected', { url: place.url }) });
}

export async function useLocal() {
  $('settings-error').textContent = '';
  try {
    await call('server_disconnect');
  } catch (err) { $('settings-error').textContent = err.message; return; }
  await refreshInfo();
  state.signedInEmail = null;
  showSignin({ status: t('app-settings-local-again') });
}

export async function refreshInfo() {
  try { applyInfo(await call('app_info')); } catch (err) { setAlert(err.message); }
}

// Where the accounts live, in the settings page's words.
function showPlace() {
  const place = state.settingsPlace;
  if (!place) return;
  $('settings-place').textContent = place.mode === 'server'
    ? t('app-settings-on-server', { url: place.url })
    : t('app-settings-on-computer');
}

// The window's language: the system's, or one of those there are words for.
function showLanguages() {
  const select = $('settings-language');
  const system = language.choices.find((c) => c.tag === language.system);
  const options = [['', t('app-language-system', { language: system ? system.name : language.system })],
                   ...language.choices.map((c) => [c.tag, c.name])];
  select.replaceChildren(...options.map(([tag, name]) => {
    const o = el('option', null, name);
    o.value = tag;
    return o;
  }));
  select.value = state.appLanguage || '';
}

// Switches the window's language at once, and keeps it for the next start.
export async function chooseLanguage() {
  $('settings-error').textContent = '';
  const chosen = $('settings-language').value || null;
  let answer;
  try { answer = await call('set_app_language', { language: chosen }); } catch (err) {
    $('settings-error').textContent = err.message;
    return;
  }
  state.appLanguage = chosen || '';
  useWords(answer);
  showLanguages();
  showPlace();
  $('settings-language').focus();
  await refreshInfo();
}

export function applyInfo(info) {
  if (Number(info.minLength) > 0) state.minLength = Number(info.minLength);
  // The operator's name for the product, wherever the page says it.
  const product = info.productName || 'Rekey';
  document.title = product;
  for (const el of document.querySelectorAll('.product-name')) el.textContent = product;
  const mailbox = info.mail && info.mail.mode === 'mailbox';
  $('check-open-mailbox').hidden = !mailbox;
  $('code-open-mailbox').hidden = !mailbox;
  state.appLanguage = info.appLanguage || '';
  if (info.place && info.place.mode === 'server') {
    $('app-footer').textContent = t('app-footer-server', { version: info.version || '', url: info.place.url });
  } else {
    const where = mailbox ? t('app-footer-mailbox') : (info.mail && info.mail.where) || t('app-footer-mail-server');
    $('app-footer').textContent = t('app-footer-local', { version: info.version || '', where });
  }
}
