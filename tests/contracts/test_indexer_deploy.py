"""Indexer replays and confirmation depth; deploy_contracts idempotency."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from contracts import chain
from contracts.deployment import deploy_contracts
from contracts.indexer import chain_index_events, index_range
from contracts.models import ChainEvent, ChainTx, Deployment, EventCursor
from tests.contracts.conftest import point_at

pytestmark = pytest.mark.django_db(transaction=True)


def test_replaying_a_block_range_stores_each_event_once(fresh_chain):
    # given: deployments emit RoleGranted / BaseURIUpdated / URIUpdated events
    deploy_contracts(log=lambda _m: None)
    head = chain.block_number()
    # when
    first = index_range(0, head)
    second = index_range(0, head)
    # then
    assert first > 0 and second == 0
    assert ChainEvent.objects.count() == first
    assert ChainEvent.objects.filter(contract_name="ModelNFT", event="BaseURIUpdated").count() == 1
    role = ChainEvent.objects.filter(event="RoleGranted").first()
    assert role.args["role"].startswith("0x") and len(role.args["role"]) == 66


def test_cursor_respects_confirmation_depth_and_chunks(fresh_chain, settings):
    # given
    deploy_contracts(log=lambda _m: None)
    settings.CHAIN_CONFIRMATIONS = 3
    settings.CHAIN_INDEX_MAX_BLOCKS = 2
    head = chain.block_number()
    # when
    result = chain_index_events()
    # then: nothing beyond head - 3
    cursor = EventCursor.objects.get(chain_id=settings.CHAIN_ID)
    assert cursor.last_block == head - 3 == result["to"]
    assert not ChainEvent.objects.filter(block_number__gt=head - 3).exists()
    indexed = ChainEvent.objects.count()
    # when: the chain moves 3 blocks, the rest is confirmed and indexed; a rerun changes nothing
    fresh_chain.mine(3)
    chain_index_events()
    chain_index_events()
    cursor.refresh_from_db()
    assert cursor.last_block == head
    assert ChainEvent.objects.count() > indexed
    assert ChainEvent.objects.count() == index_range(0, head) + ChainEvent.objects.count()  # replay adds 0


def test_deploy_contracts_is_idempotent(fresh_chain):
    # given
    out = StringIO()
    call_command("deploy_contracts", stdout=out)
    assert Deployment.objects.count() == 5
    deployments, txs = list(Deployment.objects.values_list("name", "address")), ChainTx.objects.count()
    # five constructors + the TaskRegistry's STAKES_ROLE on the StakeToken (the signer's roles come from them)
    assert txs == 6 and set(ChainTx.objects.values_list("status", flat=True)) == {"confirmed"}
    stake, registry = (Deployment.objects.get(name=n).address for n in ("StakeToken", "TaskRegistry"))
    assert chain.call("TaskRegistry", "stakeToken").lower() == stake.lower()
    assert chain.call("StakeToken", "hasRole", [chain.call("StakeToken", "STAKES_ROLE"), registry])
    # when
    out = StringIO()
    call_command("deploy_contracts", stdout=out)
    # then
    assert "Nothing to deploy" in out.getvalue()
    assert list(Deployment.objects.values_list("name", "address")) == deployments
    assert ChainTx.objects.count() == txs
    market = Deployment.objects.get(name="Marketplace")
    assert chain.call("Marketplace", "nft").lower() == Deployment.objects.get(name="ModelNFT").address.lower()
    assert market.bytecode_sha256 == chain.bytecode_sha256("Marketplace") and market.block_number


def test_missing_code_is_reported_and_redeployed_only_on_request(fresh_chain, settings, anvil):
    # given: deployments recorded for a node that was then reset (here: another fresh node)
    call_command("deploy_contracts", stdout=StringIO())
    old = dict(Deployment.objects.values_list("name", "address"))
    from tests.anvil import Anvil

    other = Anvil().start()
    try:
        point_at(settings, other.url)
        # when / then
        with pytest.raises(CommandError, match="no code there"):
            call_command("deploy_contracts", stdout=StringIO())
        out = StringIO()
        call_command("deploy_contracts", "--redeploy-missing", stdout=out)
        assert "Deployed: IdentityRegistry" in out.getvalue()
        assert all(chain.has_code(a) for a in Deployment.objects.values_list("address", flat=True))
        assert Deployment.objects.count() == 5 and set(old) == set(
            Deployment.objects.values_list("name", flat=True)
        )
    finally:
        other.stop()
