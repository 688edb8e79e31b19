// colorjax app: photos as jobs with their progress, the before/after slider with zoom and pan, re-colouring, colour
// points, the undo after a delete. No framework.
"use strict";
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

// Colorizing is a job per photo (POST /api/jobs): several photos can be dropped at once; each one's row says where
// it stands (queue position, elapsed time, an estimate) and can cancel it. Uploads go one at a time, no more than
// the server's per-user limit waiting at once; a single photo opens its result page when it is done.
function setupUpload() {
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const input = document.getElementById("file");
  const list = document.getElementById("jobs");
  const summary = document.getElementById("queue-summary");
  const error = document.getElementById("upload-error");
  const maxQueued = parseInt(zone.dataset.maxQueued, 10) || 1;
  const entries = [];  // {file, name, row, state: "waiting"|"uploading"|a job status, job, xhr}
  const waiting = [];
  let sending = false;
  const active = (e) => ["uploading", "queued", "running", "cancelling"].includes(e.state);
  const seconds = (s) => s < 1 ? "under 1 s" : s < 60 ? Math.round(s) + " s" : Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function addRow(entry) {
    const row = document.createElement("li");
    row.className = "job";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.name;
    const state = document.createElement("span");
    state.className = "state";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "cancel";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", () => cancelEntry(entry));
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "fill";
    bar.append(fill);
    row.append(name, cancel, state, bar);
    list.append(row);
    Object.assign(entry, { row: row, stateText: state, cancel: cancel, fill: fill });
    entries.push(entry);
  }

  function show(entry, text) {
    entry.row.className = "job " + entry.state;
    entry.stateText.textContent = text;
    const counts = {};
    for (const e of entries) counts[e.state] = (counts[e.state] || 0) + 1;
    const parts = [];
    const waitingCount = (counts.waiting || 0) + (counts.uploading || 0) + (counts.queued || 0);
    if (waitingCount) parts.push(waitingCount + " queued");
    if (counts.running || counts.cancelling) parts.push((counts.running || 0) + (counts.cancelling || 0) + " colouring");
    if (counts.done) parts.push(counts.done + " done");
    if (counts.failed) parts.push(counts.failed + " failed");
    summary.hidden = !parts.length;
    summary.textContent = parts.join(" · ");
  }

  function showJob(entry, job) {
    entry.job = job;
    entry.state = job.status;
    const estimate = job.estimate_s === null ? "" :
      job.estimate_s < 1 ? ", under 1 s left" : ", about " + seconds(job.estimate_s) + " left";
    if (job.status === "queued") {
      const ahead = job.position === 0 ? "next in line" : job.position + " ahead";
      show(entry, "Queued (" + ahead + "), waiting " + seconds(job.elapsed_s) + estimate);
    } else if (job.status === "running") {
      show(entry, "Colouring for " + seconds(job.running_s) + estimate);
    } else if (job.status === "cancelling") {
      show(entry, "Cancelling: the model finishes this photo, then it is discarded");
    } else if (job.status === "done") {
      entry.cancel.remove();
      const open = document.createElement("a");
      open.className = "button open";
      open.href = job.page;
      open.textContent = "Open";
      entry.row.append(open);
      show(entry, "Done in " + seconds(job.elapsed_s));
    } else {
      entry.cancel.remove();
      show(entry, job.status === "failed" ? job.error : "Cancelled");
    }
  }

  async function poll(entry) {
    while (["queued", "running", "cancelling"].includes(entry.state)) {
      await sleep(entry.state === "queued" ? 1000 : 500);
      try {
        const response = await fetch("/api/jobs/" + entry.job.id);
        if (response.ok) showJob(entry, await response.json());
      } catch (e) { /* the next try */ }
    }
    if (entry.state === "done" && entry.single) window.location.href = entry.job.page;
    pump();
  }

  function send(entry) {  // The upload, with its progress; resolves to [status, body, Retry-After].
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      entry.xhr = xhr;
      xhr.open("POST", "/api/jobs");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) entry.fill.style.width = (100 * e.loaded / e.total).toFixed(1) + "%";
      };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        resolve([xhr.status, body, parseFloat(xhr.getResponseHeader("Retry-After")) || 5]);
      };
      xhr.onerror = () => resolve([0, { error: "The upload failed (connection lost?)." }, 5]);
      xhr.onabort = () => resolve([0, { error: "Cancelled" }, 0]);
      const form = new FormData();
      form.append("image", entry.file);
      if (entry.model) form.append("model", entry.model);
      xhr.send(form);
    });
  }

  async function pump() {  // Sends the waiting photos in order, keeping within the server's per-user limit.
    if (sending) return;
    sending = true;
    while (waiting.length) {
      const entry = waiting[0];
      if (entry.state !== "waiting") { waiting.shift(); continue; }
      if (entries.filter(active).length >= maxQueued) break;  // poll() calls pump() again when one ends.
      entry.state = "uploading";
      show(entry, "Uploading…");
      const [status, body, retry] = await send(entry);
      if (entry.state === "cancelled") { waiting.shift(); continue; }
      if (status === 429) {  // Another tab of the same user filled the queue: wait, then try again.
        entry.state = "waiting";
        show(entry, "Waiting for a free place in the queue");
        await sleep(retry * 1000);
        continue;
      }
      waiting.shift();
      entry.fill.style.width = "";
      if (status === 202) {
        showJob(entry, body);
        poll(entry);
      } else {
        entry.state = "failed";
        entry.cancel.remove();
        show(entry, body.error || "The server answered " + status + ".");
      }
    }
    sending = false;
  }

  async function cancelEntry(entry) {
    if (entry.state === "waiting" || entry.state === "uploading") {
      entry.state = "cancelled";
      if (entry.xhr) entry.xhr.abort();
      entry.cancel.remove();
      show(entry, "Cancelled");
      pump();
      return;
    }
    const response = await fetch("/api/jobs/" + entry.job.id,
      { method: "DELETE", headers: { "X-CSRF-Token": csrfToken } });
    if (response.ok) showJob(entry, await response.json());
  }

  function add(files) {
    error.hidden = true;
    const single = files.length === 1 && !entries.some(active) && !waiting.length;
    for (const file of files) {
      const choice = document.getElementById("model-choice");  // Only where the server has several models.
      const entry = { file: file, name: file.name, state: "waiting", single: single, model: choice && choice.value };
      addRow(entry);
      show(entry, "Waiting to upload");
      waiting.push(entry);
    }
    pump();
  }

  // Jobs sent before this page was (re)loaded, still waiting or running: shown, never opened by themselves.
  fetch("/api/jobs").then((r) => r.ok ? r.json() : { jobs: [] }).then((answer) => {
    for (const job of answer.jobs) {
      if (!["queued", "running", "cancelling"].includes(job.status)) continue;
      const entry = { name: job.name, state: job.status, single: false };
      addRow(entry);
      showJob(entry, job);
      poll(entry);
    }
  }).catch(() => {});

  input.addEventListener("change", () => { if (input.files.length) add(Array.from(input.files)); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) add(Array.from(e.dataTransfer.files));
  });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
}

// The before/after slider, with zoom (buttons, wheel, pinch: fit to 8x, or more for actual size) and pan (drag):
// both photos sit in one stage that is scaled and moved, so they always move together. The handle stays where it
// is on screen; the gray is cut at the photo's point under it. "Actual size" shows one photo pixel per screen pixel,
// centred on the handle.
function setupCompare() {
  const compare = document.getElementById("compare");
  if (!compare) return;
  const stage = document.getElementById("stage");
  const after = document.getElementById("after");
  const before = document.getElementById("before");
  const range = document.getElementById("split");
  const level = document.getElementById("zoom-level");
  const actualButton = document.getElementById("actual-size");
  const width = after.getAttribute("width"), height = after.getAttribute("height");
  compare.closest(".viewer").style.setProperty("--aspect", width / height);  // The photo's and the range's width.
  const view = { z: 1, x: 0, y: 0, split: 50 };  // zoom, the stage's offset (CSS px), the handle (% of the width)
  const box = () => compare.getBoundingClientRect();
  const actualZoom = () => width / compare.clientWidth;  // One photo pixel per CSS pixel.
  const minZoom = () => Math.min(1, actualZoom());
  const maxZoom = () => Math.max(8, actualZoom());

  function update() {
    const w = compare.clientWidth, h = compare.clientHeight;
    for (const [axis, size] of [["x", w], ["y", h]]) {  // No empty space beside a photo larger than the frame.
      const scaled = view.z * size;
      view[axis] = scaled >= size ? Math.min(0, Math.max(size - scaled, view[axis])) : (size - scaled) / 2;
    }
    stage.style.transform = "translate(" + view.x + "px, " + view.y + "px) scale(" + view.z + ")";
    const cut = 100 * (view.split / 100 * w - view.x) / (view.z * w);  // The handle's place on the photo.
    compare.style.setProperty("--split", view.split + "%");
    compare.style.setProperty("--cut", Math.min(100, Math.max(0, cut)) + "%");
    compare.style.setProperty("--z", view.z);
    compare.classList.toggle("zoomed", view.z > minZoom() + 1e-3);
    range.value = view.split;
    const actual = Math.abs(view.z - actualZoom()) < 1e-3;
    level.textContent = actual ? "1:1" : Math.abs(view.z - 1) < 1e-3 ? "fit" : view.z.toFixed(1) + "×";
    actualButton.setAttribute("aria-pressed", actual);
    if (!fullSize && after.naturalWidth && view.z * w * (window.devicePixelRatio || 1) > after.naturalWidth * 1.05) loadFullSize();
  }
  function setSplit(percent) {
    view.split = Math.min(100, Math.max(0, percent));
    update();
  }
  function zoomAt(z, cx, cy) {  // To zoom z, keeping the photo's point at (cx, cy) of the frame where it is.
    z = Math.min(maxZoom(), Math.max(minZoom(), z));
    view.x = cx - (cx - view.x) * z / view.z;
    view.y = cy - (cy - view.y) * z / view.z;
    view.z = z;
    update();
  }
  const zoomCentre = (factor) => zoomAt(view.z * factor, compare.clientWidth / 2, compare.clientHeight / 2);
  document.getElementById("zoom-in").addEventListener("click", () => zoomCentre(1.5));
  document.getElementById("zoom-out").addEventListener("click", () => zoomCentre(1 / 1.5));
  document.getElementById("zoom-fit").addEventListener("click", () => zoomAt(1, 0, 0));
  actualButton.addEventListener("click", () => {
    if (actualButton.getAttribute("aria-pressed") === "true") { zoomAt(1, 0, 0); return; }
    // The photo's point under the handle (half-way down) goes to the middle of the frame, and the handle with it.
    const w = compare.clientWidth, h = compare.clientHeight;
    const px = (view.split / 100 * w - view.x) / view.z, py = (h / 2 - view.y) / view.z;
    view.z = actualZoom();
    view.x = w / 2 - px * view.z;
    view.y = h / 2 - py * view.z;
    update();  // Clamps the offset near the photo's edges; the handle follows the point.
    setSplit(100 * (px * view.z + view.x) / w);
  });
  compare.addEventListener("wheel", (e) => {
    e.preventDefault();
    const b = box();
    zoomAt(view.z * Math.exp(-e.deltaY * 0.002), e.clientX - b.left, e.clientY - b.top);
  }, { passive: false });
  new ResizeObserver(update).observe(compare);
  range.addEventListener("input", () => setSplit(parseFloat(range.value)));

  // Pointers: one drags the handle (anywhere when the photo fits; on the handle when zoomed in) or pans; two pinch.
  const pointers = new Map();
  let drag = null;
  function fromPointer(e) { const b = box(); setSplit(100 * (e.clientX - b.left) / b.width); }
  compare.addEventListener("pointerdown", (e) => {
    if (compare.classList.contains("hinting")) return;  // A click places a colour point instead (setupHints).
    compare.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      if (drag && drag.split) setSplit(drag.splitBefore);  // The first finger was the start of a pinch, not a drag.
      drag = { pinch: Math.hypot(a.x - b.x, a.y - b.y), z: view.z };
      return;
    }
    const b = box();
    const nearHandle = Math.abs(e.clientX - b.left - view.split / 100 * b.width) < 20;
    if (view.z > minZoom() + 1e-3 && !nearHandle) {
      drag = { pan: true, x: e.clientX - view.x, y: e.clientY - view.y };
      compare.classList.add("panning");
    } else {
      drag = { split: true, splitBefore: view.split };
      fromPointer(e);
    }
  });
  compare.addEventListener("pointermove", (e) => {
    if (!pointers.has(e.pointerId) || !drag) return;
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (drag.pinch && pointers.size === 2) {
      const [a, c] = [...pointers.values()];
      const b = box();
      zoomAt(drag.z * Math.hypot(a.x - c.x, a.y - c.y) / drag.pinch, (a.x + c.x) / 2 - b.left, (a.y + c.y) / 2 - b.top);
    } else if (drag.pan) {
      view.x = e.clientX - drag.x;
      view.y = e.clientY - drag.y;
      update();
    } else if (drag.split) {
      fromPointer(e);
    }
  });
  function release(e) {
    pointers.delete(e.pointerId);
    if (!pointers.size || drag && drag.pinch) drag = null;
    compare.classList.remove("panning");
  }
  compare.addEventListener("pointerup", release);
  compare.addEventListener("pointercancel", release);

  // A large photo arrives as its screen-sized previews (preview.jpg, gray_preview.jpg, and for the original colour
  // input_preview.jpg); "actual size", or zooming past the preview's own pixels, loads the full-resolution files,
  // once. A re-coloured result (a blob of the full PNG) is full-size already.
  const files = "/images/" + compare.dataset.image + "/";
  let fullSize = !after.getAttribute("src").endsWith("preview.jpg");
  let beforeKind = "gray";
  function showBefore() {
    before.src = files + beforeKind + (fullSize ? ".png" : "_preview.jpg");
  }
  function loadFullSize() {
    fullSize = true;
    if (!after.src.startsWith("blob:")) after.src = files + "color.png";
    showBefore();
  }
  for (const radio of document.querySelectorAll('input[name="before"]')) {
    radio.addEventListener("change", () => {
      beforeKind = radio.value;
      showBefore();
      document.getElementById("before-tag").textContent = radio.dataset.tag || (radio.value === "gray" ? "gray" : "original");
    });
  }
  update();

  setupHints(compare, after);
  const otherModel = document.getElementById("other-model");
  if (otherModel) {
    const modelButton = document.getElementById("recolor-model");
    modelButton.addEventListener("click", async () => {
      modelButton.disabled = true;
      const modelStatus = document.getElementById("model-status");
      modelStatus.textContent = "Colouring with " + otherModel.value + "…";
      const form = new FormData();
      form.append("model", otherModel.value);
      const response = await fetch("/api/images/" + compare.dataset.image + "/recolor",
        { method: "POST", body: form, headers: { "X-CSRF-Token": csrfToken } });
      if (response.ok) {
        window.location.search = "?compare=1";  // The page again, the previous model's colours on the left.
        return;
      }
      modelStatus.textContent = (await response.json()).error || "Re-colouring failed.";
      modelButton.disabled = false;
    });
  }
  const previous = document.querySelector('input[name="before"][value="previous"]');
  if (previous && new URLSearchParams(window.location.search).has("compare")) previous.click();
  const temperature = document.getElementById("temperature");
  if (!temperature) return;
  const value = document.getElementById("temperature-value");
  const status = document.getElementById("recolor-status");
  const button = document.getElementById("recolor");
  temperature.addEventListener("input", () => { value.textContent = parseFloat(temperature.value).toFixed(2); });
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Colouring…";
    const form = new FormData();
    form.append("temperature", temperature.value);
    try {
      const response = await fetch("/api/images/" + compare.dataset.image + "/recolor",
        { method: "POST", body: form, headers: { "X-CSRF-Token": csrfToken } });
      if (!response.ok) throw new Error((await response.json()).error);
      after.src = URL.createObjectURL(await response.blob());
      status.textContent = "Re-coloured at " + parseFloat(temperature.value).toFixed(2) + ".";
    } catch (e) {
      status.textContent = e.message || "Re-colouring failed.";
    } finally {
      button.disabled = false;
    }
  });
}

// Colour points for a hint-capable model (SIGGRAPH17): click on the photo to drop one, pick its colour, re-colour.
// Points are kept as the API takes them: {x, y, color: "#rrggbb"} in the photo's full-resolution pixels (a point
// saved by a script may carry "ab" and "size" instead; it is sent back unchanged until its colour is picked).
function setupHints(compare, after) {
  const panel = document.getElementById("hints");
  if (!panel) return;
  const markers = document.getElementById("hint-markers");
  const list = document.getElementById("hint-list");
  const mode = document.getElementById("hint-mode");
  const button = document.getElementById("hint-recolor");
  const status = document.getElementById("hint-status");
  const maxPoints = parseInt(panel.dataset.max, 10);
  const width = parseInt(after.getAttribute("width"), 10), height = parseInt(after.getAttribute("height"), 10);
  const points = JSON.parse(panel.dataset.points);
  const shown = new Map();  // point -> the colour its marker shows
  const pixel = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
  pixel.canvas.width = pixel.canvas.height = 1;

  function colorAt(x, y) {  // The colorization's colour at a full-resolution pixel, as "#rrggbb".
    const sx = after.naturalWidth / width, sy = after.naturalHeight / height;  // A preview is smaller.
    pixel.drawImage(after, Math.floor(x * sx), Math.floor(y * sy), 1, 1, 0, 0, 1, 1);
    const [r, g, b] = pixel.getImageData(0, 0, 1, 1).data;
    return "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
  }

  function render() {
    markers.replaceChildren();
    list.replaceChildren();
    points.forEach((point, index) => {
      const color = point.color || shown.get(point) || "#808080";
      const marker = document.createElement("button");
      marker.type = "button";
      marker.className = "marker";
      marker.title = "point " + (index + 1) + " at " + point.x + ", " + point.y;
      marker.style.left = (100 * (point.x + 0.5) / width) + "%";
      marker.style.top = (100 * (point.y + 0.5) / height) + "%";
      marker.style.background = color;
      marker.addEventListener("click", () => list.children[index].querySelector("input").focus());
      markers.append(marker);

      const row = document.createElement("li");
      row.className = "hint";
      row.dataset.x = point.x;
      row.dataset.y = point.y;
      const picker = document.createElement("input");
      picker.type = "color";
      picker.value = color;
      picker.setAttribute("aria-label", "colour of point " + (index + 1));
      picker.addEventListener("input", () => {
        delete point.ab;
        point.color = picker.value;
        marker.style.background = picker.value;
      });
      picker.addEventListener("focus", () => marker.classList.add("selected"));
      picker.addEventListener("blur", () => marker.classList.remove("selected"));
      const where = document.createElement("span");
      where.className = "muted small";
      where.textContent = "x " + point.x + ", y " + point.y;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link danger remove";
      remove.textContent = "remove";
      remove.addEventListener("click", () => { points.splice(index, 1); render(); });
      row.append(picker, where, remove);
      list.append(row);
    });
  }

  mode.addEventListener("click", () => {
    const on = mode.getAttribute("aria-pressed") !== "true";
    mode.setAttribute("aria-pressed", on);
    compare.classList.toggle("hinting", on);
    mode.textContent = on ? "Done placing points" : "Place colour points";
  });
  compare.addEventListener("click", (e) => {
    if (!compare.classList.contains("hinting") || e.target.classList.contains("marker")) return;
    if (points.length >= maxPoints) {
      status.textContent = "At most " + maxPoints + " points.";
      return;
    }
    const box = after.getBoundingClientRect();
    const x = Math.min(width - 1, Math.max(0, Math.floor(width * (e.clientX - box.left) / box.width)));
    const y = Math.min(height - 1, Math.max(0, Math.floor(height * (e.clientY - box.top) / box.height)));
    points.push({ x: x, y: y, color: colorAt(x, y) });
    render();
  });
  // Saved points without a colour of their own ("ab" from a script) show the colour they gave the photo.
  function showSaved() {
    for (const point of points) if (!point.color) shown.set(point, colorAt(point.x, point.y));
    render();
  }
  if (after.complete && after.naturalWidth) showSaved(); else after.addEventListener("load", showSaved, { once: true });

  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Colouring…";
    const form = new FormData();
    form.append("hints", JSON.stringify(points));
    try {
      const response = await fetch("/api/images/" + compare.dataset.image + "/recolor",
        { method: "POST", body: form, headers: { "X-CSRF-Token": csrfToken } });
      if (!response.ok) throw new Error((await response.json()).error);
      const loaded = new Promise((resolve) => after.addEventListener("load", resolve, { once: true }));
      after.src = URL.createObjectURL(await response.blob());
      await loaded;
      status.textContent = "Re-coloured with " + points.length + " point" + (points.length === 1 ? "" : "s") + ".";
    } catch (e) {
      status.textContent = e.message || "Re-colouring failed.";
    } finally {
      button.disabled = false;
    }
  });
}

// Forms that ask first (the account page's deletes): the question is the form's data-confirm (no inline handler: the CSP allows none).
function setupConfirms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => { if (!confirm(form.dataset.confirm)) e.preventDefault(); });
  }
}

// After a delete, the history says so with Undo (a form: it works without this) while the item can be restored;
// this counts the seconds down, then takes the Undo away, and drops ?deleted= from the address (a reload is clean).
function setupUndo() {
  const notice = document.getElementById("deleted-notice");
  if (!notice) return;
  window.history.replaceState(null, "", window.location.pathname);
  const form = document.getElementById("undo-form");
  if (!form) return;
  const left = document.getElementById("undo-left");
  const end = Date.now() + 1000 * parseFloat(notice.dataset.undoLeft);
  function tick() {
    const seconds = Math.ceil((end - Date.now()) / 1000);
    if (seconds <= 0) { form.remove(); return; }
    left.textContent = "for " + seconds + " s";
    setTimeout(tick, 250);
  }
  tick();
}

function localTimes() {
  for (const time of document.querySelectorAll("time[data-ts]")) {
    time.textContent = new Date(parseFloat(time.dataset.ts) * 1000).toLocaleString();
  }
}

setupUpload();
setupCompare();
setupConfirms();
setupUndo();
localTimes();
