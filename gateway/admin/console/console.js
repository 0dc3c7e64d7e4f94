// The Skybridge console: every few seconds, read the admin API with the operator's token and
// render it. Nothing is built with innerHTML: names come from the API and stay text.
//
// Test hooks: every rendered value carries data-testid and, in data-value, the exact value
// the API gave ("" for null); the text beside it is for people. <body data-requested> counts
// refreshes started, data-rendered the last one drawn (a superseded refresh is never drawn).
"use strict";

(() => {
  const API = "/admin/v1";
  const TOKEN_KEY = "skybridge.admin.token";
  const REFRESH_MS = 5000;
  const HISTORY_POINTS = 120;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const page = { requested: 0, timer: 0, depths: [] };
  const $ = (id) => document.getElementById(id);

  // ---- the admin API

  class ApiError extends Error {
    constructor(path, status, body) {
      const error = (body && body.error) || {};
      super(error.message || `HTTP ${status}`);
      this.path = path;
      this.status = status;
      this.code = error.code || `HTTP ${status}`;
    }

    get refused() {
      return this.status === 401 || this.status === 403;
    }
  }

  async function getJson(path, token) {
    const response = await fetch(API + path, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(path, response.status, body);
    return body;
  }

  async function load(token) {
    const [health, sites, backends, links, replication, usage, transitions, warmup] =
      await Promise.all([
        getJson("/health", token),
        getJson("/sites", token),
        getJson("/backends", token),
        getJson("/links", token),
        getJson("/replication", token),
        getJson("/usage", token),
        getJson("/lifecycle/transitions", token),
        getJson("/warmup-jobs", token),
      ]);
    return { health, sites, backends, links, replication, usage, transitions, warmup };
  }

  // ---- units

  function bytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = Math.abs(n);
    let i = 0;
    for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
    const digits = i === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
    return `${n < 0 ? "−" : ""}${v.toFixed(digits)} ${units[i]}`;
  }

  const count = (n) => (n === null || n === undefined ? "—" : n.toLocaleString("en-US"));
  const millis = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)} ms`);
  const rate = (v) => (v === null || v === undefined ? "unlimited" : `${bytes(v)}/s`);

  function age(s) {
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  const health = (v) => (v === true ? "healthy" : v === false ? "unhealthy" : "unknown");

  // ---- DOM building

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  const exact = (value) => (value === null || value === undefined ? "" : String(value));

  // A value as people read it, with the API's exact value kept for tests and tooltips.
  function value(testid, raw, format, cls = "num") {
    const attrs = { "data-testid": testid, "data-value": exact(raw), class: cls };
    if (typeof raw === "number") attrs.title = raw.toLocaleString("en-US");
    return el("td", attrs, format(raw));
  }

  function badge(testid, raw, label = exact(raw)) {
    const kind = label.replace(/[^a-z-]/g, "") || "unknown";
    const span = el("span", { class: `badge ${kind}`, "data-testid": testid,
                              "data-value": exact(raw) }, label);
    return el("td", {}, span);
  }

  function table(columns, rows, empty) {
    if (rows.length === 0) return el("p", { class: "empty" }, empty);
    const body = rows.map((row) => el("tr", {}, ...columns.map(([, cell]) => cell(row))));
    // A header sits over its values: numbers are right-aligned.
    const head = el("tr", {}, ...columns.map(([title], i) =>
      el("th", { class: body[0].children[i].classList.contains("num") ? "num" : "" }, title)));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
  }

  const text = (v) => el("td", {}, exact(v));

  function show(id, ...nodes) {
    $(id).replaceChildren(...nodes);
  }

  // ---- charts (inline SVG)

  // Horizontal bars, one per row ({label, value, limit}); a limit is drawn as a tick and
  // widens the scale, so a tenant near its quota shows it.
  function barChart(testid, rows, format, empty) {
    if (rows.length === 0) return el("p", { class: "empty" }, empty);
    const width = 640;
    const labelW = 150;
    const valueW = 110;
    const rowH = 26;
    const barW = width - labelW - valueW;
    const scale = Math.max(1, ...rows.map((r) => Math.max(r.value, r.limit ?? 0)));
    const chart = svg("svg", { class: "chart", "data-testid": testid, role: "img",
                               viewBox: `0 0 ${width} ${rows.length * rowH + 4}` });
    rows.forEach((row, i) => {
      const y = i * rowH + 4;
      const w = Math.max(row.value > 0 ? 2 : 0, (row.value / scale) * barW);
      const bar = svg("rect", { x: labelW, y, width: w, height: rowH - 8, rx: 3,
                                class: row.over ? "bar over" : "bar",
                                "data-testid": `${testid}-${row.label}`,
                                "data-value": exact(row.value) },
                      svg("title", {}, `${row.label}: ${format(row.value)}`));
      chart.append(
        svg("rect", { x: labelW, y, width: barW, height: rowH - 8, rx: 3, class: "track" }),
        bar,
        svg("text", { x: labelW - 8, y: y + rowH / 2 - 1, class: "label" }, row.label),
        svg("text", { x: width - valueW + 8, y: y + rowH / 2 - 1, class: "value" },
            format(row.value)),
      );
      if (row.limit !== null && row.limit !== undefined) {
        const x = labelW + (row.limit / scale) * barW;
        chart.append(svg("line", { x1: x, x2: x, y1: y - 2, y2: y + rowH - 6, class: "limit" },
                         svg("title", {}, `quota ${format(row.limit)}`)));
      }
    });
    return chart;
  }

  // The queue depth at each refresh since the page opened, oldest at the left.
  function sparkline(testid, points) {
    const width = 640;
    const height = 90;
    const top = Math.max(1, ...points);
    const drawn = points.length === 1 ? [points[0], points[0]] : points;
    const step = width / (drawn.length - 1);
    const y = (p) => (height - 4 - (p / top) * (height - 28)).toFixed(1);
    const xy = drawn.map((p, i) => `${(i * step).toFixed(1)},${y(p)}`);
    const last = points[points.length - 1];
    return svg("svg", { class: "chart sparkline", "data-testid": testid,
                        "data-points": points.length, role: "img",
                        viewBox: `0 0 ${width} ${height}` },
               svg("line", { x1: 0, x2: width, y1: height - 4, y2: height - 4, class: "axis" }),
               svg("polyline", { points: xy.join(" "), class: "line" }),
               svg("text", { x: 0, y: 8, class: "value" },
                   `now ${count(last)} · max ${count(top)} · ${points.length} refreshes`));
  }

  // ---- sections

  function renderTopology({ sites, backends, links }) {
    show("sites", table([
      ["Site", (s) => text(s.name)],
      ["Here", (s) => badge(`site-local-${s.name}`, s.local, s.local ? "local" : "remote")],
      ["Backends", (s) => value(`site-backends-${s.name}`, s.backends.length, count)],
      ["Links", (s) => value(`site-links-${s.name}`, s.links.length, count)],
    ], sites, "No sites."));
    show("backends", table([
      ["Backend", (b) => text(b.name)],
      ["Site", (b) => text(b.site)],
      ["Tier", (b) => badge(`backend-tier-${b.name}`, b.tier)],
      ["State", (b) => badge(`backend-state-${b.name}`, b.state)],
      ["Health", (b) => badge(`backend-healthy-${b.name}`, b.healthy, health(b.healthy))],
      ["Used", (b) => value(`backend-used-bytes-${b.name}`, b.used_bytes, bytes)],
      ["Capacity", (b) => value(`backend-capacity-bytes-${b.name}`, b.capacity_bytes, bytes)],
    ], backends, "No backends."));
    show("links", table([
      ["Link", (l) => text(l.name)],
      ["From site", (l) => text(l.site)],
      ["To backend", (l) => text(l.backend)],
      ["Health", (l) => badge(`link-healthy-${l.name}`, l.healthy, health(l.healthy))],
      ["Circuit", (l) => badge(`link-circuit-${l.name}`, l.circuit, l.circuit ?? "not live")],
      ["Latency (EWMA)", (l) => value(`link-latency-ms-${l.name}`, l.latency_ewma_ms, millis)],
      ["RTT", (l) => value(`link-rtt-ms-${l.name}`, l.rtt_ms, millis)],
      ["Bandwidth", (l) => value(`link-bandwidth-${l.name}`, l.bandwidth_bytes_per_s, rate)],
    ], links, "No links."));
  }

  function tile(label, testid, raw, format) {
    return el("div", { class: "tile" }, el("span", { class: "tile-label" }, label),
              el("span", { class: "tile-value", "data-testid": testid,
                           "data-value": exact(raw) }, format(raw)));
  }

  function renderReplication(queue) {
    page.depths.push(queue.depth);
    if (page.depths.length > HISTORY_POINTS) page.depths.shift();
    show("replication-summary",
      tile("Queue depth", "replication-depth", queue.depth, count),
      tile("Lag", "replication-lag-bytes", queue.lag_bytes, bytes),
      tile("Failing", "replication-failing", queue.failing, count),
      tile("Oldest", "replication-oldest-age-s", queue.oldest_age_s, age));
    const targets = queue.targets.map((t) => ({ label: t.target_backend, value: t.bytes,
                                                over: t.failing > 0 }));
    show("replication-chart", barChart("chart-replication-lag", targets, bytes,
                                       "The queue is empty: every replica is in place."));
    show("replication-sparkline", sparkline("chart-replication-depth", page.depths));
    show("replication-targets", table([
      ["Target backend", (t) => text(t.target_backend)],
      ["Queued copies", (t) => value(`target-depth-${t.target_backend}`, t.depth, count)],
      ["Lag", (t) => value(`target-bytes-${t.target_backend}`, t.bytes, bytes)],
      ["Failing", (t) => value(`target-failing-${t.target_backend}`, t.failing, count)],
      ["Oldest", (t) => value(`target-oldest-age-s-${t.target_backend}`, t.oldest_age_s, age)],
    ], queue.targets, ""));
  }

  const quotaOf = (t, field) => (t.quota ? t.quota[field] : null);

  function headroom(testid, raw, format) {
    return value(testid, raw, format, raw !== null && raw < 0 ? "num over" : "num");
  }

  function renderUsage(usage) {
    const tenants = usage.tenants;
    show("tenant-chart", barChart("chart-tenant-bytes", tenants.map((t) => ({
      label: t.name, value: t.usage.bytes, limit: quotaOf(t, "max_bytes"),
      over: Boolean(t.quota && t.quota.exceeded),
    })), bytes, "No tenant stores anything yet."));
    show("tenants", table([
      ["Tenant", (t) => text(t.name)],
      ["Buckets", (t) => value(`tenant-buckets-${t.name}`, t.buckets, count)],
      ["Objects", (t) => value(`tenant-objects-${t.name}`, t.usage.objects, count)],
      ["Bytes", (t) => value(`tenant-bytes-${t.name}`, t.usage.bytes, bytes)],
      ["Quota bytes", (t) => value(`tenant-quota-bytes-${t.name}`, quotaOf(t, "max_bytes"),
                                   bytes)],
      ["Headroom bytes", (t) => headroom(`tenant-headroom-bytes-${t.name}`,
                                         quotaOf(t, "headroom_bytes"), bytes)],
      ["Quota objects", (t) => value(`tenant-quota-objects-${t.name}`,
                                     quotaOf(t, "max_objects"), count)],
      ["Headroom objects", (t) => headroom(`tenant-headroom-objects-${t.name}`,
                                           quotaOf(t, "headroom_objects"), count)],
    ], tenants, ""));
    show("tier-chart", barChart("chart-tier-bytes", usage.tiers.map((t) => ({
      label: t.tier, value: t.bytes,
    })), bytes, "No replica is stored yet."));
    show("tiers", table([
      ["Tier", (t) => badge(`tier-${t.tier}`, t.tier)],
      ["Bytes", (t) => value(`tier-bytes-${t.tier}`, t.bytes, bytes)],
      ["Replicas", (t) => value(`tier-replicas-${t.tier}`, t.replicas, count)],
    ], usage.tiers, ""));
  }

  // A fraction of 1 as a bar, with the exact fraction in data-value.
  function progress(testid, fraction) {
    const width = 120;
    const height = 12;
    const bar = svg("svg", { class: "chart progress", "data-testid": testid,
                             "data-value": exact(fraction), role: "img", width, height,
                             viewBox: `0 0 ${width} ${height}` },
                    svg("rect", { x: 0, y: 0, width, height, rx: 3, class: "track" }),
                    svg("rect", { x: 0, y: 0, width: (fraction * width).toFixed(1), height,
                                  rx: 3, class: "bar" }),
                    svg("title", {}, `${(fraction * 100).toFixed(1)} %`));
    return el("td", { class: "num" }, bar, ` ${Math.floor(fraction * 100)} %`);
  }

  // Tiering: the lifecycle transitions under way (copies to the new class being made).
  function renderTiering(transitions) {
    show("tiering-summary",
      tile("Transitions under way", "tiering-objects", transitions.objects, count),
      tile("Bytes moving", "tiering-bytes", transitions.bytes, bytes));
    show("tiering", table([
      ["To class", (c) => text(c.storage_class)],
      ["Versions", (c) => value(`tiering-objects-${c.storage_class}`, c.objects, count)],
      ["Bytes", (c) => value(`tiering-bytes-${c.storage_class}`, c.bytes, bytes)],
    ], transitions.classes, "No transition is under way."));
  }

  function renderWarmup(jobs) {
    show("warmup", table([
      ["Job", (j) => text(j.id)],
      ["Bucket", (j) => text(j.bucket)],
      ["Prefix", (j) => text(j.prefix)],
      ["Site", (j) => text(j.site)],
      ["Backend", (j) => text(j.backend)],
      ["State", (j) => badge(`warmup-state-${j.id}`, j.state)],
      ["Objects done", (j) => value(`warmup-objects-done-${j.id}`, j.objects_done, count)],
      ["of", (j) => value(`warmup-objects-total-${j.id}`, j.objects_total, count)],
      ["Bytes done", (j) => value(`warmup-bytes-done-${j.id}`, j.bytes_done, bytes)],
      ["of", (j) => value(`warmup-bytes-total-${j.id}`, j.bytes_total, bytes)],
      ["Progress", (j) => progress(`warmup-progress-${j.id}`, j.progress)],
      ["Expires", (j) => text(j.expires_at)],
    ], jobs, "No warm-up job."));
  }

  function render(snapshot) {
    $("node").textContent = `site ${snapshot.health.site} · token ${snapshot.health.principal}`;
    renderTopology(snapshot);
    renderReplication(snapshot.replication);
    renderUsage(snapshot.usage);
    renderTiering(snapshot.transitions);
    renderWarmup(snapshot.warmup);
    $("dashboard").hidden = false;
  }

  // ---- state and refresh

  function setStatus(state, message) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = message;
  }

  // Drop every rendered value, so nothing read with an earlier token stays on screen.
  function clearData() {
    $("dashboard").hidden = true;
    for (const section of $("dashboard").querySelectorAll("div[id]")) section.replaceChildren();
    $("node").textContent = "";
    page.depths = [];
  }

  function setConnected(connected) {
    $("refresh").disabled = !connected;
    $("forget").disabled = !connected;
  }

  function refused(error) {
    clearData();
    setConnected(false);
    sessionStorage.removeItem(TOKEN_KEY);
    const why = error.status === 401
      ? "Check the token, or ask for a new one."
      : "This token's scope may not read this.";
    setStatus("error", `The token was refused (${error.status} ${error.code}): ` +
                       `${error.message}. ${why}`);
  }

  async function refresh() {
    clearTimeout(page.timer);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return;
    const id = ++page.requested;
    document.body.dataset.requested = String(id);
    try {
      const snapshot = await load(token);
      if (id !== page.requested) return; // a newer refresh draws instead
      render(snapshot);
      document.body.dataset.rendered = String(id);
      setStatus("ok", `Updated ${new Date().toLocaleTimeString()}; refreshing every ` +
                      `${REFRESH_MS / 1000} s.`);
    } catch (error) {
      if (id !== page.requested) return;
      if (error instanceof ApiError && error.refused) return refused(error);
      const where = error instanceof ApiError ? ` (GET ${API}${error.path})` : "";
      setStatus("error", `Refresh failed${where}: ${error.message}. Showing the last data; ` +
                         "retrying.");
    }
    page.timer = setTimeout(refresh, REFRESH_MS);
  }

  function connect(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return setStatus("error", "Enter a token first.");
    $("token").value = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    clearData();
    setConnected(true);
    setStatus("loading", "Loading…");
    refresh();
  }

  function forget() {
    clearTimeout(page.timer);
    page.requested++; // an answer still on its way is not drawn
    sessionStorage.removeItem(TOKEN_KEY);
    clearData();
    setConnected(false);
    setStatus("idle", "Token forgotten. Enter an admin token to see the gateway's state.");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", connect);
    $("refresh").addEventListener("click", refresh);
    $("forget").addEventListener("click", forget);
    if (sessionStorage.getItem(TOKEN_KEY)) {
      setConnected(true);
      setStatus("loading", "Loading…");
      refresh();
    }
  });
})();
