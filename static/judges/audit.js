// Judge audit charts: every chart is drawn from the rows its CSV link downloads
// (embedded in the page as JSON by the view; see judges/audit_service.py Chart).
(function () {
  "use strict";
  const node = document.getElementById("audit-charts");
  if (!node || !window.Plotly) return;
  const charts = JSON.parse(node.textContent);
  const config = { displaylogo: false, responsive: true };
  const ACCENT = "#3659e3", BAD = "#b42318", MUTED = "#98a2b3";
  const PALETTE = [ACCENT, "#f79009", "#0f7b4a", "#7a5af8", "#667085", "#dd2590"];
  const fmt = (x, d) => (x === null || x === undefined ? "–" : Number(x).toFixed(d === undefined ? 3 : d));
  // Plotly reads some HTML in its labels (<b>, <br>, <a href> ...) and decodes entities: a
  // label (a model's, a judge's or a voter's name) is text, so its &, < and > go to a chart
  // as entities.
  const plotlyText = (s) => (s === null || s === undefined ? "" : String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));

  function empty(el, text) {
    el.classList.add("muted");
    el.style.minHeight = "0";
    el.textContent = text || "No eligible items for this chart.";
  }

  function referenceLine(value, axis) {
    if (value === undefined || value === null) return [];
    const line = { type: "line", line: { color: MUTED, dash: "dash", width: 1 } };
    return axis === "x"
      ? [Object.assign(line, { xref: "x", yref: "paper", x0: value, x1: value, y0: 0, y1: 1 })]
      : [Object.assign(line, { xref: "paper", yref: "y", y0: value, y1: value, x0: 0, x1: 1 })];
  }

  // Estimates with 95% intervals: a forest plot (one row per label, one colour per series).
  function estimates(el, chart) {
    const opts = chart.options || {};
    let rows = chart.rows.filter((r) => r.value !== null && r.value !== undefined);
    if (!rows.length) return empty(el);
    let labels = [...new Set(rows.map((r) => r.label))];
    if (opts.limit_labels && labels.length > opts.limit_labels) {
      labels = labels.slice(0, opts.limit_labels);
      rows = rows.filter((r) => labels.includes(r.label));
    }
    const series = [...new Set(rows.map((r) => r.series))];
    const traces = series.map((s, k) => {
      const rs = rows.filter((r) => r.series === s);
      return {
        type: "scatter", mode: "markers", orientation: "h", name: plotlyText(s || "estimate"), showlegend: series.length > 1 || Boolean(s),
        y: rs.map((r) => plotlyText(r.label)), x: rs.map((r) => r.value),
        marker: { size: 10, color: rs.map((r) => (r.flagged ? BAD : PALETTE[k % PALETTE.length])) },
        error_x: {
          type: "data", symmetric: false, thickness: 2, width: 5, color: PALETTE[k % PALETTE.length],
          array: rs.map((r) => (r.high === null ? 0 : r.high - r.value)),
          arrayminus: rs.map((r) => (r.low === null ? 0 : r.value - r.low)),
        },
        customdata: rs.map((r) => [fmt(r.low), fmt(r.high), r.n, r.p_value === undefined ? "" : "<br>p = " + Number(r.p_value).toPrecision(3)]),
        hovertemplate: "%{y}<br>%{x:.3f} [%{customdata[0]}, %{customdata[1]}]<br>n = %{customdata[2]}%{customdata[3]}<extra>" + plotlyText(s || "") + "</extra>",
      };
    });
    const height = Math.max(150, (series.length > 1 ? 90 : 60) + labels.length * (series.length > 1 ? 14 + 12 * series.length : 32));
    // Explicit x range: the interval ends (plotly would stretch grouped points to 0).
    const ends = rows.flatMap((r) => [r.low ?? r.value, r.high ?? r.value]).concat(opts.reference ?? []);
    const [lo, hi] = opts.range || [Math.min(...ends), Math.max(...ends)];
    const pad = 0.03 * (hi - lo || 1);
    const range = [lo - pad, hi + pad];
    Plotly.newPlot(el, traces, {
      height: height,
      margin: { l: 10, r: 20, t: series.length > 1 ? 30 : 10, b: 40 },
      scattermode: "group",
      xaxis: { range: range, zeroline: false, title: { text: opts.xtitle || "" } },
      yaxis: { autorange: "reversed", automargin: true, categoryorder: "array", categoryarray: labels.map(plotlyText) },
      legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
      shapes: referenceLine(opts.reference, "x"),
    }, config);
  }

  // Square matrix of kappas from long rows (row, column, value, low, high, n).
  function heatmap(el, chart) {
    const opts = chart.options || {};
    const labels = opts.labels;
    const index = Object.fromEntries(labels.map((l, i) => [l, i]));
    const z = labels.map(() => labels.map(() => null));
    const text = labels.map(() => labels.map(() => ""));
    const hover = labels.map(() => labels.map(() => ""));
    chart.rows.forEach((r) => {
      const i = index[r.row], j = index[r.column];
      z[i][j] = r.value;
      text[i][j] = fmt(r.value, 2);
      hover[i][j] = r.row === r.column ? "n = " + r.n : "[" + fmt(r.low, 2) + ", " + fmt(r.high, 2) + "], n = " + r.n;
    });
    Plotly.newPlot(el, [{
      type: "heatmap", x: labels.map(plotlyText), y: labels.map(plotlyText), z: z, text: text, customdata: hover, texttemplate: "%{text}",
      zmin: opts.zmin, zmax: opts.zmax, colorscale: "RdBu", reversescale: true, hoverongaps: false,
      hovertemplate: "%{y} × %{x}<br>κ = %{z:.3f} %{customdata}<extra></extra>",
    }], {
      height: Math.max(320, 140 + labels.length * 42),
      margin: { l: 10, r: 10, t: 10, b: 10 },
      xaxis: { automargin: true, tickangle: -30 }, yaxis: { automargin: true, autorange: "reversed" },
    }, config);
  }

  // One point per row; flagged rows in red.
  function scatter(el, chart) {
    const o = chart.options || {};
    const rows = chart.rows.filter((r) => r[o.x] !== null && r[o.y] !== null);
    if (!rows.length) return empty(el);
    const type = rows.length > 2000 ? "scattergl" : "scatter";
    const groups = [[false, "voters", ACCENT], [true, "flagged", BAD]];
    const traces = groups.map(([flag, name, color]) => {
      const rs = rows.filter((r) => Boolean(r[o.color]) === flag);
      return {
        type: type, mode: "markers", name: name, x: rs.map((r) => r[o.x]), y: rs.map((r) => r[o.y]),
        text: rs.map((r) => plotlyText(r[o.text])), marker: { color: color, size: 8, opacity: 0.75 },
        hovertemplate: "%{text}<br>" + o.xtitle + ": %{x}<br>" + o.ytitle + ": %{y:.3f}<extra></extra>",
      };
    }).filter((t) => t.x.length);
    Plotly.newPlot(el, traces, {
      height: 360, margin: { l: 60, r: 20, t: 10, b: 50 },
      xaxis: { type: o.xlog ? "log" : "linear", title: { text: o.xtitle } },
      yaxis: { type: o.ylog ? "log" : "linear", title: { text: o.ytitle } },
      legend: { orientation: "h", y: -0.2 },
      shapes: referenceLine(o.reference, "y"),
    }, config);
  }

  const draw = { estimates: estimates, heatmap: heatmap, scatter: scatter };
  charts.forEach((chart) => {
    const el = document.getElementById("chart-" + chart.key);
    if (!el || !draw[chart.kind]) return;
    draw[chart.kind](el, chart);
    el.dataset.drawn = "1";
  });
  document.body.dataset.chartsDrawn = String(charts.length);
})();
