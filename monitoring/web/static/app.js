// Live pages: listen to the server's change events and re-fetch this page's live region.
(function () {
  "use strict";
  const region = document.getElementById("live");
  if (!region || !region.dataset.src || !window.EventSource) {
    return;
  }
  let pending = false;
  async function refresh() {
    if (pending) {
      return;
    }
    pending = true;
    try {
      const response = await fetch(region.dataset.src, { credentials: "same-origin" });
      if (response.ok) {
        region.innerHTML = await response.text();
        region.dataset.updated = String(Date.now());
      }
    } finally {
      pending = false;
    }
  }
  const events = new EventSource("/api/events");
  let first = true;
  events.addEventListener("change", function () {
    if (first) {  // the first event says where things stand: the page is already that
      first = false;
      return;
    }
    refresh();
  });
})();
