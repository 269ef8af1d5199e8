// Charts in the page's colours, light or dark (prefers-color-scheme). Loaded right after
// plotly.js and before the page's chart code: every Plotly.newPlot / Plotly.react gets a
// layout template built from the page's CSS custom properties (static/arena/arena.css),
// so a colour a chart sets itself still wins. When the system switches between light and
// dark, the charts already drawn are re-themed in place.
(function () {
  "use strict";
  const Plotly = window.Plotly;
  if (!Plotly) return;

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function template() {
    const fg = cssVar("--fg"), muted = cssVar("--muted"), line = cssVar("--line"), surface = cssVar("--surface");
    const axis = { gridcolor: line, linecolor: line, zerolinecolor: line, tickcolor: muted, color: fg };
    return {
      layout: {
        paper_bgcolor: surface,
        plot_bgcolor: surface,
        font: { color: fg },
        colorway: cssVar("--chart-colorway").split(",").map((c) => c.trim()).filter(Boolean),
        xaxis: axis,
        yaxis: axis,
        legend: { font: { color: fg } },
        modebar: { bgcolor: "rgba(0,0,0,0)", color: muted, activecolor: fg },
      },
    };
  }

  function themed(layout) {
    if (layout && layout.template) return layout;  // a chart with its own template keeps it
    return Object.assign({}, layout, { template: template() });
  }

  ["newPlot", "react"].forEach((name) => {
    const draw = Plotly[name];
    Plotly[name] = function (gd, data, layout, config) {
      if (data && !Array.isArray(data) && typeof data === "object") {
        // The one-figure form: Plotly.react(gd, {data, layout, config}).
        return draw.call(this, gd, Object.assign({}, data, { layout: themed(data.layout) }));
      }
      return draw.call(this, gd, data, themed(layout), config);
    };
  });

  // A time axis for points at these times (ISO strings): at least a day wide, since one
  // fit, or fits seconds apart, would otherwise get millisecond ticks.
  function timeAxis(times) {
    const t = times.map((x) => Date.parse(x)).filter((x) => !Number.isNaN(x));
    if (!t.length) return { type: "date" };
    const low = Math.min(...t), high = Math.max(...t), day = 864e5;
    if (high - low >= day) return { type: "date" };
    const middle = (low + high) / 2;
    return { type: "date", range: [new Date(middle - day / 2).toISOString(), new Date(middle + day / 2).toISOString()] };
  }
  window.arenaCharts = { timeAxis };

  const scheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  if (scheme && scheme.addEventListener) {
    scheme.addEventListener("change", () => {
      document.querySelectorAll(".js-plotly-plot").forEach((gd) => Plotly.relayout(gd, { template: template() }));
    });
  }
})();
