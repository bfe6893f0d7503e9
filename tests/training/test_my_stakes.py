"""The holder's "My stakes" page (/stakes/) and `GET /api/v1/stakes/mine/`: shares, claim state, claimable and
earned revenue read from StakeToken (fake chain), payouts from indexed events, the claim calls, chain down."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector
from rest_framework.authtoken.models import Token

from contracts.models import ChainEvent
from tests.tasks.factories import TaskFactory, UserFactory
from tests.training.factories import FinalizationFactory, StakeAllocationFactory

ETH = 10**18


@pytest.fixture
def holder(db):
    return UserFactory()


@pytest.fixture
def stake(holder, fake_chain):
    """The holder's 2,500 shares (25 %) of a settled task whose shares it has not claimed yet."""
    task = TaskFactory(title="Digits for clinics", chain_task_id=7)
    FinalizationFactory(task=task)
    return StakeAllocationFactory(task=task, holder=holder.username, shares=2_500)


def _event(name: str, *, stake_id: int, account: str, amount: int, n: int) -> ChainEvent:
    return ChainEvent.objects.create(
        chain_id=settings.CHAIN_ID,
        contract_name="StakeToken",
        address="0x" + "11" * 20,
        event=name,
        args={"id": stake_id, "account": account, "amount": str(amount)},
        block_number=100 + n,
        block_hash="0x" + f"{n:064x}",
        tx_hash="0x" + f"{0xABC0 + n:064x}",
        log_index=0,
    )


def _script(fake_chain, *, claimed: bool, claimable: int, accumulated: int, who: str, stake_id: int = 7):
    """StakeToken reads for `who`'s stake `stake_id`; any other (id, account) fails the test."""

    def only(value):
        def read(id_, account):
            assert (id_, account) == (stake_id, who), (id_, account)
            return value

        return read

    fake_chain.reads[("StakeToken", "sharesClaimed")] = only(claimed)
    fake_chain.reads[("StakeToken", "claimable")] = only(claimable)
    fake_chain.reads[("StakeToken", "accumulated")] = only(accumulated)


def _decode_call(data: str, signature: str, types: list[str]) -> tuple:
    raw = bytes.fromhex(data[2:])
    assert raw[:4] == function_signature_to_4byte_selector(signature)
    return abi_decode(types, raw[4:])


def test_holder_sees_shares_revenue_payouts_and_claim_button(client, holder, stake, fake_chain):
    # given: shares claimed on chain, 0.25 ETH claimable, 1.5 ETH earned, two payouts indexed (and one of
    # another holder, one of another stake: not shown)
    _script(fake_chain, claimed=True, claimable=ETH // 4, accumulated=3 * ETH // 2, who=holder.username)
    _event("PayoutPushed", stake_id=7, account=holder.username, amount=ETH, n=1)
    _event("DividendClaimed", stake_id=7, account=holder.username, amount=ETH // 4, n=2)
    _event("DividendClaimed", stake_id=7, account="0x" + "22" * 20, amount=5 * ETH, n=3)
    _event("DividendClaimed", stake_id=8, account=holder.username, amount=7 * ETH, n=4)
    client.force_login(holder)
    # when
    resp = client.get(reverse("stakes:mine"))
    # then
    body = resp.content.decode()
    assert resp.status_code == 200
    assert "Digits for clinics" in body and "2,500 of 10,000 (25.00 %)" in body
    assert "claimed" in body and "not claimed yet" not in body
    assert "0.25 ETH" in body and "1.5 ETH" in body
    assert "0x" + f"{0xABC1:064x}" in body and "0x" + f"{0xABC2:064x}" in body
    assert "0x" + f"{0xABC3:064x}" not in body and "0x" + f"{0xABC4:064x}" not in body
    assert "1.25 ETH" in body  # paid so far: 1 + 0.25
    # and the claim button carries StakeToken.claim(7) to the deployed StakeToken
    button = resp.context["holdings"][0].calls["claim"]
    assert button["to"] == fake_chain.addresses["StakeToken"] and button["chainId"] == 31337
    assert _decode_call(button["data"], "claim(uint256)", ["uint256"]) == (7,)
    assert "Claim 0.25 ETH" in body and f'data-data="{button["data"]}"' in body


def test_unclaimed_shares_get_a_claim_shares_button_with_the_stored_proof(client, holder, stake, fake_chain):
    # given: the stakes are open but the holder's shares are not claimed on chain
    _script(fake_chain, claimed=False, claimable=0, accumulated=0, who=holder.username)
    client.force_login(holder)
    # when
    resp = client.get(reverse("stakes:mine"))
    # then
    body = resp.content.decode()
    assert "not claimed yet" in body and "Claim my shares" in body
    call = resp.context["holdings"][0].calls["claim_shares"]
    args = _decode_call(
        call["data"],
        "claimShares(uint256,address,uint256,bytes32[])",
        ["uint256", "address", "uint256", "bytes32[]"],
    )
    assert args[0] == 7 and args[1].lower() == holder.username.lower() and args[2] == 2_500
    assert ["0x" + p.hex() for p in args[3]] == stake.proof


def test_no_claim_button_before_settlement(client, holder, fake_chain):
    # given: an allocation of a task whose escrow is not settled yet: no stakes root on chain, no reads
    task = TaskFactory(chain_task_id=9)
    FinalizationFactory(task=task, settlement="")
    StakeAllocationFactory(task=task, holder=holder.username)
    client.force_login(holder)
    # when
    body = client.get(reverse("stakes:mine")).content.decode()
    # then
    assert "waiting for the task" in body and "data-stake-send" not in body


def test_non_holder_sees_the_empty_state(client, stake, fake_chain):
    client.force_login(UserFactory())
    body = client.get(reverse("stakes:mine")).content.decode()
    assert "You hold no stakes yet." in body and "Digits for clinics" not in body


def test_anonymous_is_sent_to_sign_in(client, db):
    resp = client.get(reverse("stakes:mine"))
    assert resp.status_code == 302
    assert resp["Location"] == f"{reverse(settings.LOGIN_URL)}?next={reverse('stakes:mine')}"


def test_chain_down_shows_a_message_and_the_platform_records(client, holder, stake, fake_chain):
    # given: the node does not answer; a payout was indexed before
    fake_chain.down = True
    _event("PayoutPushed", stake_id=7, account=holder.username, amount=ETH, n=1)
    client.force_login(holder)
    # when
    resp = client.get(reverse("stakes:mine"))
    # then: a page, not a 500, saying why numbers are missing, still with shares and history
    body = resp.content.decode()
    assert resp.status_code == 200
    assert "The chain is not reachable right now" in body
    assert "2,500 of 10,000" in body and "0x" + f"{0xABC1:064x}" in body
    assert "data-stake-send" not in body


def test_nav_links_my_stakes_for_signed_in(client, holder, fake_chain):
    client.force_login(holder)
    assert f'href="{reverse("stakes:mine")}"' in client.get(reverse("home")).content.decode()


# --- API ---------------------------------------------------------------------------------------------


def test_api_needs_authentication(client, db):
    resp = client.get(reverse("training-api:stakes-mine"))
    assert resp.status_code == 401
    assert resp.json()["code"] == "not_authenticated"


def test_api_returns_the_same_data(client, holder, stake, fake_chain):
    # given
    _script(fake_chain, claimed=True, claimable=ETH // 4, accumulated=3 * ETH // 2, who=holder.username)
    _event("PayoutPushed", stake_id=7, account=holder.username, amount=ETH, n=1)
    token = Token.objects.create(user=holder).key
    # when
    resp = client.get(reverse("training-api:stakes-mine"), HTTP_AUTHORIZATION=f"Token {token}")
    # then
    assert resp.status_code == 200
    data = resp.json()
    assert data["wallet"] == holder.username and data["chain_error"] == ""
    [row] = data["stakes"]
    assert row["task_id"] == stake.task_id and row["stake_id"] == 7 and row["open"] is True
    assert row["shares"] == 2_500 and row["percent"] == 25.0 and row["shares_claimed"] is True
    assert row["claimable_wei"] == str(ETH // 4) and row["accumulated_wei"] == str(3 * ETH // 2)
    assert row["paid_wei"] == str(ETH)
    assert row["payouts"] == [
        {
            "event": "PayoutPushed",
            "amount_wei": str(ETH),
            "tx_hash": "0x" + f"{0xABC1:064x}",
            "block_number": 101,
        }
    ]


def test_api_chain_down_gives_nulls_and_the_reason(client, holder, stake, fake_chain):
    fake_chain.down = True
    client.force_login(holder)
    data = client.get(reverse("training-api:stakes-mine")).json()
    assert "not reachable" in data["chain_error"]
    assert data["stakes"][0]["claimable_wei"] is None and data["stakes"][0]["shares"] == 2_500


def test_api_non_holder_gets_an_empty_list(client, stake, fake_chain):
    client.force_login(UserFactory())
    data = client.get(reverse("training-api:stakes-mine")).json()
    assert data["stakes"] == []
