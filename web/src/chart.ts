// A volume chart as inline SVG: one bar per hour or day, the refused part stacked on top of the
// delivered part. No chart library: the data is a short series and SVG scales to any screen.
import type { Stats } from './types.js';

const SVG = 'http://www.w3.org/2000/svg';

function el(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const label = (iso: string, bucket: Stats['bucket']): string => (bucket === 'hour' ? `${iso.slice(11, 16)}` : iso.slice(5, 10));

/** The axis top: 2, 4 or 10 times a power of ten, so that its half is a whole number too. */
function axisMax(value: number): number {
  let scale = 1;
  for (;;) {
    for (const step of [2, 4, 10]) if (value <= step * scale) return step * scale;
    scale *= 10;
  }
}

export function volumeChart(stats: Stats, title: string): SVGSVGElement {
  // A narrower drawing on phones keeps the labels readable once the SVG is scaled to the screen.
  const width = window.innerWidth < 640 ? 360 : 640;
  const height = 220;
  const pad = { left: 40, right: 8, top: 12, bottom: 28 };
  const points = stats.points;
  const max = axisMax(Math.max(0, ...points.map((point) => point.messages)));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slot = plotW / Math.max(1, points.length);
  const refusedOf = (point: Stats['points'][number]): number => Object.values(point.refused).reduce((sum, n) => sum + n, 0);
  const totalRefused = Object.values(stats.totals.refused).reduce((sum, n) => sum + n, 0);

  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', preserveAspectRatio: 'xMidYMid meet' }) as SVGSVGElement;
  svg.setAttribute(
    'aria-label',
    `${title}: ${stats.totals.messages} mails accepted, ${stats.totals.sent} delivered, ${totalRefused} not delivered, per ${stats.bucket} from ${stats.from.slice(0, 16)} to ${stats.to.slice(0, 16)} UTC`,
  );
  svg.appendChild(el('title', {}, title));
  // Axis and three grid lines with their values.
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    svg.appendChild(el('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(el('text', { x: pad.left - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, String(Math.round(max * fraction))));
  }
  points.forEach((point, index) => {
    const x = pad.left + index * slot + slot * 0.15;
    const barW = Math.max(1, slot * 0.7);
    const refused = refusedOf(point);
    const okHeight = (plotH * Math.max(0, point.messages - refused)) / max;
    const refusedHeight = (plotH * Math.min(refused, point.messages)) / max;
    const base = pad.top + plotH;
    if (okHeight > 0) {
      const bar = el('rect', { x, y: base - okHeight, width: barW, height: okHeight, class: 'bar' });
      bar.appendChild(el('title', {}, `${label(point.start, stats.bucket)}: ${point.messages} mails, ${point.sent} delivered, ${refused} not delivered`));
      svg.appendChild(bar);
    }
    if (refusedHeight > 0) svg.appendChild(el('rect', { x, y: base - okHeight - refusedHeight, width: barW, height: refusedHeight, class: 'bar refused' }));
  });
  // A handful of time labels, evenly spaced, so they never overlap.
  const every = Math.max(1, Math.ceil(points.length / (width < 640 ? 4 : 6)));
  points.forEach((point, index) => {
    if (index % every !== 0) return;
    svg.appendChild(el('text', { x: pad.left + index * slot + slot / 2, y: height - 8, 'text-anchor': 'middle', class: 'axis' }, label(point.start, stats.bucket)));
  });
  return svg;
}
