// Arcadia's only script: follow a turn's stream, keyboard shortcuts, small form helpers.
// Everything else is server-rendered HTML swapped by htmx.
(function () {
  "use strict";

  // 4xx answers carry a readable message: show it in the alert slot instead of dropping it.
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.htmx) return;
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[4]..", swap: true, error: false, target: "#flash" },
      { code: "...", swap: true, error: true, target: "#flash" },
    ];
  });

  // ---- Turn stream --------------------------------------------------------------------------
  // The server sends narration deltas with ids that are its own text offsets; EventSource sends
  // the last id back on reconnect, so a dropped connection resumes without repeating text.
  function follow(article) {
    if (article.dataset.following) return;
    article.dataset.following = "1";
    const textNode = article.querySelector(".live-text");
    const url = article.dataset.streamUrl + "?offset=" + encodeURIComponent(article.dataset.offset || "0");
    const source = new EventSource(url);
    let finished = false;

    source.addEventListener("delta", function (event) {
      textNode.textContent += JSON.parse(event.data);
      keepInView(article);
    });
    source.addEventListener("done", function () {
      finished = true;
      source.close();
      htmx.ajax("GET", article.dataset.finalUrl, { target: article, swap: "outerHTML" }).then(function () {
        const next = document.querySelector(".choice, #action");
        if (next && article.contains(document.activeElement) === false && document.activeElement === document.body) next.focus();
      });
    });
    source.onerror = function () {
      // EventSource retries by itself while CONNECTING; if the browser gave up, try again later.
      if (!finished && source.readyState === EventSource.CLOSED) {
        delete article.dataset.following;
        setTimeout(function () { if (document.contains(article)) follow(article); }, 2000);
      }
    };
  }

  function keepInView(element) {
    const rect = element.getBoundingClientRect();
    if (rect.bottom > window.innerHeight - 40 && rect.bottom < window.innerHeight + 400) {
      window.scrollBy({ top: rect.bottom - window.innerHeight + 120, behavior: "smooth" });
    }
  }

  function attachStreams(root) {
    root.querySelectorAll("[data-stream-url]").forEach(follow);
  }

  document.addEventListener("DOMContentLoaded", function () { attachStreams(document); });
  document.addEventListener("htmx:load", function (event) { attachStreams(event.detail.elt.parentNode || document); });

  // ---- Composer and shortcuts ----------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    // Enter sends the action; Shift+Enter makes a new line.
    if (target.id === "action" && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (target.value.trim()) target.form.requestSubmit();
      return;
    }
    // Keys 1-4 pick a choice when not typing.
    if (/^[1-4]$/.test(event.key) && !event.ctrlKey && !event.metaKey && !event.altKey &&
        !/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
      const button = document.querySelector('.choice[data-key="' + event.key + '"]');
      if (button) { event.preventDefault(); button.click(); }
    }
  });

  // Show the pressed choice as taken, and stop double submits while a turn is being posted.
  document.addEventListener("htmx:beforeRequest", function (event) {
    const form = event.detail.elt.closest && event.detail.elt.closest(".choice-form, .composer, .answer-form");
    if (form) {
      const group = document.getElementById("choices");
      if (group) group.classList.add("is-busy");
      form.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
    }
  });
  document.addEventListener("htmx:afterRequest", function () {
    const group = document.getElementById("choices");
    if (group) group.classList.remove("is-busy");
    document.querySelectorAll('[aria-disabled="true"]').forEach(function (b) { b.removeAttribute("aria-disabled"); });
  });

  // A portrait that fails to load is hidden rather than shown broken (no inline onerror:
  // the Content-Security-Policy allows no inline script).
  function hideBroken(img) { img.style.visibility = "hidden"; }
  document.addEventListener("error", function (event) {
    const img = event.target;
    if (img.tagName === "IMG" && img.hasAttribute("data-hide-if-broken")) hideBroken(img);
  }, true);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("img[data-hide-if-broken]").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0) hideBroken(img);
    });
  });

  // New game: choosing a world selects its first route, so the form stays consistent.
  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.name !== "world") return;
    const first = document.querySelector('.route-card[data-world="' + input.value + '"] input');
    if (first) first.checked = true;
  });
})();
