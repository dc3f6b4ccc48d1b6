"""``python -m devtools.console_screenshots URL USER``: the README's console screenshots.

Logs in (password on stdin), finds a failed order and a dead letter in what the console shows,
and writes docs/console/{overview,job,order,dead-letters}.png with Debian's chromium. Run it
against the main job's database after a main job (`shopjobs console` on shopjobs_main).
"""

from __future__ import annotations

import os
import re
import sys

from devtools.processes import ROOT

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> int:
    base, user = sys.argv[1].rstrip("/"), sys.argv[2]
    password = sys.stdin.readline().rstrip("\n")
    out = os.path.join(ROOT, "docs", "console")
    os.makedirs(out, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(base + "/login")
        page.fill("input[name=name]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        page.goto(base + "/?window=1h")
        page.wait_for_timeout(500)
        page.screenshot(path=os.path.join(out, "overview.png"), full_page=True)
        page.goto(base + "/jobs?state=failed&actor=payments.validate_payment")
        link = page.locator("#jobs a[href^='/orders/']").first
        order = link.get_attribute("href")
        page.goto(base + str(order))
        page.locator("tr.comp, tr[id^=job-]").first.wait_for()
        failed = page.locator("#stopped a").get_attribute("href") or ""
        details = page.locator(f"{failed} details")
        if details.count():
            details.first.locator("summary").click()
        page.screenshot(path=os.path.join(out, "order.png"), full_page=True)
        message_id = re.sub(r"^#job-", "", failed)
        page.goto(f"{base}/jobs/{message_id}")
        page.screenshot(path=os.path.join(out, "job.png"), full_page=True)
        page.goto(base + "/dead-letters")
        page.screenshot(path=os.path.join(out, "dead-letters.png"), full_page=True)
        browser.close()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
