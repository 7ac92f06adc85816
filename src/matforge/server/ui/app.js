// matforge web UI: vanilla JS over the REST API (/api/v1). No build step, no CDN.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "matforge.token";
const $ = (sel) => document.querySelector(sel);
const state = { project: null, projects: [], models: [], campaign: null, rows: [], next: null };

// --- helpers ---------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "";
  if (typeof x !== "number") return String(x);
  return Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2)
    : String(Number(x.toPrecision(digits + 1)));
}

function notice(text, kind = "error") {
  const n = $("#notice");
  n.textContent = text;
  n.className = kind === "info" ? "info" : "";
  n.hidden = !text;
  if (kind === "info") setTimeout(() => { if (n.textContent === text) n.hidden = true; }, 4000);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(path, { method = "GET", json, form, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  const response = await fetch(API + path, { method, headers, body });
  if (raw && response.ok) return response;
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) data = await response.json();
  if (!response.ok) {
    if (response.status === 401 && path !== "/me") logout("Your token was refused; log in again.");
    throw new ApiError(response.status, data);
  }
  return data;
}

function report(err) {
  console.error(err);
  notice(err instanceof ApiError ? err.message : `Error: ${err.message || err}`);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll a background job until it ends, drawing its progress into `box`; returns the job.
async function followJob(jobId, box) {
  const bar = el("progress", { max: "1", value: "0" });
  const text = el("span", { class: "muted" });
  box.replaceChildren(bar, " ", text);
  for (;;) {
    const job = await api(`/jobs/${jobId}`);
    bar.value = job.progress;
    text.textContent = `${job.status}: ${job.message}`;
    box.dataset.status = job.status;
    if (job.status === "succeeded") return job;
    if (job.status === "failed" || job.status === "cancelled") {
      text.textContent = `${job.status}: ${job.error || job.message}`;
      text.className = "error";
      throw new ApiError(0, { detail: `job ${job.status}: ${job.error || job.message}` });
    }
    await sleep(400);
  }
}

function plot(div, traces, layout) {
  const base = { margin: { l: 60, r: 20, t: 20, b: 50 }, legend: { orientation: "h" } };
  if (!window.Plotly) { div.textContent = "plotly.js did not load"; return; }
  window.Plotly.react(div, traces, { ...base, ...layout }, { displaylogo: false, responsive: true });
}

// Click a header to sort the rows of `rows` (objects) and redraw them with `draw`.
function sortable(table, getRows, draw) {
  table.querySelectorAll("th[data-key]").forEach((th) => {
    th.addEventListener("click", () => {
      const key = th.dataset.key;
      const asc = !th.classList.contains("asc");
      table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(asc ? "asc" : "desc");
      const num = th.dataset.num === "1";
      const rows = getRows();
      rows.sort((a, b) => {
        const x = a[key], y = b[key];
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        const c = num ? x - y : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      draw(rows);
    });
  });
}

function fillSelect(select, items, value, label) {
  const keep = value ?? select.value;
  select.replaceChildren(...items.map((it) => el("option", { value: it.value, text: label ? label(it) : it.value })));
  if (items.some((it) => String(it.value) === String(keep))) select.value = keep;
}

// --- session ---------------------------------------------------------------------------------

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#tabs").hidden = true;
  $("#session").hidden = true;
  document.querySelectorAll("section.panel").forEach((s) => { s.hidden = s.id !== "login"; });
  $("#login-error").textContent = message || "";
}

async function login(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const me = await api("/me");
    $("#whoami").textContent = me.name;
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#login-error").textContent = err.status === 401 ? "That token is not valid." : err.message;
    return;
  }
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  $("#session").hidden = false;
  await loadProjects();
  await checkFeatures().catch(report);
  showTab(location.hash.slice(1) || "data");
}

// Panels whose API this server may not have (yet): say so instead of failing on submit.
const FEATURES = [
  { path: `${API}/models/{model_id}/screens`, panel: "#screening", form: "#screen-form", what: "screening" },
  { path: `${API}/xrd/identify`, panel: "#xrd", form: "#xrd-drop", what: "XRD identification" },
  { path: `${API}/generate/samples`, panel: "#generate", form: "#sample-form", what: "generative sampling" },
  { path: `${API}/models/{model_id}/designs`, panel: "#generate", form: "#design-form", what: "generative design" },
];

async function checkFeatures() {
  const schema = await (await fetch("/openapi.json")).json();
  for (const f of FEATURES) {
    const missing = !(f.path in (schema.paths || {}));
    const form = $(f.form);
    form.querySelectorAll("input, select, button").forEach((x) => { x.disabled = missing; });
    let note = $(`${f.panel} .unavailable`);
    if (missing && !note) {
      note = el("p", { class: "error unavailable", text: `This server has no ${f.what} endpoint (${f.path}); ` +
        "the panel is disabled. Use the command line (matforge screen / matforge xrd identify) meanwhile." });
      form.before(note);
    } else if (!missing && note) note.remove();
  }
}

async function loadProjects(select) {
  const page = await api("/projects");
  state.projects = page.items || page;
  const items = state.projects.map((p) => ({ value: p.id, name: p.name, role: p.role }));
  fillSelect($("#project"), items, select, (p) => `${p.name} (${p.role})`);
  state.project = $("#project").value || null;
  await projectChanged();
}

async function projectChanged() {
  state.project = $("#project").value || null;
  await Promise.all([loadProperties(), loadModels(), loadCampaigns()]).catch(report);
  searchMeasurements().catch(report);
  searchStructures().catch(report);
}

function showTab(name) {
  if (!document.getElementById(name) || name === "login") name = "data";
  document.querySelectorAll("section.panel").forEach((s) => { s.hidden = s.id !== name; });
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  if (location.hash.slice(1) !== name) history.replaceState(null, "", `#${name}`);
  // plotly sizes a plot when drawn; redraw the ones of a tab that was hidden
  if (window.Plotly) document.querySelectorAll(`#${name} .js-plotly-plot`).forEach((d) => window.Plotly.Plots.resize(d));
}

// --- data ------------------------------------------------------------------------------------

const F_BLOCK = { 6: "La", 7: "Ac" };
const PERIODS = [
  ["H", "He"], ["Li", "Be", "B", "C", "N", "O", "F", "Ne"],
  ["Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar"],
  "K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr".split(" "),
  "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe".split(" "),
  "Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn".split(" "),
  "Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og".split(" "),
];

// Grid position (row, column; 1-based) of each element: the f-block goes to rows 9 and 10.
function elementPositions() {
  const out = [];
  PERIODS.forEach((symbols, i) => {
    const period = i + 1;
    symbols.forEach((s, j) => {
      let row = period, col;
      if (period === 1) col = j === 0 ? 1 : 18;
      else if (period <= 3) col = j < 2 ? j + 1 : j + 11;
      else if (period <= 5) col = j + 1;
      else if (j < 2) col = j + 1;
      else if (j < 17) { row = period + 3; col = j + 1; } // La..Lu, Ac..Lr
      else col = j - 13;
      out.push([s, row, col]);
    });
  });
  return out;
}

function selectedElements() {
  return $("#f-elements").value.split(/[,\-\s]+/).filter(Boolean);
}

function drawPeriodicTable() {
  const box = $("#ptable");
  for (const [symbol, row, col] of elementPositions()) {
    const b = el("button", { type: "button", "data-el": symbol, title: symbol, text: symbol });
    b.style.gridRow = row + (row >= 9 ? 0 : 0);
    b.style.gridColumn = col;
    b.addEventListener("click", () => {
      const chosen = new Set(selectedElements());
      if (chosen.has(symbol)) chosen.delete(symbol); else chosen.add(symbol);
      $("#f-elements").value = [...chosen].join(",");
      syncPeriodicTable();
    });
    box.append(b);
  }
  box.style.gridTemplateRows = "repeat(7, 1.9rem) .6rem repeat(2, 1.9rem)";
}

function syncPeriodicTable() {
  const chosen = new Set(selectedElements());
  document.querySelectorAll("#ptable button").forEach((b) => b.classList.toggle("on", chosen.has(b.dataset.el)));
}

async function loadProperties() {
  const props = await api("/properties");
  const items = props.map((p) => ({ value: p.name, unit: p.canonical_unit }));
  fillSelect($("#f-property"), [{ value: "" }, ...items], undefined, (p) => p.value ? `${p.value} (${p.unit})` : "any");
  fillSelect($("#train-property"), items, state.lastProperty, (p) => `${p.value} (${p.unit})`);
  fillSelect($("#campaign-property"), items, state.lastProperty, (p) => `${p.value} (${p.unit})`);
}

function filters(withPage = true) {
  const params = {
    elements: selectedElements().join(","),
    exact_elements: $("#f-exact").checked ? "true" : "",
    property: $("#f-property").value,
    value_min: $("#f-min").value,
    value_max: $("#f-max").value,
    formula: $("#f-formula").value.trim(),
    method: $("#f-method").value,
    project_id: $("#f-project-only").checked ? state.project : "",
  };
  if (withPage) params.limit = 200;
  return params;
}

function drawMeasurements(rows) {
  const body = $("#m-table tbody");
  body.replaceChildren(...rows.map((m) => el("tr", {},
    el("td", { text: m.formula }), el("td", { text: m.property }),
    el("td", { class: "num", text: fmt(m.value) }), el("td", { text: m.unit }),
    el("td", { class: "num", text: fmt(m.uncertainty) }), el("td", { text: m.method }),
    el("td", { text: m.source || "" }), el("td", { text: m.created_by || "" }))));
  $("#m-count").textContent = `${rows.length} measurement(s)${state.next ? " shown; more match" : ""}`;
  $("#m-more").hidden = !state.next;
}

async function searchMeasurements(more = false) {
  if (!state.project && $("#f-project-only").checked) { state.rows = []; state.next = null; drawMeasurements([]); return; }
  const params = filters();
  if (more && state.next) params.after = state.next;
  const page = await api(`/measurements${query(params)}`);
  state.rows = more ? state.rows.concat(page.items) : page.items;
  state.next = page.next;
  drawMeasurements(state.rows);
}

// --- structures ----------------------------------------------------------------------------

let structureRows = [];
let shownStructure = null;
const MAX_SITES_DRAWN = 5000;

async function searchStructures() {
  if (!state.project && $("#f-project-only").checked) { structureRows = []; drawStructures([]); return; }
  const f = filters(false);
  const page = await api(`/structures${query({ elements: f.elements, exact_elements: f.exact_elements, project_id: f.project_id, limit: 200 })}`);
  structureRows = page.items;
  drawStructures(structureRows, Boolean(page.next));
}

function drawStructures(rows, more = false) {
  $("#s-table tbody").replaceChildren(...rows.map((s) => el("tr", {},
    el("td", { text: s.formula }), el("td", { text: s.spacegroup_symbol ? `${s.spacegroup_symbol} (${s.spacegroup_number})` : "" }),
    el("td", { class: "num", text: String(s.nsites) }), el("td", { class: "num", text: fmt(s.density) }),
    el("td", { text: s.method }), el("td", { text: s.source || "" }),
    el("td", {}, el("button", { type: "button", class: "link", text: "view", onclick: () => showStructure(s.id).catch(report) })))));
  $("#s-count").textContent = `${rows.length} structure(s)${more ? " shown; more match" : ""}`;
}

// A stable colour per element symbol.
function elementColor(symbol) {
  let h = 0;
  for (const c of symbol) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h}, 65%, 50%)`;
}

function siteLabel(species) {
  const entries = Object.entries(species);
  return entries.length === 1 && entries[0][1] === 1 ? entries[0][0] : entries.map(([e, o]) => `${e}${fmt(o, 2)}`).join("");
}

async function showStructure(id) {
  const s = await api(`/structures/${encodeURIComponent(id)}`);
  shownStructure = s;
  $("#s-view").hidden = false;
  $("#s-title").textContent = `${s.formula} · ${s.spacegroup_symbol || "space group unknown"} · ${s.nsites} sites · ${s.method}`;
  const div = $("#s-plot");
  if (s.sites.length > MAX_SITES_DRAWN) { div.textContent = `${s.sites.length} sites: too many to draw here; download the file.`; return; }
  const [a, b, c] = s.lattice;
  const add = (...vs) => [0, 1, 2].map((k) => vs.reduce((t, v) => t + v[k], 0));
  const o = [0, 0, 0];
  const corners = [[o, a], [o, b], [o, c], [a, add(a, b)], [a, add(a, c)], [b, add(a, b)], [b, add(b, c)],
    [c, add(a, c)], [c, add(b, c)], [add(a, b), add(a, b, c)], [add(a, c), add(a, b, c)], [add(b, c), add(a, b, c)]];
  const edge = { x: [], y: [], z: [] };
  for (const [p, q] of corners) for (const [k, i] of [["x", 0], ["y", 1], ["z", 2]]) edge[k].push(p[i], q[i], null);
  const groups = new Map();
  for (const site of s.sites) {
    const label = siteLabel(site.species);
    if (!groups.has(label)) groups.set(label, { x: [], y: [], z: [], main: Object.keys(site.species)[0] });
    const g = groups.get(label);
    g.x.push(site.xyz[0]); g.y.push(site.xyz[1]); g.z.push(site.xyz[2]);
  }
  const traces = [{ type: "scatter3d", mode: "lines", ...edge, line: { color: "#888", width: 2 }, hoverinfo: "skip", name: "cell" }];
  for (const [label, g] of groups) {
    traces.push({ type: "scatter3d", mode: "markers", name: label, x: g.x, y: g.y, z: g.z,
      marker: { size: s.sites.length > 500 ? 3 : 8, color: elementColor(g.main), line: { width: 0 } } });
  }
  plot(div, traces, { margin: { l: 0, r: 0, t: 0, b: 0 }, height: 420,
    scene: { aspectmode: "data", xaxis: { title: "x (Å)" }, yaxis: { title: "y (Å)" }, zaxis: { title: "z (Å)" } } });
}

async function downloadStructure(format) {
  if (!shownStructure) return;
  const response = await api(`/structures/${encodeURIComponent(shownStructure.id)}/file${query({ format })}`, { raw: true });
  const blob = await response.blob();
  const match = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
  const a = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : `structure.${format}` });
  document.body.append(a);
  a.click();
  a.remove();
}

async function exportCsv() {
  const response = await api(`/measurements.csv${query(filters(false))}`, { raw: true });
  const blob = await response.blob();
  const a = el("a", { href: URL.createObjectURL(blob), download: "measurements.csv" });
  document.body.append(a);
  a.click();
  a.remove();
}

// A small RFC 4180 reader, for the preview only (the server validates the file itself).
function parseCsv(text, maxRows) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length && rows.length <= maxRows; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows.slice(0, maxRows + 1);
}

async function previewUpload() {
  const file = $("#upload-file").files[0];
  const box = $("#upload-preview");
  $("#upload-result").replaceChildren();
  if (!file) { box.replaceChildren(); return; }
  const text = await file.slice(0, 256 * 1024).text();
  const rows = parseCsv(text, 10);
  if (!rows.length) { box.replaceChildren(el("p", { class: "error", text: "the file is empty" })); return; }
  const [header, ...data] = rows;
  const table = el("table", { class: "data" },
    el("thead", {}, el("tr", {}, el("th", { text: "line" }), ...header.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...data.map((r, i) => el("tr", {}, el("td", { class: "muted", text: i + 2 }), ...r.map((v) => el("td", { text: v }))))));
  box.replaceChildren(el("p", { class: "muted", text: `Preview of ${file.name} (first ${data.length} rows):` }),
    el("div", { class: "preview" }, table));
}

function rowErrorTable(errors) {
  return el("table", { class: "data errors", id: "upload-errors" },
    el("thead", {}, el("tr", {}, el("th", { text: "line" }), el("th", { text: "column" }), el("th", { text: "problem" }))),
    el("tbody", {}, ...errors.map((e) => el("tr", {}, el("td", { text: e.line }), el("td", { text: e.column }), el("td", { text: e.reason })))));
}

async function upload(event) {
  event.preventDefault();
  const box = $("#upload-result");
  if (!state.project) { notice("Create or choose a project first."); return; }
  const form = new FormData();
  form.append("file", $("#upload-file").files[0]);
  form.append("property", $("#upload-property").value.trim());
  form.append("unit", $("#upload-unit").value.trim());
  form.append("method", $("#upload-method").value);
  if ($("#upload-source").value.trim()) form.append("source", $("#upload-source").value.trim());
  form.append("skip_invalid", $("#upload-skip").checked ? "true" : "false");
  try {
    const out = await api(`/projects/${state.project}/uploads`, { method: "POST", form });
    const parts = [el("p", { class: "ok", id: "upload-ok", text: `${out.n_written} of ${out.n_rows} rows written (${out.property}, ${out.unit}).` })];
    if (out.rejected.length) parts.push(el("p", { class: "error", text: `${out.n_rejected} row(s) rejected:` }), rowErrorTable(out.rejected));
    box.replaceChildren(...parts);
    state.lastProperty = out.property;
    await loadProperties();
    await searchMeasurements();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const parts = [el("p", { class: "error", text: err.message })];
    if (err.body.errors && err.body.errors.length) parts.push(rowErrorTable(err.body.errors));
    box.replaceChildren(...parts);
  }
}

// --- models ----------------------------------------------------------------------------------

async function loadModels(select) {
  const all = await api("/models");
  state.models = all.filter((m) => m.project_id === state.project);
  const items = state.models.map((m) => ({ value: m.id, m }));
  const label = (it) => `${it.m.name} · ${it.m.property} · ${it.m.status}`;
  fillSelect($("#model-select"), items, select, label);
  fillSelect($("#screen-model"), items.filter((it) => it.m.status === "succeeded"), select, label);
  fillSelect($("#design-model"), items.filter((it) => it.m.status === "succeeded"), select, label);
  await showModel().catch(report);
}

function currentModel() {
  return state.models.find((m) => m.id === $("#model-select").value) || null;
}

async function showModel() {
  const m = currentModel();
  const info = $("#model-info");
  const parity = $("#parity-plot"), calib = $("#calibration-plot");
  if (!m) { info.textContent = "No model yet: train one."; window.Plotly && window.Plotly.purge(parity); window.Plotly && window.Plotly.purge(calib); return; }
  const metrics = m.metrics ? Object.entries(m.metrics).filter(([k]) => ["mae", "rmse", "r2", "coverage_68", "coverage_95", "miscalibration_area"].includes(k))
    .map(([k, v]) => `${k} ${fmt(v)}`).join(" · ") : "";
  info.textContent = `${m.estimator}, ${m.n_train ?? "?"} training rows, ${m.status}. ${metrics}`;
  if (m.status !== "succeeded") return;
  const cv = await api(`/models/${m.id}/cv`);
  const lo = Math.min(...cv.y.filter((v) => v !== null), ...cv.mean.filter((v) => v !== null));
  const hi = Math.max(...cv.y.filter((v) => v !== null), ...cv.mean.filter((v) => v !== null));
  plot(parity, [
    { x: cv.y, y: cv.mean, text: cv.formula, mode: "markers", type: "scatter", name: "held-out",
      error_y: { type: "data", array: cv.std, visible: true, thickness: 1, color: "rgba(36,87,197,.35)" },
      marker: { color: "#2457c5", size: 7 } },
    { x: [lo, hi], y: [lo, hi], mode: "lines", name: "y = x", line: { dash: "dash", color: "#999" } },
  ], { xaxis: { title: { text: `measured ${cv.property} (${cv.unit})` } },
    yaxis: { title: { text: `predicted (${cv.unit})` } } });
  plot(calib, [
    { x: cv.expected_coverage, y: cv.observed_coverage, mode: "lines+markers", name: "model" },
    { x: [0, 1], y: [0, 1], mode: "lines", name: "ideal", line: { dash: "dash", color: "#999" } },
  ], { xaxis: { title: { text: "expected coverage of the interval" }, range: [0, 1] },
    yaxis: { title: { text: "observed coverage" }, range: [0, 1] } });
}

async function train(event) {
  event.preventDefault();
  if (!state.project) { notice("Create or choose a project first."); return; }
  const body = { project_id: state.project, property: $("#train-property").value,
    n_estimators: Number($("#train-trees").value) || 100 };
  if ($("#train-name").value.trim()) body.name = $("#train-name").value.trim();
  const model = await api("/models", { method: "POST", json: body });
  await loadModels(model.id);
  try {
    await followJob(model.job.id, $("#train-job"));
  } finally {
    await loadModels(model.id);
  }
}

async function predict(event) {
  event.preventDefault();
  const m = currentModel();
  if (!m) { notice("Choose a trained model first."); return; }
  const formulas = $("#predict-formulas").value.split(/\n/).map((s) => s.trim()).filter(Boolean);
  if (!formulas.length) return;
  const out = await api(`/models/${m.id}/predict`, { method: "POST", json: { formulas } });
  $("#predict-table tbody").replaceChildren(...out.predictions.map((p) => el("tr", {},
    el("td", { text: p.formula }),
    p.error ? el("td", { class: "error", text: p.error }) : el("td", { class: "num", text: `${fmt(p.mean)} ± ${fmt(p.std)}` }),
    el("td", { text: out.unit }),
    domainCell(p, out.domain_threshold))));
}

// Inside the model's applicability domain or not: outside, the prediction is an extrapolation.
function domainCell(p, threshold) {
  if (p.in_domain === null || p.in_domain === undefined) return el("td", {});
  const title = `distance to the training compositions ${fmt(p.domain_distance)} (in domain up to ${fmt(threshold)})`;
  return p.in_domain ? el("td", { class: "ok", text: "in domain", title })
    : el("td", { class: "error", text: "out of domain: extrapolation", title });
}

// --- screening -------------------------------------------------------------------------------

let screenRows = [];

function drawScreen(rows) {
  $("#screen-table tbody").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", { class: "num", text: r.rank }), el("td", { text: r.formula }),
    el("td", { class: "num", text: fmt(r.mean) }), el("td", { class: "num", text: fmt(r.std) }))));
}

async function screen(event) {
  event.preventDefault();
  const id = $("#screen-model").value;
  if (!id) { notice("Train a model first (Models tab)."); return; }
  const body = {
    elements: $("#screen-elements").value.split(/[,\s]+/).filter(Boolean),
    max_atoms: Number($("#screen-atoms").value),
    arities: $("#screen-arities").value.split(/[,\s]+/).filter(Boolean).map(Number),
    charge_balanced: $("#screen-balance").checked,
    rank_by: $("#screen-rank").value,
    top_k: Number($("#screen-top").value),
  };
  const job = await api(`/models/${id}/screens`, { method: "POST", json: body });
  const done = await followJob(job.id, $("#screen-job"));
  const result = done.result;
  screenRows = result.top.map((r, i) => ({ rank: i + 1, ...r }));
  drawScreen(screenRows);
  const sample = result.sample || { formula: [], mean: [], std: [] };
  plot($("#screen-plot"), [
    { x: sample.mean, y: sample.std, text: sample.formula, mode: "markers", name: "screened (sample)",
      marker: { color: "rgba(120,130,150,.45)", size: 5 } },
    { x: screenRows.map((r) => r.mean), y: screenRows.map((r) => r.std), text: screenRows.map((r) => r.formula),
      mode: "markers", name: `top ${screenRows.length}`, marker: { color: "#d92d20", size: 8 } },
  ], { xaxis: { title: { text: `predicted ${result.property} (${result.unit})` } },
    yaxis: { title: { text: "uncertainty (std)" } } });
  $("#screen-job").append(el("span", { class: "muted", text: ` · ${result.n_screened} candidates screened` }));
}

// --- generate --------------------------------------------------------------------------------

let sampleRows = [], designRows = [];
const symbols = (text) => text.split(/[,\s]+/).filter(Boolean);

const SAMPLE_ROWS_SHOWN = 100;

function drawSamples(rows) {
  $("#sample-shown").textContent = rows.length > SAMPLE_ROWS_SHOWN
    ? `The first ${SAMPLE_ROWS_SHOWN} of ${rows.length} (sort by a column; download the CSV for all).` : "";
  $("#sample-table tbody").replaceChildren(...rows.slice(0, SAMPLE_ROWS_SHOWN).map((r) => el("tr", {},
    el("td", { text: r.formula }), el("td", { class: "num", text: r.count }),
    el("td", { text: r.cn_eb ? "yes" : "no" }), el("td", { text: r.novel ? "yes" : "no" }),
    el("td", { text: r.nearest_known }), el("td", { class: "num", text: fmt(r.nearest_distance) }))));
}

async function sample(event) {
  event.preventDefault();
  const body = {
    model: $("#sample-model").value, n: Number($("#sample-n").value),
    temperature: Number($("#sample-temperature").value),
    elements_in: symbols($("#sample-in").value), elements_out: symbols($("#sample-out").value),
    seed: Number($("#sample-seed").value) || 0,
  };
  $("#sample-csv").disabled = true;
  const job = await api("/generate/samples", { method: "POST", json: body });
  const result = (await followJob(job.id, $("#sample-job"))).result;
  sampleRows = result.rows;
  drawSamples(sampleRows);
  $("#sample-csv").disabled = !sampleRows.length;
  // how far from anything known, for the balanced and the unbalanced ones
  const trace = (ok, name, color) => ({ type: "histogram", name, opacity: 0.7, marker: { color },
    x: sampleRows.filter((r) => r.cn_eb === ok).map((r) => r.nearest_distance), xbins: { size: 0.05 } });
  plot($("#sample-plot"), [trace(true, "charge-balanced", "#2457c5"), trace(false, "not balanced", "#d92d20")],
    { barmode: "overlay", legend: { orientation: "h", y: 1.12 }, xaxis: { title: { text: "distance to the nearest known composition (L1 of atomic fractions)" } },
      yaxis: { title: { text: "distinct compositions" } } });
  $("#sample-job").append(el("span", { class: "muted", text:
    ` · ${result.n_unique} distinct of ${result.n_drawn} drawn, ${fmt(100 * result.cn_eb_rate, 2)} % charge-balanced, ` +
    `${fmt(100 * result.novel_rate, 2)} % new` }));
}

function sampleCsv() {
  const cols = ["formula", "count", "cn", "cn_eb", "novel", "nearest_known", "nearest_distance"];
  const lines = [cols.join(","), ...sampleRows.map((r) => cols.map((k) => r[k] ?? "").join(","))];
  const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
  const a = el("a", { href: URL.createObjectURL(blob), download: "generated.csv" });
  document.body.append(a);
  a.click();
  a.remove();
}

function drawDesigns(rows) {
  $("#design-table tbody").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", { class: "num", text: r.rank }), el("td", { text: r.formula }),
    el("td", { class: "num", text: fmt(r.reward) }), el("td", { class: "num", text: fmt(r.mean) }),
    el("td", { class: "num", text: fmt(r.std) }), el("td", { text: r.nearest_known }))));
}

async function design(event) {
  event.preventDefault();
  const id = $("#design-model").value;
  if (!id) { notice("Train a model first (Models tab)."); return; }
  const body = {
    goal: $("#design-goal").value.trim(), method: $("#design-method").value,
    budget: Number($("#design-budget").value), top_k: Number($("#design-top").value),
    elements_in: symbols($("#design-in").value), elements_out: symbols($("#design-out").value),
  };
  const job = await api(`/models/${id}/designs`, { method: "POST", json: body });
  const result = (await followJob(job.id, $("#design-job"))).result;
  designRows = result.top.map((r, i) => ({ rank: i + 1, ...r }));
  drawDesigns(designRows);
  plot($("#design-plot"), [{ x: result.history.calls, y: result.history.best, mode: "lines",
    line: { shape: "hv" }, name: `${result.method}: best reward` }],
  { xaxis: { title: { text: "model evaluations" } }, yaxis: { title: { text: "best reward" }, range: [0, 1.05] } });
  $("#design-job").append(el("span", { class: "muted", text:
    ` · ${result.calls} evaluations in ${fmt(result.seconds)} s (${result.property} in ${result.unit})` }));
}

// --- campaigns -------------------------------------------------------------------------------

async function loadCampaigns(select) {
  const list = state.project ? await api(`/projects/${state.project}/campaigns`) : [];
  fillSelect($("#campaign-select"), list.map((c) => ({ value: c.id, c })), select,
    (it) => `${it.c.name} · ${it.c.property} ${it.c.goal}`);
  await showCampaign().catch(report);
}

async function showCampaign() {
  const id = $("#campaign-select").value;
  const info = $("#campaign-info");
  if (!id) {
    info.textContent = "No campaign yet: create one.";
    $("#suggestion-table tbody").replaceChildren();
    if (window.Plotly) window.Plotly.purge($("#best-plot"));
    return;
  }
  const c = await api(`/campaigns/${id}`);
  state.campaign = c;
  const unit = c.unit ? ` ${c.unit}` : "";
  info.textContent = `${c.property} ${c.goal === "max" ? "maximised" : "minimised"} over ${c.n_candidates} candidates · ` +
    `${c.observations} results, ${c.pending} pending, ${c.batches} batch(es)` +
    (c.best ? ` · best so far ${c.best.formula}: ${fmt(c.best.value)}${unit}` : "");
  const rows = c.suggestions.slice().reverse();
  $("#suggestion-table tbody").replaceChildren(...rows.map((s) => el("tr", { "data-id": s.id },
    el("td", { text: s.batch ?? "" }), el("td", { text: s.formula }),
    el("td", { class: "num", text: s.mean === null ? "(exploring)" : `${fmt(s.mean)} ± ${fmt(s.std)}` }),
    el("td", { text: s.status }),
    el("td", {}, s.status === "pending" ? el("input", { type: "number", step: "any", class: "measured", "data-id": s.id, size: "8" }) : ""))));
  const x = c.history.map((_, i) => i + 1);
  plot($("#best-plot"), [
    { x, y: c.history.map((h) => h.value), text: c.history.map((h) => `${h.formula} (${h.source})`),
      mode: "markers", name: "result", marker: { color: c.history.map((h) => (h.batch ? "#d92d20" : "#98a2b3")), size: 8 } },
    { x, y: c.history.map((h) => h.best_so_far), mode: "lines", line: { shape: "hv", color: "#2457c5" }, name: "best so far" },
  ], { xaxis: { title: { text: "result number (grey: initial data)" } },
    yaxis: { title: { text: `${c.property}${unit ? ` (${c.unit})` : ""}` } } });
}

async function createCampaign(event) {
  event.preventDefault();
  if (!state.project) { notice("Create or choose a project first."); return; }
  const body = {
    name: $("#campaign-name").value.trim(),
    property: $("#campaign-property").value,
    goal: $("#campaign-goal").value,
    candidates: $("#campaign-candidates").value.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean),
  };
  const c = await api(`/projects/${state.project}/campaigns`, { method: "POST", json: body });
  notice(`Campaign ${c.name} created.`, "info");
  await loadCampaigns(c.id);
}

async function suggest(event) {
  event.preventDefault();
  const id = $("#campaign-select").value;
  if (!id) { notice("Create a campaign first."); return; }
  const job = await api(`/campaigns/${id}/suggest`, { method: "POST", json: { n: Number($("#suggest-n").value) || 1 } });
  try {
    await followJob(job.id, $("#suggest-job"));
  } finally {
    await showCampaign();
  }
}

async function observe(event) {
  event.preventDefault();
  const id = $("#campaign-select").value;
  const results = [...document.querySelectorAll("#suggestion-table input.measured")]
    .filter((i) => i.value.trim() !== "").map((i) => ({ suggestion_id: i.dataset.id, value: Number(i.value) }));
  if (!results.length) { notice("Enter at least one measured value."); return; }
  const out = await api(`/campaigns/${id}/observe`, { method: "POST", json: { results } });
  notice(`${out.matched} result(s) recorded.`, "info");
  await showCampaign();
}

// --- xrd -------------------------------------------------------------------------------------

// One file: its best matches and overlay. Several: a summary row each, whose click shows that.
function identifyFiles(files) {
  if (files.length > 1) return identifyBatch(files);
  $("#xrd-batch").hidden = true;
  return identify(files[0]);
}

// POST a form to an XRD route: its answer, or null after showing the API's error in status
async function postXrd(path, form, status) {
  try {
    return await api(path, { method: "POST", form });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    status.replaceChildren(el("p", { class: "error", id: "xrd-error", text: err.message }));
    return null;
  }
}

async function identifyBatch(files) {
  const status = $("#xrd-status");
  status.replaceChildren(el("span", { class: "muted", text: `identifying ${files.length} files…` }));
  const form = new FormData();
  for (const f of files) form.append("files", f);
  const out = await postXrd("/xrd/identify/batch", form, status);
  if (!out) return;
  const failed = out.files.filter((r) => r.error).length;
  status.replaceChildren(el("span", { class: failed ? "error" : "ok",
    text: `${out.files.length} files identified${failed ? `, ${failed} of them not` : ""}` }));
  const rows = out.files.map((r, i) => {
    const show = () => {
      rows.forEach((row) => {
        row.classList.toggle("selected", row === rows[i]);
        row.style.background = row === rows[i] ? "#eef2f8" : "";
      });
      return identify(files[i]).catch(report);
    };
    return el("tr", { onclick: show, style: "cursor: pointer" },
      el("td", { text: r.source }),
      el("td", { text: r.crystal_system ?? "", title: fmt(r.crystal_system_probability) }),
      el("td", { text: r.space_group ?? "", title: fmt(r.space_group_probability) }),
      el("td", { text: r.prototype ?? "" }),
      el("td", { class: "num", text: fmt(r.prototype_probability) }),
      el("td", { class: "error", style: "white-space: normal", text: r.error ?? "" }),
      el("td", {}, el("button", { type: "button", class: "link", text: "show" })));
  });
  $("#xrd-batch-table tbody").replaceChildren(...rows);
  $("#xrd-batch").hidden = false;
  $("#xrd-table tbody").replaceChildren();  // the detail of an earlier file would mislead
  if (window.Plotly) window.Plotly.purge($("#xrd-plot"));
}

async function identify(file) {
  const status = $("#xrd-status");
  status.replaceChildren(el("span", { class: "muted", text: `identifying ${file.name}…` }));
  const form = new FormData();
  form.append("file", file);
  form.append("k", $("#xrd-k").value || "5");
  const out = await postXrd("/xrd/identify", form, status);
  if (!out) return;
  status.replaceChildren(el("span", { class: "ok", text: `${file.name}: ${out.matches.length} candidate structures` }));
  $("#xrd-table tbody").replaceChildren(...out.matches.map((m, i) => el("tr", {},
    el("td", { text: i + 1 }), el("td", { text: m.name }), el("td", { text: m.space_group ?? "" }),
    el("td", { class: "num", text: fmt(m.probability) }))));
  const top = Math.max(...out.intensity);
  const traces = [{ x: out.two_theta, y: out.intensity.map((v) => v / top), mode: "lines", name: file.name, line: { color: "#1d2330" } }];
  out.matches.forEach((m, i) => {
    if (!m.two_theta) return;
    const t = Math.max(...m.intensity, 1e-12);
    traces.push({ x: m.two_theta, y: m.intensity.map((v) => -v / t), mode: "lines", name: `${i + 1}. ${m.name}`,
      visible: i === 0 ? true : "legendonly" });
  });
  plot($("#xrd-plot"), traces, { xaxis: { title: { text: "2θ (degrees)" } },
    yaxis: { title: { text: "normalised intensity (simulated below)" } } });
}

// --- wiring ----------------------------------------------------------------------------------

function on(selector, event, handler) {
  $(selector).addEventListener(event, (e) => Promise.resolve(handler(e)).catch(report));
}

document.addEventListener("DOMContentLoaded", () => {
  drawPeriodicTable();
  on("#login-form", "submit", (e) => { e.preventDefault(); return login($("#token").value.trim()); });
  on("#logout", "click", () => logout(""));
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  on("#project", "change", projectChanged);
  on("#project-form", "submit", async (e) => {
    e.preventDefault();
    const p = await api("/projects", { method: "POST", json: { name: $("#project-name").value.trim(), visibility: $("#project-visibility").value } });
    $("#project-name").value = "";
    await loadProjects(p.id);
    notice(`Project ${p.name} created.`, "info");
  });
  on("#upload-file", "change", previewUpload);
  on("#upload-form", "submit", upload);
  on("#filter-form", "submit", (e) => { e.preventDefault(); syncPeriodicTable(); searchStructures().catch(report); return searchMeasurements(); });
  on("#f-elements", "change", syncPeriodicTable);
  on("#f-clear", "click", () => { $("#filter-form").reset(); $("#f-project-only").checked = true; syncPeriodicTable(); searchStructures().catch(report); return searchMeasurements(); });
  sortable($("#s-table"), () => structureRows, drawStructures);
  document.querySelectorAll("#s-view button[data-format]").forEach((b) => b.addEventListener("click", () => downloadStructure(b.dataset.format).catch(report)));
  on("#m-more", "click", () => searchMeasurements(true));
  on("#export-csv", "click", exportCsv);
  sortable($("#m-table"), () => state.rows, drawMeasurements);
  on("#train-form", "submit", train);
  on("#model-select", "change", showModel);
  on("#predict-form", "submit", predict);
  on("#screen-form", "submit", screen);
  sortable($("#screen-table"), () => screenRows, drawScreen);
  on("#sample-form", "submit", sample);
  on("#sample-csv", "click", sampleCsv);
  sortable($("#sample-table"), () => sampleRows, drawSamples);
  on("#design-form", "submit", design);
  sortable($("#design-table"), () => designRows, drawDesigns);
  on("#campaign-form", "submit", createCampaign);
  on("#campaign-select", "change", showCampaign);
  on("#suggest-form", "submit", suggest);
  on("#observe-form", "submit", observe);
  const drop = $("#xrd-drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const files = [...e.dataTransfer.files];
    if (files.length) identifyFiles(files).catch(report);
  });
  on("#xrd-file", "change", () => { const files = [...$("#xrd-file").files]; return files.length && identifyFiles(files); });
  window.addEventListener("hashchange", () => { if (!$("#tabs").hidden) showTab(location.hash.slice(1)); });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) login(token).catch(report); else logout("");
});
