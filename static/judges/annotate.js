// Annotator page: the next item of the annotator's own queue, answered from the keyboard,
// then the next one at once. The item JSON carries the texts in the order shown and the
// assignment's id: no model, slot or match. Texts go through texts.js (the server's
// rendering, a "Raw text" toggle); the API calls through battle_client.js.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const { textBox, rawToggle, setBody } = window.arenaTexts;
  const { randomKey, post, detail } = window.arenaBattle;
  const LETTERS = "ABCDEFGHIJ";
  const campaign = $("queue-counts").dataset.campaign;
  let item = null;
  let answering = false;
  let answerKey = null;
  let retry = null;

  function showError(message) {
    $("item-error").textContent = message;
    $("item-error").hidden = !message;
  }

  function showCounts(counts) {
    $("queue-counts").textContent = "Answered: " + counts.done + " · waiting in your queue: " + counts.pending;
  }

  async function next() {
    clearTimeout(retry);
    const response = await fetch("/api/campaigns/" + campaign + "/next", { credentials: "same-origin" });
    let data = null;
    try { data = await response.json(); } catch (e) { data = { detail: response.statusText }; }
    if (!response.ok) { showError(detail(data)); return; }
    showCounts(data.counts);
    if (data.state !== "item") {
      item = null;
      $("item").hidden = true;
      $("queue-state").hidden = false;
      $("queue-state").textContent = data.state === "waiting" ? "Handing out your next items…" : "Nothing left in your queue. Thank you!";
      if (data.state === "waiting") retry = setTimeout(next, 1000);
      return;
    }
    item = data.item;
    answerKey = randomKey();
    render();
  }

  function render() {
    $("queue-state").hidden = true;
    $("item").hidden = false;
    setBody($("prompt-box"), item.prompt, item.prompt_html);
    const answers = $("answers");
    answers.replaceChildren();
    answers.className = "answers k" + item.k;
    item.answers.forEach((answer, i) => {
      const card = document.createElement("article");
      card.className = "answer";
      const head = document.createElement("header");
      const label = document.createElement("b");
      label.textContent = "Answer " + LETTERS[i];
      head.append(label);
      if (item.k > 2) {
        const rank = document.createElement("select");
        rank.className = "rank";
        rank.setAttribute("aria-label", "Rank of answer " + LETTERS[i]);
        for (let r = 1; r <= item.k; r++) rank.add(new Option(String(r), String(r), r === 1, r === 1));
        const best = document.createElement("button");
        best.type = "button";
        best.className = "secondary best";
        best.textContent = "Best (" + (i + 1) + ")";
        best.addEventListener("click", () => send({ best: i }));
        head.append(rank, best);
      }
      const body = document.createElement("div");
      body.className = "body";
      body.id = "answer-body-" + i;
      const toggle = rawToggle("answer " + LETTERS[i]);
      head.append(toggle);
      card.append(head, body);
      textBox(body, toggle);
      answers.append(card);
      setBody(body, answer.text, answer.html);
    });
    $("vote-pair").hidden = item.k !== 2;
    $("vote-rank").hidden = item.k === 2;
    for (const b of document.querySelectorAll("#item button")) b.disabled = false;
    showError("");
  }

  async function send(choice) {
    if (!item || answering) return;
    answering = true;
    for (const b of document.querySelectorAll("#item .vote-bar button, #item .best")) b.disabled = true;
    const { ok, status, data } = await post("/api/campaigns/assignments/" + item.id + "/answer", Object.assign({ idempotency_key: answerKey }, choice));
    answering = false;
    if (!ok && status !== 409 && status !== 410) {
      for (const b of document.querySelectorAll("#item .vote-bar button, #item .best")) b.disabled = false;
      showError(detail(data) + " (" + status + ")");
      return;
    }
    // Stored, or already stored / expired: either way this item is behind us.
    if (!ok) showError(detail(data));
    next();
  }

  function submitRanking() {
    send({ ranking: Array.from(document.querySelectorAll("#answers select.rank"), (s) => parseInt(s.value, 10)) });
  }

  function onKey(event) {
    if (!$("shortcuts").checked || event.ctrlKey || event.metaKey || event.altKey || !item) return;
    const tag = (event.target.tagName || "").toLowerCase();
    const typing = tag === "textarea" || tag === "select" || (tag === "input" && !["checkbox", "radio", "button"].includes(event.target.type));
    if (typing) return;
    const key = event.key.toLowerCase();
    if (key === "enter" && (tag === "button" || tag === "a" || tag === "summary")) return;  // Enter presses what has focus
    if (item.k === 2) {
      const winner = { a: "a", b: "b", t: "tie", x: "bothbad" }[key];
      if (winner) { event.preventDefault(); send({ winner }); }
    } else if (/^[1-9]$/.test(key) && parseInt(key, 10) <= item.k) {
      event.preventDefault();
      send({ best: parseInt(key, 10) - 1 });
    } else if (key === "enter") {
      event.preventDefault();
      submitRanking();
    }
  }

  textBox($("prompt-box"), $("prompt-raw-toggle"));
  const saved = localStorage.getItem("arena.shortcuts");
  if (saved !== null) $("shortcuts").checked = saved === "on";
  $("shortcuts").addEventListener("change", () => localStorage.setItem("arena.shortcuts", $("shortcuts").checked ? "on" : "off"));
  for (const b of document.querySelectorAll("#vote-pair button")) b.addEventListener("click", () => send({ winner: b.dataset.winner }));
  $("submit-ranking").addEventListener("click", submitRanking);
  document.addEventListener("keydown", onKey);
  next();
})();
