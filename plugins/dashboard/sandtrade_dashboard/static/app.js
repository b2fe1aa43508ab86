// sandtrade dashboard: plain JavaScript, no build step.
// Everything that came from users or strategies (signal bodies, reasons, log lines, names)
// is put on the page as text (textContent), never as HTML.
"use strict";

const S = {
  me: null, account: "", orders: new Map(), fills: new Map(), signals: new Map(),
  strategies: new Map(), logs: new Map(), acct: null, curve: [], source: null,
  symbol: "", tf: "", bars: [], dirty: new Set(), view: "account",
  signalOfOrder: new Map(), lastBar: 0, changedOrders: new Set(), ordersReset: true,
  changedSignals: new Set(), signalsReset: true,
  // Seconds from a fill's commit on the host to its row on this screen (bench/dashboard.py).
  fillLag: [], pendingFills: [],
  // What the account's strategies plotted on this symbol: "strategy/name" -> series.
  plots: new Map(),
  // Where the account's signals go, and which of those routes a person paused.
  routes: [],
  plotsOf: "",  // the account S.plots belong to
};

// ------------------------------------------------------------------ small helpers

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const $ = (id) => document.getElementById(id);
const num = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x)) ? "–"
  : Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const qty = (x) => (x === null || x === undefined) ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: 6 });
const when = (t) => t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) : "";
const signed = (x) => (x > 0 ? "+" : "") + num(x);
const cls = (x) => x > 0 ? "pos" : x < 0 ? "neg" : "";

function toast(message, ok) {
  const t = $("toast");
  t.textContent = message;
  t.className = ok ? "toast ok" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

async function api(path, params) {
  const q = new URLSearchParams({ account: S.account, ...(params || {}) });
  const r = await fetch(`/dashboard/api/${path}?${q}`, { credentials: "same-origin" });
  if (r.status === 401) { location.reload(); throw new Error("signed out"); }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

async function act(path, label) {
  const q = new URLSearchParams({ account: S.account });
  const r = await fetch(`/dashboard/api/${path}${path.includes("?") ? "&" : "?"}${q}`, {
    method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": S.me.csrf } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) toast(`${label}: ${body.error || r.statusText}`);
  else toast(`${label}: done`, true);
  return r.ok;
}

// ------------------------------------------------------------------ badges

const KIND_NAMES = { tradingview: "TradingView", grpc: "gRPC", python: "Python client",
  client: "Python client", replay: "replay", cli: "CLI", signal: "signal", unknown: "unknown" };

function sourceOf(order) {
  const known = S.signalOfOrder.get(order.id);
  if (known) return known;
  const own = order.source || { kind: "unknown", ref: "", label: "" };
  const parent = order.parent_id && S.orders.get(order.parent_id);
  if (["unknown", "signal"].includes(own.kind) && parent) return sourceOf(parent);  // a bracket's exits
  return own;
}

function badge(source) {
  const kind = (source && source.kind) || "unknown";
  let text = kind === "strategy" ? `strategy ${source.label || source.ref}` : (KIND_NAMES[kind] || kind);
  if (kind === "tradingview" && source.label) text += ` · ${source.label}`;
  return el("span", { class: `badge ${KIND_NAMES[kind] ? kind : "unknown"}`, text,
    title: source && source.ref ? `${kind} ${source.ref}` : kind, "data-kind": kind });
}

const SHORT = { tradingview: "TV", grpc: "gRPC", python: "Py", client: "Py", replay: "replay", cli: "CLI" };
function shortBadge(source) {
  // On the chart itself: short, the full badge is in the list below it.
  const kind = (source && source.kind) || "unknown";
  if (kind === "strategy") return source.label || source.ref;
  return SHORT[kind] || "?";
}

// ------------------------------------------------------------------ loading

let loading = 0;
async function loadRoutes(account) {
  let list;
  try { list = await api("routes", { account }); } catch (e) { return; }
  if (account !== S.account) return;
  S.routes = list;
  S.dirty.add("signals"); schedule();
}

function renderRoutes() {
  // Where the account's signals go; a paused route journals them as dropped, with the reason.
  $("routes").replaceChildren(...(S.routes || []).map((r) => el("li", { class: r.paused ? "route paused" : "route", "data-route": r.route, "data-paused": String(r.paused) },
    el("span", { class: `status ${r.paused ? "dropped" : "filled"}`, text: r.paused ? "paused" : "open" }),
    el("span", { text: r.label, title: r.route }),
    r.paused ? el("span", { class: "muted small", text: ` since ${r.since.replace("T", " ").slice(0, 19)} · ${r.by}` }) : null,
    r.can_pause ? el("button", { class: r.paused ? "go" : "danger", text: r.paused ? "Resume" : "Pause",
      onclick: () => act(`routes/${r.paused ? "resume" : "pause"}?route=${encodeURIComponent(r.route)}`, `${r.paused ? "resume" : "pause"} ${r.route}`) }) : null)));
}

async function loadAll() {
  // The operator may switch accounts while a load is on its way: only the newest load, for
  // the account still shown, may fill the views (an older one would look up the old
  // account's strategies in the new one).
  const mine = ++loading, account = S.account;
  const [acct, curve, orders, fills, signals, strategies, perf] = await Promise.all([
    api("account"), api("curve"), api("orders"), api("fills"), api("signals"), api("strategies"),
    api("performance").catch(() => null)]);
  if (mine !== loading || account !== S.account) return;
  S.acct = acct; S.curve = curve; S.perf = perf;
  S.orders = new Map(orders.map((o) => [o.id, o]));
  S.fills = new Map(fills.map((f) => [f.id, f]));
  S.signals = new Map(); S.signalOfOrder = new Map();
  for (const s of signals.reverse()) putSignal(s);
  S.strategies = new Map(strategies.map((s) => [s.name, s]));
  S.logs = new Map();
  for (const s of strategies) loadLog(s.name, account);
  loadRoutes(account);
  S.ordersReset = true; S.signalsReset = true;
  for (const v of ["account", "orders", "signals", "strategies", "markers"]) S.dirty.add(v);
  schedule();
  // The chart's plots are read afresh once it is drawn. Another account's go now; after a
  // reset of the same account they stay drawn until the fresh ones replace them: taking
  // every series off the chart and putting it back is churn for nothing, and the likeliest
  // cause of the "Value is null" lightweight-charts threw once in CI while drawing a frame.
  if (S.plotsOf !== account) { S.plots = new Map(); S.plotsOf = account; }
  if (priceChart && S.bars.length) loadPlots(); else renderPlots();
}

async function loadLog(name, account) {
  const lines = await api("logs", { name, account });
  if (account !== S.account) return;
  S.logs.set(name, lines);
  S.dirty.add("strategies"); schedule();
}

// What a page keeps of a busy account: the newest this many signals, orders and fills, and
// the signals of as many orders (a day at 50 signals a second would otherwise hold
// millions); the views show fewer.
const KEEP = 5000;
function keepNewest(map) {
  while (map.size > KEEP) map.delete(map.keys().next().value);
}

function putSignal(s) {
  S.signals.set(s.id, s);
  S.changedSignals.add(s.id);
  keepNewest(S.signals);
  for (const id of s.orders) {
    if (!S.signalOfOrder.has(id) && S.orders.has(id)) S.changedOrders.add(id);
    S.signalOfOrder.set(id, s.source);
  }
  keepNewest(S.signalOfOrder);
  if (!s.seenBar && S.lastBar) s.seenBar = S.lastBar;
}

// ------------------------------------------------------------------ live updates

function connect() {
  if (S.source) S.source.close();
  const q = new URLSearchParams({ after: String(S.after) });
  if (S.me.operator) q.set("account", S.account);
  const source = new EventSource(`/dashboard/events?${q}`);
  S.source = source;
  source.onopen = () => { $("live").className = "dot on"; $("live").title = "live"; };
  source.onerror = () => { $("live").className = "dot off"; $("live").title = "reconnecting…"; };
  const on = (kind, fn) => source.addEventListener(kind, (e) => {
    if (S.source !== source) return;
    fn(JSON.parse(e.data));
  });
  on("trade", ({ order, fill, at }) => {
    if (S.me.operator && order.account !== S.account) return;
    S.orders.set(order.id, order);
    keepNewest(S.orders);
    S.changedOrders.add(order.id);
    if (order.parent_id) S.changedOrders.add(order.parent_id);
    if (fill) { S.fills.set(fill.id, fill); keepNewest(S.fills); S.pendingFills.push(at); refreshAccountSoon(); }
    if (fill && S.view === "options") refreshGroupsSoon();
    const signal = S.signalOfOrder.get(order.id);  // its signal shows the order's status
    if (signal && S.signals.has(signal.ref)) { S.changedSignals.add(signal.ref); S.dirty.add("signals"); }
    S.dirty.add("orders"); S.dirty.add("markers"); schedule();
  });
  on("signal", (s) => { putSignal(s); S.dirty.add("signals"); S.dirty.add("markers"); S.dirty.add("orders"); schedule(); });
  on("strategy", (s) => {
    const known = S.strategies.has(s.name);
    S.strategies.set(s.name, s);
    if (!known) { loadLog(s.name, S.account); loadRoutes(S.account); }
    S.dirty.add("strategies"); schedule();
  });
  on("log", (line) => {
    const lines = S.logs.get(line.strategy);
    if (!lines) return;
    lines.push(line);
    if (lines.length > 500) lines.splice(0, lines.length - 500);
    S.dirty.add("logs"); schedule();
  });
  on("account", (a) => {
    if (a.id !== S.account || !S.acct) return;
    const dayStart = S.acct.equity - (S.acct.day_pnl || 0);
    Object.assign(S.acct, a, { day_pnl: a.equity - dayStart });
    S.curve.push([a.time, a.equity]);
    S.dirty.add("account"); schedule();
  });
  on("bars", (b) => {
    S.lastBar = Math.max(S.lastBar, b.time);
    if (b.symbol === S.symbol && S.view === "chart") refreshBarsSoon();
  });
  on("plot", (p) => {
    for (const s of p.series) mergePlot(p.strategy, s);
    S.dirty.add("plots"); schedule();
  });
  on("route", (r) => {
    const known = (S.routes || []).find((x) => x.route === r.route);
    if (known) { Object.assign(known, r); S.dirty.add("signals"); schedule(); } else loadRoutes(S.account);
  });
  on("reset", () => loadAll());
  on("signedout", () => location.reload());
}

let accountTimer = null;
function refreshAccountSoon() {
  // Positions and prices for the account view and the chart's average-price line.
  if (accountTimer || !["account", "chart"].includes(S.view)) return;
  accountTimer = setTimeout(async () => {
    accountTimer = null;
    S.acct = await api("account");
    S.perf = await api("performance").catch(() => S.perf);
    S.dirty.add("account"); schedule();
  }, 1000);
}

let barsTimer = null;
function refreshBarsSoon() {
  if (barsTimer) return;
  barsTimer = setTimeout(() => { barsTimer = null; loadBars(); }, 1000);
}

// ------------------------------------------------------------------ rendering

// What changed is drawn at most four times a second (every DRAW_MS), and only on the view in
// sight (the rest is drawn when it is shown): a busy host must not make the browser, or the
// machine, busy. Each frame costs the browser about the same whatever changed (layout, paint
// and raster of what moved, mostly: the page's own script is a tenth of it), so frames are
// what a watching browser pays for; the orders table and the timeline show the newest
// ORDER_ROWS and SIGNAL_ROWS, and a frame's layout grows with the rows.
const VISIBLE = { account: ["account"], chart: ["markers", "plots"], signals: ["signals"],
  orders: ["orders"], strategies: ["strategies", "logs"], options: ["groups"] };
const DRAW_MS = 250, ORDER_ROWS = 100;
let frame = 0, lastDraw = 0;
function schedule() {
  if (frame) return;
  frame = setTimeout(() => requestAnimationFrame(draw), Math.max(0, DRAW_MS - (Date.now() - lastDraw)));
}

function draw() {
    frame = 0; lastDraw = Date.now();
    const shown = VISIBLE[S.view] || [];
    const dirty = new Set([...S.dirty].filter((d) => shown.includes(d)));
    for (const d of dirty) S.dirty.delete(d);
    if (dirty.has("account")) renderAccount();
    if (dirty.has("orders")) renderOrders();
    if (S.pendingFills.length && (dirty.has("orders") || dirty.has("markers"))) {
      const now = Date.now() / 1000;
      for (const at of S.pendingFills) S.fillLag.push(now - at);
      S.pendingFills = [];
      if (S.fillLag.length > 20000) S.fillLag.splice(0, S.fillLag.length - 20000);
    }
    if (dirty.has("signals")) { renderRoutes(); renderSignals(); }
    if (dirty.has("strategies")) renderStrategies();
    else if (dirty.has("logs")) renderLogs();
    if (dirty.has("markers")) renderMarkers();
    if (dirty.has("plots")) renderPlots();
    if (dirty.has("groups")) renderGroups();
}

function kpi(label, value, klass, id, note) {
  return el("div", { class: "kpi", "data-kpi": id },
    el("div", { class: "label", text: label }), el("div", { class: `value ${klass || ""}`, text: value }),
    note ? el("div", { class: "note muted small", text: note }) : null);
}

let equityChart = null, equitySeries = null, ddSeries = null;
function renderAccount() {
  const a = S.acct;
  if (!a) return;
  $("kpis").replaceChildren(
    kpi("Equity", num(a.equity), "", "equity"), kpi("Cash", num(a.cash), "", "cash"),
    kpi("Buying power", num(a.buying_power), "", "buying_power"),
    kpi("Day P&L", signed(a.day_pnl || 0), cls(a.day_pnl), "day_pnl"),
    kpi("Total P&L", signed(a.total_pnl), cls(a.total_pnl), "total_pnl"),
    kpi("Exposure", `${num(a.exposure_pct, 1)} %`, "", "exposure", num(a.exposure)));
  const body = $("positions").tBodies[0];
  const positions = a.positions || [];
  body.replaceChildren(...positions.map((p) => el("tr", {},
    td("Symbol", { text: p.symbol }), td("Qty", { class: "num", text: qty(p.qty) }),
    td("Avg price", { class: "num", text: num(p.avg_price, 4) }), td("Last", { class: "num", text: num(p.market_price, 4) }),
    td("Value", { class: "num", text: num(p.market_value) }),
    td("Unrealized", { class: `num ${cls(p.unrealized_pnl)}`, text: signed(p.unrealized_pnl) }),
    td("", { class: "act" }, S.me.can_trade ? el("button", { class: "danger", text: "Close",
      onclick: () => act(`positions/${encodeURIComponent(p.symbol)}/close`, `close ${p.symbol}`) }) : null))));
  $("positions-empty").hidden = positions.length > 0;
  renderPerformance();
  renderEquity();
}

function renderPerformance() {
  // The account as a whole, then per source (TradingView, gRPC, a strategy...), then per
  // strategy: each row the back-test's statistics of the fills it placed.
  const perf = S.perf || {};
  const rows = [];
  const add = (label, figures) => { if (figures && figures.trades) rows.push([label, figures]); };
  for (const [key, f] of Object.entries(perf.account || {})) add(`account ${key}`, f);
  for (const [key, f] of Object.entries(perf.source || {})) add(`source: ${KIND_NAMES[key] || key}`, f);
  for (const [key, f] of Object.entries(perf.strategy || {})) add(`strategy ${key}`, f);
  const pct = (v) => (v === null || v === undefined ? "–" : `${num(v, 2)} %`);
  const plain = num;
  $("performance").tBodies[0].replaceChildren(...rows.map(([label, f]) => el("tr", {},
    td("Of", { text: label }),
    td("Return", { class: `num ${cls(f.return_pct)}`, text: pct(f.return_pct) }),
    td("Max drawdown", { class: "num", text: pct(f.max_drawdown_pct) }),
    td("Sharpe", { class: "num", text: plain(f.sharpe, 2) }),
    td("Win rate", { class: "num", text: pct(f.win_rate_pct) }),
    td("Profit factor", { class: "num", text: plain(f.profit_factor, 2) }),
    td("Trades", { class: "num", text: plain(f.trades, 0) }))));
  $("performance-empty").hidden = rows.length > 0;
}

let groupsTimer = null;
function refreshGroupsSoon() {
  if (groupsTimer) return;
  groupsTimer = setTimeout(() => { groupsTimer = null; loadGroups(); }, 1000);
}

async function loadGroups() {
  S.groups = await api("groups").catch(() => S.groups || []);
  S.dirty.add("groups"); schedule();
}

function renderGroups() {
  // Each open multi-leg position as the order that opened it: its legs, greeks, bounds and
  // payoff (at the first expiry, solid; at today's marks, dashed).
  const groups = S.groups || [];
  $("groups").replaceChildren(...groups.map((g) => {
    const tag = (g.order && g.order.tag) || "";
    const template = (tag.split(" ").find((w) => w.startsWith("template:")) || "").slice(9);
    const k = g.greeks || {};
    const money = (v) => (v === undefined || v === null ? "unlimited" : num(v));
    const facts = el("div", { class: "facts" },
      ...[["Max profit", money(g.max_profit)], ["Max loss", money(g.max_loss)],
          ["Break-evens", (g.breakevens || []).map((b) => num(b)).join(", ") || "–"],
          ["Unrealized", signed(g.unrealized_pnl)], ["Delta", num(k.delta, 3)],
          ["Theta", num(k.theta, 3)], ["Vega", num(k.vega, 3)], ["Gamma", num(k.gamma, 4)]]
        .map(([label, value]) => el("div", {}, el("div", { class: "label muted small", text: label }),
                                    el("div", { text: value }))));
    const legs = el("table", {}, el("tbody", {}, ...(g.legs || []).map((l) => el("tr", {},
      td("Leg", { text: l.symbol }), td("Qty", { class: "num", text: qty(l.qty) }),
      td("Entry", { class: "num", text: num(l.avg_price, 2) }),
      td("Mark", { class: "num", text: num(l.mark, 2) }),
      td("P&L", { class: `num ${cls(l.unrealized_pnl)}`, text: signed(l.unrealized_pnl) })))));
    return el("div", { class: "card group", "data-group": g.id },
      el("h2", { text: `${template || "multi-leg"} on ${g.underlying}` }), facts,
      g.payoff ? payoffSvg(g.payoff, g.breakevens || []) : null, legs);
  }));
  $("groups-empty").hidden = groups.length > 0;
}

function payoffSvg(p, breakevens) {
  const NS = "http://www.w3.org/2000/svg", W = 440, H = 190, padX = 44, padY = 16;
  const xs = p.prices, ys = [...p.at_expiry, ...p.now, 0];
  const x0 = xs[0], x1 = xs[xs.length - 1];
  const y0 = Math.min(...ys), y1 = Math.max(...ys) === y0 ? y0 + 1 : Math.max(...ys);
  const X = (x) => padX + (x - x0) / (x1 - x0) * (W - padX - 8);
  const Y = (y) => H - padY - (y - y0) / (y1 - y0) * (H - 2 * padY);
  const svg = document.createElementNS(NS, "svg");
  for (const [a, v] of [["viewBox", `0 0 ${W} ${H}`], ["class", "payoff"], ["role", "img"],
                        ["aria-label", "payoff at expiry and today"]]) svg.setAttribute(a, v);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [a, v] of Object.entries(attrs)) e.setAttribute(a, String(v));
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  const line = (pts, stroke, dash) => add("polyline", { points: pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" "),
    fill: "none", stroke, "stroke-width": 2, ...(dash ? { "stroke-dasharray": "5 4" } : {}) });
  line([[x0, 0], [x1, 0]], "#8c959f");
  for (const b of breakevens) {
    add("line", { x1: X(b), x2: X(b), y1: padY, y2: H - padY, stroke: "#d29922", "stroke-dasharray": "2 3" });
    add("text", { x: X(b) + 3, y: padY + 10 }, num(b));
  }
  line(xs.map((x, i) => [x, p.at_expiry[i]]), "#e6edf3");
  line(xs.map((x, i) => [x, p.now[i]]), "#4c8dff", true);
  add("text", { x: 2, y: Y(y1) + 4 }, num(y1, 0));
  add("text", { x: 2, y: Y(y0) }, num(y0, 0));
  add("text", { x: padX, y: H - 2 }, num(x0));
  add("text", { x: W - 50, y: H - 2 }, num(x1));
  return svg;
}

function renderEquity() {
  if (!window.LightweightCharts || S.view !== "account") return;
  if (!equityChart) {
    equityChart = makeChart($("equity-chart"));
    // Steps: the host sends a point when the equity changes (and the store keeps one a
    // minute), each the value that held until the next; a sloped line would invent prices.
    equitySeries = equityChart.addLineSeries({ color: "#4c8dff", lineWidth: 2, priceLineVisible: false, lineType: 1 });
    // The drawdown, shaded between 0 % (a new high) and how far under its peak the equity is.
    ddSeries = equityChart.addBaselineSeries({ priceScaleId: "dd", lineType: 1, lineWidth: 1,
      baseValue: { type: "price", price: 0 }, topLineColor: "rgba(239,83,80,.8)",
      topFillColor1: "rgba(0,0,0,0)", topFillColor2: "rgba(0,0,0,0)",
      bottomLineColor: "rgba(239,83,80,.8)", bottomFillColor1: "rgba(239,83,80,.45)",
      bottomFillColor2: "rgba(239,83,80,.15)", crosshairMarkerVisible: false,
      priceFormat: { type: "custom", formatter: (x) => `${x.toFixed(2)} %` }, priceLineVisible: false });
    equityChart.priceScale("dd").applyOptions({ scaleMargins: { top: 0.72, bottom: 0 } });
    equityChart.priceScale("right").applyOptions({ scaleMargins: { top: 0.05, bottom: 0.32 } });
  }
  const points = new Map();
  for (const [t, e] of S.curve) points.set(Math.floor(t), e);
  const now = Math.floor(Date.now() / 1000);
  if (S.acct && !points.has(now)) points.set(now, S.acct.equity);
  const sorted = [...points.entries()].sort((x, y) => x[0] - y[0]);
  let peak = -Infinity;
  const eq = [], dd = [];
  for (const [time, value] of sorted) {
    peak = Math.max(peak, value);
    eq.push({ time, value });
    dd.push({ time, value: peak > 0 ? 100 * (value - peak) / peak : 0 });
  }
  equitySeries.setData(eq); ddSeries.setData(dd);
  equityChart.timeScale().fitContent();
}

function td(label, props, ...children) { return el("td", { ...props, "data-label": label }, ...children); }

const orderRows = new Map();  // order id -> its row
function orderRow(o) {
  return el("tr", { "data-order": o.id },
    td("Time", { class: "muted", text: when(o.created_at) }), td("Symbol", { text: o.symbol }),
    td("Side", { class: `side ${o.side}`, text: o.side }), td("Qty", { class: "num", text: qty(o.qty) }),
    td("Type", { text: o.order_class === "simple" ? o.type : `${o.type} (${o.order_class})` }),
    td("Status", { class: `status ${o.status}`, text: o.status.replace("_", " "), "data-status": o.status }),
    td("Filled @", { class: "num", text: o.filled_qty ? `${qty(o.filled_qty)} @ ${num(o.avg_fill_price, 4)}` : "" }),
    td("Source", {}, badge(sourceOf(o))),
    td("Reason", { class: o.status === "rejected" ? "reason" : "reason quiet", text: o.reject_reason }),
    td("", { class: "act" }, o.open && S.me.can_trade ? el("button", { class: "danger", text: "Cancel",
      onclick: () => act(`orders/${encodeURIComponent(o.id)}/cancel`, `cancel ${o.id}`) }) : null));
}

function renderOrders() {
  // Live, only the orders that changed are drawn: a changed row is replaced where it is, a
  // new order goes on top, the oldest beyond 300 go. After a (re)load, everything is drawn.
  const body = $("orders").tBodies[0];
  if (S.ordersReset || !body.rows.length) {
    S.ordersReset = false; S.changedOrders.clear(); orderRows.clear();
    const orders = [...S.orders.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0)
      || (a.id < b.id ? 1 : -1)).slice(0, ORDER_ROWS);
    body.replaceChildren(...orders.map((o) => { const row = orderRow(o); orderRows.set(o.id, row); return row; }));
  } else {
    const fresh = [];
    for (const id of S.changedOrders) {
      const o = S.orders.get(id);
      if (!o) continue;
      const row = orderRow(o), old = orderRows.get(id);
      orderRows.set(id, row);
      if (old && old.isConnected) old.replaceWith(row); else fresh.push(row);
    }
    S.changedOrders.clear();
    if (fresh.length) body.prepend(...fresh.reverse());
    while (body.rows.length > ORDER_ROWS) { const last = body.rows[body.rows.length - 1]; orderRows.delete(last.dataset.order); last.remove(); }
  }
  $("orders-empty").hidden = body.rows.length > 0;
  more("orders-more", body.rows.length >= ORDER_ROWS, `The newest ${ORDER_ROWS} orders are shown; `, "sandtrade orders", " lists them all.");
}

function describe(c) {
  const parts = [c.action, c.qty ? qty(c.qty) : (c.size ? "sized" : ""), c.symbol, c.order_type || "market"];
  if (c.limit_price) parts.push(`limit ${c.limit_price}`);
  if (c.stop_price) parts.push(`stop ${c.stop_price}`);
  if (c.take_profit) parts.push(`TP ${c.take_profit.price || (c.take_profit.percent + " %")}`);
  if (c.stop_loss) parts.push(`SL ${c.stop_loss.price || (c.stop_loss.percent + " %")}`);
  return parts.filter(Boolean).join(" ");
}

// Live, only the signals that changed are drawn (a changed one is replaced where it is, a new
// one goes in its place by time, newest first) and the newest SIGNAL_ROWS are shown; after a
// (re)load or a new filter, everything is drawn. Rebuilding 200 signals ten times a second
// cost a watching browser half a core on a host taking 50 alerts a second.
const SIGNAL_ROWS = 100;
const signalRows = new Map();
function renderSignals() {
  const fSource = $("f-source").value, fStatus = $("f-status").value;
  const fSymbol = $("f-symbol").value.trim().toUpperCase();
  const shown = (s) => (!fSource || s.source.kind === fSource) && (!fStatus || s.status === fStatus)
    && (!fSymbol || s.symbols.some((x) => x.toUpperCase().includes(fSymbol)));
  const box = $("timeline");
  const reset = S.signalsReset || !box.children.length;
  const changed = reset ? [...S.signals.values()]
    : [...S.changedSignals].map((id) => S.signals.get(id)).filter(Boolean);
  S.signalsReset = false; S.changedSignals.clear();
  const known = new Set([...$("f-source").options].map((o) => o.value));
  for (const k of new Set(changed.map((s) => s.source.kind))) {
    if (!known.has(k)) $("f-source").append(el("option", { value: k, text: KIND_NAMES[k] || k }));
  }
  if (reset) {
    signalRows.clear();
    const list = changed.filter(shown).sort((a, b) => b.received_at - a.received_at).slice(0, SIGNAL_ROWS);
    box.replaceChildren(...list.map((s) => { const li = signalItem(s); signalRows.set(s.id, li); return li; }));
  } else {
    for (const s of changed) {
      const old = signalRows.get(s.id);
      if (!shown(s)) { if (old) { old.remove(); signalRows.delete(s.id); } continue; }
      const li = signalItem(s);
      signalRows.set(s.id, li);
      if (old && old.isConnected) { old.replaceWith(li); continue; }
      let next = box.firstElementChild;
      while (next && (S.signals.get(next.dataset.signal) || {}).received_at > s.received_at) next = next.nextElementSibling;
      box.insertBefore(li, next);
    }
    while (box.children.length > SIGNAL_ROWS) { const last = box.lastElementChild; signalRows.delete(last.dataset.signal); last.remove(); }
  }
  $("timeline-empty").hidden = box.children.length > 0;
  more("timeline-more", box.children.length >= SIGNAL_ROWS, `The newest ${SIGNAL_ROWS} signals are shown; `, "sandtrade signals list --last N", " goes further back.");
}

function more(id, shown, before, command, after) {
  // Under a list cut to its newest rows: where the rest are.
  const p = $(id);
  if (p.hidden === !shown) return;
  p.hidden = !shown;
  if (shown && !p.childNodes.length) p.append(before, el("code", { text: command }), after);
}

function signalItem(s) {
  return el("li", { class: `sig ${s.status}`, "data-signal": s.id },
    el("div", { class: "sig-head" }, badge(s.source),
      el("span", { class: `status ${s.status}`, text: s.status, "data-status": s.status }),
      el("span", { text: s.symbols.join(", ") }), el("span", { class: "id", text: `${s.id} · ${when(s.received_at)} · ${s.destination || "no destination"}` })),
    s.reason ? el("div", { class: "reason", text: s.reason }) : null,
    s.commands.length ? el("div", { class: "sig-read" }, el("span", { class: "muted", text: "read: " }),
      el("span", { text: s.commands.map(describe).join("; ") })) : null,
    el("ol", { class: "steps" }, ...s.history.map((h) => el("li", { class: `status ${h.status}` },
      el("span", { text: h.status }), h.reason ? el("span", { class: "why", text: ` — ${h.reason}` }) : null))),
    s.orders.length ? el("div", { class: "small" }, el("span", { class: "muted", text: "orders: " }),
      ...s.orders.map((id) => { const o = S.orders.get(id);
        return el("span", { class: `status ${o ? o.status : ""}`, text: `${id}${o ? ` (${o.status}${o.avg_fill_price ? " @ " + num(o.avg_fill_price, 4) : ""})` : ""} ` }); })) : null,
    el("pre", { text: s.raw_body }));
}

function fact(label, value) { return el("div", {}, el("div", { class: "label", text: label }), el("div", { class: "value", text: value })); }

function renderStrategies() {
  const cards = [...S.strategies.values()].sort((a, b) => a.name.localeCompare(b.name)).map((s) => {
    const running = ["running", "starting"].includes(s.state);
    return el("article", { class: "card", "data-strategy": s.name },
      el("div", { class: "strat-head" }, el("h3", { text: s.name }),
        el("span", { class: `status ${running ? "filled" : s.state === "failed" ? "failed" : "canceled"}`, text: s.state, "data-state": s.state }),
        el("span", { class: "muted small", text: s.symbols.join(", ") }),
        S.me.can_admin ? el("div", { class: "actions" },
          running ? el("button", { class: "danger", text: "Stop", onclick: () => act(`strategies/${encodeURIComponent(s.name)}/stop`, `stop ${s.name}`) })
            : el("button", { class: "go", text: "Start", onclick: () => act(`strategies/${encodeURIComponent(s.name)}/start`, `start ${s.name}`) })) : null),
      el("div", { class: "facts" }, fact("CPU", `${num(s.cpu_seconds, 1)} s`), fact("Memory", `${num(s.rss_mb, 1)} MB`),
        fact("Restarts", String(s.restarts)), fact("Kill reason", s.kill_reason || "–")),
      s.last_errors.length ? el("ul", { class: "errors" }, ...s.last_errors.map((e) => el("li", { text: e }))) : null,
      el("pre", { class: "log", "data-log": s.name }));
  });
  $("strategies").replaceChildren(...cards);
  $("strategies-empty").hidden = cards.length > 0;
  renderLogs(true);
}

function renderLogs(all) {
  for (const box of document.querySelectorAll("pre.log")) {
    const lines = S.logs.get(box.dataset.log) || [];
    const follow = all || box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.replaceChildren(...lines.slice(-300).map((l) => el("div", { class: l.origin },
      el("span", { class: "muted", text: when(l.time).slice(11) + " " }), el("span", { text: l.line }))));
    if (follow) box.scrollTop = box.scrollHeight;
  }
}

// ------------------------------------------------------------------ the chart

function chartOptions() {
  // attributionLogo: the logo injects an inline <style> our CSP refuses; the page credits
  // TradingView in text instead (lightweight-charts' NOTICE allows either).
  return { layout: { background: { type: "solid", color: "#161c24" }, textColor: "#aab4c0", attributionLogo: false },
    grid: { vertLines: { color: "#1f2833" }, horzLines: { color: "#1f2833" } },
    rightPriceScale: { borderColor: "#253040" }, timeScale: { borderColor: "#253040", timeVisible: true },
    crosshair: { mode: 0 } };
}

function makeChart(container) {
  // Sized from its container now and on every resize (autoSize would start at 0 wide while
  // the view appears, and fitContent would then squeeze every bar into a few pixels).
  const chart = LightweightCharts.createChart(container, { ...chartOptions(),
    width: container.clientWidth, height: container.clientHeight });
  let wide = container.clientWidth;
  new ResizeObserver(() => {
    // A hidden view's chart has no visible range: a crosshair left where the mouse was
    // would be drawn against none (lightweight-charts then throws "Value is null").
    if (!container.clientWidth) chart.clearCrosshairPosition();
    chart.resize(container.clientWidth, container.clientHeight);
    if (!wide && container.clientWidth) chart.timeScale().fitContent();
    wide = container.clientWidth;
  }).observe(container);
  return chart;
}

let priceChart = null, candles = null, priceLines = [];
async function loadBars() {
  if (!S.symbol || !window.LightweightCharts) return;
  if (!priceChart) {
    priceChart = makeChart($("price-chart"));
    candles = priceChart.addCandlestickSeries({ upColor: "#26a69a", downColor: "#ef5350",
      borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350" });
  }
  const symbol = S.symbol, tf = S.tf;
  let bars;
  try { bars = await api("bars", { symbol, interval: tf }); }
  catch (e) { $("chart-note").textContent = e.message; return; }
  if (symbol !== S.symbol || tf !== S.tf) return;
  const first = !S.bars.length;
  S.bars = bars;
  const candleData = bars.map((b) => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close }));
  if (!setSeriesData(candles, candleData)) {
    // A plot's stale points (lightweight-charts' issue 2044): drawn afresh below.
    for (const series of plotSeries.values()) priceChart.removeSeries(series);
    plotSeries = new Map();
    plotsBelow = false;
    candles.setData(candleData);
  }
  if (bars.length) S.lastBar = Math.max(S.lastBar, bars[bars.length - 1].time);
  $("chart-note").textContent = bars.length ? `${bars.length} bars · last ${when(bars[bars.length - 1].time)} UTC` : "no bars yet";
  if (first) priceChart.timeScale().fitContent();
  renderMarkers();
  if (first) loadPlots(); else renderPlots();
}

// ------------------------------------------------------------------ strategies' plots

// ctx.plot's series: on the candles' scale (pane "price"), or on a scale of their own in
// the lower quarter of the chart (pane "below"), each bar's last value, at the chart's bars.
const PLOT_COLORS = ["#ff9800", "#b388ff", "#4dd0e1", "#f06292", "#aed581", "#ffd54f", "#90a4ae", "#4c8dff"];
const PLOT_POINTS = 2000;
let plotSeries = new Map(), plotsBelow = false;

function setSeriesData(series, data) {
  // Whether the chart took the data (see renderPlots for when it may not).
  try { series.setData(data); return true; } catch (e) { return false; }
}
async function loadPlots() {
  const symbol = S.symbol, account = S.account;
  let list;
  try { list = await api("plots", { symbol, account }); } catch (e) { return; }
  if (symbol !== S.symbol || account !== S.account) return;
  S.plots = new Map(list.map((p) => [`${p.strategy}/${p.name}`, p]));
  renderPlots();
}

function mergePlot(strategy, s) {
  if (s.symbol !== S.symbol) return;
  const key = `${strategy}/${s.name}`;
  let p = S.plots.get(key);
  if (!p) { p = { strategy, name: s.name, pane: s.pane, color: s.color, symbol: s.symbol, points: [] }; S.plots.set(key, p); }
  for (const [t, v] of s.points) {
    const last = p.points[p.points.length - 1];
    if (last && t < last[0]) continue;
    if (last && t === last[0]) last[1] = v; else p.points.push([t, v]);
  }
  if (p.points.length > PLOT_POINTS) p.points.splice(0, p.points.length - PLOT_POINTS);
}

function renderPlots() {
  if (!priceChart || !S.bars.length) return;
  for (const [key, series] of plotSeries) {
    if (!S.plots.has(key)) { priceChart.removeSeries(series); plotSeries.delete(key); }
  }
  let k = 0, below = false;
  const legend = [];
  for (const [key, p] of S.plots) {
    const color = p.color || PLOT_COLORS[k++ % PLOT_COLORS.length];
    below = below || p.pane === "below";
    const fresh = () => {
      const made = priceChart.addLineSeries({ color, lineWidth: 2, priceLineVisible: false,
        lastValueVisible: false, crosshairMarkerVisible: false,
        priceScaleId: p.pane === "below" ? "plots-below" : "right" });
      plotSeries.set(key, made);
      return made;
    };
    let series = plotSeries.get(key) || fresh();
    // One point a bar of the chart: the last value plotted within it.
    const first = S.bars[0].time, data = [];
    for (const [t, v] of p.points) {
      if (t < first) continue;
      const time = barTime(t);
      if (data.length && data[data.length - 1].time === time) data[data.length - 1].value = v;
      else data.push({ time, value: v });
    }
    if (!setSeriesData(series, data)) {
      // lightweight-charts 4.2 can throw "Value is null" from setData when a line's drawn
      // points are older than the time scale (its issue 2044): a new series has none.
      priceChart.removeSeries(series);
      series = fresh();
      series.setData(data);  // a second failure is a real one: the console shows it
    }
    const last = p.points[p.points.length - 1];
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = color;
    legend.push(el("li", { "data-plot": key, "data-pane": p.pane, "data-points": String(data.length) }, swatch,
      el("span", { text: `${p.strategy} · ${p.name}` }), el("span", { class: "muted small", text: last ? num(last[1], 4) : "–" })));
  }
  if (below !== plotsBelow) {  // the scales change only when a lower pane comes or goes
    plotsBelow = below;
    if (below) priceChart.priceScale("plots-below").applyOptions({ scaleMargins: { top: 0.76, bottom: 0.02 } });
    priceChart.priceScale("right").applyOptions({ scaleMargins: below ? { top: 0.06, bottom: 0.3 } : { top: 0.1, bottom: 0.1 } });
  }
  $("plots").replaceChildren(...legend);
  $("plots").hidden = legend.length === 0;
}

function barTime(t) {
  // The open time of the bar that holds t (markers sit on bars).
  const bars = S.bars;
  if (!bars.length) return null;
  let lo = 0, hi = bars.length - 1;
  if (t <= bars[0].time) return bars[0].time;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (bars[mid].time <= t) lo = mid; else hi = mid - 1; }
  return bars[lo].time;
}

function renderMarkers() {
  const symbol = S.symbol;
  const items = [];
  for (const f of S.fills.values()) {
    if (f.symbol !== symbol) continue;
    const order = S.orders.get(f.order_id);
    const source = order ? sourceOf(order) : (S.signalOfOrder.get(f.order_id) || { kind: "unknown" });
    items.push({ kind: "fill", time: f.time, side: f.side, source, fill: f,
      text: `${f.side === "buy" ? "B" : "S"} ${qty(f.qty)} ${shortBadge(source)}` });
  }
  const firstFill = new Map();
  for (const f of S.fills.values()) if (!firstFill.has(f.order_id)) firstFill.set(f.order_id, f);
  for (const s of S.signals.values()) {
    if (!s.symbols.includes(symbol)) continue;
    const fill = s.orders.map((id) => firstFill.get(id)).find(Boolean);
    const time = fill ? fill.time : s.seenBar;
    if (!time) continue;
    items.push({ kind: "signal", time, source: s.source, signal: s, text: shortBadge(s.source) });
  }
  items.sort((a, b) => a.time - b.time);
  $("markers").replaceChildren(...items.slice(-100).reverse().map((m) => el("li", { "data-marker": m.kind, "data-side": m.side || "" },
    el("span", { class: m.kind === "fill" ? `side ${m.side}` : "muted", text: m.kind === "fill" ? (m.side === "buy" ? "▲ fill" : "▼ fill") : "◆ signal" }),
    badge(m.source), el("span", { text: m.kind === "fill" ? `${m.side} ${qty(m.fill.qty)} ${symbol} @ ${num(m.fill.price, 4)}` : `${m.signal.status}: ${m.signal.commands.map(describe).join("; ")}` }),
    el("span", { class: "muted small", text: when(m.time) }))));
  $("markers-empty").hidden = items.length > 0;
  if (!candles || !S.bars.length) return;
  const markers = [];
  for (const m of items) {
    const t = barTime(m.time);
    if (t === null) continue;
    if (m.kind === "fill") markers.push({ time: t, position: m.side === "buy" ? "belowBar" : "aboveBar",
      color: m.side === "buy" ? "#26a69a" : "#ef5350", shape: m.side === "buy" ? "arrowUp" : "arrowDown", text: m.text });
    else markers.push({ time: t, position: "aboveBar", color: "#4c8dff", shape: "circle", text: m.text });
  }
  markers.sort((a, b) => a.time - b.time);
  candles.setMarkers(markers);
  for (const line of priceLines) candles.removePriceLine(line);
  priceLines = [];
  const pos = ((S.acct && S.acct.positions) || []).find((p) => p.symbol === symbol);
  if (pos) priceLines.push(candles.createPriceLine({ price: pos.avg_price, color: "#f0b429", lineWidth: 1, lineStyle: 2, title: `avg ${qty(pos.qty)}` }));
  for (const o of S.orders.values()) {
    if (o.symbol !== symbol || !o.open || !o.parent_id) continue;
    if (o.type === "limit" && o.limit_price) priceLines.push(candles.createPriceLine({ price: o.limit_price, color: "#26a69a", lineWidth: 1, lineStyle: 1, title: "TP" }));
    if ((o.type === "stop" || o.type === "stop_limit") && o.stop_price) priceLines.push(candles.createPriceLine({ price: o.stop_price, color: "#ef5350", lineWidth: 1, lineStyle: 1, title: "SL" }));
  }
}

// ------------------------------------------------------------------ views and boot

function show(view) {
  if (!["account", "chart", "signals", "orders", "strategies", "options"].includes(view)) view = "account";
  S.view = view;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${view}`;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
  if (view === "chart") loadBars();
  if (view === "options") loadGroups();
  if (view === "account" || view === "chart") refreshAccountSoon();
  if (view === "orders") S.ordersReset = true;  // drawn afresh: it changed out of sight
  if (view === "signals") S.signalsReset = true;
  for (const d of VISIBLE[view]) S.dirty.add(d);
  schedule();
}

function banner(mode) {
  const b = $("banner");
  if (mode.mode === "live") {
    b.className = "banner live";
    b.textContent = `LIVE — real orders through ${mode.brokers.join(", ")}: real money`;
  } else {
    b.className = "banner paper";
    b.textContent = "PAPER — simulated orders, no real money";
  }
}

async function boot() {
  const r = await fetch("/dashboard/api/me", { credentials: "same-origin" });
  if (r.status === 401) { location.reload(); return; }
  S.me = await r.json();
  S.after = S.me.last_event_id;
  banner(S.me.mode);
  S.account = S.me.operator ? (S.me.accounts[0] || "") : S.me.account;
  $("whoami").textContent = S.me.operator ? `operator · token ${S.me.token_id}` : `${S.me.account} · token ${S.me.token_id}`;
  if (S.me.operator) {
    const sw = $("account-switch");
    sw.replaceChildren(...S.me.accounts.map((a) => el("option", { value: a, text: a })));
    sw.hidden = false;
    sw.addEventListener("change", async () => {
      // The old account's stream stops first: its events must not reach the new account's
      // views (a strategy of the old account would be looked up in the new one).
      if (S.source) { S.source.close(); S.source = null; }
      S.account = sw.value;
      S.after = (await (await fetch("/dashboard/api/me")).json()).last_event_id;
      await loadAll(); connect();
    });
  }
  $("signout").addEventListener("click", async () => {
    await fetch("/dashboard/signout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": S.me.csrf } });
    location.reload();
  });
  const sym = $("symbol");
  sym.replaceChildren(...S.me.symbols.map((s) => el("option", { value: s, text: s })));
  S.symbol = S.me.symbols[0] || "";
  sym.addEventListener("change", () => { S.symbol = sym.value; S.bars = []; S.plots = new Map(); loadBars(); });
  for (const b of document.querySelectorAll("#timeframes button")) {
    b.classList.toggle("active", b.dataset.tf === S.tf);
    b.addEventListener("click", () => {
      S.tf = b.dataset.tf; S.bars = [];
      for (const x of document.querySelectorAll("#timeframes button")) x.classList.toggle("active", x === b);
      loadBars();
    });
  }
  for (const id of ["f-source", "f-status", "f-symbol"]) $(id).addEventListener("input", () => { S.signalsReset = true; S.dirty.add("signals"); schedule(); });
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  await loadAll();
  connect();
  show(location.hash.slice(1) || "account");
}

document.addEventListener("DOMContentLoaded", () => { boot().catch((e) => toast(String(e.message || e))); });
