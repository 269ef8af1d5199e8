// Battle page: fetch an anonymous battle, vote, reveal, next. No model name reaches the
// page before the vote: the battle JSON carries only texts and slot numbers.
// Texts are shown as the server renders them (arena/rendering.py), through texts.js: a
// streamed answer shows its raw text while it arrives and the server's HTML once stored
// ("done"); every text has a "Raw text" toggle.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const { textBox, rawToggle, setBody } = window.arenaTexts;
  const { randomKey, post, detail, serve } = window.arenaBattle;
  const LETTERS = "ABCD";
  let battle = null;
  let voting = false;
  let voteKey = null;

  function showError(message) {
    const box = $("battle-error");
    box.textContent = message;
    box.hidden = !message;
  }

  let stream = null;

  async function newBattle(promptText) {
    if (voting) return;
    showError("");
    if (stream) { stream.close(); stream = null; }
    const k = parseInt($("k").value, 10);
    const body = { prompt_set: $("prompt-set").value, k };
    if (typeof promptText === "string") body.prompt_text = promptText;
    const { ok, data } = await serve(body, (message) => { $("battle").hidden = false; showError(message); });
    if (!ok) { $("battle").hidden = false; showError(detail(data)); return; }
    battle = data;
    voteKey = randomKey();
    render();
    if (battle.streaming) streamAnswers();
  }

  // Typed prompts: the answers arrive as server-sent events, slot by slot, no names.
  function streamAnswers() {
    setVoting(false);
    stream = arenaBattle.stream(battle, ".answer", {
      done: () => setVoting(true),
      failed: (why) => showError(why === "error" ? "An answer failed; start a new battle." : "The live answers were interrupted; start a new battle."),
    });
  }

  function setVoting(enabled) {
    for (const b of document.querySelectorAll("#vote-pair button, #vote-rank button, .answer .best")) b.disabled = !enabled;
    battle.ready = enabled;
  }

  function render() {
    $("battle").hidden = false;
    setBody($("prompt-box"), battle.prompt, battle.prompt_html);
    const answers = $("answers");
    answers.replaceChildren();
    answers.className = "answers k" + battle.k;
    for (const answer of battle.answers) {
      const card = document.createElement("article");
      card.className = "answer";
      card.dataset.slot = answer.slot;
      const head = document.createElement("header");
      const label = document.createElement("b");
      label.textContent = "Answer " + LETTERS[answer.slot];
      const who = document.createElement("span");
      who.className = "who";
      head.append(label, who);
      if (battle.k > 2) {
        const rank = document.createElement("select");
        rank.className = "rank";
        rank.setAttribute("aria-label", "Rank of answer " + LETTERS[answer.slot]);
        for (let r = 1; r <= battle.k; r++) rank.add(new Option(String(r), String(r), r === 1, r === 1));
        const best = document.createElement("button");
        best.type = "button";
        best.className = "secondary best";
        best.textContent = "Best (" + (answer.slot + 1) + ")";
        best.addEventListener("click", () => vote({ best: answer.slot }));
        head.append(rank, best);
      }
      const body = document.createElement("div");
      body.className = "body";
      body.id = "answer-body-" + answer.slot;
      const toggle = rawToggle("answer " + LETTERS[answer.slot]);
      head.append(toggle);
      card.append(head, body);
      textBox(body, toggle);
      answers.append(card);
      setBody(body, answer.text, answer.html);
    }
    $("vote-pair").hidden = battle.k !== 2;
    $("vote-rank").hidden = battle.k === 2;
    // Optional per-aspect ballots (a 2-way battle): cleared for every battle.
    for (const r of document.querySelectorAll("#vote-aspects input")) { r.checked = false; r.disabled = false; }
    if ($("vote-aspects")) $("vote-aspects").hidden = battle.k !== 2;
    $("after-vote").hidden = true;
    $("permalink").hidden = true;
    $("vote-result").textContent = "";
    for (const b of document.querySelectorAll("#battle .vote-bar button")) b.disabled = false;
  }

  async function vote(choice) {
    if (!battle || voting || !$("after-vote").hidden || battle.ready === false) return;
    voting = true;
    for (const b of document.querySelectorAll("#battle button")) b.disabled = true;
    if (battle.k === 2 && choice.winner !== undefined) {
      const aspects = aspectBallots();
      if (Object.keys(aspects).length) choice = Object.assign({ aspects }, choice);
    }
    const { ok, status, data } = await post("/api/battles/" + battle.id + "/vote", Object.assign({ idempotency_key: voteKey }, choice));
    voting = false;
    for (const b of document.querySelectorAll("#battle button")) b.disabled = false;
    if (!ok) { showError(detail(data) + " (" + status + ")"); return; }
    reveal(data.reveal, choice, data.withheld);
    // The battle's page, to share it: it exists from the vote on (/battles/<id>/).
    if (data.permalink) { $("permalink").href = data.permalink; $("permalink").hidden = false; }
  }

  // The aspects the voter answered: {"correctness": "a", ...} (slot terms: A is slot 0).
  function aspectBallots() {
    const out = {};
    for (const set of document.querySelectorAll("#vote-aspects fieldset[data-aspect]")) {
      const picked = set.querySelector("input:checked");
      if (picked) out[set.dataset.aspect] = picked.value;
    }
    return out;
  }

  function reveal(slots, choice, withheld) {
    for (const s of slots) {
      const card = document.querySelector('.answer[data-slot="' + s.slot + '"] .who');
      if (card) card.textContent = s.model;
    }
    // Identities withheld (ARENA_REVEAL): name the answers by their letter instead.
    const names = Object.fromEntries(
      Array.from({ length: battle.k }, (_, i) => [i, "answer " + String.fromCharCode(65 + i)])
    );
    for (const s of slots) names[s.slot] = s.model;
    let said = "Vote recorded.";
    if (choice.winner === "a" || choice.winner === "b") said = "You preferred " + names[choice.winner === "a" ? 0 : 1] + ".";
    else if (choice.winner === "tie") said = "You called it a tie.";
    else if (choice.winner === "bothbad") said = "You found both answers bad.";
    else if (choice.best !== undefined) said = "You picked " + names[choice.best] + " as the best.";
    if (withheld) said += " The models stay anonymous: " + withheld + ".";
    $("vote-result").textContent = said;
    $("vote-pair").hidden = true;
    $("vote-rank").hidden = true;
    for (const r of document.querySelectorAll("#vote-aspects input")) r.disabled = true;
    $("after-vote").hidden = false;
    for (const s of document.querySelectorAll(".answer select, .answer .best")) s.disabled = true;
    $("next-battle").focus();
  }

  function submitRanking() {
    const ranks = Array.from(document.querySelectorAll(".answer select.rank"), (s) => parseInt(s.value, 10));
    vote({ ranking: ranks });
  }

  function onKey(event) {
    if (!$("shortcuts").checked || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const tag = (target.tagName || "").toLowerCase();
    const typing = tag === "textarea" || tag === "select" || (tag === "input" && !["checkbox", "radio", "button"].includes(target.type));
    if (typing) return;
    const key = event.key.toLowerCase();
    if (key === "enter" && (tag === "button" || tag === "a")) return;  // Enter presses what has focus
    if (key === "n") { event.preventDefault(); newBattle(); return; }
    if (!battle || !$("after-vote").hidden) return;
    if (battle.k === 2) {
      const winner = { a: "a", b: "b", t: "tie", x: "bothbad" }[key];
      if (winner) { event.preventDefault(); vote({ winner }); }
    } else if (/^[1-4]$/.test(key) && parseInt(key, 10) <= battle.k) {
      event.preventDefault();
      vote({ best: parseInt(key, 10) - 1 });
    } else if (key === "enter") {
      event.preventDefault();
      submitRanking();
    }
  }

  function init() {
    if (!$("new-battle")) return;
    textBox($("prompt-box"), $("prompt-raw-toggle"));
    const saved = localStorage.getItem("arena.shortcuts");
    if (saved !== null) $("shortcuts").checked = saved === "on";
    $("shortcuts").addEventListener("change", () => localStorage.setItem("arena.shortcuts", $("shortcuts").checked ? "on" : "off"));
    $("new-battle").addEventListener("click", () => newBattle());
    $("next-battle").addEventListener("click", () => newBattle());
    $("submit-ranking").addEventListener("click", submitRanking);
    $("ask-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("prompt-input").value.trim();
      if (text) newBattle(text);
    });
    for (const b of document.querySelectorAll("#vote-pair button")) b.addEventListener("click", () => vote({ winner: b.dataset.winner }));
    document.addEventListener("keydown", onKey);
    newBattle();
  }
  init();
})();
