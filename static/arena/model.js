// Model page: the rating over time (with its 95% interval) on each board, and the win rate
// against each rival, drawn from the page's own data (the JSON of /api/model, embedded
// with json_script: no second request). Names reach plotly as data, never as HTML.
(function () {
  "use strict";
  const data = document.getElementById("model-data");
  if (!data || !window.Plotly) return;
  const profile = JSON.parse(data.textContent);
  const config = { displaylogo: false, responsive: true };
  const layout = (title, extra) => Object.assign({ title: { text: title, font: { size: 14 } }, margin: { l: 60, r: 20, t: 40, b: 60 }, height: 400 }, extra || {});
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");

  const traces = [];
  for (const board of profile.boards) {
    const points = board.history;
    if (!points.length) continue;
    const name = board.prompt_set_name + " · " + board.label;
    const x = points.map((p) => p.at);
    const hasCi = points.some((p) => p.ci_lower !== null && p.ci_upper !== null);
    if (hasCi) {
      traces.push({ type: "scatter", mode: "lines", x, y: points.map((p) => p.ci_upper ?? p.rating), line: { width: 0 }, showlegend: false, hoverinfo: "skip", legendgroup: name });
      traces.push({ type: "scatter", mode: "lines", x, y: points.map((p) => p.ci_lower ?? p.rating), line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(54,89,227,0.15)", showlegend: false, hoverinfo: "skip", legendgroup: name });
    }
    traces.push({ type: "scatter", mode: "lines+markers", name: esc(name), legendgroup: name, x, y: points.map((p) => p.rating), hovertemplate: "%{y:.1f}<extra></extra>" });
  }
  const times = profile.boards.flatMap((board) => board.history.map((p) => p.at));
  Plotly.react("chart-history", traces, layout("Rating over time (95% interval shaded)", { xaxis: window.arenaCharts.timeAxis(times), yaxis: { title: { text: "rating" } }, showlegend: true, legend: { orientation: "h" } }), config);

  const rivals = profile.head_to_head.slice().sort((a, b) => b.win_rate - a.win_rate);
  Plotly.react("chart-rivals", [{
    type: "bar", orientation: "h",
    y: rivals.map((r) => esc(r.opponent) + (profile.boards.length > 1 ? " (" + esc(r.prompt_set) + ")" : "")),
    x: rivals.map((r) => r.win_rate),
    text: rivals.map((r) => r.votes + " votes"),
    hovertemplate: "%{y}: %{x:.3f} (%{text})<extra></extra>",
  }], layout("Win rate against each rival (public human votes)", { xaxis: { range: [0, 1] }, yaxis: { automargin: true, autorange: "reversed" }, margin: { l: 20, r: 20, t: 40, b: 40 }, height: Math.max(240, 60 + 26 * rivals.length) }), config);
})();
