// Plan & fly (operators): pick cells on the map, set drones/camera/GSD, see the routes, sorties, flight time and
// uncovered cells, upload, then arm/take off/start/pause/resume/RTL/land per drone or all, each confirmed in a
// dialog, with each autopilot's answer shown.

import { api } from './api.js';
import { confirmDialog, el, errorText, toast } from './app.js';
import { t } from './i18n.js';
import { createFleetLayer, createMap, drawDistrict, escapeHtml } from './map.js';

const ROUTE_COLOURS = ['#f3a712', '#29bf12', '#00a6fb', '#ff5d8f'];
const COMMANDS = ['arm', 'takeoff', 'start', 'pause', 'resume', 'rtl', 'land'];

function duration(seconds) {
  const m = Math.round(seconds / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m} min`;
}

/** Mounts the planner. */
export function mount(root, session) {
  const mapEl = el('div', { class: 'map', id: 'plan-map' });
  const side = el('aside', { class: 'side plan-side' });
  root.append(el('div', { class: 'split' }, [mapEl, side]));
  const view = createMap(mapEl, session);
  const fleet = createFleetLayer(view);
  const routeLayer = L.layerGroup().addTo(view.map);
  const selected = new Set();
  let district = null;
  let drawn = null;
  let plan = null;

  const cellList = el('p', { id: 'plan-cells', text: t('plan.none_selected') });
  const droneBox = el('div', { id: 'plan-drones', class: 'checks' });
  const camera = el('select', { id: 'plan-camera' }, [el('option', { value: '', text: t('plan.camera_default') })]);
  const gsd = el('input', { id: 'plan-gsd', type: 'number', min: '0.1', max: '50', step: '0.1', value: '2' });
  const planButton = el('button', { id: 'plan-submit', type: 'button', text: t('plan.submit') });
  const summary = el('div', { id: 'plan-summary', class: 'summary' });
  const uploadButton = el('button', { id: 'plan-upload', type: 'button', text: t('plan.upload'), hidden: '' });
  const answers = el('ul', { id: 'fly-answers', class: 'answers' });
  const target = el('select', { id: 'fly-target' }, [el('option', { value: '', text: t('fly.all') })]);
  const altitude = el('input', { id: 'fly-altitude', type: 'number', min: '2', max: '500', value: '30' });
  const progress = el('div', { id: 'mission-progress' });
  const commandButtons = COMMANDS.map((c) =>
    el('button', { type: 'button', id: `cmd-${c}`, class: c === 'land' || c === 'rtl' ? 'warn' : '', text: t(`cmd.${c}`), onclick: () => send(c) }),
  );

  side.append(
    el('h2', { text: t('plan.cells') }),
    el('p', { class: 'hint', text: t('plan.cells_hint') }),
    cellList,
    el('h2', { text: t('plan.drones') }),
    droneBox,
    el('label', {}, [el('span', { text: t('plan.camera') }), camera]),
    el('label', {}, [el('span', { text: t('plan.gsd') }), gsd]),
    planButton,
    summary,
    uploadButton,
    el('h2', { text: t('fly.title') }),
    el('label', {}, [el('span', { text: t('fly.target') }), target]),
    el('label', {}, [el('span', { text: t('fly.altitude') }), altitude]),
    el('div', { class: 'buttons' }, commandButtons),
    progress,
    el('h3', { text: t('fly.answers') }),
    answers,
  );

  const showCells = () => {
    cellList.textContent = selected.size ? [...selected].sort().join(', ') : t('plan.none_selected');
    for (const [id, polygon] of drawn.cells) {
      polygon.setStyle({ weight: selected.has(id) ? 4 : 1, color: selected.has(id) ? '#06f' : '#223' });
      polygon.getElement()?.classList.toggle('selected', selected.has(id));
    }
  };
  const showAnswers = (outcomes) => {
    answers.replaceChildren(
      ...outcomes.map((o) =>
        el('li', { class: o.accepted ? 'ok' : 'refused', 'data-drone-id': o.drone_id, text: `${o.drone_id}: ${t(o.accepted ? 'fly.accepted' : 'fly.refused')} — ${o.message}` }),
      ),
    );
  };
  const showProgress = () => {
    progress.replaceChildren(
      ...[...fleet.missions.values()].map((m) =>
        el('p', { class: `mission-${m.state}`, 'data-drone-id': m.drone_id, text: t('mission.progress', { drone: m.drone_id, state: t(`mission.${m.state}`), reached: m.reached_items, total: Math.max(m.route.length - 2, 0) }) }),
      ),
    );
  };
  fleet.onChange(showProgress);

  const drawPlan = () => {
    routeLayer.clearLayers();
    if (!plan || !district) return;
    plan.routes.forEach((route, i) => {
      for (const sortie of route.sorties) {
        L.polyline(sortie.waypoints.map(view.toDisplay), { color: ROUTE_COLOURS[i % ROUTE_COLOURS.length], weight: 3, className: 'plan-route' }).addTo(routeLayer);
      }
    });
    for (const id of plan.uncovered_cell_ids) {
      const cell = district.cells.find((c) => c.id === id);
      if (cell) L.polygon(cell.polygon.map(view.toDisplay), { color: '#c00', weight: 3, fill: false, dashArray: '2 6' }).addTo(routeLayer);
    }
  };
  view.renderers.push(drawPlan);

  planButton.addEventListener('click', async () => {
    const drone_ids = [...droneBox.querySelectorAll('input:checked')].map((i) => i.value);
    try {
      plan = await api('POST', '/missions/plan', {
        cell_ids: [...selected],
        drone_ids,
        camera_id: camera.value || null,
        gsd_cm_per_px: Number(gsd.value),
      });
    } catch (e) {
      toast(errorText(e), 'error');
      return;
    }
    summary.innerHTML = '';
    summary.append(el('p', { text: t('plan.summary', { id: plan.plan_id, alt: plan.altitude_rel_m.toFixed(0), time: duration(plan.total_flight_time_s) }) }));
    for (const route of plan.routes) {
      const km = route.sorties.reduce((a, s) => a + s.distance_m, 0) / 1000;
      const time = route.sorties.reduce((a, s) => a + s.flight_time_s, 0);
      summary.append(el('p', { text: t('plan.route', { drone: route.drone_id, sorties: route.sorties.length, distance: km.toFixed(1), time: duration(time) }) }));
    }
    summary.append(el('p', { class: plan.uncovered_cell_ids.length ? 'warn-text' : '', text: plan.uncovered_cell_ids.length ? t('plan.uncovered', { cells: plan.uncovered_cell_ids.join(', ') }) : t('plan.all_covered') }));
    uploadButton.hidden = false;
    drawPlan();
  });

  uploadButton.addEventListener('click', async () => {
    if (!plan) return;
    if (!(await confirmDialog(t('fly.confirm', { command: t('plan.upload'), target: plan.routes.map((r) => r.drone_id).join(', ') })))) return;
    try {
      showAnswers(await api('POST', `/missions/${encodeURIComponent(plan.plan_id)}/upload`));
    } catch (e) {
      toast(errorText(e), 'error');
    }
  });

  async function send(command) {
    const drone_ids = target.value ? [target.value] : [];
    const targetName = target.value ? escapeHtml(target.value) : t('fly.all');
    if (!(await confirmDialog(t('fly.confirm', { command: t(`cmd.${command}`), target: targetName })))) return;
    const body = { command, drone_ids };
    if (command === 'takeoff') body.altitude_rel_m = Number(altitude.value);
    try {
      showAnswers(await api('POST', '/commands', body));
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  Promise.all([api('GET', '/district'), api('GET', '/fleet'), api('GET', '/missions')])
    .then(([d, snapshot, missions]) => {
      district = d;
      drawn = drawDistrict(view, district, (cell) => {
        if (selected.has(cell.id)) selected.delete(cell.id);
        else selected.add(cell.id);
        showCells();
      });
      view.renderers.push(showCells);
      drawn.fit();
      for (const c of district.cameras) camera.append(el('option', { value: c.id, text: c.name }));
      for (const drone of snapshot.drones) {
        const box = el('input', { type: 'checkbox', value: drone.id });
        box.checked = drone.link !== 'lost';
        droneBox.append(el('label', { class: 'check' }, [box, el('span', { text: `${drone.name} (${drone.id})` })]));
        target.append(el('option', { value: drone.id, text: `${drone.name} (${drone.id})` }));
      }
      fleet.setSnapshot(snapshot);
      fleet.setMissions(missions);
    })
    .catch((e) => toast(errorText(e), 'error'));

  const onLive = (event) => fleet.update(event.detail);
  window.addEventListener('patrol:live', onLive);
  return () => {
    window.removeEventListener('patrol:live', onLive);
    view.map.remove();
  };
}
