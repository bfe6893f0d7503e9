"""Page layout in a real browser (Debian chromium): what only rendering shows.

The RPC URL on the status page stays on one line at any width; the task chart's legend sits above the plot
area, clear of the accuracy and loss lines. Geometry read from the rendered page, no screenshots compared.
"""

from __future__ import annotations

import pytest

from tests.e2e.browser import BROWSER_MARKS
from tests.tasks.factories import TaskFactory
from training.models import Round, Run

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize("width", [1200, 420])
def test_rpc_url_never_wraps(live_server, transactional_db, chromium_page, settings, anvil, width):
    # given: a reachable chain (its URL is shown in the Chain card)
    settings.CHAIN_RPC_URL = anvil.url
    page = chromium_page
    page.set_viewport_size({"width": width, "height": 900})
    # when
    page.goto(f"{live_server.url}/status/", timeout=120_000)
    # then: the URL is one line box (an inline element broken over lines has one client rect per line)
    url = page.locator("code.url", has_text=anvil.url)
    assert url.count() == 1
    assert url.evaluate("el => el.getClientRects().length") == 1
    assert url.evaluate("el => el.textContent") == anvil.url


def test_chart_legend_does_not_cover_the_lines(live_server, transactional_db, chromium_page):
    # given: a task with three rounds whose accuracy starts at the top of the plot (where a legend used to be)
    task = TaskFactory(rounds=3)
    run = Run.objects.create(task=task)
    for number, acc in ((1, 0.99), (2, 0.5), (3, 0.98)):
        Round.objects.create(
            task=task,
            run=run,
            number=number,
            global_sha256="ab" * 32,
            accuracy=acc,
            loss=2.0 / number,
            updates_root="0x" + "00" * 32,
        )
    page = chromium_page
    # when
    page.goto(f"{live_server.url}/tasks/{task.pk}/", timeout=120_000)
    # then: every legend item's box ends above the plot area's top edge
    boxes = page.evaluate(
        """() => {
          const svg = document.querySelector("figure.chart svg");
          const plot = svg.querySelector("rect").getBoundingClientRect();
          const items = [...svg.querySelectorAll("g.legend > *")].map(e => e.getBoundingClientRect().bottom);
          return {plotTop: plot.top, legendBottoms: items};
        }"""
    )
    assert len(boxes["legendBottoms"]) == 4
    assert max(boxes["legendBottoms"]) <= boxes["plotTop"], boxes
