#!/usr/bin/env python3
"""Mock model server for telepty's real-agent check (scripts/agents-check.sh).

One port on 127.0.0.1 answers the three APIs the agent CLIs speak:

  * Anthropic Messages (Claude Code): POST /v1/messages (SSE when "stream": true),
    POST /v1/messages/count_tokens, GET /v1/models
  * OpenAI Responses (Codex, wire_api = "responses"): POST /v1/responses (SSE), GET /v1/models
  * Gemini (Gemini CLI): POST /v1beta/models/M:streamGenerateContent?alt=sse,
    :generateContent, :countTokens, :embedContent, GET /v1beta/models

Every other path gets a minimal 200 JSON answer (telemetry, feature flags, ...).

The reply text is "ok: <first 40 chars of the user prompt>"; a prompt containing SLOW is answered
after 3 s. Each *main-turn* user prompt is appended to the JSONL log given with --log as
{"agent", "prompt", "t"} -- the ground truth the check counts submitted / merged / lost / doubled
prompts from. Side calls the CLIs make with the same conversation (Claude Code's title/topic
calls, Gemini's next-speaker / routing / loop checks) are answered but logged with "side": true so
a prompt is never counted twice because of them.

Stdlib only. Usage: mock-model.py --port 0 --log prompts.jsonl [--port-file F] [--debug-log F]
"""

import argparse
import gzip
import json
import os
import re
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

SLOW_SECONDS = 3.0
LOG_LOCK = threading.Lock()
ARGS = None


def now():
    return time.time()


def append_jsonl(path, obj):
    if not path:
        return
    line = json.dumps(obj, ensure_ascii=False) + "\n"
    with LOG_LOCK:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


def reply_text(prompt):
    # Newlines would make the reply span rows; the checker waits for the reply on the screen.
    head = (prompt or "")[:40].replace("\r", " ").replace("\n", " ")
    return "ok: " + head


# ---------------------------------------------------------------- prompt extraction

# Text blocks the CLIs add to a user turn that are not what the person typed.
NOISE_PREFIXES = (
    "<system-reminder>",
    "<session_context>",
    "<environment_context>",
    "<user_instructions>",
    "<command-name>",
    "<local-command-stdout>",
    "# AGENTS.md instructions",
    "<permissions instructions>",
    "<user_shell_command>",
    "Caveat:",
)


def is_noise(text):
    t = text.lstrip()
    return any(t.startswith(p) for p in NOISE_PREFIXES)


def anthropic_prompt(body):
    """The newest user text of a Messages request (ignoring tool results and reminders)."""
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content if not is_noise(content) else None
        texts = []
        for block in content or []:
            if block.get("type") == "text" and not is_noise(block.get("text", "")):
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                return None  # a tool round-trip, not a new prompt
        if texts:
            return "\n".join(texts)
        return None
    return None


def responses_prompt(body):
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    for item in reversed(inp or []):
        itype = item.get("type", "message")
        if itype in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            return None
        if itype != "message" or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            if not is_noise(content):
                return content
            continue
        texts = [
            c.get("text", "")
            for c in content or []
            if c.get("type") in ("input_text", "text") and not is_noise(c.get("text", ""))
        ]
        if texts:
            return "\n".join(texts)
    return None


def gemini_prompt(body):
    contents = body.get("contents") or []
    if not contents:
        return None
    last = contents[-1]
    if last.get("role", "user") != "user":
        return None
    texts = []
    for part in last.get("parts") or []:
        if "functionResponse" in part:
            return None
        if "text" in part and not is_noise(part["text"]):
            texts.append(part["text"])
    return "\n".join(texts) if texts else None


# ---------------------------------------------------------------- classification of side calls


def anthropic_is_main(body):
    """Claude Code's main loop sends tools; its side calls (title, topic, quota) send none."""
    if body.get("max_tokens", 0) == 1:
        return False
    return bool(body.get("tools"))


def gemini_is_main(path, body):
    """Gemini CLI's turns stream and carry the tool declarations; its checks (next speaker,
    routing, loop detection, summaries) are generateContent calls with a JSON schema."""
    gc = body.get("generationConfig") or {}
    if gc.get("responseMimeType") == "application/json" or "responseJsonSchema" in gc or "responseSchema" in gc:
        return False
    return ":streamGenerateContent" in path


def fill_schema(schema, name=""):
    """A minimal value satisfying a JSON schema, steering the known Gemini CLI checks to
    'the user speaks next', 'use the flash model', 'no loop'."""
    if not isinstance(schema, dict):
        return "ok"
    if "enum" in schema and schema["enum"]:
        enum = schema["enum"]
        for pref in ("user", "flash", "simple", "false"):
            for e in enum:
                if isinstance(e, str) and pref in e.lower():
                    return e
        return enum[0]
    t = schema.get("type")
    if isinstance(t, list):
        t = t[0]
    t = (t or "").lower()
    if t == "object" or "properties" in schema:
        out = {}
        for key, sub in (schema.get("properties") or {}).items():
            out[key] = fill_schema(sub, key)
        return out
    if t == "array":
        return []
    if t in ("integer", "number"):
        return 0
    if t == "boolean":
        return False
    lname = name.lower()
    if "speaker" in lname:
        return "user"
    if "model" in lname:
        return "flash"
    return "ok"


# ---------------------------------------------------------------- handler


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-model/1"

    def log_message(self, fmt, *args):  # quiet; the debug log says what happened
        pass

    # -- helpers
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = b""
        if n:
            raw = self.rfile.read(n)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(chunks)
        enc = (self.headers.get("Content-Encoding") or "").lower()
        if enc == "gzip":
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            raw = zlib.decompress(raw)
        elif enc == "zstd":
            try:
                import zstandard  # type: ignore

                raw = zstandard.ZstdDecompressor().decompress(raw, max_output_size=64 << 20)
            except Exception:
                pass
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except Exception:
            return {"_raw": raw[:2000].decode("utf-8", "replace")}

    def send_json(self, obj, status=200):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, event, data):
        out = ""
        if event:
            out += "event: %s\n" % event
        out += "data: %s\n\n" % json.dumps(data)
        self.wfile.write(out.encode())
        self.wfile.flush()

    def debug(self, **kw):
        if ARGS.debug_log:
            kw.setdefault("t", now())
            append_jsonl(ARGS.debug_log, kw)

    def record(self, agent, prompt, main, path):
        if prompt is None:
            return
        entry = {"agent": agent, "prompt": prompt, "t": now()}
        if not main:
            entry["side"] = True
            entry["path"] = path
        append_jsonl(ARGS.log, entry)

    # -- dispatch
    def do_GET(self):
        path = urlparse(self.path).path
        self.debug(method="GET", path=self.path, ua=self.headers.get("User-Agent"))
        if path.rstrip("/").endswith("/models") and "v1beta" in path:
            return self.send_json(
                {
                    "models": [
                        {
                            "name": "models/" + m,
                            "displayName": m,
                            "supportedGenerationMethods": ["generateContent", "countTokens"],
                            "inputTokenLimit": 1048576,
                            "outputTokenLimit": 65536,
                        }
                        for m in ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")
                    ]
                }
            )
        if path.rstrip("/").endswith("/models"):
            models = ["mock-model", "gpt-5-codex", "gpt-5", "claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"]
            return self.send_json(
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "type": "model", "display_name": m, "created": 0, "created_at": "2025-01-01T00:00:00Z", "owned_by": "mock"}
                        for m in models
                    ],
                    "models": [],
                    "has_more": False,
                }
            )
        if path in ("/health", "/healthz", "/"):
            return self.send_json({"ok": True})
        return self.send_json({})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        path = urlparse(self.path).path
        body = self.read_body()
        self.debug(
            method="POST",
            path=self.path,
            ua=self.headers.get("User-Agent"),
            enc=self.headers.get("Content-Encoding"),
            body=json.dumps(body)[: ARGS.debug_chars],
        )
        try:
            if path.endswith("/messages/count_tokens"):
                return self.send_json({"input_tokens": 42})
            if path.endswith("/messages"):
                return self.anthropic(path, body)
            if path.endswith("/responses"):
                return self.openai_responses(path, body)
            if ":streamGenerateContent" in path or ":generateContent" in path:
                return self.gemini(path, body)
            if ":countTokens" in path:
                return self.send_json({"totalTokens": 42})
            if ":embedContent" in path or ":batchEmbedContents" in path:
                return self.send_json({"embedding": {"values": [0.0] * 8}, "embeddings": [{"values": [0.0] * 8}]})
            if path.endswith("/chat/completions"):
                return self.chat(path, body)
            return self.send_json({})
        except (BrokenPipeError, ConnectionResetError):
            return

    # -- Anthropic Messages
    def anthropic(self, path, body):
        prompt = anthropic_prompt(body)
        main = anthropic_is_main(body)
        self.record("claude", prompt, main, path)
        if prompt and "SLOW" in prompt:
            time.sleep(SLOW_SECONDS)
        text = reply_text(prompt) if prompt is not None else "ok"
        model = body.get("model", "mock-model")
        mid = "msg_" + uuid.uuid4().hex[:24]
        usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not body.get("stream"):
            return self.send_json(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                }
            )
        self.start_sse()
        self.sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": dict(usage, output_tokens=1),
                },
            },
        )
        self.sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        self.sse("ping", {"type": "ping"})
        self.sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
        self.sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        self.sse(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}},
        )
        self.sse("message_stop", {"type": "message_stop"})

    # -- OpenAI Responses
    def openai_responses(self, path, body):
        prompt = responses_prompt(body)
        # Codex's turns carry its tools; its title call carries none (and a JSON "text" format).
        self.record("codex", prompt, bool(body.get("tools")), path)
        if prompt and "SLOW" in prompt:
            time.sleep(SLOW_SECONDS)
        text = reply_text(prompt) if prompt is not None else "ok"
        rid = "resp_" + uuid.uuid4().hex[:24]
        iid = "msg_" + uuid.uuid4().hex[:24]
        model = body.get("model", "mock-model")
        item = {
            "type": "message",
            "id": iid,
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        }
        resp = {"id": rid, "object": "response", "created_at": int(now()), "status": "in_progress", "model": model, "output": []}
        if not body.get("stream", True):
            resp.update(status="completed", output=[item], usage=usage)
            return self.send_json(resp)
        self.start_sse()
        seq = iter(range(1000))
        self.sse("response.created", {"type": "response.created", "sequence_number": next(seq), "response": resp})
        self.sse("response.in_progress", {"type": "response.in_progress", "sequence_number": next(seq), "response": resp})
        added = dict(item, status="in_progress", content=[])
        self.sse("response.output_item.added", {"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0, "item": added})
        self.sse(
            "response.content_part.added",
            {"type": "response.content_part.added", "sequence_number": next(seq), "item_id": iid, "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
        )
        self.sse(
            "response.output_text.delta",
            {"type": "response.output_text.delta", "sequence_number": next(seq), "item_id": iid, "output_index": 0, "content_index": 0, "delta": text},
        )
        self.sse(
            "response.output_text.done",
            {"type": "response.output_text.done", "sequence_number": next(seq), "item_id": iid, "output_index": 0, "content_index": 0, "text": text},
        )
        self.sse(
            "response.content_part.done",
            {"type": "response.content_part.done", "sequence_number": next(seq), "item_id": iid, "output_index": 0, "content_index": 0, "part": item["content"][0]},
        )
        self.sse("response.output_item.done", {"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 0, "item": item})
        done = dict(resp, status="completed", output=[item], usage=usage)
        self.sse("response.completed", {"type": "response.completed", "sequence_number": next(seq), "response": done})

    # -- OpenAI chat completions (not used by the check; cheap to have)
    def chat(self, path, body):
        msgs = [m for m in body.get("messages") or [] if m.get("role") == "user"]
        prompt = msgs[-1].get("content") if msgs else None
        if isinstance(prompt, list):
            prompt = "\n".join(c.get("text", "") for c in prompt)
        self.record("chat", prompt, True, path)
        text = reply_text(prompt)
        if not body.get("stream"):
            return self.send_json({"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
        self.start_sse()
        self.sse(None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]})
        self.sse(None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.wfile.write(b"data: [DONE]\n\n")

    # -- Gemini
    def gemini(self, path, body):
        prompt = gemini_prompt(body)
        main = gemini_is_main(path, body)
        self.record("gemini", prompt, main, path)
        gc = body.get("generationConfig") or {}
        schema = gc.get("responseJsonSchema") or gc.get("responseSchema")
        if schema or gc.get("responseMimeType") == "application/json":
            text = json.dumps(fill_schema(schema or {"type": "object"}))
        else:
            if main and prompt and "SLOW" in prompt:
                time.sleep(SLOW_SECONDS)
            text = reply_text(prompt) if prompt is not None else "ok"
        chunk = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
            "modelVersion": re.sub(r"^.*models/([^:]+):.*$", r"\1", path),
        }
        if ":generateContent" in path:
            return self.send_json(chunk)
        self.start_sse()
        self.sse(None, chunk)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--log", required=True, help="JSONL log of user prompts")
    ap.add_argument("--debug-log", help="JSONL log of every request (path, body head)")
    ap.add_argument("--debug-chars", type=int, default=4000)
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if ARGS.port_file:
        tmp = ARGS.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, ARGS.port_file)
    print("mock-model listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
