"""The dashboard page of notebook 09: one self-contained HTML document (inline CSS and JavaScript).

It loads nothing from any other host: no CDN script, no web font, no image. It reads ``/snapshot``
once, then applies every Server-Sent Event from ``/events`` (one per update the processor made in
Redis). Element ids (``orders``, ``revenue``, ``updates``, ``status``, ``products``) are what the
browser test reads.
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Streams Lab - live orders</title>
<style>
 body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2328;background:#f6f8fa}
 h1{font-size:20px;margin:0 0 4px} .sub{color:#57606a;margin:0 0 16px}
 .cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
 .card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:130px}
 .card .v{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums} .card .k{color:#57606a;font-size:12px}
 .badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-weight:600;font-size:11px;letter-spacing:.03em}
 .LIVE{background:#1a7f37} .CONNECTING{background:#9a6700} .OFFLINE{background:#cf222e}
 table{border-collapse:collapse;background:#fff;border:1px solid #d0d7de;border-radius:8px;min-width:520px}
 th,td{padding:5px 10px;text-align:left;border-bottom:1px solid #eaeef2;font-variant-numeric:tabular-nums}
 td.n,th.n{text-align:right} #minutes{min-width:200px} .bar{height:12px;background:#0969da;border-radius:3px}
 .cols{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start} h2{font-size:15px;margin:0 0 8px}
 .flash{animation:fl .6s} @keyframes fl{from{background:#fff8c5}to{background:transparent}}
 footer{margin-top:16px;color:#57606a;font-size:12px}
</style></head>
<body>
<h1 id="title">Live orders</h1>
<p class="sub">Kafka &rarr; processor &rarr; Redis &rarr; this page. Status: <span id="status" class="badge CONNECTING">CONNECTING</span></p>
<div class="cards">
 <div class="card"><div class="v" id="orders">-</div><div class="k">orders</div></div>
 <div class="card"><div class="v" id="revenue">-</div><div class="k">revenue</div></div>
 <div class="card"><div class="v" id="updates">0</div><div class="k">updates pushed to this page</div></div>
 <div class="card"><div class="v" id="last">-</div><div class="k">last partition:offset</div></div>
</div>
<div class="cols">
 <div><h2>Top sellers (units) and revenue per product</h2>
  <table id="products"><thead><tr><th>#</th><th>product</th><th class="n">units</th><th class="n">revenue</th><th style="width:160px"></th></tr></thead><tbody></tbody></table></div>
 <div><h2>Orders per minute (event time, UTC)</h2>
  <table id="minutes"><thead><tr><th>minute</th><th class="n">orders</th></tr></thead><tbody></tbody></table></div>
</div>
<footer>Served on 127.0.0.1 by the notebook's kernel. This page only reads: it never writes to Redis or Kafka.</footer>
<script>
"use strict";
const state = {revenue: {}, sold: {}, per_minute: {}, updates: 0, last: "-"};
let pending = false;
const money = c => "$" + (c / 100).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
function render() {
  pending = false;
  const products = Object.keys(state.sold).sort((a, b) => (state.sold[b] - state.sold[a]) || a.localeCompare(b));
  const orders = Object.values(state.per_minute).reduce((a, b) => a + b, 0);
  const revenue = Object.values(state.revenue).reduce((a, b) => a + b, 0);
  document.getElementById("orders").textContent = orders.toLocaleString("en-US");
  document.getElementById("revenue").textContent = money(revenue);
  document.getElementById("updates").textContent = state.updates.toLocaleString("en-US");
  document.getElementById("last").textContent = state.last;
  const max = Math.max(1, ...products.map(p => state.sold[p]));
  const body = document.querySelector("#products tbody");
  body.replaceChildren();
  products.forEach((p, i) => {
    const tr = document.createElement("tr"); tr.dataset.product = p;
    cell(tr, String(i + 1)); cell(tr, p); cell(tr, String(state.sold[p]), "n"); cell(tr, money(state.revenue[p] || 0), "n");
    const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = (150 * state.sold[p] / max) + "px";
    cell(tr, "").appendChild(bar);
    if (p === state.changed) tr.className = "flash";
    body.appendChild(tr);
  });
  const mbody = document.querySelector("#minutes tbody");
  mbody.replaceChildren();
  Object.keys(state.per_minute).sort().slice(-8).forEach(m => {
    const tr = document.createElement("tr"); cell(tr, m.slice(-5)); cell(tr, String(state.per_minute[m]), "n"); mbody.appendChild(tr);
  });
}
function schedule() { if (!pending) { pending = true; requestAnimationFrame(render); } }
function setStatus(word) { const s = document.getElementById("status"); s.textContent = word; s.className = "badge " + word; }
fetch("/snapshot").then(r => r.json()).then(s => {
  // totals only grow: keep whichever is newer, the snapshot or an event that arrived first
  for (const k of ["revenue", "sold", "per_minute"])
    for (const [key, v] of Object.entries(s[k])) state[k][key] = Math.max(v, state[k][key] || 0);
  if (s.title) document.getElementById("title").textContent = s.title;
  schedule();
}).catch(() => setStatus("OFFLINE"));
const events = new EventSource("/events");
events.onopen = () => setStatus("LIVE");
events.onerror = () => setStatus(events.readyState === EventSource.CLOSED ? "OFFLINE" : "CONNECTING");
events.onmessage = e => {
  const u = JSON.parse(e.data);
  if (u.revenue !== undefined) state.revenue[u.product] = u.revenue;
  if (u.sold !== undefined) state.sold[u.product] = u.sold;
  if (u.orders !== undefined) state.per_minute[u.minute] = u.orders;
  state.updates += 1; state.changed = u.product; state.last = u.partition + ":" + u.offset;
  schedule();
};
</script>
</body></html>
"""
