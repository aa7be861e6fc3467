"""Hooks of scripts/schemathesis.sh.

`POST /api/sessions/{id}/wait` is a long poll: a valid request may hold for up to
`timeout_ms` (at most 300 s). The fuzzer's large values are capped at 2 s before they are
sent, so one case cannot hold the run for minutes; the value stays valid, and the bound
itself is tested (tests/it/screen.rs)."""

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != "/api/sessions/{id}/wait" or not isinstance(case.body, dict):
        return
    t = case.body.get("timeout_ms")
    if isinstance(t, bool):
        return
    if isinstance(t, (int, float)) and t > 2000:
        case.body["timeout_ms"] = 2000
    elif isinstance(t, str) and t.strip().lstrip("+").isdigit() and int(t.strip().lstrip("+")) > 2000:
        case.body["timeout_ms"] = "2000"
    elif t is None:
        case.body["timeout_ms"] = 2000
