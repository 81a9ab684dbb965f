// The live map page, and the map building blocks the planner and the review page reuse: the district (cells
// coloured by today's coverage, no-fly zones, launch points), the fleet (heading, altitude, battery, mode, link,
// trail, planned route and progress) and hazards by kind and status. Positions arrive in WGS84; with GCJ-02
// tiles they are shifted at display time only.

import { api } from './api.js';
import { el, errorText, toast } from './app.js';
import { wgs84ToGcj02 } from './gcj02.js';
import { formatTime, t } from './i18n.js';

/** A drone whose last message is older than this is drawn stale even if the server has not said so yet. */
const STALE_AFTER_MS = 15000;
const KIND_COLOURS = { fire: '#e4572e', smoke: '#8d99ae', gas: '#9b5de5', illegal_structure: '#277da1' };
const ROUTE_COLOURS = ['#f3a712', '#29bf12', '#00a6fb', '#ff5d8f'];

/** Creates a Leaflet map in `container` with the configured base tiles (or none). */
export function createMap(container, session) {
  const map = L.map(container, { zoomControl: true, attributionControl: true, preferCanvas: false });
  map.attributionControl.setPrefix('Leaflet');
  const settings = session.map || {};
  if (settings.tile_url) {
    L.tileLayer(settings.tile_url, { maxZoom: 20, attribution: settings.tile_attribution || '' }).addTo(map);
  } else {
    container.classList.add('no-tiles');
  }
  const view = { map, gcj: Boolean(settings.tiles_gcj02), renderers: [] };
  view.toDisplay = (p) => (view.gcj ? wgs84ToGcj02(p.lat_deg, p.lon_deg) : [p.lat_deg, p.lon_deg]);
  view.setGcj = (on) => {
    view.gcj = on;
    view.renderers.forEach((render) => render());
  };
  return view;
}

function coverageColour(fraction) {
  const f = Math.max(0, Math.min(1, fraction));
  const hue = Math.round(f * 120);
  return `hsl(${hue}, 70%, 45%)`;
}

/** Draws the district; `onCellClick(cell)` makes cells clickable. Returns { cells: Map(id -> polygon), fit() }. */
export function drawDistrict(view, district, onCellClick) {
  const layer = L.layerGroup().addTo(view.map);
  const result = { cells: new Map(), layer };
  const render = () => {
    layer.clearLayers();
    result.cells.clear();
    for (const cell of district.cells) {
      const polygon = L.polygon(cell.polygon.map(view.toDisplay), {
        color: '#223',
        weight: 1,
        fillColor: coverageColour(cell.coverage_today),
        fillOpacity: 0.35,
        className: 'grid-cell',
      }).addTo(layer);
      polygon.bindTooltip(`${cell.id} · ${cell.name}<br>${t('map.coverage')}: ${Math.round(cell.coverage_today * 100)}%`);
      if (onCellClick) polygon.on('click', () => onCellClick(cell, polygon));
      polygon.on('add', () => polygon.getElement()?.setAttribute('data-cell-id', cell.id));
      polygon.getElement()?.setAttribute('data-cell-id', cell.id);
      result.cells.set(cell.id, polygon);
    }
    for (const zone of district.no_fly_zones) {
      L.polygon(zone.polygon.map(view.toDisplay), { color: '#c00', weight: 2, dashArray: '6 4', fillOpacity: 0.15, className: 'no-fly' })
        .bindTooltip(`${t('map.no_fly')}: ${zone.name}`)
        .addTo(layer);
    }
    for (const point of district.launch_points) {
      L.circleMarker(view.toDisplay(point.position), { radius: 7, color: '#111', fillColor: '#fff', fillOpacity: 1, weight: 2 })
        .bindTooltip(`${t('map.launch')}: ${point.name}`)
        .addTo(layer);
    }
  };
  render();
  view.renderers.push(render);
  result.fit = () => {
    const all = district.cells.flatMap((c) => c.polygon.map(view.toDisplay));
    if (all.length) view.map.fitBounds(L.latLngBounds(all).pad(0.15));
    else view.map.setView([30, 120], 5);
  };
  result.render = render;
  return result;
}

function droneStale(drone, now) {
  return drone.link === 'lost' || drone.last_heard_unix_ms == null || now - drone.last_heard_unix_ms > STALE_AFTER_MS;
}

/** The fleet layer: one marker, trail and route per drone, updated from snapshots and live updates. */
export function createFleetLayer(view) {
  const layer = L.layerGroup().addTo(view.map);
  const drones = new Map();
  const missions = new Map();
  const shapes = new Map();
  const listeners = [];

  const colourOf = (id) => ROUTE_COLOURS[[...drones.keys()].indexOf(id) % ROUTE_COLOURS.length] || ROUTE_COLOURS[0];

  const drawDrone = (drone) => {
    let s = shapes.get(drone.id);
    if (!s) {
      const icon = L.divIcon({
        className: 'drone-icon',
        html: '<div class="drone-arrow"></div><div class="drone-label"></div>',
        iconSize: [30, 30],
        iconAnchor: [15, 15],
      });
      s = {
        marker: L.marker([0, 0], { icon, keyboard: false }),
        trail: L.polyline([], { color: colourOf(drone.id), weight: 2, opacity: 0.7 }),
      };
      shapes.set(drone.id, s);
      s.trail.addTo(layer);
    }
    s.trail.setLatLngs(drone.trail.map(view.toDisplay));
    if (!drone.position) {
      s.marker.remove();
      return;
    }
    s.marker.setLatLng(view.toDisplay(drone.position));
    if (!layer.hasLayer(s.marker)) s.marker.addTo(layer);
    const element = s.marker.getElement();
    if (!element) return;
    element.dataset.droneId = drone.id;
    element.dataset.lat = drone.position.lat_deg.toFixed(7);
    element.dataset.lon = drone.position.lon_deg.toFixed(7);
    element.classList.toggle('stale', droneStale(drone, Date.now()));
    element.classList.toggle('degraded', drone.link === 'degraded');
    element.classList.toggle('armed', drone.armed);
    element.querySelector('.drone-arrow').style.transform = `rotate(${drone.heading_deg}deg)`;
    const battery = drone.battery_percent == null ? '?' : `${Math.round(drone.battery_percent)}%`;
    element.querySelector('.drone-label').textContent =
      `${drone.name} · ${Math.round(drone.altitude_rel_m)} m · ${battery} · ${drone.mode}`;
    s.marker.unbindTooltip();
    s.marker.bindTooltip(droneSummary(drone));
  };

  const drawMission = (mission) => {
    const key = `route:${mission.drone_id}`;
    let s = shapes.get(key);
    if (!s) {
      s = {
        planned: L.polyline([], { color: colourOf(mission.drone_id), weight: 2, dashArray: '6 6', className: 'route-planned' }),
        done: L.polyline([], { color: colourOf(mission.drone_id), weight: 4, className: 'route-done' }),
      };
      s.planned.addTo(layer);
      s.done.addTo(layer);
      shapes.set(key, s);
    }
    const points = mission.route.map(view.toDisplay);
    s.planned.setLatLngs(points);
    s.done.setLatLngs(points.slice(0, mission.reached_items + 1));
  };

  const api_ = {
    drones,
    missions,
    setSnapshot(snapshot) {
      for (const drone of snapshot.drones) drones.set(drone.id, drone);
      api_.render();
    },
    setMissions(list) {
      for (const m of list) missions.set(m.drone_id, m);
      api_.render();
    },
    update(update) {
      if (update.type === 'drone') {
        drones.set(update.id, update);
        drawDrone(update);
      } else if (update.type === 'mission') {
        missions.set(update.drone_id, update);
        drawMission(update);
      } else return;
      listeners.forEach((f) => f());
    },
    onChange(f) {
      listeners.push(f);
    },
    render() {
      for (const m of missions.values()) drawMission(m);
      for (const d of drones.values()) drawDrone(d);
      listeners.forEach((f) => f());
    },
    /** Re-applies stale styling as time passes without updates. */
    tick() {
      const now = Date.now();
      for (const [id, drone] of drones) shapes.get(id)?.marker.getElement()?.classList.toggle('stale', droneStale(drone, now));
    },
  };
  view.renderers.push(api_.render);
  return api_;
}

/** One line per fact about a drone, for tooltips and the fleet list. */
export function droneSummary(drone) {
  const battery = drone.battery_percent == null ? '?' : `${Math.round(drone.battery_percent)}%`;
  const lines = [
    `<b>${escapeHtml(drone.name)}</b> (${escapeHtml(drone.id)}, ${drone.autopilot})`,
    `${t('drone.mode')}: ${escapeHtml(drone.mode)} · ${drone.armed ? t('drone.armed') : t('drone.disarmed')}`,
    `${t('drone.altitude')}: ${drone.altitude_rel_m.toFixed(1)} m · ${t('drone.heading')}: ${Math.round(drone.heading_deg)}°`,
    `${t('drone.battery')}: ${battery} · ${t(`link.${drone.link}`)}`,
    `${t('drone.last_heard')}: ${formatTime(drone.last_heard_unix_ms)}`,
  ];
  if (drone.mission) {
    lines.push(t('drone.mission', { mission: escapeHtml(drone.mission.mission_id), current: drone.mission.current_item, total: drone.mission.total_items }));
  }
  return lines.join('<br>');
}

/** Escapes text for HTML. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** The hazard layer: a circle per hazard, coloured by kind, styled by tracking and review status. */
export function createHazardLayer(view) {
  const layer = L.layerGroup().addTo(view.map);
  const hazards = new Map();
  const render = () => {
    layer.clearLayers();
    for (const h of hazards.values()) {
      const rejected = h.review === 'rejected';
      const marker = L.circleMarker(view.toDisplay(h.position), {
        radius: h.severity === 'A' ? 11 : h.severity === 'B' ? 9 : 7,
        color: h.review === 'pending' ? '#fff' : '#111',
        weight: h.review === 'pending' ? 3 : 1,
        dashArray: h.review === 'pending' ? '3 3' : null,
        fillColor: rejected ? '#999' : KIND_COLOURS[h.kind] || '#333',
        fillOpacity: rejected || h.status === 'ended' ? 0.35 : 0.9,
        className: `hazard hazard-${h.kind} review-${h.review}`,
      }).addTo(layer);
      marker.bindPopup(() => hazardPopup(h));
    }
  };
  view.renderers.push(render);
  return {
    hazards,
    set(list) {
      hazards.clear();
      for (const h of list) hazards.set(h.id, h);
      render();
    },
    update(update) {
      if (update.type !== 'hazard') return;
      hazards.set(update.id, update);
      render();
    },
  };
}

function hazardPopup(h) {
  const div = el('div', { class: 'hazard-popup' });
  div.innerHTML = `<b>${t(`kind.${h.kind}`)}</b> · ${h.severity} · ${(h.confidence * 100).toFixed(0)}%<br>
    ${t('hazard.cell')}: ${escapeHtml(h.grid_cell || '—')}<br>${t('hazard.address')}: ${escapeHtml(h.address || '—')}<br>
    ${t('hazard.time')}: ${formatTime(h.last_seen_unix_ms)}<br>
    ${t(`status.${h.status}`)} · ${t(`review.${h.review}`)}`;
  if (h.evidence_ids.length) {
    div.append(el('img', { class: 'popup-thumb', src: `/api/evidence/${encodeURIComponent(h.evidence_ids[0])}`, alt: h.label }));
  }
  return div;
}

function fleetCard(drone) {
  const card = el('div', { class: `drone-card link-${drone.link}`, 'data-drone-id': drone.id });
  card.innerHTML = droneSummary(drone);
  return card;
}

/** Mounts the live map page. */
export function mount(root, session) {
  const mapEl = el('div', { class: 'map', id: 'live-map' });
  const side = el('aside', { class: 'side' });
  const gcj = el('input', { type: 'checkbox', id: 'gcj02-toggle' });
  gcj.checked = Boolean(session.map && session.map.tiles_gcj02);
  const fleetList = el('div', { id: 'fleet-list' });
  side.append(
    el('label', { class: 'check' }, [gcj, el('span', { text: t('map.gcj02') })]),
    el('h2', { text: t('map.fleet') }),
    fleetList,
    el('h2', { text: t('map.legend') }),
    legend(),
  );
  root.append(el('div', { class: 'split' }, [mapEl, side]));
  const view = createMap(mapEl, session);
  gcj.addEventListener('change', () => view.setGcj(gcj.checked));
  const fleet = createFleetLayer(view);
  const hazardLayer = createHazardLayer(view);
  const renderList = () => {
    const cards = [...fleet.drones.values()].map(fleetCard);
    fleetList.replaceChildren(...(cards.length ? cards : [el('p', { text: t('map.no_drones') })]));
  };
  fleet.onChange(renderList);

  Promise.all([api('GET', '/district'), api('GET', '/fleet'), api('GET', '/missions'), api('GET', '/hazards')])
    .then(([district, snapshot, missions, hazards]) => {
      drawDistrict(view, district).fit();
      fleet.setSnapshot(snapshot);
      fleet.setMissions(missions);
      hazardLayer.set(hazards);
    })
    .catch((e) => toast(errorText(e), 'error'));

  const onLive = (event) => {
    const update = event.detail;
    if (update.type === 'resync') {
      api('GET', '/fleet').then((s) => fleet.setSnapshot(s));
      api('GET', '/hazards').then((h) => hazardLayer.set(h));
      return;
    }
    fleet.update(update);
    hazardLayer.update(update);
  };
  window.addEventListener('patrol:live', onLive);
  const timer = setInterval(() => fleet.tick(), 2000);
  return () => {
    window.removeEventListener('patrol:live', onLive);
    clearInterval(timer);
    view.map.remove();
  };
}

function legend() {
  const box = el('div', { class: 'legend' });
  const item = (cls, key) => el('div', {}, [el('span', { class: `swatch ${cls}` }), el('span', { text: t(key) })]);
  box.append(
    item('cov-0', 'map.coverage'),
    item('nfz', 'map.no_fly'),
    item('kind-fire', 'kind.fire'),
    item('kind-smoke', 'kind.smoke'),
    item('kind-gas', 'kind.gas'),
    item('kind-illegal_structure', 'kind.illegal_structure'),
  );
  return box;
}
