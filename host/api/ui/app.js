// The status page: starts from the last minutes the server kept
// (GET /v1/pipelines/{name}/history), polls GET /v1/pipelines every second,
// draws throughput and lag as SVG, and sends pause / resume (asking for the
// API token when the server wants one).
"use strict";

const WINDOW_S = 300; // seconds of history plotted
const history = new Map(); // name → [{t, written, lag}]
let token = sessionStorage.getItem("connectd-token") || "";

function fmt(n) { return n == null ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 0 }); }

function ago(iso) {
  if (!iso) return "–";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? s + "s ago" : Math.floor(s / 60) + "m " + (s % 60) + "s ago";
}

function record(p, now) {
  const h = history.get(p.name) || [];
  h.push({ t: now, written: p.recordsWritten, lag: p.totalLag == null ? null : p.totalLag });
  while (h.length && h[0].t < now - WINDOW_S * 1000) h.shift();
  history.set(p.name, h);
  return h;
}

// MIN_INTERVAL_S is the shortest interval a rate is measured over: the
// page's first sample can land a few milliseconds after the last one the
// server kept, and a rate over such a sliver is noise (often 0).
const MIN_INTERVAL_S = 0.5;

// rates turns the samples into records/s, each over at least MIN_INTERVAL_S
// (a sample closer than that to the previous point's is folded into the next).
function rates(h) {
  const out = [];
  let base = 0;
  for (let i = 1; i < h.length; i++) {
    const dt = (h[i].t - h[base].t) / 1000;
    if (dt < MIN_INTERVAL_S) continue;
    out.push({ t: h[i].t, v: Math.max(0, h[i].written - h[base].written) / dt });
    base = i;
  }
  return out;
}

function draw(svg, points, now) {
  const max = Math.max(1, ...points.map((p) => p.v));
  const xy = points.map((p) => {
    const x = 300 - ((now - p.t) / 1000 / WINDOW_S) * 300;
    const y = 78 - (p.v / max) * 70;
    return x.toFixed(1) + "," + y.toFixed(1);
  });
  svg.innerHTML = "";
  const ns = "http://www.w3.org/2000/svg";
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", xy.join(" "));
  svg.appendChild(line);
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "3");
  label.setAttribute("y", "10");
  label.textContent = "max " + fmt(max);
  svg.appendChild(label);
  svg.dataset.points = String(points.length);
  svg.dataset.last = points.length ? String(Math.round(points[points.length - 1].v)) : "";
}

async function act(name, action) {
  for (;;) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const r = await fetch("/v1/pipelines/" + encodeURIComponent(name) + "/" + action, { method: "POST", headers });
    if (r.status === 401 || r.status === 403) {
      const t = prompt("This connectd needs its API token for " + action + ":");
      if (!t) return;
      token = t;
      sessionStorage.setItem("connectd-token", t);
      continue;
    }
    if (!r.ok) {
      const body = await r.json().catch(() => ({ error: r.statusText }));
      showProblem(body.error || r.statusText);
    }
    refresh();
    return;
  }
}

function showProblem(msg) {
  const p = document.getElementById("problem");
  p.textContent = msg;
  p.hidden = !msg;
}

// seed fills a pipeline's history with what the server kept before the
// page was opened.
async function seed(name) {
  try {
    const r = await fetch("/v1/pipelines/" + encodeURIComponent(name) + "/history", { cache: "no-store" });
    if (!r.ok) throw new Error(r.statusText);
    const body = await r.json();
    const kept = body.samples.map((s) => ({ t: Date.parse(s.t), written: s.recordsWritten, lag: s.totalLag == null ? null : s.totalLag }));
    const h = history.get(name) || [];
    const first = h.length ? h[0].t : Infinity;
    history.set(name, kept.filter((s) => s.t < first).concat(h));
  } catch (e) {
    history.set(name, history.get(name) || []); // no history: the plots start now
  }
}

function card(p) {
  let el = document.querySelector('section[data-name="' + CSS.escape(p.name) + '"]');
  if (!el) {
    el = document.getElementById("card").content.firstElementChild.cloneNode(true);
    el.dataset.name = p.name;
    el.querySelector(".pause").addEventListener("click", () => act(p.name, "pause"));
    el.querySelector(".resume").addEventListener("click", () => act(p.name, "resume"));
    document.getElementById("pipelines").appendChild(el);
  }
  return el;
}

function show(p, now) {
  const el = card(p);
  const h = record(p, now);
  const q = (s) => el.querySelector(s);
  q(".name").textContent = p.name;
  const st = q(".state");
  st.textContent = p.state + (p.pauseRequested && p.state !== "paused" ? " (pausing)" : "");
  st.className = "state " + p.state;
  q(".delivery").textContent = p.delivery;
  q(".plugins").textContent = p.source + " → " + p.sink;
  q(".batch").textContent = p.lastBatch ? p.lastBatch.batchId + " (" + fmt(p.lastBatch.numInputRows) + " records)" : "–";
  q(".written").textContent = fmt(p.recordsWritten);
  const rs = rates(h);
  q(".rate").textContent = rs.length ? fmt(rs[rs.length - 1].v) + " records/s" : "–";
  q(".lag").textContent = p.totalLag == null ? "n/a" : fmt(p.totalLag);
  const restarts = Object.entries(p.restarts || {}).filter(([, n]) => n > 0).map(([r, n]) => r + " " + n);
  q(".restarts").textContent = restarts.length ? restarts.join(", ") : "0";
  q(".commit").textContent = ago(p.lastCommit);
  for (const w of el.querySelectorAll(".window")) w.textContent = WINDOW_S / 60 + " min";
  draw(q(".chart-rate"), rs, now);
  draw(q(".chart-lag"), h.filter((s) => s.lag != null).map((s) => ({ t: s.t, v: s.lag })), now);
  const ended = p.state === "failed" || p.state === "finished";
  q(".pause").disabled = ended || p.pauseRequested;
  q(".resume").disabled = ended || !p.pauseRequested;
  const err = q(".last-error");
  err.textContent = p.error ? "last error: " + p.error : "";
  err.hidden = !p.error;
}

async function refresh() {
  try {
    const r = await fetch("/v1/pipelines", { cache: "no-store" });
    const body = await r.json();
    const now = Date.now();
    for (const p of body.pipelines) {
      if (!history.has(p.name)) await seed(p.name);
      show(p, now);
    }
    document.getElementById("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
    document.body.dataset.refreshed = String(now);
    showProblem("");
  } catch (e) {
    showProblem("cannot reach connectd: " + e.message + " (the run may have ended)");
  }
}

refresh();
setInterval(refresh, 1000);
