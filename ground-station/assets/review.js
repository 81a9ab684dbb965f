// The review queue (reviewers): one hazard at a time, most severe and oldest first, claimed under a lease so no
// two reviewers see the same item. Keys: Y confirm, N reject, S skip, U undo; the note is optional.

import { api } from './api.js';
import { el, errorText, toast } from './app.js';
import { formatTime, t } from './i18n.js';
import { createMap, escapeHtml } from './map.js';

/** Mounts the review page. */
export function mount(root, session) {
  const imageBox = el('div', { class: 'evidence', id: 'rq-image' });
  const crop = el('img', { id: 'rq-crop', class: 'crop', alt: t('rq.crop') });
  const frames = el('div', { id: 'rq-frames', class: 'frames' });
  const details = el('dl', { id: 'rq-details', class: 'details' });
  const mini = el('div', { id: 'rq-minimap', class: 'minimap' });
  const note = el('textarea', { id: 'rq-note', rows: '2', maxlength: '2000', placeholder: t('rq.note') });
  const status = el('p', { id: 'rq-status', class: 'hint' });
  const buttons = ['confirm', 'reject', 'skip', 'undo'].map((v) =>
    el('button', { type: 'button', id: `rq-${v}`, class: v, text: t(`rq.${v}`), onclick: () => (v === 'undo' ? undo() : decide(v)) }),
  );
  const empty = el('p', { id: 'rq-empty', class: 'empty', text: t('rq.empty'), hidden: '' });
  const panel = el('div', { class: 'review', id: 'rq-panel' }, [
    el('div', { class: 'review-main' }, [imageBox, el('h3', { text: t('rq.frames') }), frames]),
    el('aside', { class: 'review-side' }, [
      el('h2', { text: t('rq.title') }),
      status,
      el('h3', { text: t('rq.crop') }),
      crop,
      details,
      mini,
      note,
      el('div', { class: 'buttons' }, buttons),
      el('p', { class: 'hint', text: t('rq.keys') }),
    ]),
  ]);
  root.append(empty, panel);
  const view = createMap(mini, session);
  const marker = L.circleMarker([0, 0], { radius: 9, color: '#fff', weight: 3, fillColor: '#e4572e', fillOpacity: 0.9 });
  let item = null;
  let busy = false;

  const showFrame = (frame) => {
    const img = el('img', { src: `/api/evidence/${encodeURIComponent(frame.image_id)}`, alt: item.hazard.label });
    imageBox.replaceChildren(img);
    for (const b of frame.boxes) {
      const box = el('div', { class: 'box' }, [el('span', { text: `${b.label} ${(b.confidence * 100).toFixed(0)}%` })]);
      box.style.left = `${b.x * 100}%`;
      box.style.top = `${b.y * 100}%`;
      box.style.width = `${b.width * 100}%`;
      box.style.height = `${b.height * 100}%`;
      imageBox.append(box);
    }
    if (frame.crop_id) {
      crop.src = `/api/evidence/${encodeURIComponent(frame.crop_id)}`;
      crop.hidden = false;
    } else crop.hidden = true;
  };

  const show = (next) => {
    item = next;
    note.value = '';
    if (!item) {
      panel.hidden = true;
      empty.hidden = false;
      return;
    }
    panel.hidden = false;
    empty.hidden = true;
    const h = item.hazard;
    panel.dataset.hazardId = h.id;
    status.textContent = `${t('rq.remaining', { n: item.remaining })} · ${t('rq.lease', { time: formatTime(item.lease_expires_unix_ms) })}`;
    const rows = [
      ['hazard.kind', `${t(`kind.${h.kind}`)} (${h.label})`],
      ['hazard.severity', h.severity],
      ['hazard.confidence', `${(h.confidence * 100).toFixed(0)}%`],
      ['hazard.cell', h.grid_cell || '—'],
      ['hazard.address', h.address || '—'],
      ['hazard.drone', h.drone_id],
      ['hazard.time', formatTime(h.first_seen_unix_ms)],
      ['hazard.position', `${h.position.lat_deg.toFixed(6)}, ${h.position.lon_deg.toFixed(6)} ±${h.uncertainty_m.toFixed(0)} m`],
    ];
    details.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: t(k) }), el('dd', { text: v })]));
    if (item.frames.length) showFrame(item.frames[0]);
    else {
      imageBox.replaceChildren(el('p', { class: 'no-image', text: `${t(`kind.${h.kind}`)} · ${escapeHtml(h.label)}` }));
      crop.hidden = true;
    }
    frames.replaceChildren(
      ...item.frames.map((f) => {
        const thumb = el('img', { src: `/api/evidence/${encodeURIComponent(f.image_id)}`, alt: formatTime(f.captured_unix_ms), title: formatTime(f.captured_unix_ms) });
        thumb.addEventListener('click', () => showFrame(f));
        return thumb;
      }),
    );
    marker.setLatLng(view.toDisplay(h.position)).addTo(view.map);
    view.map.setView(view.toDisplay(h.position), 16);
  };

  const claim = async () => {
    try {
      show(await api('POST', '/review/claim'));
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };

  async function decide(verdict) {
    if (!item || busy) return;
    busy = true;
    const id = item.hazard.id;
    try {
      await api('POST', `/review/${encodeURIComponent(id)}/verdict`, { verdict, note: note.value.trim() || null });
      toast(t(`rq.done.${verdict}`, { id }), 'ok');
      await claim();
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      busy = false;
    }
  }

  async function undo() {
    if (busy) return;
    busy = true;
    try {
      const record = await api('POST', '/review/undo');
      toast(record ? t('rq.undone', { id: record.hazard_id }) : t('rq.nothing_to_undo'), record ? 'ok' : 'info');
      await claim();
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      busy = false;
    }
  }

  const onKey = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = document.activeElement && document.activeElement.tagName;
    if (tag === 'TEXTAREA' || tag === 'INPUT' || tag === 'SELECT') return;
    if (document.getElementById('confirm').open) return;
    const key = event.key.toLowerCase();
    const action = { y: 'confirm', n: 'reject', s: 'skip' }[key];
    if (action) decide(action);
    else if (key === 'u') undo();
    else return;
    event.preventDefault();
  };
  document.addEventListener('keydown', onKey);
  claim();
  return () => {
    document.removeEventListener('keydown', onKey);
    view.map.remove();
  };
}
