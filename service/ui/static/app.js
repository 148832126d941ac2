// facesearch's own few lines: drop a photo on the search form to search with it,
// uploads over the server's limit refused before they are sent, the person page's
// selection, and keyboard shortcuts.
// Everything works without this file: the forms are plain HTML forms.
"use strict";

// A file field with data-max-bytes (the server's upload limit): files larger in all
// are refused before sending, with the message in the alert region and on the field
// (which then blocks the form, htmx's requests too). The server refuses them anyway.
const megabytes = (bytes) => (bytes / 1048576).toFixed(1) + " MiB";
function checkSize(input) {
  const limit = Number(input.dataset.maxBytes);
  if (!limit) return true;
  const total = Array.from(input.files || []).reduce((sum, file) => sum + file.size, 0);
  const alerts = document.getElementById("alerts");
  const message = total > limit
    ? `${input.files.length === 1 ? input.files[0].name + " is" : "These files are"} ${megabytes(total)}: ` +
      `uploads are limited to ${megabytes(limit)}. Choose a smaller photo.`
    : "";
  input.setCustomValidity(message);
  if (alerts && (message || alerts.dataset.sizeMessage)) {
    alerts.replaceChildren();
    if (message) {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = message;
      alerts.append(p);
    }
    alerts.dataset.sizeMessage = message ? "1" : "";
  }
  return !message;
}
document.addEventListener("change", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.type === "file") checkSize(input);
});
document.addEventListener("DOMContentLoaded", () => {
  const zone = document.querySelector(".dropzone");
  const input = zone && zone.querySelector('input[type="file"]');
  if (!zone || !input) return;
  const stop = (event) => { event.preventDefault(); event.stopPropagation(); };
  zone.addEventListener("dragover", (event) => { stop(event); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    stop(event);
    zone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      if (checkSize(input)) zone.requestSubmit();
    }
  });
});

// The pages of faces (a person, a group): select all faces on the page; shift-click
// selects a range; the count of selected faces kept up to date.
document.addEventListener("change", (event) => {
  // The sightings: the count of ticked sightings beside "Search again" (the results come and go with htmx).
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.name !== "sure") return;
  const form = box.form;
  const n = form ? form.querySelectorAll('input[name="sure"]:checked').length : 0;
  if (form) form.querySelectorAll("[data-selected-count]").forEach((el) => { el.textContent = `${n} selected`; });
});
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("faces");
  if (!form) return;
  const boxes = () => Array.from(form.querySelectorAll('input[name="face_ids"]'));
  const count = () => {
    const n = boxes().filter((box) => box.checked).length;
    form.querySelectorAll("[data-selected-count]").forEach((el) => { el.textContent = `${n} selected`; });
  };
  form.addEventListener("change", count);
  const all = form.querySelector(".select-all");
  if (all) all.addEventListener("click", () => { boxes().forEach((box) => { box.checked = true; }); count(); });
  let last = null;
  form.addEventListener("click", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "face_ids") return;
    const list = boxes();
    if (event.shiftKey && last !== null) {
      const [from, to] = [list.indexOf(last), list.indexOf(box)].sort((a, b) => a - b);
      list.slice(from, to + 1).forEach((b) => { b.checked = box.checked; });
      count();
    }
    last = box;
  });
});

// Keyboard shortcuts, listed on the pages that have them (never while typing in a field):
//   /  go to the first Name field (people) or the Photo field (search, sightings)
//   a  select every face on the page (a person)
//   n  mark the selected faces "Not this person" (a person)
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName))) return;
  const click = (selector) => { const el = document.querySelector(selector); if (el) { event.preventDefault(); el.click(); } };
  if (event.key === "/") {
    const field = document.querySelector('.name-form input[name="name"], input[type="file"]');
    if (field) { event.preventDefault(); field.focus(); }
  } else if (event.key === "a") {
    click("#faces .select-all");
  } else if (event.key === "n") {
    click('#faces button[value="reject"]');
  }
});

// The clusters page: typing the name of someone who exists offers the merge, in the
// field's help ("Save adds these faces to Anna"); the same name in another case is
// the same person.
document.addEventListener("input", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLInputElement) || !field.closest(".name-form") || !field.list) return;
  const help = document.getElementById(field.getAttribute("aria-describedby") || "");
  if (!help) return;
  if (help.dataset.plain === undefined) help.dataset.plain = help.textContent;
  const typed = field.value.trim().toLowerCase();
  const known = Array.from(field.list.options).find((option) => option.value.toLowerCase() === typed);
  help.textContent = known && typed
    ? `${known.value} already exists: Save merges these ${help.dataset.faces} faces into ${known.value}.`
    : help.dataset.plain;
  help.classList.toggle("merge", Boolean(known && typed));
});

// The photo page: with "Add a face the detector missed" open, drag on the photo to
// draw a box around a face; the form's fields get it in the photo's pixels, and a
// box typed into them is drawn on the photo.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.draw-form");
  const svg = document.querySelector("svg.photo");
  const details = form && form.closest("details");
  if (!form || !svg || !details) return;
  const field = (name) => form.querySelector(`input[name="${name}"]`);
  const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  rect.setAttribute("class", "drawn-box");
  rect.setAttribute("aria-hidden", "true");
  const size = { width: Number(form.dataset.width), height: Number(form.dataset.height) };
  const show = () => {
    const [x, y, w, h] = ["left", "top", "width", "height"].map((name) => Number(field(name).value));
    if (!(w > 0 && h > 0)) { rect.remove(); return; }
    Object.entries({ x, y, width: w, height: h }).forEach(([k, v]) => rect.setAttribute(k, String(v)));
    svg.append(rect);
  };
  const point = (event) => {
    const p = svg.createSVGPoint();
    p.x = event.clientX;
    p.y = event.clientY;
    const q = p.matrixTransform(svg.getScreenCTM().inverse());
    return { x: Math.max(0, Math.min(size.width, q.x)), y: Math.max(0, Math.min(size.height, q.y)) };
  };
  const drawing = () => svg.classList.toggle("drawing", details.open);
  details.addEventListener("toggle", drawing);
  drawing();
  form.addEventListener("input", show);
  show();
  let start = null;
  let moved = false;
  svg.addEventListener("pointerdown", (event) => {
    if (!details.open || event.button !== 0) return;
    start = { ...point(event), clientX: event.clientX, clientY: event.clientY };
    moved = false;
    svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  svg.addEventListener("pointermove", (event) => {
    if (!start) return;
    moved = moved || Math.abs(event.clientX - start.clientX) + Math.abs(event.clientY - start.clientY) > 4;
    if (!moved) return;
    const p = point(event);
    const box = { left: Math.min(start.x, p.x), top: Math.min(start.y, p.y),
                  width: Math.abs(p.x - start.x), height: Math.abs(p.y - start.y) };
    Object.entries(box).forEach(([name, value]) => { field(name).value = String(Math.round(value)); });
    show();
  });
  const end = () => {
    if (start && moved) form.querySelector("#drawn-name").focus();
    start = null;
  };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  // A drag that ends on a face's box is not a click on its link.
  svg.addEventListener("click", (event) => { if (moved) { event.preventDefault(); moved = false; } }, true);
});

// A page opened at a closed <details> (/people#strangers after naming a stranger)
// shows it open.
document.addEventListener("DOMContentLoaded", () => {
  const target = window.location.hash && document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
  if (target instanceof HTMLDetailsElement) target.open = true;
});

// The precision/recall line beside "Maximum distance" (application.tradeoff): kept up
// to date from the curve the page carries as the distance changes.
function showTradeoff(input) {
  const box = input.form && input.form.querySelector("[data-tradeoff]");
  const output = box && box.querySelector("output");
  if (!output) return;
  const curve = JSON.parse(box.dataset.tradeoff);
  const value = input.value === "" ? Number(output.dataset.default) : Number(input.value);
  if (!Number.isFinite(value)) return;
  let best = 0;
  curve.thresholds.forEach((t, i) => { if (Math.abs(t - value) < Math.abs(curve.thresholds[best] - value)) best = i; });
  const percent = (x) => Math.round(x * 100) + "%";
  output.textContent = `Within ${value.toFixed(2)}: about ${percent(curve.recall[best])} of the person’s faces ` +
    `found, and ${percent(curve.precision[best])} of what is found is them.`;
}
document.addEventListener("input", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.name === "max_distance") showTradeoff(input);
});
