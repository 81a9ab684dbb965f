// UI strings: one JSON file per language under /assets/i18n/. Identifiers and logs stay English.

export const LANGUAGES = ['zh-CN', 'en'];
const STORAGE_KEY = 'patrol.lang';
let strings = {};
let current = 'en';

/** The saved choice, else the first browser language we have, else English. */
export function pickLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (LANGUAGES.includes(saved)) return saved;
  for (const wanted of navigator.languages || [navigator.language]) {
    const lower = (wanted || '').toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

/** Loads a language's strings and makes it current. */
export async function loadLanguage(lang) {
  const response = await fetch(`/assets/i18n/${lang}.json`);
  strings = await response.json();
  current = lang;
  document.documentElement.lang = lang;
  localStorage.setItem(STORAGE_KEY, lang);
}

/** The current language code. */
export function language() {
  return current;
}

/** The string for `key`, with `{name}` placeholders filled from `vars`; the key itself when missing. */
export function t(key, vars = {}) {
  const text = strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Fills `data-i18n` (text), `data-i18n-placeholder` and `data-i18n-title` attributes under `root`. */
export function translate(root) {
  root.querySelectorAll('[data-i18n]').forEach((el) => (el.textContent = t(el.dataset.i18n)));
  root.querySelectorAll('[data-i18n-placeholder]').forEach((el) => (el.placeholder = t(el.dataset.i18nPlaceholder)));
  root.querySelectorAll('[data-i18n-title]').forEach((el) => (el.title = t(el.dataset.i18nTitle)));
}

/** A date-time in the current language. */
export function formatTime(unixMs) {
  if (unixMs == null) return '—';
  return new Date(unixMs).toLocaleString(current, { hour12: false });
}
