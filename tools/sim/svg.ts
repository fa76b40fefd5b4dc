// The simulated day as one SVG, plain (no dependency): lanes for each side (power mode bands, PINGREQs,
// connections / check-ins, publishes and commands as they arrived) over a time axis in hours, and the
// cumulative charge of both sides on a shared mAh axis below. Every series is a <g> with an id
// (mode-wren, pings-wren, connections-wren, publishes-wren, commands-wren, the same with -baseline,
// charge-wren, charge-baseline) so tests and readers can find it.
import type { ModeState, SideResult, SimOptions, SimResult } from './run';
import { clockText } from './log';

const W = 1400;
const H = 760;
const LEFT = 200;
const RIGHT = 90;
const PW = W - LEFT - RIGHT;

const COLORS: Record<ModeState, string> = {
  active: '#e4572e',
  idle: '#f2b134',
  checkin: '#3d8bd4',
  deep: '#dfe4ea',
};
const MODE_TEXT: Record<ModeState, string> = {
  active: 'active',
  idle: 'idle, connected',
  checkin: 'awake to check in / sync',
  deep: 'deep sleep',
};
const WREN = '#1f5fbf';
const BASE = '#c0392b';
const INK = '#222';
const MUTED = '#666';
const GRID = '#e6e6e6';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function n(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

export function renderSvg(r: SimResult, o: SimOptions): string {
  const win = r.windowMs;
  const hours = win / 3600000;
  const x = (t: number) => LEFT + (Math.min(Math.max(t, 0), win) / win) * PW;
  const out: string[] = [];
  const text = (tx: number, ty: number, s: string, attrs?: string) => out.push('<text x="' + n(tx) + '" y="' + n(ty) + '"' + (attrs ? ' ' + attrs : '') + '>' + esc(s) + '</text>');

  out.push('<svg xmlns="http://www.w3.org/2000/svg" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + ' ' + H + '" font-family="Helvetica, Arial, sans-serif" font-size="13">');
  out.push('<defs><marker id="arrow" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="' + MUTED + '"/></marker></defs>');
  out.push('<rect width="100%" height="100%" fill="#ffffff"/>');
  text(LEFT, 30, 'wren vs a fixed 60 s keep-alive: ' + o.hours + ' simulated hours', 'font-size="20" font-weight="bold" fill="' + INK + '"');
  text(
    LEFT,
    52,
    o.profileName + ' on ' + o.boardName + ' (' + o.board.device + ', ' + o.board.transport.type + ')  -  charge ' + r.wren.account.chargeMah.toFixed(2) + ' vs ' + r.baseline.account.chargeMah.toFixed(2) + ' mAh: ' + r.ratio.toFixed(1) + 'x less',
    'fill="' + MUTED + '"',
  );

  // Mode legend.
  let lx = LEFT;
  for (const s of ['active', 'idle', 'checkin', 'deep'] as ModeState[]) {
    out.push('<rect x="' + lx + '" y="66" width="14" height="14" fill="' + COLORS[s] + '" stroke="#999" stroke-width="0.5"/>');
    text(lx + 20, 78, MODE_TEXT[s], 'fill="' + INK + '"');
    lx += 40 + MODE_TEXT[s].length * 6.6;
  }
  // Marker legend.
  const my = 73;
  lx += 10;
  out.push('<path d="M' + lx + ' ' + (my - 7) + ' v14" stroke="' + INK + '" stroke-width="1.5"/>');
  text(lx + 8, 78, 'PINGREQ', 'fill="' + INK + '"');
  lx += 80;
  out.push('<path d="M' + (lx - 6) + ' ' + (my + 6) + ' L' + lx + ' ' + (my - 6) + ' L' + (lx + 6) + ' ' + (my + 6) + ' Z" fill="' + COLORS.checkin + '"/>');
  text(lx + 12, 78, 'check-in', 'fill="' + INK + '"');
  lx += 80;
  out.push('<path d="M' + (lx - 6) + ' ' + (my + 6) + ' L' + lx + ' ' + (my - 6) + ' L' + (lx + 6) + ' ' + (my + 6) + ' Z" fill="none" stroke="' + INK + '" stroke-width="1.3"/>');
  text(lx + 12, 78, 'other connection', 'fill="' + INK + '"');

  // Time grid (shared by lanes and chart).
  const top = 96;
  const chartTop = 390;
  const chartBottom = 700;
  const hStep = hours <= 24 ? 1 : hours <= 72 ? 6 : hours <= 240 ? 24 : 24 * Math.ceil(hours / 240);
  const labelEvery = hours <= 24 ? 2 : 1;
  for (let h = 0, i = 0; h <= hours + 1e-9; h += hStep, i++) {
    const gx = x(h * 3600000);
    out.push('<line x1="' + n(gx) + '" y1="' + top + '" x2="' + n(gx) + '" y2="' + chartBottom + '" stroke="' + GRID + '" stroke-width="1"/>');
    if (i % labelEvery === 0) text(gx, chartBottom + 18, hours <= 72 ? String(h) : 'd' + h / 24, 'text-anchor="middle" fill="' + INK + '"');
  }
  text(LEFT + PW / 2, chartBottom + 40, hours <= 72 ? 'time (hours)' : 'time (days)', 'text-anchor="middle" fill="' + INK + '"');

  // Lanes.
  const lane = (side: SideResult, key: string, y0: number, title: string, color: string) => {
    text(16, y0 + 16, title, 'font-weight="bold" font-size="15" fill="' + color + '"');
    const rows = [
      ['power mode', y0 + 4, 24],
      ['PINGREQ (' + side.account.pingreqs + ')', y0 + 34, 16],
      ['connections (' + side.account.connects + ')', y0 + 56, 16],
      ['publishes (' + side.appArrivals.length + ')', y0 + 78, 16],
      ['commands (' + side.commandArrivals.length + ')', y0 + 100, 16],
    ] as Array<[string, number, number]>;
    for (const [label, ry, rh] of rows.slice(1)) {
      out.push('<line x1="' + LEFT + '" y1="' + (ry + rh / 2) + '" x2="' + (LEFT + PW) + '" y2="' + (ry + rh / 2) + '" stroke="#f0f0f0"/>');
      text(LEFT - 10, ry + rh / 2 + 4, label, 'text-anchor="end" fill="' + MUTED + '"');
    }
    text(LEFT - 10, rows[0][1] + 17, rows[0][0], 'text-anchor="end" fill="' + MUTED + '"');
    // Mode bands.
    out.push('<g id="mode-' + key + '">');
    const by = rows[0][1];
    for (const b of side.modes) {
      // A check-in lasts seconds: draw it at least 2 px wide so it shows on a day-long axis.
      const w = Math.max(x(b.to) - x(b.from), b.state === 'deep' ? 0.5 : 3);
      out.push('<rect x="' + n(x(b.from)) + '" y="' + by + '" width="' + n(w) + '" height="24" fill="' + COLORS[b.state] + '"><title>' + esc(MODE_TEXT[b.state] + ' ' + clockText(b.from) + ' - ' + clockText(b.to)) + '</title></rect>');
    }
    out.push('</g>');
    // PINGREQs: one tick each.
    const py = rows[1][1];
    let d = '';
    for (const t of side.pingTimes) d += 'M' + n(x(t)) + ' ' + py + 'v16';
    out.push('<g id="pings-' + key + '"><path d="' + d + '" stroke="' + INK + '" stroke-width="1"/></g>');
    // Connections.
    const cy = rows[2][1] + 8;
    out.push('<g id="connections-' + key + '">');
    for (const c of side.connections) {
      const cx = x(c.at);
      const tri = 'M' + n(cx - 5) + ' ' + (cy + 6) + ' L' + n(cx) + ' ' + (cy - 6) + ' L' + n(cx + 5) + ' ' + (cy + 6) + ' Z';
      out.push(
        '<path d="' + tri + '" ' + (c.checkIn ? 'fill="' + COLORS.checkin + '"' : 'fill="#fff" stroke="' + INK + '" stroke-width="1.3"') + '><title>' + (c.checkIn ? 'check-in ' : 'connection ') + clockText(c.at) + '</title></path>',
      );
    }
    out.push('</g>');
    // Publishes (as they reached the broker) and commands (as the application got them).
    const pubY = rows[3][1] + 8;
    out.push('<g id="publishes-' + key + '">');
    for (const t of side.appArrivals) out.push('<circle cx="' + n(x(t)) + '" cy="' + pubY + '" r="4" fill="' + color + '" fill-opacity="0.75"><title>publish at the broker ' + clockText(t) + '</title></circle>');
    out.push('</g>');
    const cmdY = rows[4][1] + 8;
    out.push('<g id="commands-' + key + '">');
    for (const t of side.commandArrivals) {
      const cx = x(t);
      out.push('<path d="M' + n(cx) + ' ' + (cmdY - 5) + ' L' + n(cx + 5) + ' ' + cmdY + ' L' + n(cx) + ' ' + (cmdY + 5) + ' L' + n(cx - 5) + ' ' + cmdY + ' Z" fill="#7b3fa0"><title>command at the device ' + clockText(t) + '</title></path>');
    }
    out.push('</g>');
  };
  lane(r.wren, 'wren', top, 'wren', WREN);
  lane(r.baseline, 'baseline', top + 138, 'fixed 60 s', BASE);

  // Cumulative charge.
  const maxC = Math.max(r.baseline.account.chargeMah, r.wren.account.chargeMah, 1e-6);
  const yStep = niceStep(maxC, 6);
  const yMax = Math.ceil((maxC * 1.04) / yStep) * yStep;
  const y = (v: number) => chartBottom - (v / yMax) * (chartBottom - chartTop);
  text(16, chartTop - 14, 'cumulative charge (mAh)', 'font-weight="bold" font-size="15" fill="' + INK + '"');
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    const gy = y(v);
    out.push('<line x1="' + LEFT + '" y1="' + n(gy) + '" x2="' + (LEFT + PW) + '" y2="' + n(gy) + '" stroke="' + (v === 0 ? '#999' : GRID) + '"/>');
    text(LEFT - 10, gy + 4, String(Math.round(v * 1000) / 1000), 'text-anchor="end" fill="' + INK + '"');
  }
  out.push('<line x1="' + LEFT + '" y1="' + chartTop + '" x2="' + LEFT + '" y2="' + chartBottom + '" stroke="#999"/>');
  const poly = (side: SideResult, key: string, color: string) => {
    const pts = r.seriesTimes.map((t, i) => n(x(t)) + ',' + n(y(side.series[i]))).join(' ');
    out.push('<g id="charge-' + key + '"><polyline points="' + pts + '" fill="none" stroke="' + color + '" stroke-width="2.5" stroke-linejoin="round"/>');
    const last = side.series[side.series.length - 1];
    text(LEFT + PW + 6, y(last) + 4, last.toFixed(2) + ' mAh', 'fill="' + color + '" font-weight="bold"');
    out.push('</g>');
  };
  poly(r.baseline, 'baseline', BASE);
  poly(r.wren, 'wren', WREN);
  const yb = y(r.baseline.series[r.baseline.series.length - 1]);
  const yw = y(r.wren.series[r.wren.series.length - 1]);
  if (yw - yb > 40) {
    const ax = LEFT + PW - 14;
    out.push('<path d="M' + ax + ' ' + n(yb + 8) + ' V' + n(yw - 8) + '" stroke="' + MUTED + '" stroke-width="1" marker-end="url(#arrow)"/>');
    text(ax - 8, (yb + yw) / 2 + 5, r.ratio.toFixed(1) + 'x less', 'text-anchor="end" font-size="16" font-weight="bold" fill="' + INK + '"');
  }
  // Chart legend.
  const lgx = LEFT + 16;
  const lgy = chartTop + 10;
  out.push('<rect x="' + (lgx - 8) + '" y="' + (lgy - 6) + '" width="360" height="52" fill="#fff" fill-opacity="0.9" stroke="#ccc"/>');
  out.push('<line x1="' + lgx + '" y1="' + (lgy + 8) + '" x2="' + (lgx + 28) + '" y2="' + (lgy + 8) + '" stroke="' + BASE + '" stroke-width="2.5"/>');
  text(lgx + 36, lgy + 12, 'fixed 60 s keep-alive (connected all day)', 'fill="' + INK + '"');
  out.push('<line x1="' + lgx + '" y1="' + (lgy + 30) + '" x2="' + (lgx + 28) + '" y2="' + (lgy + 30) + '" stroke="' + WREN + '" stroke-width="2.5"/>');
  text(lgx + 36, lgy + 34, 'wren (power modes, deep sleep, check-ins)', 'fill="' + INK + '"');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
