"""The marketplace and stakes story in a real browser (Debian chromium, a fake EIP-1193 wallet per actor).

One finished task (tests/e2e/marketplace_story.py): 4 SuperNodes on digits, one sending NaN (judged malicious,
banned), finalized on anvil (NFT, stakes, share claims) and exported to ONNX. Then, through the pages: the
creator sees the NFT, stakes, ban and audit trail; sets licence terms and lists the NFT; a buyer browses, buys a
licence, downloads the weights and predicts from a digit image; wrong-chain and underfunded purchases are refused
in words; two buyers race for the NFT; a stakeholder claims revenue on /stakes/; the banned participant's join is
refused with the reason. Screenshots of the main pages go to docs/screenshots/.

One test function with one step per scenario, each step building on the chain state the previous left: the
training costs most of the time, and pytest-django's live server flushes the database after every test.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e import market_steps as steps
from tests.e2e.browser import BROWSER_MARKS, _close_db_connections_of_this_context
from tests.e2e.marketplace_story import CREATOR_KEY, Story, launch_browser, train_and_finalize

pytestmark = BROWSER_MARKS

STEPS = [
    steps.creator_sees_the_nft_stakes_ban_and_audit_trail,
    steps.owner_sets_licence_terms_and_lists_the_nft,
    steps.buyer_browses_buys_a_licence_downloads_and_predicts,
    steps.wrong_chain_and_underfunded_purchases_are_refused_in_words,
    steps.two_buyers_race_for_the_nft,
    steps.stakeholder_claims_revenue_on_my_stakes,
    steps.banned_participant_cannot_join,
    steps.home_page,
]


@pytest.fixture
def chromium_browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # playwright's sync API runs an event loop in this thread; the live server thread does the DB work.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            yield browser
        finally:
            _close_db_connections_of_this_context()
            browser.close()


def test_marketplace_and_stakes_story_in_the_browser(
    live_server, transactional_db, anvil, settings, monkeypatch, tmp_path, chromium_browser
):
    # given: a finished task: NFT minted to the creator, stakes claimed for the holders, one participant banned
    t0 = time.monotonic()
    task, keys, timings = train_and_finalize(tmp_path, settings, monkeypatch, anvil.url)
    story = Story(
        live_server.url,
        anvil.url,
        task,
        int(task.chain_task_id),
        CREATOR_KEY,
        keys,
        chromium_browser,
        tmp_path,
    )
    try:
        # when/then: each scenario through the pages, in order
        for step in STEPS:
            started = time.monotonic()
            step(story)
            timings[step.__name__] = time.monotonic() - started
    finally:
        story.close_contexts()
        timings["total_s"] = time.monotonic() - t0
        print("\nmarketplace story (s):", {k: round(v, 1) for k, v in timings.items()})
