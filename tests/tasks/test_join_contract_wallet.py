"""A smart-contract wallet (signed in through EIP-1271) cannot join a task: the training client signs every update
with the wallet's key, which only an externally owned account can do. The refusal says so instead of calling the
signature bad; an EOA with a wrong signature still gets `bad_signature`, also when the chain cannot be asked."""

import pytest
from eth_account import Account

from tasks.services import JoinRefused, participation_join
from tests.tasks.factories import UserFactory, signed_join, wallet

pytestmark = pytest.mark.django_db


def _join_as(task, address: str, signer, fake_chain):
    kwargs = signed_join(task, signer, registry=fake_chain.addresses["TaskRegistry"])
    kwargs["participant"] = address
    return participation_join(task=task, user=UserFactory(username=address), **kwargs)


def test_contract_wallet_join_is_refused_with_the_reason(task_factory, fake_chain):
    # given: an address with code on the chain (one of the deployed contracts stands in for a Safe)
    task = task_factory()
    contract_wallet = fake_chain.addresses["ModelNFT"]
    # when
    with pytest.raises(JoinRefused) as info:
        _join_as(task, contract_wallet, Account.create(), fake_chain)
    # then
    assert info.value.code == "contract_wallet"
    assert "ordinary (externally owned) account" in info.value.message
    assert contract_wallet in info.value.message


def test_eoa_with_a_wrong_signature_is_still_bad_signature(task_factory, fake_chain):
    task = task_factory()
    with pytest.raises(JoinRefused) as info:
        _join_as(task, wallet(1).address, wallet(2), fake_chain)
    assert info.value.code == "bad_signature"


def test_chain_down_falls_back_to_bad_signature(task_factory, fake_chain):
    task = task_factory()
    fake_chain.down = True
    with pytest.raises(JoinRefused) as info:
        _join_as(task, fake_chain.addresses["ModelNFT"], Account.create(), fake_chain)
    assert info.value.code == "bad_signature"


def test_contract_wallet_refusal_is_403_in_the_api(task_factory, fake_chain):
    from rest_framework.test import APIClient

    task = task_factory()
    address = fake_chain.addresses["ModelNFT"]
    kwargs = signed_join(task, Account.create(), registry=fake_chain.addresses["TaskRegistry"])
    kwargs["participant"] = address
    client = APIClient()
    client.force_authenticate(UserFactory(username=address))
    response = client.post(f"/api/v1/tasks/{task.pk}/join/", kwargs, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "contract_wallet"
