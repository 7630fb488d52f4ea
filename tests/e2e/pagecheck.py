"""Checks every page state the browser tests visit: axe-core (WCAG 2.1 A/AA), no horizontal overflow, all
controls reachable, tables as cards on phones (none scrolls sideways, no card label runs over the next row or
is broken mid-word), and a screenshot per width (320, 390, 1280 px; 1280 px zoomed to 200 and 400 %) in
test-artifacts/."""
from __future__ import annotations

import json
from pathlib import Path

from .conftest import ARTIFACTS

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = (320, 390, 1280)
HEIGHT = 900
# A desktop browser zoomed in: at 200 % (WCAG 1.4.4 resize text) a 1280 px window lays the page out in
# 640 CSS px at two device pixels each, with a desktop (not a phone's) viewport; at 400 % in 320 CSS px
# (1.4.10 reflow).
ZOOMS = ((1280, 2), (1280, 4))
# On a phone a table is cards (table.stack), never a box to scroll sideways with a thumb.
PHONES = ("320", "390")

# Visible controls whose box lies (partly) outside the viewport horizontally, unless they sit in a
# container meant to scroll sideways (a wide table in .scroll): those are reached by scrolling it.
_UNREACHABLE_JS = """
const vw = document.documentElement.clientWidth, out = [];
function inScroller(el) {
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    const ox = getComputedStyle(p).overflowX;
    if (ox === "auto" || ox === "scroll") return true;
  }
  return false;
}
document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary").forEach(el => {
  const r = el.getBoundingClientRect(), st = getComputedStyle(el);
  if (r.width < 2 || r.height < 2 || st.visibility === "hidden" || el.closest("[hidden]")) return;
  if (el.classList.contains("skip-link")) return;        // shown on focus only
  if ((r.left < -1 || r.right > vw + 1) && !inScroller(el))
    out.push((el.id || el.name || el.textContent.trim().slice(0, 30)) + " @" + Math.round(r.left) + ".." + Math.round(r.right));
});
// A text column squeezed to a sliver breaks a sentence letter by letter: that is unreadable, not "fitting".
document.querySelectorAll("td.text").forEach(el => {
  const r = el.getBoundingClientRect();
  if (r.width > 0 && r.width < 150 && el.textContent.trim().length > 30)
    out.push("text cell only " + Math.round(r.width) + " px wide: " + el.textContent.trim().slice(0, 30));
});
// A table as cards on a phone names each value with its column (td::before). A label that wraps to more lines
// than its cell holds runs over the next row's text: measure the label as laid out at its width.
document.querySelectorAll("table.stack td[data-label]").forEach(td => {
  const label = getComputedStyle(td, "::before");
  if (label.content === "none" || label.content === "normal" || label.display === "none") return;
  const probe = document.createElement("div");
  for (const p of ["width", "font", "overflow-wrap", "word-break", "padding", "box-sizing", "letter-spacing"])
    probe.style.setProperty(p, label.getPropertyValue(p));
  probe.style.position = "absolute"; probe.style.visibility = "hidden";
  probe.textContent = td.dataset.label;
  document.body.appendChild(probe);
  const need = probe.getBoundingClientRect().height, have = td.getBoundingClientRect().height;
  if (need > have + 1) out.push("label runs out of its cell: " + td.dataset.label + " " + Math.round(need) + " > " + Math.round(have) + " px");
  // A word of the label wider than the label's column is broken in the middle ("Consentem-ent").
  const room = probe.clientWidth - parseFloat(label.paddingLeft) - parseFloat(label.paddingRight);
  probe.style.width = "auto"; probe.style.whiteSpace = "nowrap"; probe.style.padding = "0";
  for (const word of td.dataset.label.split(/\\s+|(?<=-)/)) {      // a line may break after a hyphen
    probe.textContent = word;
    if (probe.getBoundingClientRect().width > room + 0.5) out.push("label word broken: " + word + " in " + Math.round(room) + " px");
  }
  probe.remove();
});
return out;
"""


def axe_violations(driver) -> list[dict]:
    """axe-core's violations at WCAG 2.1 A/AA on the current page (injected here, not served by the page)."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run `bash scripts/bootstrap` (it runs npm ci in tests/e2e)")
    if not driver.execute_script("return Boolean(window.axe);"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    driver.set_script_timeout(60)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));", WCAG21_AA)
    return result


def layout_problems(driver) -> dict:
    """{"overflow": px beyond the viewport, "unreachable": [controls off-screen]} at the current width."""
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
    return {"overflow": overflow, "unreachable": driver.execute_script(_UNREACHABLE_JS)}


def set_width(driver, width: int) -> None:
    """Lay the page out as a WIDTH px wide screen (a phone below 800 px: mobile viewport, touch)."""
    if width >= 800:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(width, HEIGHT)
    else:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": True})
    driver.execute_script("return document.documentElement.getBoundingClientRect().width;")   # force layout


def set_zoom(driver, window: int, factor: int) -> None:
    """Lay the page out as a desktop WINDOW px wide zoomed to FACTOR (2 = 200 %)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": window // factor, "height": HEIGHT // factor, "deviceScaleFactor": factor,
                            "mobile": False})
    driver.execute_script("return document.documentElement.getBoundingClientRect().width;")   # force layout


def check_page(driver, name: str, widths=WIDTHS, axe: bool = True, zooms=ZOOMS) -> None:
    """Assert the page state is clean under axe and fits every width and zoom; screenshot it at each."""
    problems = {}
    if axe:
        found = axe_violations(driver)
        if found:
            problems["axe"] = found
    layouts = [(str(w), lambda w=w: set_width(driver, w)) for w in widths]
    layouts += [(f"{w}-zoom{f * 100}", lambda w=w, f=f: set_zoom(driver, w, f)) for w, f in zooms]
    for label, lay_out in layouts:
        lay_out()
        lay = layout_problems(driver)
        if label in PHONES:
            lay["sideways"] = scrolling_tables(driver)
        driver.save_screenshot(str(ARTIFACTS / f"{name}-{label}.png"))
        if lay["overflow"] > 0 or lay["unreachable"] or lay.get("sideways"):
            problems[f"layout@{label}"] = lay
    set_width(driver, 1280)
    assert not problems, f"{name} ({driver.current_url}):\n{json.dumps(problems, indent=1, ensure_ascii=False)}"


def scrolling_tables(driver) -> list[str]:
    """The tables (by id) wider than the sideways scroller they sit in, at the current width."""
    return driver.execute_script(
        "return [...document.querySelectorAll('.scroll > table')]"
        ".filter(t => t.parentElement.scrollWidth > t.parentElement.clientWidth + 1)"
        ".map(t => t.id + ' ' + t.parentElement.scrollWidth + '/' + t.parentElement.clientWidth);")
