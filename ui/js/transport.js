// Talking to the shell: the one place for calls. Every command goes through `call`, and
// every refusal comes back as {code, message} in words fit to show.

import { t } from './words.js';

// Rust rejects with {code, message}. Anything else (a string, a JS error) is not fit to
// show a person, so it becomes the generic message.
export function normalise(err) {
  if (err && typeof err === 'object' && !(err instanceof Error) &&
      typeof err.message === 'string' && err.message.trim()) {
    return { code: typeof err.code === 'string' ? err.code : 'unknown', message: err.message };
  }
  if (err instanceof Error) console.error(err);
  return { code: 'unknown', message: t('app-something-wrong') };
}

export async function call(name, args) {
  const core = window.__TAURI__ && window.__TAURI__.core;
  if (!core || typeof core.invoke !== 'function') throw { code: 'no_shell', message: t('app-something-wrong') };
  try { return await core.invoke(name, args || {}); } catch (err) { throw normalise(err); }
}
