"""API conformance: schemathesis over every operation of /api/schema/, signed out and signed in.

All of schemathesis's checks run (no server errors; status codes, content types, headers and bodies
as documented; schema-violating requests refused; schema-valid requests accepted) with one
refinement of ``positive_data_acceptance``: a schema-valid request may still be refused with a 400
whose ``code`` is a domain refusal (``signature``, ``nonce_unknown``, ``bad_signature``,
``credential_refused``, …: the schema cannot say "signed by this key"), but never as invalid input
(``code: invalid`` / ``parse_error``), which would mean the schema accepts what the server refuses.

Deterministic and bounded: ``derandomize=True``, no example database, a fixed ``max_examples``.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.bcfl_site.api.wsgi import wsgi_app

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)

# Codes that mean "the request does not fit the API's shapes": a schema-valid request must never get them.
STRUCTURAL_CODES = {"invalid", "parse_error", "unsupported_media_type", "not_acceptable"}
CONFORMANCE = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def positive_data_acceptance_or_domain_refusal(ctx, response, case):
    """``positive_data_acceptance``, letting a 400 through when its code is a domain refusal."""
    if response.status_code == 400:
        try:
            code = response.json().get("code")
        except ValueError:
            code = None
        if code is not None and code not in STRUCTURAL_CODES:
            return None
    return positive_data_acceptance(ctx, response, case)


def _call_and_validate(case, **kwargs):
    return case.call_and_validate(
        excluded_checks=[positive_data_acceptance],
        additional_checks=[positive_data_acceptance_or_domain_refusal],
        **kwargs,
    )


@pytest.mark.django_db
@schema.parametrize()
@CONFORMANCE
def test_api_conforms_signed_out(case):
    _call_and_validate(case)


@pytest.mark.django_db
@schema.parametrize()
@CONFORMANCE
def test_api_conforms_signed_in(case, api_user, recruiting_task):
    _user, token = api_user
    _call_and_validate(case, headers={"Authorization": f"Token {token}"})


def test_every_operation_is_covered():
    """The parametrized tests above run over every operation: a new endpoint is tested automatically."""
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert len(operations) == 20
    assert ("GET", "/api/v1/stakes/mine/") in operations
    assert ("POST", "/api/v1/tasks/{id}/join/") in operations


@pytest.mark.django_db
def test_documented_success_responses_for_real_objects(api_user, recruiting_task):
    """Fuzzed ids rarely exist: here every read operation answers 200 for a real task and participation,
    and a real join answers 201, each validated against its documented schema."""
    from tests.tasks.factories import signed_join, wallet

    user, token = api_user
    headers = {"Authorization": f"Token {token}"}
    join = schema["/api/v1/tasks/{id}/join/"]["POST"].Case(
        path_parameters={"id": recruiting_task.pk},
        headers=headers,
        body=signed_join(recruiting_task, wallet(500)),
        media_type="application/json",
    )
    assert join.call_and_validate().status_code == 201
    reads = [
        ("/api/v1/tasks/", {}, {"status": "recruiting"}),
        ("/api/v1/tasks/{id}/", {"id": recruiting_task.pk}, {}),
        ("/api/v1/tasks/{id}/training/", {"id": recruiting_task.pk}, {}),
        ("/api/v1/tasks/{id}/rounds/", {"id": recruiting_task.pk}, {}),
        ("/api/v1/participations/mine/", {}, {}),
        ("/api/v1/identity/mine/", {}, {}),
        ("/api/v1/stakes/mine/", {}, {}),
    ]
    for path, path_parameters, query in reads:
        case = schema[path]["GET"].Case(path_parameters=path_parameters, query=query, headers=headers)
        response = case.call_and_validate()
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        if "results" in body:
            assert body["count"] == 1, (path, body)
    proof = schema["/api/v1/tasks/{id}/rounds/{number}/proof/"]["GET"].Case(
        path_parameters={"id": recruiting_task.pk, "number": 1},
        query={"wallet": user.username},
        headers=headers,
    )
    assert proof.call_and_validate().status_code == 404  # no round yet: documented
