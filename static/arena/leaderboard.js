// Live leaderboard: charts from the JSON API, and a websocket that says when a new fit
// exists; the page then refetches and redraws in place (no reload).
(function () {
  "use strict";
  const table = document.getElementById("board");
  if (!table) return;
  const scope = table.dataset.scope;
  const query = table.dataset.query;
  // The standings shown (?method=): bt, elo or swiss (the mean finishing place first, the
  // expected score with two decimals, the chance to win a tournament in the last column).
  const method = table.dataset.method || "bt";
  const swiss = method === "swiss";
  // Win rate vs the baseline (AlpacaEval): the length-controlled win rate and its standard
  // error in the last column.
  const winrate = method === "winrate";
  // Human-anchored (a run's board with human labels): the labels per model last.
  const anchored = method === "anchored";
  const extra = (row) => {
    if (swiss) return fmt(row.p_first, 3);
    if (anchored) return formatCount(row.human_labels);
    if (winrate) return row.length_controlled_win_rate === null || row.length_controlled_win_rate === undefined ? "" : fmt(row.length_controlled_win_rate, 1) + " ± " + fmt(row.lc_standard_error, 1);
    return row.win_rate === null || row.win_rate === undefined ? "" : fmt(row.win_rate, 3);
  };
  const fmt = (x, d) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  // A vote count, by the rule of the first render (arena.rendering.format_count, the
  // template filter "count"): whole counts without decimals, fractional ones (a soft
  // preference counts a fraction) with one; toFixed rounds half away from zero on the
  // float's exact value, as the server does.
  function formatCount(x) {
    if (x === null || x === undefined || typeof x === "boolean" || !Number.isFinite(Number(x))) return "–";
    const text = Number(x).toFixed(1);
    const whole = text.endsWith(".0") ? text.slice(0, -2) : text;
    return whole === "-0" ? "0" : whole;
  }
  window.arenaFormat = Object.freeze({ count: formatCount });
  // Plotly reads some HTML in its labels (<b>, <br>, <a href> ...) and decodes entities:
  // a model name is text, so its &, < and > go to a chart as entities.
  const plotlyText = (s) => (s === null || s === undefined ? "" : String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));
  let lastRatings = null;

  // The model's page, /models/<name>/: each "/"-separated part of the name percent-escaped
  // (the server unescapes the path; the page URL of the first render is Django's reverse()).
  function modelLink(name) {
    const a = document.createElement("a");
    a.href = "/models/" + String(name).split("/").map(encodeURIComponent).join("/") + "/";
    a.textContent = name;
    return a;
  }

  async function getJSON(path) {
    const response = await fetch(path + "?" + query, { credentials: "same-origin" });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function renderTable(board) {
    const tbody = table.tBodies[0];
    const rows = board.rows.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.model = row.model;
      const cells = [
        swiss ? fmt(row.mean_rank, 1) : String(row.rank_ub), row.model, fmt(row.rating, swiss ? 2 : 1),
        row.ci_lower === null || row.ci_lower === undefined ? "–" : fmt(row.ci_lower, 1) + " – " + fmt(row.ci_upper, 1),
        formatCount(row.votes), extra(row),
      ];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        if (i === 1) td.append(modelLink(row.model));
        else td.textContent = text;
        if (i === 1) td.className = "model";
        if (i === 5) td.className = "opt";
        tr.append(td);
      });
      if (lastRatings && lastRatings[row.model] !== undefined && Math.abs(lastRatings[row.model] - row.rating) > 1e-9) tr.className = "flash";
      return tr;
    });
    tbody.replaceChildren(...rows);
    lastRatings = Object.fromEntries(board.rows.map((r) => [r.model, r.rating]));
    document.getElementById("n-votes").textContent = formatCount(board.n_votes);
    document.getElementById("n-models").textContent = board.n_models;
    document.getElementById("fitted-at").textContent = board.created_at ? board.created_at.replace("T", " ").slice(0, 19) : "";
    table.dataset.pending = board.pending ? "1" : "0";
    const notes = document.getElementById("board-notes");
    const pending = board.pending ? [document.getElementById("board-pending")].filter(Boolean) : [];
    if (notes) notes.replaceChildren(...pending, ...(board.graph.warnings || []).map((w) => Object.assign(document.createElement("div"), { className: "notice", textContent: w })));
  }

  const layout = (title, extra) => Object.assign({ title: { text: title, font: { size: 14 } }, margin: { l: 60, r: 20, t: 40, b: 120 }, height: 460 }, extra || {});
  const config = { displaylogo: false, responsive: true };

  function drawCharts(board, pairs, history) {
    if (!window.Plotly) return;
    const rows = board.rows.filter((r) => r.rating !== null);
    Plotly.react("chart-ci", [{
      type: "scatter", mode: "markers", x: rows.map((r) => plotlyText(r.model)), y: rows.map((r) => r.rating),
      error_y: { type: "data", symmetric: false, array: rows.map((r) => (r.ci_upper ?? r.rating) - r.rating), arrayminus: rows.map((r) => r.rating - (r.ci_lower ?? r.rating)) },
      hovertemplate: "%{x}: %{y:.1f}<extra></extra>",
    }], layout(swiss ? "Expected Swiss score (range of 95% of tournaments)" : method === "elo" ? "Online Elo rating" : winrate ? "Win rate (%) against the baseline, ± 1.96 SE" : "Rating with 95% CI", { xaxis: { tickangle: -45 }, yaxis: { title: { text: swiss ? "score" : winrate ? "win rate (%)" : "rating" } } }), config);

    const order = rows.map((r) => r.model);
    const index = Object.fromEntries(pairs.models.map((m, i) => [m, i]));
    const reorder = (matrix) => order.map((a) => order.map((b) => matrix[index[a]][index[b]]));
    const labels = order.map(plotlyText);
    const axis = { tickangle: -45, automargin: true };
    Plotly.react("chart-winrate", [{
      type: "heatmap", z: reorder(pairs.win_fraction), x: labels, y: labels, colorscale: "RdBu", zmin: 0, zmax: 1,
      hovertemplate: "%{y} beats %{x}: %{z:.2f}<extra></extra>",
    }], layout("Win fraction (row beats column, ties half)", { xaxis: axis, yaxis: { autorange: "reversed", automargin: true } }), config);
    Plotly.react("chart-battles", [{
      type: "heatmap", z: reorder(pairs.battles), x: labels, y: labels, colorscale: "Blues", reversescale: true,
      hovertemplate: "%{y} vs %{x}: %{z} votes<extra></extra>",
    }], layout("Votes between each pair", { xaxis: axis, yaxis: { autorange: "reversed", automargin: true } }), config);

    const top = order.slice(0, 15);
    Plotly.react("chart-history", top.map((model) => ({
      type: "scatter", mode: "lines+markers", name: plotlyText(model),
      x: history.map((p) => p.at), y: history.map((p) => (p.ratings[model] === undefined ? null : p.ratings[model])),
    })), layout(method === "bt" ? "Rating over time (top 15)" : "Bradley-Terry rating over time (top 15)", { margin: { l: 60, r: 20, t: 40, b: 60 }, xaxis: window.arenaCharts.timeAxis(history.map((p) => p.at)) }), config);
  }

  async function refresh() {
    const [board, pairs, history] = await Promise.all([getJSON("/api/leaderboard"), getJSON("/api/leaderboard/pairs"), getJSON("/api/leaderboard/history")]);
    renderTable(board);
    drawCharts(board, pairs, history);
    table.dataset.snapshot = board.created_at;
    document.dispatchEvent(new CustomEvent("arena:board-updated", { detail: board }));
  }

  function connect(delay) {
    const dot = document.getElementById("live-dot");
    const label = document.getElementById("live-label");
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/leaderboard/");
    ws.onopen = () => ws.send(JSON.stringify({ subscribe: scope }));
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "subscribed") {
        dot.classList.add("on"); label.textContent = "live"; table.dataset.live = "on";
        // A board still being fitted may have been pushed before this subscription.
        if (table.dataset.pending === "1") refresh().catch(console.error);
      }
      if (message.type === "board.updated" && message.scope === scope) refresh().catch(console.error);
    };
    ws.onclose = () => {
      dot.classList.remove("on"); label.textContent = "reconnecting…"; table.dataset.live = "off";
      setTimeout(() => connect(Math.min((delay || 500) * 2, 15000)), delay || 500);
    };
  }

  refresh()
.catch(console.error);
  connect(500);
})();
