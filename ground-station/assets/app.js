// The page shell: language, login, navigation between pages, the live socket and shared helpers.

import { api, ApiError, openLive, setCsrf } from './api.js';
import { LANGUAGES, language, loadLanguage, pickLanguage, t, translate } from './i18n.js';
import * as mapPage from './map.js';
import * as planPage from './plan.js';
import * as reviewPage from './review.js';
import * as incidentsPage from './incidents.js';

const PAGES = {
  map: { module: mapPage, role: 'viewer' },
  plan: { module: planPage, role: 'operator' },
  review: { module: reviewPage, role: 'reviewer' },
  incidents: { module: incidentsPage, role: 'viewer' },
};
const RANK = { viewer: 0, reviewer: 1, operator: 2, admin: 3 };

const view = document.getElementById('view');
const top = document.getElementById('top');
let session = null;
let unmount = null;
let closeLive = null;

/** Whether the logged-in role includes `role`. */
export function allowed(role) {
  return session !== null && RANK[session.role] >= RANK[role];
}

/** Shows a short message at the bottom of the screen. */
export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = `show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.className = ''), 4000);
}

/** Asks for confirmation in a modal dialog; resolves true on Confirm. */
export function confirmDialog(text) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}

/** A readable message for an error from `api`. */
export function errorText(error) {
  if (error instanceof ApiError) return t('error.api', { status: error.status, message: error.message });
  return String(error);
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}
export { el };

/** Station alarms by name (latest state of each): a banner under the header on every page while one is raised. */
const alarms = new Map();

function renderAlarms() {
  const banner = document.getElementById('alarms');
  const active = session ? [...alarms.values()].filter((alarm) => alarm.active) : [];
  banner.hidden = active.length === 0;
  banner.replaceChildren(...active.map((alarm) => el('p', { class: 'alarm', 'data-alarm': alarm.alarm }, [
    el('strong', { text: t(`alarm.${alarm.alarm}`) }),
    ' ',
    el('span', { class: 'detail', text: alarm.message }),
  ])));
}

/** Reloads the raised alarms from the fleet snapshot (at login and when the live feed asks for a resync). */
function loadAlarms() {
  api('GET', '/fleet')
    .then((snapshot) => {
      alarms.clear();
      for (const alarm of snapshot.alarms) alarms.set(alarm.alarm, alarm);
      renderAlarms();
    })
    .catch(() => {}); // the live feed's reconnect brings them later
}

window.addEventListener('patrol:live', (event) => {
  const update = event.detail;
  if (update.type === 'alarm') {
    alarms.set(update.alarm, update);
    renderAlarms();
  } else if (update.type === 'resync') {
    loadAlarms();
  }
});

function showLogin(message) {
  if (unmount) unmount();
  unmount = null;
  if (closeLive) closeLive();
  closeLive = null;
  session = null;
  renderAlarms();
  top.hidden = true;
  view.replaceChildren();
  const error = el('p', { class: 'error', id: 'login-error', text: message || '' });
  const form = el('form', { class: 'login', id: 'login-form' }, [
    el('h1', { text: t('app.title') }),
    el('label', {}, [el('span', { text: t('login.username') }), el('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: '' })]),
    el('label', {}, [el('span', { text: t('login.password') }), el('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: '' })]),
    el('button', { type: 'submit', id: 'login-submit', text: t('login.submit') }),
    error,
  ]);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const info = await api('POST', '/login', {
        username: form.username.value.trim(),
        password: form.password.value,
      });
      start(info);
    } catch (e) {
      error.textContent = e instanceof ApiError && e.status === 401 ? t('login.failed') : errorText(e);
    }
  });
  view.append(form);
  form.username.focus();
}

function start(info) {
  session = info;
  setCsrf(info.csrf_token);
  top.hidden = false;
  document.getElementById('whoami').textContent = `${info.username} (${t(`role.${info.role}`)})`;
  document.querySelectorAll('#nav a').forEach((a) => {
    a.hidden = a.dataset.role ? !allowed(a.dataset.role) : false;
  });
  const status = document.getElementById('live-status');
  if (closeLive) closeLive();
  closeLive = openLive((state) => {
    status.dataset.state = state;
    status.textContent = t(state === 'open' ? 'live.open' : 'live.closed');
    // Alarms raised while the socket was down arrive with the snapshot.
    if (state === 'open') loadAlarms();
  });
  route();
}

function route() {
  if (!session) return;
  const name = (location.hash.replace(/^#\//, '') || 'map').split('?')[0];
  const page = PAGES[name] && allowed(PAGES[name].role) ? name : 'map';
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === page));
  if (unmount) unmount();
  view.replaceChildren();
  view.dataset.page = page;
  unmount = PAGES[page].module.mount(view, session);
}

async function boot() {
  await loadLanguage(pickLanguage());
  translate(document);
  const langSwitch = document.getElementById('lang-switch');
  langSwitch.value = language();
  langSwitch.addEventListener('change', async () => {
    if (!LANGUAGES.includes(langSwitch.value)) return;
    await loadLanguage(langSwitch.value);
    translate(document);
    if (session) start(session);
    else showLogin();
  });
  document.getElementById('logout').addEventListener('click', async () => {
    try {
      await api('POST', '/logout');
    } finally {
      showLogin();
    }
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('patrol:unauthenticated', () => showLogin(t('login.expired')));
  try {
    start(await api('GET', '/session'));
  } catch {
    showLogin();
  }
}

boot();
