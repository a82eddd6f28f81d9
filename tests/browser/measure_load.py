"""How long a page takes to load and to change frames in headless chromium (not a test: speed is
measured here and reported, never asserted in the suite).

    python tests/browser/measure_load.py out/record_training/sigmoid_saturated.html [...]

For each page: load time from navigation start to the end of the page's own script (first frame
drawn, slider live) and to the load event, the median of 5 loads in a fresh tab each, then the
median time to show another frame (slider input -> new SVG in the DOM, forced layout).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

RUNS = 5


def main(paths: list[str]) -> None:
    """Print the load and frame-change times of each page."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for browser.*
    from browser.conftest import BROWSERS, DRIVERS, FLAGS, _which

    opts = webdriver.ChromeOptions()
    opts.binary_location = _which(BROWSERS) or "chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        drv = webdriver.Chrome(service=Service(_which(DRIVERS) or "chromedriver"), options=opts)
        try:
            for p in paths:
                url = Path(p).resolve().as_uri()
                ready, loaded = [], []
                for _ in range(RUNS):
                    drv.get("about:blank")
                    drv.get(url)
                    t = drv.execute_script(
                        "const n = performance.getEntriesByType('navigation')[0];"
                        "return [Number(document.body.dataset.readyMs), n.loadEventEnd];")
                    ready.append(t[0])
                    loaded.append(t[1])
                frames = drv.execute_script("return document.getElementById('tg-slider').max;")
                swap = drv.execute_script("""
                    const s = document.getElementById('tg-slider'), out = [];
                    for (let i = 1; i <= Math.min(50, Number(s.max)); i++) {
                      const t0 = performance.now();
                      s.value = String(i); s.dispatchEvent(new Event('input'));
                      document.getElementById('tg-stage').getBoundingClientRect();
                      out.push(performance.now() - t0);
                    }
                    return out;""")
                size = Path(p).stat().st_size / 1e6
                print(f"{p}: {int(frames) + 1} frames, {size:.1f} MB; script done after "
                      f"{statistics.median(ready):.0f} ms, load event after "
                      f"{statistics.median(loaded):.0f} ms (median of {RUNS}, max "
                      f"{max(loaded):.0f} ms); frame change {statistics.median(swap):.1f} ms")
        finally:
            drv.quit()


if __name__ == "__main__":
    main(sys.argv[1:])
