"""factory_boy factories of the marketplace (rows as the services record them from verified events)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone
from eth_utils import keccak
from factory.django import DjangoModelFactory

from marketplace import token_columns
from marketplace.models import Licence, LicenceTerms, ModelToken, NFTSale
from tests.tasks.factories import TaskFactory


class _RecordedRow(DjangoModelFactory):
    """A row of a token's history: the token's list columns are refreshed after it is created, as the record
    functions do (`marketplace.token_columns`)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        row = super()._create(model_class, *args, **kwargs)
        token_columns.refresh([row.token_id])
        return row


class ModelTokenFactory(DjangoModelFactory):
    """A minted model NFT owned by its task's creator."""

    class Meta:
        model = ModelToken

    task = factory.SubFactory(TaskFactory, status="completed")
    chain_id = 31337
    token_id = factory.SelfAttribute("task.chain_task_id")
    owner = factory.SelfAttribute("task.creator.username")


class LicenceTermsFactory(_RecordedRow):
    class Meta:
        model = LicenceTerms

    token = factory.SubFactory(ModelTokenFactory)
    set_by = factory.SelfAttribute("token.owner")
    price_wei = Decimal(10**17)
    duration_s = 30 * 86_400
    terms = "Non-exclusive research licence."
    terms_hash = factory.LazyAttribute(lambda o: "0x" + keccak(text=o.terms).hex())
    active = True
    tx_hash = factory.Sequence(lambda i: "0x" + keccak(text=f"terms-{i}").hex())


class LicenceFactory(_RecordedRow):
    """A licence valid for 30 more days (pass `expires_at` in the past for an expired one)."""

    class Meta:
        model = Licence

    token = factory.SubFactory(ModelTokenFactory)
    buyer = factory.Sequence(lambda i: f"0x{0xA11CE000 + i:040x}")
    price_wei = Decimal(10**17)
    licence_id = factory.Sequence(lambda i: i + 1)
    terms_hash = "0x" + "11" * 32
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
    tx_hash = factory.Sequence(lambda i: "0x" + keccak(text=f"licence-{i}").hex())


class NFTSaleFactory(_RecordedRow):
    """An NFT sale recorded from its NFTSold event (5 % royalty)."""

    class Meta:
        model = NFTSale

    token = factory.SubFactory(ModelTokenFactory)
    seller = factory.SelfAttribute("token.owner")
    buyer = factory.Sequence(lambda i: f"0x{0xB0B00000 + i:040x}")
    price_wei = Decimal(10**18)
    royalty_wei = Decimal(5 * 10**16)
    tx_hash = factory.Sequence(lambda i: "0x" + keccak(text=f"sale-{i}").hex())
    block_number = factory.Sequence(lambda i: 100 + i)
