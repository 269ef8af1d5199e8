// Live run page: progress over the websocket group run.<id>; when the provisional
// leaderboard is refitted, the table is refetched from the public leaderboard API (no reload).
(function () {
  "use strict";
  const card = document.getElementById("run");
  if (!card) return;
  const runId = card.dataset.run;
  const scope = card.dataset.scope;
  const query = card.dataset.query;
  const table = document.getElementById("run-board");
  const fmt = (x, d) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  // A count as the first render writes it (arena.rendering.format_count, the "count"
  // filter; formatCount in static/arena/leaderboard.js): whole without decimals, else one.
  const count = (x) => { const t = fmt(x, 1); return t.endsWith(".0") ? t.slice(0, -2) : t; };
  const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };

  function showButtons(status) {
    document.querySelectorAll(".run-actions form").forEach((form) => {
      form.hidden = !form.dataset.show.split(" ").includes(status);
    });
  }

  function renderProgress(m) {
    const status = document.getElementById("run-status");
    status.textContent = m.status;
    status.className = "status status-" + m.status;
    text("calls-made", m.calls_made);
    text("planned-calls", m.planned_calls);
    text("calls-failed", m.calls_failed);
    text("calls-cached", m.calls_cached);
    text("run-cost", fmt(m.cost, 4));
    const done = m.status === "done" ? 1 : (m.planned_calls ? Math.min(1, m.calls_made / m.planned_calls) : 0);
    document.getElementById("run-progress").value = done;
    const error = document.getElementById("run-error");
    error.textContent = m.error || "";
    error.hidden = !m.error;
    showButtons(m.status);
    card.dataset.status = m.status;
    card.dataset.callsMade = m.calls_made;
  }

  function renderBoard(board) {
    const rows = board.rows.map((row) => {
      const tr = document.createElement("tr");
      const cells = [
        String(row.rank_ub), row.model, fmt(row.rating, 1),
        row.ci_lower === null || row.ci_lower === undefined ? "–" : fmt(row.ci_lower, 1) + " – " + fmt(row.ci_upper, 1),
        count(row.votes), row.win_rate === null || row.win_rate === undefined ? "" : fmt(row.win_rate, 3),
      ];
      cells.forEach((value, i) => {
        const td = document.createElement("td");
        td.textContent = value;
        if (i === 1) td.className = "model";
        if (i === 5) td.className = "opt";
        tr.append(td);
      });
      return tr;
    });
    table.tBodies[0].replaceChildren(...rows);
    text("board-meta", board.n_votes + " comparisons, fitted " + board.created_at.replace("T", " ").slice(0, 19));
    table.dataset.snapshot = board.created_at;
  }

  async function refreshBoard() {
    const response = await fetch("/api/leaderboard?" + query, { credentials: "same-origin" });
    const board = response.ok ? await response.json() : null;
    if (board && !board.pending) renderBoard(board);  // pending: not fitted yet, no rows
  }

  function connect(delay) {
    const dot = document.getElementById("live-dot");
    const label = document.getElementById("live-label");
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/runs/" + runId + "/");
    ws.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type === "subscribed") { dot.classList.add("on"); label.textContent = "live"; card.dataset.live = "on"; }
      if (m.type === "run.progress") renderProgress(m);
      if (m.type === "board.updated" && m.scope === scope) refreshBoard().catch(console.error);
    };
    ws.onclose = () => {
      dot.classList.remove("on"); label.textContent = "reconnecting…"; card.dataset.live = "off";
      setTimeout(() => connect(Math.min((delay || 500) * 2, 15000)), delay || 500);
    };
  }

  showButtons(document.getElementById("run-status").textContent.trim());
  connect(500);
})();
