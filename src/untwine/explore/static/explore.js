// The explorer page: one column per run, one slider per latent (ordered by KL, named by the
// factor it turns), a starting observation picked at random, by index, by factor values or
// uploaded. A slider's move asks the server for one decoded PNG; requests that fall behind a
// newer move are dropped, so dragging stays live.
"use strict";

const state = { info: null, start: null, values: [], pending: [], noise: [] };
const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function say(text) { $("message").textContent = text || ""; }

function scoreLine(scores) {
  const parts = Object.entries(scores).map(([k, v]) => `${k} ${v.toFixed(3)}`);
  return parts.length ? parts.join(" · ") : "not evaluated yet (untwine evaluate RUN)";
}

function build(info) {
  const data = info.dataset;
  $("dataset").textContent = `${data.name}: ${data.size.toLocaleString()} observations` +
    (data.factor_names.length ? `, factors ${data.factor_names.join(", ")}` : "");
  $("index").max = data.size - 1;
  $("upload-label").hidden = data.kind !== "image";
  if (data.by_factors) {
    data.factor_names.forEach((name, f) => {
      const row = document.createElement("div");
      row.className = "slider";
      row.innerHTML = `<label for="factor-${f}">${name} <span class="value" id="factor-value-${f}"></span></label>` +
        `<div class="track"><input type="range" id="factor-${f}" min="0" max="${data.factor_sizes[f] - 1}" step="1"></div>`;
      $("factors").append(row);
      row.querySelector("input").addEventListener("input", () => {
        const values = data.factor_names.map((_, g) => $(`factor-${g}`).value);
        start(`/api/observation?factors=${values.join(",")}`);
      });
    });
  }
  info.runs.forEach((run, r) => $("runs").append(runColumn(run, r)));
}

function runColumn(run, r) {
  const column = document.createElement("section");
  column.className = "run";
  column.innerHTML = `<h2>${run.name} <small>(${run.model})</small></h2>` +
    `<p class="scores">${scoreLine(run.scores)}</p>` +
    `<figure><img id="decoded-${r}" alt="${run.name} decoded"><figcaption>model</figcaption></figure>` +
    `<table id="decoded-row-${r}" hidden></table>`;
  if (run.generator) {  // a generator's output also depends on its noise sample
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "new noise";
    button.addEventListener("click", () => { state.noise[r] = Math.floor(Math.random() * 2 ** 31); redraw(r); });
    column.append(button);
  }
  const active = run.latents.filter((l) => !l.collapsed);
  const folded = run.latents.filter((l) => l.collapsed);
  active.forEach((latent) => column.append(slider(run, r, latent)));
  if (folded.length) {
    const details = document.createElement("details");
    details.innerHTML = `<summary>${folded.length} collapsed latent(s) (below 0.01 nats)</summary>`;
    folded.forEach((latent) => details.append(slider(run, r, latent)));
    column.append(details);
  }
  return column;
}

function slider(run, r, latent) {
  const row = document.createElement("div");
  row.className = "slider";
  const name = latent.factor ? `${latent.factor} (${latent.share.toFixed(2)})` : "—";
  const id = `z-${r}-${latent.index}`;
  const info = latent.information === null ? "" : ` <small>${latent.measure} ${latent.information.toFixed(2)}</small>`;
  const label = `<label for="${id}">${run.generator ? "c" : "z"}${latent.index}: ${name} <span class="value"></span>${info}</label>`;
  if (latent.choices) {  // a categorical code: one of its values
    const options = [...Array(latent.choices).keys()].map((k) => `<option value="${k}">${k}</option>`);
    row.innerHTML = label + `<div class="track"><select id="${id}">${options.join("")}</select>` +
      `<span class="mean" id="${id}-mean" hidden></span></div>`;
    const select = row.querySelector("select");
    select.addEventListener("change", () => move(r, latent, Number(select.value)));
    return row;
  }
  const ticks = latent.values  // a quantised latent's values, as tick marks under its slider
    ? `<datalist id="${id}-values">${latent.values.map((v) => `<option value="${v}"></option>`).join("")}</datalist>`
    : "";
  row.innerHTML = label +
    `<div class="track"><input type="range" id="${id}" min="${latent.low}" max="${latent.high}" step="${latent.values ? "any" : 0.05}"${latent.values ? ` list="${id}-values"` : ""}>${ticks}` +
    `<span class="mean" id="${id}-mean" title="the input's code"></span></div>` +
    `<button type="button" title="play this latent's traversal">▶</button>`;
  const input = row.querySelector("input");
  input.addEventListener("input", () => move(r, latent, snap(latent, Number(input.value))));
  row.querySelector("button").addEventListener("click", () => play(r, latent));
  return row;
}

function snap(latent, value) {  // a quantised latent takes only its own values
  if (!latent.values) return value;
  return latent.values.reduce((best, v) => (Math.abs(v - value) < Math.abs(best - value) ? v : best));
}

function move(r, latent, value) {
  const offset = value - state.start.codes[r][latent.index];
  state.values[r][latent.index] = value;
  if ($("link").checked && latent.factor) {  // the same factor's knob in every other run
    state.info.runs.forEach((run, s) => {
      if (s === r) return;
      run.latents.filter((l) => l.factor === latent.factor).forEach((l) => {
        state.values[s][l.index] = snap(l, state.start.codes[s][l.index] + offset);
        showValue(s, l.index);
      });
      redraw(s);
    });
  }
  showValue(r, latent.index);
  redraw(r);
}

function showValue(r, index) {
  const input = $(`z-${r}-${index}`);
  const value = state.values[r][index];
  input.value = input.tagName === "SELECT" ? Math.round(value) : value;
  input.closest(".slider").querySelector(".value").textContent =
    input.tagName === "SELECT" ? String(Math.round(value)) : value.toFixed(2);
}

let timer = null;
function play(r, latent) {
  clearInterval(timer);
  const steps = latent.values || [...Array(61).keys()].map((k) => latent.low + (k * (latent.high - latent.low)) / 60);
  let k = 0;
  timer = setInterval(() => {
    if (k === steps.length) { clearInterval(timer); move(r, latent, state.start.codes[r][latent.index]); return; }
    move(r, latent, steps[k++]);
  }, latent.values ? 300 : 60);
}

async function redraw(r) {
  const z = state.values[r].map((v) => v.toFixed(4)).join(",");
  const ticket = (state.pending[r] = (state.pending[r] || 0) + 1);
  if (state.info.dataset.kind === "image") {
    const response = await fetch(`/api/decode.png?run=${r}&z=${z}&noise=${state.noise[r] || 0}`);
    if (ticket !== state.pending[r]) return;  // a newer move is on its way
    if (!response.ok) return say((await response.json()).error);
    const img = $(`decoded-${r}`);
    URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await response.blob());
  } else {
    const body = await api("/api/decode", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ run: r, codes: [state.values[r]], noise: state.noise[r] || 0 }),
    });
    if (ticket === state.pending[r]) showRow($(`decoded-row-${r}`), body.decoded[0].row, state.start.row);
  }
}

function showRow(table, row, reference) {
  table.hidden = false;
  table.innerHTML = Object.entries(row).map(([name, value]) => {
    const changed = reference && Math.abs(reference[name] - value) > 1e-3 * (1 + Math.abs(value));
    return `<tr><th>${name}</th><td class="${changed ? "changed" : ""}">${value.toPrecision(4)}</td></tr>`;
  }).join("");
}

async function start(path, options) {
  try {
    show(await api(path, options));
    say("");
  } catch (error) {
    say(error.message);
  }
}

function show(observation) {
  state.start = observation;
  state.values = observation.codes.map((code) => code.slice());
  if (observation.index !== undefined) $("index").value = observation.index;
  (observation.factors || []).forEach((value, f) => {
    $(`factor-${f}`) && ($(`factor-${f}`).value = value);
    $(`factor-value-${f}`) && ($(`factor-value-${f}`).textContent = value);
  });
  if (observation.image) $("observation").src = observation.image;
  else { $("observation").parentElement.hidden = true; showRow($("row"), observation.row); }
  state.info.runs.forEach((run, r) => {
    run.latents.forEach((l) => {
      showValue(r, l.index);
      const mean = Math.max(l.low, Math.min(l.high, observation.codes[r][l.index]));
      $(`z-${r}-${l.index}-mean`).style.left = `${((mean - l.low) / (l.high - l.low)) * 100}%`;
    });
    redraw(r);
  });
}

async function main() {
  state.info = await api("/api/describe");
  build(state.info);
  $("random").addEventListener("click", () => start(`/api/observation?seed=${Math.floor(Math.random() * 1e9)}`));
  $("index").addEventListener("change", () => start(`/api/observation?index=${$("index").value}`));
  $("reset").addEventListener("click", () => show(state.start));
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (file) start("/api/encode", { method: "POST", body: file });
  });
  await start("/api/observation?index=0");
}

main().catch((error) => say(error.message));
