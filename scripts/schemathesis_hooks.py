"""Hooks of scripts/schemathesis.sh.

`POST /api/sessions/{id}/wait` is a long poll: a valid request may hold for up to
`timeout_ms` (at most 300 s). The fuzzer's large values are capped at 2 s before they are
sent, so one case cannot hold the run for minutes; the value stays valid, and the bound
itself is tested (tests/it/screen.rs)."""

import schemathesis


MAX_COUNT = 999_999_999_999_999  # wire::schema::MAX_COUNT


@schemathesis.hook
def before_call(context, case, kwargs):
    """Only valid values are capped: an invalid one (a negative case) is sent as generated."""
    if case.operation.path != "/api/sessions/{id}/wait" or not isinstance(case.body, dict):
        return
    t = case.body.get("timeout_ms")
    if isinstance(t, bool):
        return
    if isinstance(t, int) and 2000 < t <= MAX_COUNT:
        case.body["timeout_ms"] = 2000
    elif isinstance(t, float) and t.is_integer() and 2000 < t <= MAX_COUNT:
        case.body["timeout_ms"] = 2000
    elif isinstance(t, str):
        digits = t.strip().lstrip("+")
        if digits.isascii() and digits.isdigit() and len(digits) <= 15 and int(digits) > 2000:
            case.body["timeout_ms"] = "2000"
    elif t is None:
        case.body["timeout_ms"] = 2000
