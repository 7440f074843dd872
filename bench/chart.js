// The bench's picture: an SVG drawn from the same run's results (no library).
// Left: msgs/s (log scale) against the server's reply latency (0, 1, 10 ms), one
// line per client and mode. Right: MB/s for the large message per client, with
// its peak RSS written on the bar.

const COLORS = ['#1b6ac9', '#d2462a', '#2a9d4b', '#8a4fbf', '#c98a1b', '#16a3a3', '#6b6b6b', '#b8336a', '#4f6bbf'];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));

/**
 * series: [{ label, points: [{ x: latencyMs, y: msgsPerSec }], ours }]
 * bars:   [{ label, mbPerSec, peakRssMB, ours }]
 */
export function renderChart({ title, series, bars, largeLabel }) {
  const W = 1100;
  const H = 470;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);

  // ---- left panel: msgs/s vs latency, log y
  const L = { x: 70, y: 50, w: 440, h: 300 };
  const xs = [0, 1, 10];
  const xPos = (x) => L.x + (xs.indexOf(x) / (xs.length - 1)) * L.w;
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => y > 0);
  const yMin = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...ys))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const yPos = (y) => L.y + L.h - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * L.h;
  out.push(`<text x="${L.x + L.w / 2}" y="${L.y - 10}" text-anchor="middle" font-weight="bold">1 KB messages, one connection: msgs/s against reply latency</text>`);
  for (let e = Math.log10(yMin); e <= Math.log10(yMax); e++) {
    const y = yPos(10 ** e);
    out.push(`<line x1="${L.x}" y1="${y}" x2="${L.x + L.w}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${L.x - 6}" y="${y + 4}" text-anchor="end">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${xPos(x)}" y1="${L.y}" x2="${xPos(x)}" y2="${L.y + L.h}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${xPos(x)}" y="${L.y + L.h + 16}" text-anchor="middle">${x} ms</text>`);
  }
  out.push(`<text x="${L.x + L.w / 2}" y="${L.y + L.h + 34}" text-anchor="middle">server reply latency</text>`);
  out.push(`<text transform="translate(18 ${L.y + L.h / 2}) rotate(-90)" text-anchor="middle">messages per second (log)</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter((p) => p.y > 0 && xs.includes(p.x));
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="${s.ours ? 3 : 1.5}" ${s.ours ? '' : 'stroke-dasharray="5 3"'} points="${pts.map((p) => `${xPos(p.x).toFixed(1)},${yPos(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${xPos(p.x).toFixed(1)}" cy="${yPos(p.y).toFixed(1)}" r="3" fill="${color}"><title>${esc(s.label)}: ${fmt(p.y)} msg/s at ${p.x} ms</title></circle>`);
    const ly = L.y + L.h + 52 + Math.floor(i / 2) * 16;
    const lx = L.x + (i % 2) * 240;
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${color}" stroke-width="${s.ours ? 3 : 1.5}"/>`);
    out.push(`<text x="${lx + 28}" y="${ly}"${s.ours ? ' font-weight="bold"' : ''}>${esc(s.label)}</text>`);
  });

  // ---- right panel: MB/s bars with peak RSS
  const R = { x: 600, y: 50, w: 480, h: 300 };
  out.push(`<text x="${R.x + R.w / 2}" y="${R.y - 10}" text-anchor="middle" font-weight="bold">${esc(largeLabel)}: MB/s (peak RSS on the bar)</text>`);
  const max = Math.max(...bars.map((b) => b.mbPerSec), 1);
  const barH = Math.min(28, (R.h - 10) / Math.max(1, bars.length) - 6);
  bars.forEach((b, i) => {
    const y = R.y + 10 + i * (barH + 6);
    const w = (b.mbPerSec / max) * (R.w - 170 - 150); // room for the figures after the bar
    out.push(`<text x="${R.x + 160}" y="${y + barH / 2 + 4}" text-anchor="end"${b.ours ? ' font-weight="bold"' : ''}>${esc(b.label)}</text>`);
    out.push(`<rect x="${R.x + 166}" y="${y}" width="${Math.max(1, w).toFixed(1)}" height="${barH}" fill="${b.ours ? '#1b6ac9' : '#9fb3c8'}"/>`);
    out.push(`<text x="${R.x + 170 + w}" y="${y + barH / 2 + 4}" font-size="11">${fmt(b.mbPerSec)} MB/s · ${fmt(b.peakRssMB)} MB</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
