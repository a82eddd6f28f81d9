"""Screenshots of pages in headless chromium at given window sizes (not a test: for looking).

    python tests/browser/screenshot.py PAGE.html [PAGE.html ...] --sizes 1366x768,1920x1080 \\
        --out shots/ [--frame last]

Writes shots/<page>_<W>x<H>[_<frame>].png and prints, per shot, the zoom the page chose and the
smallest node label in screen pixels (what tests/browser/test_readable.py asserts).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The smallest node label as drawn: font size in picture units times the picture's scale.
SMALLEST_LABEL = """
const svg = document.querySelector("#tg-stage svg");
const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
let small = Infinity;
svg.querySelectorAll("g.node text").forEach(function (t) {
  const f = parseFloat(t.getAttribute("font-size"));
  if (f) small = Math.min(small, f * scale);
});
return small;
"""


def set_viewport(drv: Any, width: int, height: int) -> None:
    """Make the page's viewport (window.inner*) exactly width x height."""
    drv.set_window_size(width, height)
    # Resizing is asynchronous in a busy browser: adjust for the window's frame and wait until
    # the viewport has the size asked for (a few tries).
    for _ in range(20):
        iw, ih, dw, dh = drv.execute_script(
            "return [window.innerWidth, window.innerHeight, window.outerWidth - window.innerWidth,"
            " window.outerHeight - window.innerHeight]")
        if (iw, ih) == (width, height):
            return
        drv.set_window_size(width + dw, height + dh)
        time.sleep(0.1)


def main(argv: list[str]) -> None:
    """Take the screenshots."""
    from selenium import webdriver  # here: the browser tests import this module's helpers
    from selenium.webdriver.chrome.service import Service

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for browser.*
    from browser.conftest import BROWSERS, DRIVERS, FLAGS, _which

    ap = argparse.ArgumentParser()
    ap.add_argument("pages", nargs="+")
    ap.add_argument("--sizes", default="1366x768,1920x1080")
    ap.add_argument("--out", default="shots")
    ap.add_argument("--frame", default=None, help="a frame index, or 'last'")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = _which(BROWSERS) or "chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        drv = webdriver.Chrome(service=Service(_which(DRIVERS) or "chromedriver"), options=opts)
        try:
            for p in args.pages:
                for size in args.sizes.split(","):
                    w, h = (int(v) for v in size.split("x"))
                    set_viewport(drv, w, h)
                    drv.get(Path(p).resolve().as_uri())
                    suffix = ""
                    if args.frame is not None:
                        drv.execute_script(
                            "const s = document.getElementById('tg-slider');"
                            "s.value = arguments[0] === 'last' ? s.max : arguments[0];"
                            "s.dispatchEvent(new Event('input'));", args.frame)
                        suffix = f"_{args.frame}"
                    shot = out / f"{Path(p).stem}_{w}x{h}{suffix}.png"
                    drv.save_screenshot(str(shot))
                    zoom = drv.execute_script("return document.body.dataset.zoom")
                    small = drv.execute_script(SMALLEST_LABEL)
                    print(f"{shot}: zoom {zoom}, smallest node label {small:.1f} px")
        finally:
            drv.quit()


if __name__ == "__main__":
    main(sys.argv[1:])
