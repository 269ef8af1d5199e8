// Side by side: two models picked by name, a stored prompt (or a typed one, answered live),
// both answers shown under their models' names, one vote through the battles' own vote
// endpoint (the server counts it apart from anonymous votes). Every name goes into the
// page with textContent; prompts and answers as the server's sanitised HTML or raw text
// (static/arena/texts.js, arena/rendering.py).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("sbs-form");
  if (!form) return;
  let battle = null;
  let voteKey = null;
  let stream = null;
  const { randomKey, post, detail, serve } = window.arenaBattle;

  function showError(message) {
    $("sbs-error").textContent = message;
    $("sbs-error").hidden = !message;
  }

  // The stored prompts both picked models answered (when stored answers may be named).
  async function loadPrompts() {
    const select = $("sbs-prompt");
    if (!select) return;
    select.replaceChildren(new Option("Any prompt both answered (random)", ""));
    const a = $("sbs-model-a").value, b = $("sbs-model-b").value;
    if (!a || !b || a === b) return;
    const query = new URLSearchParams({ set: $("sbs-set").value, model_a: a, model_b: b });
    const response = await fetch("/api/side-by-side/prompts?" + query, { credentials: "same-origin" });
    if (!response.ok) return;
    for (const prompt of await response.json()) select.add(new Option(prompt.text, String(prompt.id)));
  }

  async function compare(event) {
    event.preventDefault();
    showError("");
    if (stream) { stream.close(); stream = null; }
    const a = $("sbs-model-a").value, b = $("sbs-model-b").value;
    if (!a || !b) { $("sbs-battle").hidden = false; showError("Pick two models."); return; }
    const body = { prompt_set: $("sbs-set").value, models: [a, b] };
    const typed = $("sbs-text") ? $("sbs-text").value.trim() : "";
    if (typed) body.prompt_text = typed;
    else if ($("sbs-prompt") && $("sbs-prompt").value) body.prompt_id = parseInt($("sbs-prompt").value, 10);
    const { ok, status, data } = await serve(body, showError);
    $("sbs-battle").hidden = false;
    if (!ok) { showError(detail(data) + " (" + status + ")"); $("sbs-answers").replaceChildren(); $("sbs-vote").hidden = true; return; }
    battle = data;
    voteKey = randomKey();
    render();
    if (battle.streaming) streamAnswers();
  }

  function render() {
    arenaTexts.setBody($("sbs-prompt-box"), battle.prompt, battle.prompt_html);
    const answers = battle.answers.map((answer) => {
      const card = document.createElement("article");
      card.className = "answer";
      card.dataset.slot = answer.slot;
      const head = document.createElement("header");
      const label = document.createElement("b");
      label.className = "who";
      label.textContent = answer.model;
      head.append(label);
      // The server's rendering of the answer, or its raw text (static/arena/texts.js).
      const body = document.createElement("div");
      body.className = "body";
      body.id = "sbs-answer-" + answer.slot;
      body.dataset.answer = "";
      const toggle = arenaTexts.rawToggle("the answer of " + answer.model);
      head.append(toggle);
      card.append(head, body);
      arenaTexts.textBox(body, toggle);
      arenaTexts.setBody(body, answer.text, answer.html);
      return card;
    });
    $("sbs-answers").replaceChildren(...answers);
    $("sbs-vote").hidden = false;
    $("sbs-after").hidden = true;
    setVoting(!battle.streaming);
  }

  function setVoting(enabled) {
    for (const b of document.querySelectorAll("#sbs-vote button")) b.disabled = !enabled;
  }

  function streamAnswers() {
    stream = arenaBattle.stream(battle, "#sbs-answers .answer", {
      done: () => setVoting(true),
      failed: (why) => showError(why === "error" ? "An answer failed; compare again." : "The live answers were interrupted; compare again."),
    });
  }

  async function vote(winner) {
    if (!battle) return;
    setVoting(false);
    const { ok, status, data } = await post("/api/battles/" + battle.id + "/vote", { idempotency_key: voteKey, winner });
    if (!ok) { setVoting(true); showError(detail(data) + " (" + status + ")"); return; }
    const names = battle.answers.map((a) => a.model);
    const said = { a: "You preferred " + names[0] + ".", b: "You preferred " + names[1] + ".", tie: "You called it a tie.", bothbad: "You found both answers bad." }[winner];
    $("sbs-result").textContent = said + " Side-by-side votes count on no leaderboard.";
    $("sbs-permalink").href = data.permalink;
    $("sbs-vote").hidden = true;
    $("sbs-after").hidden = false;
    $("sbs-permalink").focus();
  }

  arenaTexts.textBox($("sbs-prompt-box"), $("sbs-prompt-raw-toggle"));
  form.addEventListener("submit", compare);
  for (const id of ["sbs-set", "sbs-model-a", "sbs-model-b"]) $(id).addEventListener("change", loadPrompts);
  for (const b of document.querySelectorAll("#sbs-vote button")) b.addEventListener("click", () => vote(b.dataset.winner));
})();
