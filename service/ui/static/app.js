// facesearch's own few lines: drop a photo on the search form to search with it.
// Everything works without this file: the form is a plain HTML form.
"use strict";
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
      zone.requestSubmit();
    }
  });
});
