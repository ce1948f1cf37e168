"""The OpenAPI 3.1 document of the service's HTTP interface, served at /openapi.json. Kept
beside the routes it describes (app.py, api.py, intake.py); tests/integration/
test_service_api.py checks that every route the app serves is described here."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
_ERROR = {"description": "Refused, with the reason",
          "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
_STEP = {"name": "step", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": kind}}


def _ok(description: str, schema: dict[str, Any] | None = None, media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or {"type": "object"}}}}


def _get(summary: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None, *,
         secured: bool = True) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": {"200": ok}}
    if secured:
        operation["responses"].update({"401": _ERROR, "503": _ERROR})
    else:
        operation["security"] = []
    return {"get": operation}


def _paths() -> dict[str, Any]:
    run = {"$ref": "#/components/schemas/Run"}
    runs = {"type": "object", "properties": {"runs": {"type": "array", "items": run}}}
    return {
        "/api/runs": _get("Runs, newest first", _ok("The runs", runs), [
            _query("status", "queued, running, waiting, finished or cancelled"),
            _query("runbook", "Only runs of this runbook id"),
            _query("mode", "live, dry-run or drill"),
            _query("limit", "At most this many (1-1000)", "integer")]),
        "/api/runs/{run_id}": _get("One run, with its questions", _ok("The run", run), [_ID]),
        "/api/runs/{run_id}/events": _get(
            "The run's journal records as Server-Sent Events (id: seq, event: the record's event, data: the "
            "journal line), live until the run ends; resumes after Last-Event-ID",
            _ok("An event stream", {"type": "string"}, "text/event-stream"),
            [_ID, _query("after", "Start after this seq", "integer")]),
        "/api/questions": _get("Questions runs wait on", _ok("The questions"), [
            _query("run", "Only this run's"), _query("status", "open (default), answered, closed, or all")]),
        "/api/runs/{run_id}/questions/{step}/answer": {"post": {
            "summary": "Answer the question a run waits on at a step, as the token's person (an approval: "
                       "{\"answer\": {\"approved\": true, \"reason\": \"...\"}})",
            "parameters": [_ID, _STEP],
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "type": "object", "required": ["answer"], "properties": {"answer": {"type": "object"}}}}}},
            "responses": {"200": _ok("Answered: who, and the run's status now"), "400": _ERROR, "401": _ERROR,
                          "403": _ERROR, "404": _ERROR, "409": _ERROR, "503": _ERROR}}},
        "/api/alerts": _get("Alerts received, latest first", _ok("The alerts"), [
            _query("route", "Only those this route matched"), _query("unrouted", "1: only those no route matched")]),
        "/hooks/{source}": {"post": {
            "summary": "An alert notification from a sender (Alertmanager, Grafana, PagerDuty, generic JSON), "
                       "authenticated as the source's config says", "security": [],
            "parameters": [{"name": "source", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "object"}}}},
            "responses": {"200": _ok("A duplicate of a delivery already taken"), "202": _ok("Stored; what became of "
                          "each alert"), "400": _ERROR, "401": _ERROR, "404": _ERROR, "413": _ERROR, "503": _ERROR}}},
        "/slack/interactions": {"post": {
            "summary": "Slack's interactivity requests (approval buttons), signed with the app's signing secret",
            "security": [], "responses": {"200": _ok("The message's new text"), "401": _ERROR, "403": _ERROR}}},
        "/healthz": _get("Liveness", _ok("The process answers"), secured=False),
        "/readyz": _get("Readiness: the store answers and the process is not draining", _ok("Ready"), secured=False),
        "/metrics": _get("Prometheus metrics", _ok("Metrics", {"type": "string"}, "text/plain"), secured=False),
        "/openapi.json": _get("This document", _ok("OpenAPI 3.1"), secured=False),
    }


def document(version: str) -> dict[str, Any]:
    """The OpenAPI document of this engine's service."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "runbook serve", "version": version,
                 "description": "Alerts in, runs, their journals, and people's answers. API tokens: "
                                "`runbook token create NAME -c serve.yaml`."},
        "security": [{"token": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                          "description": "An API token bound to a person of the serve config"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Run": {"type": "object", "required": ["id", "runbook", "status"], "properties": {
                    "id": {"type": "string"}, "runbook": {"type": "string"}, "status": {"type": "string"},
                    "mode": {"type": "string", "enum": ["live", "dry-run", "drill"]},
                    "outcome": {"type": ["string", "null"]}, "reason": {"type": ["string", "null"]},
                    "inputs": {"type": "object"}, "created_at": {"type": "number"},
                    "questions": {"type": "array", "items": {"type": "object"}}}},
            },
        },
    }
