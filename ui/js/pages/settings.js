// Settings: this computer's own accounts, or an organisation's server; and what the app
// shows of where it is (the footer, the product's name).

import { call } from '../transport.js';
import { $, el, fieldError, setAlert, show, showSignin, state, validate } from '../ui.js';

export function placeWords(place) {
  return place && place.mode === 'server' ? `Connected to ${place.url}` : 'This computer';
}

export async function openSettings() {
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

export function serverArgs() {
  return { url: $('settings-url').value.trim(), caFile: $('settings-ca').value.trim() || null };
}

export async function testServer() {
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

export async function connectServer() {
  const args = serverArgs();
  if (!validate([['settings-url', args.url ? null : 'Enter the server\'s address, like https://rekey.example.com.']])) return;
  const place = await call('server_connect', args);
  await refreshInfo();
  state.signedInEmail = null;
  showSignin({ status: `${placeWords(place)}. Sign in with your account on that server.` });
}

export async function useLocal() {
  $('settings-error').textContent = '';
  try {
    await call('server_disconnect');
  } catch (err) { $('settings-error').textContent = err.message; return; }
  await refreshInfo();
  state.signedInEmail = null;
  showSignin({ status: 'Accounts live on this computer again.' });
}

export async function refreshInfo() {
  try { applyInfo(await call('app_info')); } catch (err) { setAlert(err.message); }
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
  if (info.place && info.place.mode === 'server') {
    $('app-footer').textContent = `${product} ${info.version || ''} · Connected to ${info.place.url}`;
  } else {
    const where = mailbox ? 'local mailbox' : (info.mail && info.mail.where) || 'mail server';
    $('app-footer').textContent = `${product} ${info.version || ''} · This computer · Mail: ${where}`;
  }
}
