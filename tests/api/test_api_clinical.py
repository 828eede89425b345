"""POST /v1/triage and GET /v1/kb/search return exactly the JSON of `medchat triage --json` and
`medchat kb search --json` under the same settings (the API and the CLI read the same MEDCHAT_*
variables here)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chatbot.cli import app as cli
from tests.api.helpers import assert_error, auth

runner = CliRunner()


def cli_json(args: list[str]):
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("body,args", [
    ({"complaint": "crushing chest pain for 2 hours", "age": 68, "sex": "F", "vitals": {"hr": 120, "spo2": 91}},
     ["crushing chest pain for 2 hours", "--age", "68", "--sex", "F", "--hr", "120", "--spo2", "91"]),
    ({"complaint": "发烧三天，咳嗽", "age": 30, "vitals": {"temp": 38.9}, "comorbidities": ["哮喘"], "onset": "3天"},
     ["发烧三天，咳嗽", "--age", "30", "--temp", "38.9", "--comorbidity", "哮喘", "--onset", "3天"]),
    ({"complaint": "mild sore throat", "pregnant": True, "lang": "zh", "evidence": False},
     ["mild sore throat", "--pregnant", "--lang", "zh", "--no-evidence"]),
])
def test_triage_json_equals_the_cli(client, keys, body, args):
    response = client.post("/v1/triage", headers=auth(keys["nurse"]), json=body)
    assert response.status_code == 200, response.text
    expected = cli_json(["triage", *args, "--json"])
    assert response.json() == expected
    assert set(expected) >= {"acuity", "disposition", "department", "reasons", "red_flags", "evidence", "note"}
    assert bool(expected["evidence"]) == body.get("evidence", True)


def test_triage_emergency_is_level_one_or_two(client, keys):
    result = client.post("/v1/triage", headers=auth(keys["nurse"]),
                         json={"complaint": "crushing chest pain", "age": 60, "vitals": {"spo2": 85}}).json()
    assert result["acuity"] <= 2 and result["disposition"] == "emergency"


def test_impossible_vitals_are_a_bilingual_400_naming_the_field(client, keys):
    error = assert_error(client.post("/v1/triage", headers=auth(keys["nurse"]),
                                     json={"complaint": "dizzy", "vitals": {"spo2": 140}}), 400, "invalid_intake")
    assert error["param"] == "spo2" and "140" in error["message_en"] and "140" in error["message_zh"]
    error = assert_error(client.post("/v1/triage", headers=auth(keys["nurse"]),
                                     json={"complaint": "dizzy", "vitals": {"gcs": 14.5}}), 400, "invalid_intake")
    assert error["param"] == "gcs"
    error = assert_error(client.post("/v1/triage", headers=auth(keys["nurse"]), json={"complaint": "  "}),
                         400, "invalid_intake")
    assert error["param"] == "complaint"


@pytest.mark.parametrize("body,param", [
    ({"age": 40}, "complaint"),
    ({"complaint": "dizzy", "vitals": {"bp": 120}}, "vitals.bp"),
    ({"complaint": "dizzy", "spo2": 95}, "spo2"),
    ({"complaint": "dizzy", "age": "forty"}, "age"),
    ({"complaint": "dizzy", "lang": "fr"}, "lang"),
])
def test_triage_wrong_fields_or_types_are_422(client, keys, body, param):
    error = assert_error(client.post("/v1/triage", headers=auth(keys["nurse"]), json=body), 422, "invalid_request")
    assert error["param"] == param


@pytest.mark.parametrize("query,extra_args,params", [
    ("gout uric acid", ["-k", "3"], {"k": 3}),
    ("慢性胃炎怎么治疗", ["--method", "bm25"], {"method": "bm25"}),
    ("inhaler for wheezing", [], {}),
])
def test_kb_search_json_equals_the_cli(client, keys, query, extra_args, params):
    response = client.get("/v1/kb/search", headers=auth(keys["patient"]), params={"q": query, **params})
    assert response.status_code == 200, response.text
    expected = cli_json(["kb", "search", query, *extra_args, "--json"])
    assert response.json() == expected and len(expected) == params.get("k", len(expected))
    assert expected[0]["doc_id"] in {"gout", "zh_gastritis", "asthma"}


@pytest.mark.parametrize("params,status,code", [
    ({"q": "   "}, 400, "invalid_query"),
    ({}, 422, "invalid_request"),
    ({"q": "gout", "k": 0}, 422, "invalid_request"),
    ({"q": "gout", "k": "many"}, 422, "invalid_request"),
    ({"q": "gout", "method": "telepathy"}, 422, "invalid_request"),
])
def test_kb_search_bad_queries_are_client_errors(client, keys, params, status, code):
    assert_error(client.get("/v1/kb/search", headers=auth(keys["patient"]), params=params), status, code)
