// colorjax app: upload with progress, the before/after slider, re-colouring, colour points. No framework.
"use strict";
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

function setupUpload() {
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const input = document.getElementById("file");
  const progress = document.getElementById("progress");
  const fill = document.getElementById("progress-fill");
  const text = document.getElementById("progress-text");
  const error = document.getElementById("upload-error");

  function fail(message) {
    progress.hidden = true;
    progress.classList.remove("working");
    error.textContent = message;
    error.hidden = false;
  }

  function upload(file) {
    error.hidden = true;
    progress.hidden = false;
    fill.style.width = "0";
    text.textContent = "Uploading " + file.name + "…";
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/colorize");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken);
    xhr.responseType = "blob";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) fill.style.width = (100 * e.loaded / e.total).toFixed(1) + "%";
    };
    xhr.upload.onload = () => {
      progress.classList.add("working");
      text.textContent = "Colouring " + file.name + "…";
    };
    xhr.onload = async () => {
      if (xhr.status === 200) {
        text.textContent = "Done.";
        window.location.href = "/images/" + xhr.getResponseHeader("X-Image-Id");
        return;
      }
      let message = "The server answered " + xhr.status + ".";
      try { message = JSON.parse(await xhr.response.text()).error || message; } catch (e) { /* not JSON */ }
      fail(message);
    };
    xhr.onerror = () => fail("The upload failed (connection lost?).");
    const form = new FormData();
    form.append("image", file);
    xhr.send(form);
  }

  input.addEventListener("change", () => { if (input.files.length) upload(input.files[0]); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
}

function setupCompare() {
  const compare = document.getElementById("compare");
  if (!compare) return;
  const frame = document.getElementById("compare-frame");
  const after = document.getElementById("after");
  const before = document.getElementById("before");
  const range = document.getElementById("split");
  const width = after.getAttribute("width"), height = after.getAttribute("height");
  compare.style.setProperty("--aspect", width / height);
  compare.style.setProperty("--w", width);

  function setSplit(percent) {
    percent = Math.min(100, Math.max(0, percent));
    compare.style.setProperty("--split", percent + "%");
    range.value = percent;
  }
  range.addEventListener("input", () => setSplit(parseFloat(range.value)));
  let dragging = false;
  function fromPointer(e) {
    const box = compare.getBoundingClientRect();
    setSplit(100 * (e.clientX - box.left) / box.width);
  }
  compare.addEventListener("pointerdown", (e) => {
    if (compare.classList.contains("hinting")) return;  // A click places a colour point instead (setupHints).
    dragging = true;
    compare.setPointerCapture(e.pointerId);
    fromPointer(e);
  });
  compare.addEventListener("pointermove", (e) => { if (dragging) fromPointer(e); });
  compare.addEventListener("pointerup", () => { dragging = false; });
  compare.addEventListener("pointercancel", () => { dragging = false; });

  // A large photo arrives as its screen-sized previews (preview.jpg, gray_preview.jpg); "actual size" loads the
  // full-resolution files, once. A re-coloured result (a blob of the full PNG) is full-size already.
  const files = "/images/" + compare.dataset.image + "/";
  let fullSize = !after.getAttribute("src").endsWith("preview.jpg");
  let beforeKind = "gray";
  function showBefore() {
    before.src = files + (beforeKind === "gray" && !fullSize ? "gray_preview.jpg" : beforeKind + ".png");
  }
  for (const radio of document.querySelectorAll('input[name="before"]')) {
    radio.addEventListener("change", () => {
      beforeKind = radio.value;
      showBefore();
      document.getElementById("before-tag").textContent = radio.value === "gray" ? "gray" : "original";
    });
  }
  document.getElementById("actual-size").addEventListener("change", (e) => {
    frame.classList.toggle("actual", e.target.checked);
    if (e.target.checked && !fullSize) {
      fullSize = true;
      if (!after.src.startsWith("blob:")) after.src = files + "color.png";
      showBefore();
    }
  });

  setupHints(compare, after);
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

// Forms that ask first (delete): the question is the form's data-confirm (no inline handler: the CSP allows none).
function setupConfirms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => { if (!confirm(form.dataset.confirm)) e.preventDefault(); });
  }
}

function localTimes() {
  for (const time of document.querySelectorAll("time[data-ts]")) {
    time.textContent = new Date(parseFloat(time.dataset.ts) * 1000).toLocaleString();
  }
}

setupUpload();
setupCompare();
setupConfirms();
localTimes();
