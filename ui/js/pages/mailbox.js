// The local mailbox: where mail goes when no mail server is set up.

import { call } from '../transport.js';
import { t } from '../words.js';
import { $, el, poll, setAlert, show, state, whenShown } from '../ui.js';

whenShown('page-mailbox', () => { state.mailboxKey = ''; return poll(refreshMailbox); });

// Numbers are unix seconds (milliseconds if that large); strings are parsed; else shown as is.
export function formatDate(d) {
  if (d == null || d === '') return '';
  const n = Number(d);
  const date = Number.isFinite(n) ? new Date(n < 1e12 ? n * 1000 : n) : new Date(d);
  return Number.isNaN(date.getTime()) ? String(d) : date.toLocaleString(document.documentElement.lang || undefined);
}

export function openMailbox() {
  state.mailboxReturn = state.page || 'page-signin';
  show('page-mailbox');
}

export async function refreshMailbox() {
  const list = await call('mailbox_list');
  const key = JSON.stringify(list);
  if (state.page !== 'page-mailbox' || key === state.mailboxKey) return;
  state.mailboxKey = key;
  renderMailboxList(Array.isArray(list) ? list : []);
}

export function renderMailboxList(list) {
  const ul = $('mailbox-list');
  const active = document.activeElement;
  const focusedId = active && active.classList.contains('mailbox-item') ? active.dataset.id : null;
  if (!list.length) { ul.replaceChildren(el('li', 'mailbox-empty', t('app-mailbox-empty'))); return; }
  ul.replaceChildren(...list.map((m) => {
    const button = el('button', 'mailbox-item', el('span', 'mailbox-subject', m.subject || t('app-mailbox-no-subject')),
                      el('span', 'mailbox-meta', t('app-mailbox-to-date', { to: m.to, date: formatDate(m.date) })));
    button.type = 'button';
    button.dataset.id = String(m.id);
    state.mailboxIds.set(String(m.id), m.id);
    return el('li', null, button);
  }));
  markOpenMessage();
  // The redraw replaced the focused button; focus its replacement.
  const again = focusedId && [...ul.querySelectorAll('.mailbox-item')].find((b) => b.dataset.id === focusedId);
  if (again) again.focus();
}

export function markOpenMessage() {
  document.querySelectorAll('.mailbox-item').forEach((b) => {
    if (b.dataset.id === String(state.mailboxOpenId)) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  });
}

export async function openMessage(id) {
  setAlert('');
  let m;
  try { m = await call('mailbox_open', { id }); } catch (err) { setAlert(err.message); return; }
  state.mailboxOpenId = m.id;
  markOpenMessage();
  renderMessage(m);
  $('mailbox-message-subject').focus();
}

export function renderMessage(m) {
  const subject = el('h2', null, m.subject || t('app-mailbox-no-subject'));
  subject.id = 'mailbox-message-subject';
  subject.tabIndex = -1;
  const meta = el('dl', null, el('dt', null, t('app-mailbox-to')), el('dd', null, m.to || ''),
                  el('dt', null, t('app-mailbox-date')), el('dd', null, formatDate(m.date)));
  const links = (m.links || []).map((link) => {
    const url = String(link.url || '');
    const a = el('a', 'mailbox-link');
    if (url.startsWith('rekey://')) {
      // Only Rekey links act, and only through the shell (see guardLinks).
      a.href = url;
      a.dataset.url = url;
      a.textContent = link.label || t('app-mailbox-open-in');
    } else {
      // Other links are shown, not followed: this window is not a browser.
      a.textContent = link.label && link.label !== url ? `${link.label}: ${url}` : url;
    }
    return el('li', null, a);
  });
  const box = $('mailbox-message');
  box.hidden = false;
  box.replaceChildren(subject, meta, el('pre', null, m.text || ''),
                      links.length ? el('ul', 'mailbox-links', ...links) : null);
}

// Nothing may navigate this window; a Rekey link is handed to the shell, which answers
// with a reset-link, verify-link (or link-rejected) event.
export async function guardLinks(ev) {
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a) return;
  ev.preventDefault();
  if (!a.dataset.url || !a.dataset.url.startsWith('rekey://')) return;
  setAlert('');
  try { await call('open_link', { url: a.dataset.url }); } catch (err) { setAlert(err.message); }
}
