"""Helpers of the page-weight and accessibility browser tests: bytes on the wire, chart
draw times measured in the page, axe-core, the staff login."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.seed import STAFF_PASSWORD, STAFF_USER

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")

# Runs before any page script: wraps Plotly.newPlot/react as plotly.js is defined, and
# marks (performance.mark) the first plotly_afterplot of each chart div, in page time.
CHART_MARKS = """
(() => {
  let plotly;
  Object.defineProperty(window, "Plotly", {
    configurable: true,
    get() { return plotly; },
    set(value) {
      plotly = value;
      for (const name of ["newPlot", "react"]) {
        const draw = value[name];
        value[name] = function (gd) {
          const result = draw.apply(this, arguments);
          const el = typeof gd === "string" ? document.getElementById(gd) : gd;
          // plotly emits plotly_afterplot in a later microtask: listening now catches it.
          if (el && el.once && !el.dataset.afterplotWatched) {
            el.dataset.afterplotWatched = "1";
            el.once("plotly_afterplot", () => performance.mark("afterplot:" + el.id));
          }
          return result;
        };
      }
    },
  });
})();
"""


@dataclass
class Transfer:
    """What the browser received over the network for one page, from CDP Network events:
    encodedDataLength is the bytes on the wire (headers included, compressed bodies)."""

    bytes_by_url: dict[str, int] = field(default_factory=dict)
    headers_by_url: dict[str, dict[str, str]] = field(default_factory=dict)
    websocket_bytes: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.bytes_by_url.values()) + self.websocket_bytes

    def summary(self) -> str:
        rows = sorted(self.bytes_by_url.items(), key=lambda kv: -kv[1])
        return "\n".join(f"{n:>9} {url}" for url, n in rows) + f"\n{self.total:>9} total"


def record_transfer(page) -> Transfer:
    """Start counting every byte this page receives (the browser cache off: a first load)."""
    transfer = Transfer()
    urls: dict[str, str] = {}
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})

    def on_response(event):
        response = event["response"]
        urls[event["requestId"]] = response["url"]
        transfer.headers_by_url[response["url"]] = {
            k.lower(): v for k, v in response.get("headers", {}).items()
        }

    def on_finished(event):
        url = urls.get(event["requestId"], event["requestId"])
        transfer.bytes_by_url[url] = transfer.bytes_by_url.get(url, 0) + int(
            event["encodedDataLength"]
        )

    def on_failed(event):
        transfer.failed.append(urls.get(event["requestId"], event["requestId"]))

    def on_frame(event):
        transfer.websocket_bytes += len(event["response"].get("payloadData", ""))

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    cdp.on("Network.loadingFailed", on_failed)
    cdp.on("Network.webSocketFrameReceived", on_frame)
    return transfer


def watch_errors(page) -> list[str]:
    """Uncaught exceptions, console errors (plotly reports an unknown trace type on the
    console) and failed responses of the page."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "response",
        # (the admin's login page has no icon link: Chromium asks for /favicon.ico)
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}")
            if message.type in ("error", "warning")
            and "WebSocket" not in message.text
            and not message.text.startswith("Failed to load resource")  # the response, above
            else None
        ),
    )
    return errors


def charts_drawn_after_load_ms(page, chart_ids: list[str]) -> float:
    """Milliseconds from the page's load event to the last of these charts' first
    plotly_afterplot, read from the page's own performance timeline."""
    return page.evaluate(
        """(ids) => {
            const load = performance.getEntriesByType("navigation")[0].loadEventStart;
            const marks = ids.map((id) => performance.getEntriesByName("afterplot:" + id)[0]);
            if (marks.some((m) => !m)) throw new Error("a chart never drew: " + ids);
            return Math.max(...marks.map((m) => m.startTime)) - load;
        }""",
        chart_ids,
    )


def wait_for_charts(page, chart_ids: list[str], timeout: float = 20000) -> None:
    page.wait_for_function(
        "(ids) => ids.every((id) => performance.getEntriesByName('afterplot:' + id).length)",
        arg=chart_ids,
        timeout=timeout,
    )


def axe_violations(page, impacts=SERIOUS) -> list[dict]:
    """axe-core's violations of these impacts on the page as it is now (the vendored
    axe.min.js, injected into the page)."""
    if not page.evaluate("Boolean(window.axe)"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, { resultTypes: ["violations"] });
            return r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target, summary: n.failureSummary })),
            }));
        }"""
    )
    return [v for v in result if v["impact"] in impacts]


def describe(violations: list[dict]) -> str:
    return json.dumps(violations, indent=1)


def log_in_as_staff(page, base_url: str) -> None:
    page.goto(base_url + "/admin/login/?next=/audit/")
    page.get_by_label("Username").fill(STAFF_USER)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Judge audit")


def overflow(page) -> dict:
    """How far the page scrolls sideways: scrollWidth > clientWidth is a horizontal overflow."""
    return page.evaluate(
        """() => {
            const s = document.scrollingElement;
            const wide = [...document.querySelectorAll("body *")]
                .filter((el) => el.getBoundingClientRect().right > s.clientWidth + 0.5)
                .slice(0, 5).map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className);
            return { scrollWidth: s.scrollWidth, clientWidth: s.clientWidth, wide };
        }"""
    )
