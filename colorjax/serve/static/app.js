// colorjax app: upload with progress, the before/after slider, re-colouring. No framework.
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
  compare.addEventListener("pointerdown", (e) => { dragging = true; compare.setPointerCapture(e.pointerId); fromPointer(e); });
  compare.addEventListener("pointermove", (e) => { if (dragging) fromPointer(e); });
  compare.addEventListener("pointerup", () => { dragging = false; });
  compare.addEventListener("pointercancel", () => { dragging = false; });

  for (const radio of document.querySelectorAll('input[name="before"]')) {
    radio.addEventListener("change", () => {
      before.src = "/images/" + compare.dataset.image + "/" + radio.value + ".png";
      document.getElementById("before-tag").textContent = radio.value === "gray" ? "gray" : "original";
    });
  }
  document.getElementById("actual-size").addEventListener("change", (e) => {
    frame.classList.toggle("actual", e.target.checked);
  });

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

function localTimes() {
  for (const time of document.querySelectorAll("time[data-ts]")) {
    time.textContent = new Date(parseFloat(time.dataset.ts) * 1000).toLocaleString();
  }
}

setupUpload();
setupCompare();
localTimes();
