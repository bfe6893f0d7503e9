"""The browse page and the API's model list cost the same number of SQL queries with 10 and with 1,000 models
(rows bulk-created from the factories' `build_batch`); a model's page costs the same with a short and a long
history."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from marketplace import token_columns
from marketplace.models import Licence, LicenceTerms, ModelToken
from tasks.models import Task
from tests.marketplace.factories import (
    LicenceFactory,
    LicenceTermsFactory,
    ModelTokenFactory,
    NFTSaleFactory,
)
from tests.tasks.factories import TaskFactory, UserFactory
from tests.training.factories import FinalModelFactory, RoundFactory, RunFactory, StakeAllocationFactory

pytestmark = pytest.mark.django_db
_next_id = iter(range(10_000, 10**9))


def _bulk_models(n: int) -> None:
    """`n` minted models, each with licence terms for sale and one licence sold."""
    creator = UserFactory()
    tasks = TaskFactory.build_batch(n, creator=creator, status="completed")
    for task in tasks:
        task.chain_task_id = next(_next_id)
    tasks = Task.objects.bulk_create(tasks)
    tokens = ModelToken.objects.bulk_create(
        [ModelTokenFactory.build(task=t, token_id=t.chain_task_id, owner=creator.username) for t in tasks]
    )
    LicenceTerms.objects.bulk_create([LicenceTermsFactory.build(token=t) for t in tokens])
    Licence.objects.bulk_create([LicenceFactory.build(token=t) for t in tokens])
    token_columns.refresh([t.pk for t in tokens])  # bulk rows bypass the record functions


def _queries(django_assert_max_num_queries, fetch) -> int:
    cache.clear()  # the browse filter's dataset list: every measure starts cold
    with django_assert_max_num_queries(100) as ctx:
        response = fetch()
    assert response.status_code == 200
    return len(ctx.captured_queries), response


def test_browse_and_api_list_cost_the_same_with_10_and_1000_models(client, django_assert_max_num_queries):
    api = APIClient()

    def browse():
        return client.get(reverse("marketplace:browse"), {"per_page": 48, "sort": "sales", "licence": "on"})

    def api_list():
        return api.get("/api/v1/models/?sort=-licence_price&licence_for_sale=true")

    _bulk_models(10)
    small_page, page10 = _queries(django_assert_max_num_queries, browse)
    small_api, api10 = _queries(django_assert_max_num_queries, api_list)
    _bulk_models(990)
    large_page, page1000 = _queries(django_assert_max_num_queries, browse)
    large_api, api1000 = _queries(django_assert_max_num_queries, api_list)
    assert (small_page, small_api) == (large_page, large_api)
    assert small_page <= 3 and small_api <= 2
    assert len(page10.context["page"].object_list) == 10 and len(page1000.context["page"].object_list) == 48
    assert page1000.context["page"].paginator.count == 1000
    assert api10.json()["count"] == 10 and api1000.json()["count"] == 1000
    assert api1000.json()["results"][0]["licences_sold"] == 1


def test_model_page_costs_the_same_with_a_short_and_a_long_history(client, django_assert_max_num_queries):
    """Rounds, stake holders, licences and NFT sales of any number: the same queries (12 for a visitor)."""
    small, large = _model_with_history(1), _model_with_history(12)
    counts = []
    for token in (small, large):
        cache.clear()
        with django_assert_max_num_queries(100) as ctx:
            response = client.get(reverse("marketplace:detail", args=[token.token_id]))
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] <= 12
    assert len(response.context["rounds"]) == 12 and len(response.context["sales"]) == 24


def _model_with_history(n: int) -> ModelToken:
    token = ModelTokenFactory()
    run = RunFactory(task=token.task)
    rounds = [RoundFactory(task=token.task, run=run, number=i + 1) for i in range(n)]
    FinalModelFactory(task=token.task, source_round=rounds[-1])
    LicenceTermsFactory(token=token)
    for i in range(n):
        StakeAllocationFactory(task=token.task, leaf_index=i)
        LicenceFactory(token=token)
        NFTSaleFactory(token=token)
    return token
