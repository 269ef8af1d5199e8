// Campaign progress page: the coverage, the pool's Krippendorff's alpha and each
// annotator's row are read again from /api/campaigns/<id>/progress every 10 seconds
// while the page is visible (the same report the server rendered first).
(function () {
  "use strict";
  const section = document.getElementById("coverage");
  if (!section) return;
  const fixed = (x, d) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function show(report) {
    const c = report.coverage;
    const strong = document.createElement("strong");
    strong.textContent = String(c.items_done);
    const text = document.getElementById("coverage-text");
    text.replaceChildren(strong, " of " + c.items + " items fully judged, " + c.items_started + " started; " + c.answers + " of " + c.answers_needed + " answers; " + c.gold_items + " gold items.");
    document.getElementById("assignment-text").textContent = "Assignments: " + Object.entries(c.assignments).map(([k, n]) => k + " " + n).join(", ") + ".";
    document.getElementById("alpha").textContent = report.alpha.value === null ? "n/a" : fixed(report.alpha.value, 3);
    const rows = report.annotators.map((a) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(a.username),
        cell(String(a.answers)),
        cell(a.gold_accuracy === null || a.gold_accuracy === undefined ? "–" : a.gold_correct + "/" + a.gold_answers + " (" + fixed(a.gold_accuracy, 2) + ")"),
        cell(a.agreement === null || a.agreement === undefined ? "–" : fixed(a.agreement, 2) + " (" + a.agreement_pairs + " pairs)"),
        cell(a.median_seconds === null || a.median_seconds === undefined ? "–" : fixed(a.median_seconds, 1) + " s"),
        cell((a.flags || []).join("; ")),
      );
      return tr;
    });
    document.querySelector("#annotators tbody").replaceChildren(...rows);
  }

  async function refresh() {
    if (document.hidden) return;
    const response = await fetch(section.dataset.report, { credentials: "same-origin" });
    if (response.ok) show(await response.json());
  }

  setInterval(refresh, 10000);
})();
