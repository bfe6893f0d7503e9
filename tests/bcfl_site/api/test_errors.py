"""The API does what its schema says: one error shape, documented statuses, required parameters, enums.

One test per case a first user ran into (issue 9), each checking the response and the schema together.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from bcfl_site.siwe.services import SIGNATURE_PATTERN

pytestmark = pytest.mark.django_db

ADDRESS = "0x" + "ab" * 20


@pytest.fixture
def api():
    return APIClient(enforce_csrf_checks=True)


@pytest.fixture
def schema(api):
    return api.get("/api/schema/?format=json").json()


def op(schema, path, method="get"):
    return schema["paths"][path][method]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    return body


def documented(schema, path, method, status: int) -> dict:
    response = op(schema, path, method)["responses"][str(status)]
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


# --- signed out / bad tokens: 401 with WWW-Authenticate -----------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "path"),
    [
        ("get", "/api/v1/identity/mine/", "/api/v1/identity/mine/"),
        ("get", "/api/v1/participations/mine/", "/api/v1/participations/mine/"),
        ("post", "/api/v1/identity/mine/credential/", "/api/v1/identity/mine/credential/"),
    ],
)
def test_signed_out_calls_are_a_documented_401(api, schema, method, url, path):
    response = getattr(api, method)(url, {}, format="json") if method == "post" else api.get(url)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert documented(schema, path, method, 401)["required"] == ["error", "code"]
    assert "WWW-Authenticate" in op(schema, path, method)["responses"]["401"]["headers"]


def test_bogus_token_is_a_401_with_www_authenticate(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api.get("/api/v1/tasks/")
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"


# --- SIWE token endpoint -----------------------------------------------------------------------------


def test_token_endpoint_with_empty_body_answers_error_and_code(api, schema):
    body = assert_error(api.post("/api/v1/auth/siwe/token", {}, format="json"), 400, "invalid")
    assert set(body["fields"]) == {"message", "signature"}
    assert documented(schema, "/api/v1/auth/siwe/token", "post", 400)["required"] == ["error", "code"]


def test_token_schema_refuses_what_the_server_refuses(api, schema):
    request = schema["components"]["schemas"]["SiweTokenRequest"]["properties"]
    assert request["message"]["minLength"] == 1
    assert request["signature"]["pattern"] == SIGNATURE_PATTERN
    body = assert_error(
        api.post("/api/v1/auth/siwe/token", {"message": "", "signature": ""}, format="json"), 400, "invalid"
    )
    assert set(body["fields"]) == {"message", "signature"}


def test_refused_sign_in_is_error_and_code(api):
    challenge = api.post("/api/v1/auth/siwe/nonce").json()
    message = f"hello\nNonce: {challenge['nonce']}"
    response = api.post(
        "/api/v1/auth/siwe/token", {"message": message, "signature": "ab" * 65}, format="json"
    )
    assert assert_error(response, 400, "malformed")["error"].startswith("Malformed sign-in message:")


# --- join -----------------------------------------------------------------------------------------------


def test_join_signed_out_has_the_documented_reason(api, schema, recruiting_task):
    response = api.post(f"/api/v1/tasks/{recruiting_task.pk}/join/", {}, format="json")
    body = assert_error(response, 401, "not_authenticated")
    assert body["reason"] == "not_authenticated" and body["detail"] == body["error"]
    refusal = documented(schema, "/api/v1/tasks/{id}/join/", "post", 401)
    assert (
        "not_authenticated"
        in schema["components"]["schemas"][refusal["properties"]["reason"]["$ref"].rsplit("/")[-1]]["enum"]
    )


def test_join_with_a_non_utf8_body_has_the_documented_reason(api, api_user, recruiting_task):
    _user, token = api_user
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.post(
        f"/api/v1/tasks/{recruiting_task.pk}/join/", b"\xff\xfe{", content_type="application/json"
    )
    body = assert_error(response, 400, "parse_error")
    assert body["reason"] == "parse_error"


def test_join_field_errors_keep_their_reason(api, api_user, recruiting_task):
    _user, token = api_user
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.post(f"/api/v1/tasks/{recruiting_task.pk}/join/", {"signature": "0x12"}, format="json")
    body = assert_error(response, 400, "invalid")
    assert body["reason"] == "bad_signature" and "signature" in body["fields"]


def test_join_form_body_is_a_documented_415(api, schema, api_user, recruiting_task):
    _user, token = api_user
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.post(f"/api/v1/tasks/{recruiting_task.pk}/join/", {"participant": "x"})  # multipart
    assert assert_error(response, 415, "unsupported_media_type")["reason"] == "unsupported_media_type"
    assert list(op(schema, "/api/v1/tasks/{id}/join/", "post")["requestBody"]["content"]) == [
        "application/json"
    ]


# --- query parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wallet", ["", "0x12", "ab" * 20, "0x" + "zz" * 20])
def test_proof_wallet_is_required_and_validated_as_documented(api, schema, recruiting_task, wallet):
    response = api.get(f"/api/v1/tasks/{recruiting_task.pk}/rounds/1/proof/?wallet={wallet}")
    assert "wallet" in assert_error(response, 400, "invalid")["fields"]
    operation = op(schema, "/api/v1/tasks/{id}/rounds/{number}/proof/")
    (param,) = [p for p in operation["parameters"] if p["name"] == "wallet"]
    assert param["required"] is True and param["schema"]["pattern"] == "^0x[0-9a-fA-F]{40}$"
    assert "400" in operation["responses"]


def test_proof_without_wallet_is_a_400(api, recruiting_task):
    response = api.get(f"/api/v1/tasks/{recruiting_task.pk}/rounds/1/proof/")
    assert "wallet" in assert_error(response, 400, "invalid")["fields"]


def test_proof_for_someone_else_is_a_documented_403(api, recruiting_task):
    response = api.get(f"/api/v1/tasks/{recruiting_task.pk}/rounds/1/proof/?wallet={ADDRESS}")
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "last"])
def test_bad_page_is_a_documented_400(api, schema, page):
    response = api.get(f"/api/v1/tasks/?page={page}")
    assert "page" in assert_error(response, 400, "invalid")["fields"]
    operation = op(schema, "/api/v1/tasks/")
    (param,) = [p for p in operation["parameters"] if p["name"] == "page"]
    assert param["schema"] == {"type": "integer", "minimum": 1}
    assert "400" in operation["responses"]


def test_page_past_the_last_is_a_documented_404(api, schema):
    assert_error(api.get("/api/v1/tasks/?page=2"), 404, "not_found")
    assert "404" in op(schema, "/api/v1/tasks/")["responses"]


@pytest.mark.parametrize("query", ["status=bogus", "status=", "model_kind=bogus"])
def test_unknown_enum_values_are_refused(api, query):
    response = api.get(f"/api/v1/tasks/?{query}")
    assert query.split("=")[0] in assert_error(response, 400, "invalid")["fields"]


def test_known_status_filters(api, recruiting_task):
    assert api.get("/api/v1/tasks/?status=recruiting").json()["count"] == 1
    assert api.get("/api/v1/tasks/?status=training").json()["count"] == 0


# --- unknown objects and URLs ---------------------------------------------------------------------------


def test_unknown_task_is_a_json_404(api):
    assert_error(api.get("/api/v1/tasks/999999/"), 404, "not_found")
    assert_error(api.get(f"/api/v1/tasks/{2**70}/"), 404, "not_found")


def test_unmatched_api_url_is_a_json_404_and_other_urls_are_not(api):
    assert_error(api.get("/api/v1/tasks/-1/"), 404, "not_found")
    assert_error(api.get("/api/v1/nothing-here/"), 404, "not_found")
    page = api.get("/no-such-page/")
    assert page.status_code == 404 and "application/json" not in page["Content-Type"]


def test_every_error_status_of_every_operation_uses_a_component(schema):
    """Reusable components only: no operation documents an error without a body or with an inline one."""
    assert schema["components"]["schemas"]["Error"]["required"] == ["error", "code"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert "$ref" in response["content"]["application/json"]["schema"], (path, method, status)
