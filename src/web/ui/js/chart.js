// chart.js - time-series charts drawn as SVG (no library, no canvas): lines
// or stacked bars over time buckets, with axes, a legend, and a hover
// read-out of every series at the bucket under the pointer. A click on a
// bucket calls onClick(t, t + step) so pages can link to the traces behind it.
//
//   chart({ series: [{ name, values: [y|null per bucket], color? }],
//           times: [unix ms per bucket], step: bucket ms, kind: 'line'|'bars',
//           format: y => text, title, height, onClick })  -> <figure>

import { fmt, h } from './ui.js';

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777',
  '#65a30d', '#475569', '#ea580c', '#0d9488'];

const W = 640;
const PAD = { l: 56, r: 12, t: 10, b: 26 };

// Round tick steps for a value range: 1, 2, 5 x 10^n.
function niceTicks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(v);
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function timeLabel(ms, span) {
  const d = new Date(ms);
  if (span > 3 * 86400e3) return d.toLocaleDateString('en-GB', { month: 'short', day: '2-digit' });
  return d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });
}

export function chart({ series, times, step, kind = 'line', format = (v) => fmt.num(v), title, height = 180, onClick }) {
  const H = height;
  const n = times.length;
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const stacked = kind === 'bars';
  let max = 0;
  for (let i = 0; i < n; i++) {
    if (stacked) max = Math.max(max, series.reduce((a, s) => a + (s.values[i] || 0), 0));
    else for (const s of series) if (s.values[i] !== null && s.values[i] !== undefined) max = Math.max(max, s.values[i]);
  }
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1] || 1;
  const x = (i) => PAD.l + (n <= 1 ? iw / 2 : (i * iw) / (n - 1));
  const bw = n > 0 ? iw / n : iw;
  const xb = (i) => PAD.l + i * bw;
  const y = (v) => PAD.t + ih - (v / top) * ih;
  const color = (s, i) => s.color || PALETTE[i % PALETTE.length];

  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': title || 'chart' });
  for (const t of ticks) {
    svg.appendChild(h('svg:line', { x1: PAD.l, x2: W - PAD.r, y1: y(t), y2: y(t), class: 'grid' }));
    svg.appendChild(h('svg:text', { x: PAD.l - 6, y: y(t) + 4, class: 'axis', 'text-anchor': 'end' }, format(t)));
  }
  const span = n > 1 ? times[n - 1] - times[0] : 0;
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i < n; i += every) {
    const cx = stacked ? xb(i) + bw / 2 : x(i);
    svg.appendChild(h('svg:text', { x: cx, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, timeLabel(times[i], span)));
  }
  if (stacked) {
    for (let i = 0; i < n; i++) {
      let acc = 0;
      series.forEach((s, si) => {
        const v = s.values[i] || 0;
        if (v <= 0) return;
        const y0 = y(acc);
        acc += v;
        svg.appendChild(h('svg:rect', { x: xb(i) + bw * 0.1, width: Math.max(1, bw * 0.8), y: y(acc), height: Math.max(0.5, y0 - y(acc)), fill: color(s, si), class: 'bar' }));
      });
    }
  } else {
    series.forEach((s, si) => {
      let d = '';
      let pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      if (d) svg.appendChild(h('svg:path', { d, fill: 'none', stroke: color(s, si), 'stroke-width': 2, class: 'line' }));
      // lone points (a bucket between two empty ones) stay visible
      s.values.forEach((v, i) => {
        const prev = s.values[i - 1];
        const next = s.values[i + 1];
        if (v !== null && v !== undefined && (prev === null || prev === undefined) && (next === null || next === undefined))
          svg.appendChild(h('svg:circle', { cx: x(i), cy: y(v), r: 2.5, fill: color(s, si) }));
      });
    });
  }
  const rule = h('svg:line', { y1: PAD.t, y2: PAD.t + ih, class: 'rule', visibility: 'hidden' });
  svg.appendChild(rule);
  const tip = h('div', { class: 'chart-tip', hidden: true });
  const fig = h('figure', { class: 'chart' }, title ? h('figcaption', {}, title) : null, svg, tip,
    series.length > 1 ? h('div', { class: 'legend' }, series.map((s, si) => h('span', { class: 'legend-item' },
      h('span', { class: 'swatch', style: { background: color(s, si) } }), s.name))) : null);

  const bucketAt = (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    if (n === 0 || px < PAD.l - 4 || px > W - PAD.r + 4) return -1;
    const i = stacked ? Math.floor((px - PAD.l) / bw) : Math.round(((px - PAD.l) / iw) * (n - 1));
    return Math.max(0, Math.min(n - 1, i));
  };
  svg.addEventListener('mousemove', (ev) => {
    const i = bucketAt(ev);
    if (i < 0) { tip.hidden = true; rule.setAttribute('visibility', 'hidden'); return; }
    const cx = stacked ? xb(i) + bw / 2 : x(i);
    rule.setAttribute('x1', cx);
    rule.setAttribute('x2', cx);
    rule.setAttribute('visibility', 'visible');
    tip.replaceChildren(h('div', { class: 'tip-time' }, fmt.time(times[i])),
      ...series.map((s, si) => h('div', {}, h('span', { class: 'swatch', style: { background: color(s, si) } }),
        `${s.name}: ${s.values[i] === null || s.values[i] === undefined ? '–' : format(s.values[i])}`)));
    tip.hidden = false;
    const r = svg.getBoundingClientRect();
    const left = (cx / W) * r.width;
    tip.style.left = `${Math.min(left + 12, r.width - 180)}px`;
  });
  svg.addEventListener('mouseleave', () => { tip.hidden = true; rule.setAttribute('visibility', 'hidden'); });
  if (onClick) {
    svg.classList.add('clickable');
    svg.addEventListener('click', (ev) => {
      const i = bucketAt(ev);
      if (i >= 0) onClick(times[i], times[i] + step);
    });
  }
  return fig;
}

// A horizontal bar with an interval (for pass rates): value and [lo, hi] in 0..1.
export function intervalBar(value, lo, hi, { width = 120 } = {}) {
  const svg = h('svg:svg', { viewBox: `0 0 ${width} 12`, width, height: 12, class: 'interval', role: 'img',
    'aria-label': `${fmt.pct(value)} (${fmt.pct(lo)} to ${fmt.pct(hi)})` });
  svg.appendChild(h('svg:rect', { x: 0, y: 3, width, height: 6, class: 'interval-track' }));
  if (lo !== null && lo !== undefined && hi !== null && hi !== undefined)
    svg.appendChild(h('svg:rect', { x: lo * width, y: 2, width: Math.max(1, (hi - lo) * width), height: 8, class: 'interval-ci' }));
  if (value !== null && value !== undefined)
    svg.appendChild(h('svg:rect', { x: Math.max(0, value * width - 1), y: 0, width: 2, height: 12, class: 'interval-mark' }));
  return svg;
}
