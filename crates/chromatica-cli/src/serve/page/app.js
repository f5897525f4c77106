// Chromatica's colour-picker page. Every piece of text from the server or
// the user goes through textContent (never parsed as HTML), so it is escaped.
"use strict";

const $ = (id) => document.getElementById(id);
const colorsBox = $("colors");
const results = $("results");
const MAX_COLORS = 16;
const DEFAULTS = ["#ea6a81", "#f6d727", "#3b7dd8", "#2fa36b"];

function showError(msg) { $("error").textContent = msg || ""; }

function updateWeights() {
  const rows = [...colorsBox.querySelectorAll(".color-row")];
  const total = rows.reduce((s, r) => s + Number(r.querySelector(".weight").value), 0) || 1;
  for (const r of rows) {
    const w = Number(r.querySelector(".weight").value) / total;
    r.querySelector(".weight-value").textContent = Math.round(w * 100) + "%";
    r.querySelector(".remove").disabled = rows.length <= 1;
  }
  $("add-color").disabled = rows.length >= MAX_COLORS;
}

function addColor(hex) {
  const rows = colorsBox.querySelectorAll(".color-row").length;
  if (rows >= MAX_COLORS) return;
  const row = $("color-row").content.firstElementChild.cloneNode(true);
  row.querySelector(".pick").value = hex || DEFAULTS[rows % DEFAULTS.length];
  row.querySelector(".weight").addEventListener("input", updateWeights);
  row.querySelector(".remove").addEventListener("click", () => { row.remove(); updateWeights(); });
  colorsBox.appendChild(row);
  updateWeights();
}

function swatches(box, colors, shares) {
  box.replaceChildren();
  colors.forEach((c, i) => {
    const s = document.createElement("span");
    s.style.backgroundColor = /^#?[0-9a-fA-F]{6}$/.test(c) ? (c[0] === "#" ? c : "#" + c) : "#888";
    s.style.flexGrow = String(Math.max(shares && shares[i] ? shares[i] : 1 / colors.length, 0.01));
    s.title = c;
    box.appendChild(s);
  });
}

function show(data) {
  $("query-time").textContent = data.metadata.total_time_ms.toFixed(1);
  $("index-size").textContent = String(data.metadata.index_size);
  swatches($("query-palette"), data.query.colors, data.query.weights);
  results.replaceChildren();
  for (const r of data.results) {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "card";
    card.dataset.id = r.image_id;
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = r.file_path ? r.file_path.split("/").pop() : "image " + r.image_id;
    img.loading = "lazy";
    img.src = "/thumbnail/" + encodeURIComponent(r.image_id) + "?size=256";
    img.addEventListener("error", () => {
      // No file to show (a vector-only record): its palette instead.
      const box = document.createElement("div");
      box.className = "nothumb";
      swatches(box, r.dominant_colors, r.dominant_shares);
      img.replaceWith(box);
    });
    const palette = document.createElement("div");
    palette.className = "palette";
    swatches(palette, r.dominant_colors, r.dominant_shares);
    const meta = document.createElement("div");
    meta.className = "meta";
    const dist = document.createElement("div");
    dist.className = "distance";
    dist.textContent = "#" + r.rank + " · distance " + Number(r.distance).toFixed(4);
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = r.file_path || "id " + r.image_id;
    name.title = r.file_path || "";
    meta.append(dist, name);
    card.append(img, palette, meta);
    card.addEventListener("click", () => searchById(r.image_id));
    results.appendChild(card);
  }
  if (data.results.length === 0) {
    const p = document.createElement("p");
    p.textContent = "No images in the index yet.";
    results.appendChild(p);
  }
}

async function answer(resp) {
  let data;
  try { data = await resp.json(); } catch (e) { throw new Error("the server answered " + resp.status); }
  if (!resp.ok) throw new Error(data && data.error ? data.error : "the server answered " + resp.status);
  return data;
}

function options() {
  const k = Math.min(200, Math.max(1, Number($("k").value) || 50));
  return "k=" + k + "&fast_mode=" + ($("fast").checked ? "true" : "false");
}

async function searchColors() {
  const rows = [...colorsBox.querySelectorAll(".color-row")];
  const colors = rows.map((r) => r.querySelector(".pick").value.replace("#", "")).join(",");
  const weights = rows.map((r) => r.querySelector(".weight").value).join(",");
  showError("");
  try {
    const resp = await fetch("/search?colors=" + encodeURIComponent(colors) + "&weights=" + encodeURIComponent(weights) + "&" + options());
    show(await answer(resp));
  } catch (e) { showError(e.message); }
}

async function searchById(id) {
  showError("");
  try {
    const resp = await fetch("/search/image?id=" + encodeURIComponent(id) + "&" + options(), { method: "POST" });
    show(await answer(resp));
    window.scrollTo(0, 0);
  } catch (e) { showError(e.message); }
}

async function searchByFile(file) {
  if (!file) return;
  showError("");
  const body = new FormData();
  body.append("file", file);
  try {
    const resp = await fetch("/search/image?" + options(), { method: "POST", body });
    show(await answer(resp));
  } catch (e) { showError(e.message); }
}

async function health() {
  try {
    const data = await answer(await fetch("/health"));
    $("index-size").textContent = String(data.index_size);
  } catch (e) { showError(e.message); }
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  searchByFile(e.dataTransfer.files[0]);
});
$("file").addEventListener("change", (e) => searchByFile(e.target.files[0]));
$("add-color").addEventListener("click", () => addColor());
$("search").addEventListener("click", searchColors);
addColor(DEFAULTS[0]);
addColor(DEFAULTS[1]);
health();
