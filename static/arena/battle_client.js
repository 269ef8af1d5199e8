// What the battle page and the side-by-side page share: the battles API (JSON with the
// CSRF token, idempotency keys, the proof of work a new session may owe, error text) and
// the live answers' stream (server-sent events, shown through texts.js).
(function () {
  "use strict";

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function randomKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = { detail: response.statusText }; }
    return { ok: response.ok, status: response.status, data };
  }

  // A refusal's words: the API's {"detail": ...}, or its list of field errors.
  function detail(data) {
    if (!data) return "";
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.map((d) => (d.loc || []).slice(-1)[0] + ": " + d.msg).join("; ");
    return JSON.stringify(data);
  }

  // POST /api/battles; under ARENA_VOTER_GATE=pow a new session first proves a little
  // work, once (``say`` shows what is going on, "" clears it).
  async function serve(body, say) {
    let answer = await post("/api/battles", body);
    if (answer.status === 403 && answer.data && answer.data.field === "pow_nonce" && window.arenaPow) {
      say("Checking your browser (a few seconds, once per session)…");
      const challenge = await fetch("/api/battles/challenge", { credentials: "same-origin" }).then((r) => r.json());
      body.pow_challenge = challenge.challenge;
      body.pow_nonce = await window.arenaPow.solve(challenge.challenge, challenge.bits);
      say("");
      answer = await post("/api/battles", body);
    }
    return answer;
  }

  // A live battle's answers, slot by slot, into the cards ``cards`` selects (each with a
  // data-slot and a .body holding a .text): raw text while it arrives, the server's HTML
  // once stored. ``done()`` when every answer is stored; ``failed("error" | "cut")``.
  // Returns the stream, to close() when the page moves on.
  function stream(battle, cards, { done, failed }) {
    const pending = new Set(battle.answers.map((a) => a.slot));
    for (const card of document.querySelectorAll(cards)) card.classList.add("writing");
    const source = new EventSource("/battle/" + battle.id + "/stream");
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.end) { source.close(); return; }
      const card = document.querySelector(cards + '[data-slot="' + event.slot + '"]');
      if (!card) return;
      const body = card.querySelector(".body");
      const text = body.querySelector(".text");
      if (event.reset) text.textContent = "";  // the answer is regenerated from the start
      if (event.delta) text.textContent += event.delta;
      if (event.done || event.error) {
        card.classList.remove("writing");
        pending.delete(event.slot);
        if (event.error) { window.arenaTexts.setBody(body, event.error, ""); failed("error"); }
        else {
          window.arenaTexts.setBody(body, text.textContent, event.html);  // the stored answer, rendered
          if (pending.size === 0) done();
        }
      }
    };
    source.onerror = () => { source.close(); if (pending.size) failed("cut"); };
    return source;
  }

  window.arenaBattle = { randomKey, post, detail, serve, stream };
})();
