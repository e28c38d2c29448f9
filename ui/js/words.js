// The window's words: every `app-…` message of the Fluent files, in the window's language,
// from the shell (window_words). The shell fills in the product's name and leaves each other
// variable as {name}; t() fills those. Elements in the page name their message with
// data-t (their text) and data-t-aria-label; a data-slot child keeps its place in the text.

let words = {};
export const language = { now: 'en', system: 'en', choices: [] };

// Message `id` with `vars` filled in: text, or (asNodes) text and the nodes given as vars.
export function t(id, vars = {}) {
  return tParts(id, vars).map((p) => (typeof p === 'string' ? p : p.textContent)).join('');
}

export function tParts(id, vars = {}) {
  const text = words[id] ?? id;
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\{(\w+)\}/g)) {
    if (!(m[1] in vars)) continue;
    parts.push(text.slice(last, m.index));
    const v = vars[m[1]];
    parts.push(v instanceof Node ? v : String(v ?? ''));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts.filter((p) => p !== '');
}

// Writes every element under `root` that names its words.
export function applyWords(root = document) {
  root.querySelectorAll('[data-t]').forEach((node) => {
    const slots = {};
    node.querySelectorAll('[data-slot]').forEach((s) => { slots[s.dataset.slot] = s; });
    if (Object.keys(slots).length) node.replaceChildren(...tParts(node.dataset.t, slots));
    else node.textContent = t(node.dataset.t);
  });
  root.querySelectorAll('[data-t-aria-label]').forEach((node) => {
    node.setAttribute('aria-label', t(node.dataset.tAriaLabel));
  });
  root.querySelectorAll('.pw-toggle').forEach(wordToggle);
}

// A show/hide button's words, as it stands (aria-pressed: the password is shown).
export function wordToggle(button) {
  const shown = button.getAttribute('aria-pressed') === 'true';
  button.setAttribute('aria-label', t(shown ? 'app-hide-password' : 'app-show-password'));
  button.textContent = t(shown ? 'app-hide' : 'app-show');
}

// Takes the shell's answer (window_words, set_app_language) as the window's words.
export function useWords(answer) {
  words = answer.words || {};
  language.now = answer.lang || 'en';
  language.system = answer.system || language.now;
  language.choices = Array.isArray(answer.languages) ? answer.languages : [];
  document.documentElement.lang = language.now;
  applyWords();
}

// A language's name in itself ("Deutsch"), for the choices.
export function languageName(tag) {
  const choice = language.choices.find((c) => c.tag.toLowerCase() === String(tag).toLowerCase());
  return choice ? choice.name : tag;
}
