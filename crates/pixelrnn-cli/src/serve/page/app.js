// The page of `pixelrnn serve`: pick a model, draw or upload an image, then complete it (the
// rows stream in as they are sampled), score it (NLL, per-pixel heatmap, compressed size
// against PNG) or sample new images. Plain JavaScript, no build step.
//
// Images are kept as the model's raw values, planar [channel][row][column]. What the page did
// last is in `window.pixelrnn` (the browser test reads it).
"use strict";

const SCALE = 10; // screen pixels per image pixel
const $ = (id) => document.getElementById(id);
const state = { models: [], model: null, image: null, upload: null, busy: false };
window.pixelrnn = { original: null, completions: null, score: null, samples: null, rows: 0, image: () => Array.from(state.image) };

function say(text) { $("status").textContent = text; }
function fail(text) { $("error").textContent = text; say("failed"); }

// --- drawing values ------------------------------------------------------------------------
function displayValue(v) {
  const levels = state.model.levels;
  return Math.round((v * 255) / (levels - 1));
}

// The image `values` at its own size, on a canvas of its own.
function smallCanvas(values) {
  const m = state.model;
  const small = document.createElement("canvas");
  small.width = m.width;
  small.height = m.height;
  const ctx = small.getContext("2d");
  const data = ctx.createImageData(m.width, m.height);
  const plane = m.width * m.height;
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) data.data[4 * p + k] = displayValue(values[(m.channels === 3 ? k : 0) * plane + p]);
    data.data[4 * p + 3] = 255;
  }
  ctx.putImageData(data, 0, 0);
  return small;
}

function paint(canvas, values, scale) {
  const m = state.model;
  canvas.width = m.width * scale;
  canvas.height = m.height * scale;
  const big = canvas.getContext("2d");
  big.imageSmoothingEnabled = false;
  big.drawImage(smallCanvas(values), 0, 0, canvas.width, canvas.height);
  return big;
}

function drawInput() {
  const ctx = paint($("canvas"), state.image, SCALE);
  const rows = Number($("rows").value);
  ctx.strokeStyle = "#e33";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(0, rows * SCALE);
  ctx.lineTo($("canvas").width, rows * SCALE);
  ctx.stroke();
}

// The current image as a PNG: the uploaded file as it was, or the drawing encoded here.
function imagePng() {
  if (state.upload) return Promise.resolve(new Blob([state.upload], { type: "image/png" }));
  return new Promise((resolve) => smallCanvas(state.image).toBlob(resolve, "image/png"));
}

// --- the model -----------------------------------------------------------------------------
function selectModel(id) {
  const m = state.models.find((x) => x.id === id);
  state.model = m;
  state.image = new Uint8Array(m.channels * m.height * m.width);
  state.upload = null;
  $("rows").max = m.height - 1;
  $("rows").value = Math.floor(m.height / 2);
  $("model-info").textContent =
    `${m.architecture} on ${m.dataset}, ${m.channels}x${m.height}x${m.width}, ${m.levels} levels, step ${m.step}` +
    (m.averaged ? ", averaged weights" : "");
  $("hint").textContent = m.levels === 2 && m.channels === 1
    ? `Draw a ${m.width}x${m.height} image (shift or right button erases), or upload a PNG of that size.`
    : `Upload a ${m.width}x${m.height} ${m.channels === 3 ? "RGB" : "greyscale"} PNG.`;
  const classes = $("class");
  classes.innerHTML = "";
  $("class-label").hidden = m.classes == null;
  for (let k = 0; k < (m.classes || 0); k++) classes.add(new Option(String(k), String(k)));
  drawInput();
}

function query(extra) {
  const params = new URLSearchParams({ model: state.model.id, seed: $("seed").value, ...extra });
  if (state.model.classes != null) params.set("class", $("class").value);
  return params.toString();
}

async function errorOf(response) {
  try { return (await response.json()).error; } catch (_) { return `HTTP ${response.status}`; }
}

// --- server-sent events --------------------------------------------------------------------
// Reads an event stream from a fetch response, calling onEvent(name, data) per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

// Streams generated images into canvases in `strip`; resolves with the images.
async function generate(url, body, strip, initial) {
  const response = await fetch(url, { method: "POST", body });
  if (!response.ok) throw new Error(await errorOf(response));
  const m = state.model;
  const plane = m.width * m.height;
  let images = [];
  let canvases = [];
  let failed = null;
  let finished = false;
  strip.innerHTML = "";
  await readEvents(response, (name, data) => {
    if (name === "start") {
      images = Array.from({ length: data.count }, () => (initial ? Uint8Array.from(initial) : new Uint8Array(m.channels * plane)));
      canvases = images.map(() => {
        const c = document.createElement("canvas");
        strip.appendChild(c);
        return c;
      });
    } else if (name === "row") {
      data.values.forEach((row, k) => {
        for (let c = 0; c < m.channels; c++) {
          for (let x = 0; x < m.width; x++) images[k][c * plane + data.row * m.width + x] = row[c * m.width + x];
        }
        paint(canvases[k], images[k], 4);
      });
      say(`row ${data.row + 1} of ${m.height}`);
    } else if (name === "done") {
      finished = true;
    } else if (name === "error") {
      failed = data.error;
    }
  });
  if (failed) throw new Error(failed);
  if (!finished) throw new Error("the stream ended early");
  return images.map((im) => Array.from(im));
}

async function run(action) {
  if (state.busy) return;
  state.busy = true;
  $("error").textContent = "";
  say("working");
  try {
    await action();
    say("done");
  } catch (e) {
    fail(e.message);
  } finally {
    state.busy = false;
  }
}

async function complete() {
  const rows = Number($("rows").value);
  const samples = Number($("samples").value);
  const png = await imagePng();
  window.pixelrnn.original = Array.from(state.image);
  window.pixelrnn.rows = rows;
  window.pixelrnn.completions = await generate(`/api/complete?${query({ rows, samples })}`, png, $("completions"), state.image);
}

async function score() {
  const png = await imagePng();
  const response = await fetch(`/api/score?${query({})}`, { method: "POST", body: png });
  if (!response.ok) throw new Error(await errorOf(response));
  const s = await response.json();
  window.pixelrnn.score = s;
  const m = state.model;
  const dims = m.channels * m.height * m.width;
  $("nll").textContent = m.unit === "nats"
    ? `NLL ${s.nll_nats.toFixed(2)} nats (${s.bits_per_dim.toFixed(4)} bits/dim)`
    : `NLL ${s.bits_per_dim.toFixed(3)} bits/dim (${s.nll_nats.toFixed(1)} nats)`;
  $("sizes").textContent =
    `compressed with the model: ${s.compressed_bytes} bytes (${s.coded_image_bytes.toFixed(1)} bytes of coded image, ` +
    `the rest the file's header) · PNG: ${s.png_bytes} bytes (upload ${s.upload_bytes}) · raw: ${dims} values`;
  const heat = $("heatmap");
  heat.width = m.width * SCALE;
  heat.height = m.height * SCALE;
  const ctx = heat.getContext("2d");
  const top = Math.max(...s.per_pixel, 1e-9);
  s.per_pixel.forEach((v, p) => {
    const t = Math.min(v / top, 1);
    ctx.fillStyle = `rgb(${Math.round(255 * Math.sqrt(t))}, ${Math.round(200 * t * t)}, ${Math.round(90 * (1 - t))})`;
    ctx.fillRect((p % m.width) * SCALE, Math.floor(p / m.width) * SCALE, SCALE, SCALE);
  });
}

async function sample() {
  const count = Number($("samples").value);
  window.pixelrnn.samples = await generate(`/api/sample?${query({ count })}`, null, $("samples-out"), null);
}

// --- input -----------------------------------------------------------------------------------
function setupCanvas() {
  const canvas = $("canvas");
  let drawing = false;
  let erase = false;
  const put = (event) => {
    const m = state.model;
    if (!(m.levels === 2 && m.channels === 1)) return;
    const rect = canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * m.width);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * m.height);
    if (x < 0 || y < 0 || x >= m.width || y >= m.height) return;
    state.image[y * m.width + x] = erase ? 0 : 1;
    state.upload = null;
    drawInput();
  };
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("mousedown", (e) => { drawing = true; erase = e.shiftKey || e.button === 2; put(e); });
  canvas.addEventListener("mousemove", (e) => { if (drawing) put(e); });
  window.addEventListener("mouseup", () => { drawing = false; });
}

// Reads an uploaded PNG as the model's values (thresholded at 128 for binary models, as the
// server reads it) to show it; the file itself is what is sent.
async function onUpload() {
  const file = $("upload").files[0];
  if (!file) return;
  $("error").textContent = "";
  const bytes = await file.arrayBuffer();
  const m = state.model;
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
  } catch (_) {
    fail(`${file.name}: not an image this browser can read`);
    return;
  }
  if (bitmap.width !== m.width || bitmap.height !== m.height) {
    fail(`${file.name} is ${bitmap.width}x${bitmap.height}; the model expects ${m.width}x${m.height}`);
    return;
  }
  const small = document.createElement("canvas");
  small.width = m.width;
  small.height = m.height;
  const ctx = small.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, m.width, m.height).data;
  const plane = m.width * m.height;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < m.channels; c++) {
      const v = rgba[4 * p + c];
      state.image[c * plane + p] = m.levels === 2 ? (v >= 128 ? 1 : 0) : Math.round((v * (m.levels - 1)) / 255);
    }
  }
  state.upload = bytes;
  drawInput();
  say(`${file.name} loaded`);
}

async function init() {
  setupCanvas();
  $("model").addEventListener("change", (e) => selectModel(e.target.value));
  $("rows").addEventListener("input", drawInput);
  $("upload").addEventListener("change", onUpload);
  $("clear").addEventListener("click", () => { state.image.fill(0); state.upload = null; drawInput(); });
  $("complete").addEventListener("click", () => run(complete));
  $("score").addEventListener("click", () => run(score));
  $("sample").addEventListener("click", () => run(sample));
  try {
    const response = await fetch("/api/models");
    state.models = await response.json();
  } catch (e) {
    fail(`cannot reach the server: ${e.message}`);
    return;
  }
  for (const m of state.models) $("model").add(new Option(`${m.id} (${m.architecture}, ${m.dataset})`, m.id));
  if (state.models.length) selectModel(state.models[0].id);
  say("ready");
}

init();
