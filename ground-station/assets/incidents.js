// Incidents (command center): a filterable hazard list with CSV and GeoJSON export of the same filter.

import { api } from './api.js';
import { el, errorText, toast } from './app.js';
import { formatTime, t } from './i18n.js';

const KINDS = ['fire', 'smoke', 'gas', 'illegal_structure'];

function select(id, values, label) {
  return el('select', { id, name: id }, [
    el('option', { value: '', text: t('inc.any') }),
    ...values.map((v) => el('option', { value: v, text: label(v) })),
  ]);
}

/** Mounts the incident list. */
export function mount(root) {
  const kind = select('kind', KINDS, (k) => t(`kind.${k}`));
  const status = select('status', ['open', 'ended'], (s) => t(`status.${s}`));
  const review = select('review', ['pending', 'confirmed', 'rejected'], (r) => t(`review.${r}`));
  const cell = select('grid_cell', [], (c) => c);
  const severity = select('min_severity', ['A', 'B', 'C'], (s) => s);
  const since = el('input', { type: 'datetime-local', id: 'since' });
  const until = el('input', { type: 'datetime-local', id: 'until' });
  const csv = el('a', { id: 'export-csv', class: 'button', download: 'hazards.csv', text: t('inc.csv') });
  const geojson = el('a', { id: 'export-geojson', class: 'button', download: 'hazards.geojson', text: t('inc.geojson') });
  const count = el('p', { id: 'inc-count' });
  const body = el('tbody', { id: 'inc-rows' });
  const form = el('form', { class: 'filters', id: 'inc-filters' }, [
    el('label', {}, [el('span', { text: t('hazard.kind') }), kind]),
    el('label', {}, [el('span', { text: t('hazard.status') }), status]),
    el('label', {}, [el('span', { text: t('hazard.review') }), review]),
    el('label', {}, [el('span', { text: t('hazard.cell') }), cell]),
    el('label', {}, [el('span', { text: t('inc.min_severity') }), severity]),
    el('label', {}, [el('span', { text: t('inc.since') }), since]),
    el('label', {}, [el('span', { text: t('inc.until') }), until]),
    el('button', { type: 'submit', text: t('inc.apply') }),
    csv,
    geojson,
  ]);
  const headings = ['hazard.time', 'hazard.kind', 'hazard.severity', 'hazard.confidence', 'hazard.cell', 'hazard.address', 'hazard.status', 'hazard.review', 'hazard.drone'];
  const table = el('table', { class: 'incidents' }, [el('thead', {}, [el('tr', {}, headings.map((h) => el('th', { text: t(h) })))]), body]);
  root.append(el('div', { class: 'page' }, [el('h1', { text: t('inc.title') }), form, count, table]));

  const query = () => {
    const params = new URLSearchParams();
    for (const [name, input] of [['kind', kind], ['status', status], ['review', review], ['grid_cell', cell], ['min_severity', severity]]) {
      if (input.value) params.set(name, input.value);
    }
    if (since.value) params.set('since_unix_ms', String(new Date(since.value).getTime()));
    if (until.value) params.set('until_unix_ms', String(new Date(until.value).getTime()));
    return params.toString();
  };
  const load = async () => {
    const q = query();
    csv.href = `/api/export/hazards.csv${q ? `?${q}` : ''}`;
    geojson.href = `/api/export/hazards.geojson${q ? `?${q}` : ''}`;
    try {
      const hazards = await api('GET', `/hazards${q ? `?${q}` : ''}`);
      count.textContent = hazards.length ? t('inc.count', { n: hazards.length }) : t('inc.none');
      body.replaceChildren(
        ...hazards.map((h) =>
          el('tr', { class: `sev-${h.severity} review-${h.review}`, 'data-hazard-id': h.id }, [
            el('td', { text: formatTime(h.last_seen_unix_ms) }),
            el('td', { text: t(`kind.${h.kind}`) }),
            el('td', { text: h.severity }),
            el('td', { text: `${(h.confidence * 100).toFixed(0)}%` }),
            el('td', { text: h.grid_cell || '—' }),
            el('td', { text: h.address || '—' }),
            el('td', { text: t(`status.${h.status}`) }),
            el('td', { text: t(`review.${h.review}`) }),
            el('td', { text: h.drone_id }),
          ]),
        ),
      );
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  api('GET', '/district')
    .then((d) => d.cells.forEach((c) => cell.append(el('option', { value: c.id, text: `${c.id} · ${c.name}` }))))
    .catch((e) => toast(errorText(e), 'error'));
  load();
  const onLive = (event) => {
    if (event.detail.type === 'hazard') load();
  };
  window.addEventListener('patrol:live', onLive);
  return () => window.removeEventListener('patrol:live', onLive);
}
