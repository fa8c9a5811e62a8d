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
    if (article.id === claimed) return;  // the post that started it is following it
    const textNode = article.querySelector(".live-text");
    const url = article.dataset.streamUrl + "?offset=" + encodeURIComponent(article.dataset.offset || "0");
    const source = new EventSource(url);
    let finished = false;

    source.addEventListener("thinking", function (event) { showThinking(article, event.data); });
    source.addEventListener("delta", function (event) {
      stopThinking(article);
      textNode.textContent += JSON.parse(event.data);
      keepInView(article);
    });
    source.addEventListener("done", function () {
      finished = true;
      source.close();
      finish(article);
    });
    source.onerror = function () {
      // EventSource retries by itself while CONNECTING; if the browser gave up, try again later.
      if (!finished && source.readyState === EventSource.CLOSED) {
        delete article.dataset.following;
        setTimeout(function () { if (document.contains(article)) follow(article); }, 2000);
      }
    };
  }

  // A reasoning model thinks before it writes: say so, with the time, until its first words.
  function showThinking(article, seconds) {
    if (article.querySelector(".thinking")) return;
    const note = document.createElement("p");
    note.className = "thinking";
    const clock = document.createElement("span");
    note.append("The narrator is thinking… ", clock);
    const started = Date.now() - Number(seconds || 0) * 1000;
    const tick = function () { clock.textContent = Math.round((Date.now() - started) / 1000) + " s"; };
    tick();
    note.dataset.timer = String(setInterval(tick, 1000));
    article.querySelector(".narration").before(note);
    keepInView(article);
  }
  function stopThinking(article) {
    const note = article.querySelector(".thinking");
    if (!note) return;
    clearInterval(Number(note.dataset.timer));
    note.remove();
  }

  // The turn is written: its stored version (choices, state, art) replaces the live article.
  function finish(article) {
    htmx.ajax("GET", article.dataset.finalUrl, { target: article, swap: "outerHTML" }).then(function () {
      const next = document.querySelector(".choice, #action");
      if (next && article.contains(document.activeElement) === false && document.activeElement === document.body) next.focus();
    });
  }

  // ---- Posting a turn ------------------------------------------------------------------------
  // A turn's post answers with the started turn (a fragment) and then its narration, as events
  // on the same connection: the first words need no second request. Without this script the
  // form posts as a plain form and the server redirects to the play page.
  let posting = false;
  let claimed = "";  // the id of the article whose turn a post's response is streaming

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.hasAttribute("data-turn-form") || !window.htmx || !window.TextDecoderStream) return;
    event.preventDefault();
    if (!posting) postTurn(form);
  });

  async function postTurn(form) {
    posting = true;
    const sent = fetch(form.getAttribute("action"), {  // form.action is the textarea
      method: "POST",
      body: new URLSearchParams(new FormData(form)),  // a form post, as the plain form sends it
      headers: { "HX-Request": "true", "Accept": "text/event-stream" },
    });
    setBusy(form);  // after the post has left: restyling the page takes a few ms
    let response;
    try {
      response = await sent;
    } catch (error) {
      showFlash("The game could not be reached. Check your connection and try again.");
      return idle();
    }
    if (!(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
      // Refused (a readable message for the flash slot), or a fragment with nothing to follow.
      const html = await response.text();
      if (response.ok) htmx.swap("#log", html, { swapStyle: "beforeend" });
      else htmx.swap("#flash", html, { swapStyle: "innerHTML" });
      return idle();
    }
    let article = null;
    let offset = "";
    let finished = false;
    let panels = "";  // choices and controls of the started turn: put in after its first words
    function putPanels() {  // once: later calls find nothing left to put in
      if (!panels) return;
      htmx.swap("#log", panels, { swapStyle: "beforeend" });  // all out-of-band
      panels = "";
      idle();
    }
    await readEvents(response, function (name, data, id) {
      if (name === "started") {
        claimed = "msg-" + id;
        htmx.swap("#log", data, { swapStyle: "beforeend" });
        article = document.getElementById(claimed);
      } else if (name === "panels") {
        panels = data;
      } else if (name === "thinking" && article) {
        showThinking(article, data);
      } else if (name === "delta" && article) {
        stopThinking(article);
        article.querySelector(".live-text").textContent += JSON.parse(data);
        offset = id;
        keepInView(article);
        if (panels) setTimeout(putPanels);  // once the words are drawn
      } else if (name === "done" && article) {
        finished = true;
        putPanels();
        finish(article);
      }
    });
    if (finished) return;
    putPanels();
    idle();
    if (article) {  // the connection dropped: follow the turn by its own stream from here
      claimed = "";
      if (offset) article.dataset.offset = offset;
      delete article.dataset.following;
      follow(article);
    } else {
      showFlash("The connection dropped. Reload the page to see your turn.");
    }
  }

  // Server-sent events from a fetch response: calls on(name, data, id) for each.
  async function readEvents(response, on) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        return;
      }
      if (chunk.done) return;
      buffer += chunk.value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message", id = "";
        const data = [];
        block.split("\n").forEach(function (line) {
          const colon = line.indexOf(":");
          if (colon === 0) return;  // a comment (a heartbeat)
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") name = value;
          else if (field === "data") data.push(value);
          else if (field === "id") id = value;
        });
        if (data.length) on(name, data.join("\n"), id);
      }
    }
  }

  function showFlash(text) {
    const slot = document.getElementById("flash");
    if (!slot) return;
    const box = document.createElement("div");
    box.className = "flash flash--error";
    box.textContent = text;
    slot.replaceChildren(box);
  }

  // Keeps a growing turn in view, once per frame: measuring it right after each delta would
  // force a layout before the new words could even be drawn.
  let growing = null;
  function keepInView(element) {
    if (growing === null) requestAnimationFrame(function () {
      const rect = growing.getBoundingClientRect();
      growing = null;
      // The choices and composer stay at the bottom of a wide screen (sticky): what is behind
      // them is out of view too.
      const panel = document.querySelector(".turn-ui");
      const sticky = panel && getComputedStyle(panel).position === "sticky";
      const floor = sticky ? panel.getBoundingClientRect().top : window.innerHeight;
      if (rect.bottom > floor - 40 && rect.bottom < window.innerHeight + 400) {
        window.scrollBy({ top: rect.bottom - floor + 80, behavior: "smooth" });
      }
    });
    growing = element;
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
  function setBusy(form) {
    const group = document.getElementById("choices");
    if (group) group.classList.add("is-busy");
    form.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
  }
  function idle() {
    posting = false;
    const group = document.getElementById("choices");
    if (group) group.classList.remove("is-busy");
    document.querySelectorAll('[aria-disabled="true"]').forEach(function (b) { b.removeAttribute("aria-disabled"); });
  }

  // A failed turn whose backend asked for a pause (Retry-After): its retry button counts down
  // and is enabled when the pause is over. The server refuses an early retry as well.
  function countDown(root) {
    root.querySelectorAll("button[data-retry-in]").forEach(function (button) {
      if (button.dataset.counting) return;
      button.dataset.counting = "1";
      const label = button.querySelector(".retry-wait");
      const until = Date.now() + Number(button.dataset.retryIn) * 1000;
      const tick = setInterval(function () {
        const left = Math.ceil((until - Date.now()) / 1000);
        if (left > 0 && document.contains(button)) {
          if (label) label.textContent = "(in " + left + " s)";
          return;
        }
        clearInterval(tick);
        if (label) label.remove();
        button.disabled = false;
      }, 1000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { countDown(document); });
  document.addEventListener("htmx:load", function (event) { countDown(event.detail.elt); });

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
