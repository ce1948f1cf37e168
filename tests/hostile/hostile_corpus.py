"""The hostile corpus: documents, values, templates and journals made to break a runbook
engine, each small to keep in code and made at test time (bombs expand only if the
engine lets them).

Every entry is named; a case's kind is `<family>:<name>`, which the tally counts.
"""

from __future__ import annotations

import json

# -- documents (runbooks, scenarios, inventories, inputs files, alert payloads) -------------------


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Billion laughs: 1 kB of YAML that would expand to width**levels strings."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def alias_by_size() -> str:
    """Few nodes, much text: one 100 kB string referenced 5,000 times (500 MB expanded)."""
    return "big: &big " + "x" * 100_000 + "\nmany: [" + ", ".join(["*big"] * 5000) + "]\n"


def recursive_alias() -> str:
    """A list that contains itself (PyYAML builds the cycle)."""
    return "title: &loop [*loop]\n"


BASES = {
    "runbook": "kind: runbook\nversion: 1\nid: hostile\ntitle: Hostile\ndefaults: {timeout: 30s}\n"
               "detection:\n  - id: probe\n    run: \"true\"\n    expect: exit_code == 0\n",
    "scenario": "kind: scenario\nversion: 1\nid: hostile\ntitle: Hostile\nrunbook: target.yaml\n",
    "inventory": "kind: inventory\nversion: 1\n",
    "inputs": "host: db-1\n",
    "alert": '{"status": "firing", "labels": {"alertname": "DiskUsageHigh", "instance": "db-1"}}\n',
}


def documents() -> dict[str, bytes]:
    """Whole hostile documents, the same for every kind of file."""
    deep_block = "".join("  " * i + "a:\n" for i in range(5000)) + "  " * 5000 + "b\n"
    return {
        "alias-bomb": alias_bomb().encode(),
        "alias-size": alias_by_size().encode(),
        "recursive-alias": recursive_alias().encode(),
        "deep-flow": b"[" * 100_000,
        "deep-json": ("[" * 500 + "]" * 500).encode(),
        "deep-block": deep_block.encode(),
        "huge-int": b"version: 1" + b"7" * 5000 + b"\n",
        "huge-float": b"version: 1e99999\n",
        "nul-byte": b"kind: runbook\x00\nversion: 1\n",
        "invalid-utf8": b"kind: runbook\nid: \xff\xfe\xc3\x28\n",
        "utf16": "kind: runbook\nversion: 1\n".encode("utf-16"),
        "huge-line": b"title: " + b"x" * (3 << 19) + b"\n",  # 1.5 MiB: past the loader's 1 MiB
        "many-documents": b"---\n" * 20_000,
        "many-keys": "".join(f"k{i}: {i}\n" for i in range(90_000)).encode(),  # 1.1 MiB
        "python-tag": b"kind: !!python/object/apply:os.system ['touch PWNED']\n",
        "control-chars": b"kind: runbook\nid: \x1b[2J\x1b]0;pwned\x07\n",
        "empty": b"",
        "scalar": b"just a string\n",
        "list": b"- a\n- b\n",
        "null": b"null\n",
        "bom-crlf": b"\xef\xbb\xbfkind: runbook\r\nversion: 1\r\n",
    }


def in_kind(kind: str, name: str, body: bytes) -> bytes:
    """A hostile document given a kind's first lines, so that a kind-aware loader reads on
    into it (whole-document bombs stay whole: they are not YAML that can be prefixed)."""
    if name in ("deep-flow", "deep-json", "invalid-utf8", "utf16", "nul-byte", "empty", "bom-crlf", "many-documents"):
        return body
    if kind == "alert":
        return body
    head = BASES[kind].encode()
    if name in ("huge-int", "huge-float"):
        return head.replace(b"version: 1\n", body) if b"version: 1\n" in head else head + body
    return head + b"hostile_extra:\n" + b"".join(b"  " + line + b"\n" for line in body.splitlines())


def alert_payloads() -> dict[str, str]:
    """Alertmanager payloads that are valid JSON but hostile."""
    alert = {"status": "firing", "labels": {"alertname": "DiskUsageHigh", "instance": "db-1"},
             "startsAt": "2026-03-01T10:00:00Z"}
    return {
        "huge-int-label": '{"alerts": [{"labels": {"instance": ' + "9" * 5000 + "}}]}",
        "huge-exponent": '{"alerts": [{"labels": {"instance": 1e99999}}]}',
        "nan": '{"alerts": [{"labels": {"instance": NaN}}]}',
        "deep-labels": '{"alerts": [{"labels": {"instance": ' + "[" * 500 + "]" * 500 + "}}]}",
        "not-an-object": '["a", "b"]',
        "alerts-not-a-list": '{"alerts": "x"}',
        "labels-not-a-mapping": '{"alerts": [{"labels": [1, 2]}]}',
        "no-alerts": '{"alerts": []}',
        "resolved": json.dumps({"status": "resolved", "alerts": [{**alert, "status": "resolved"}]}),
        "many-alerts": json.dumps({"alerts": [alert] * 20_000}),
        "bad-starts-at": json.dumps({"alerts": [{**alert, "startsAt": "yesterday-ish" * 1000}]}),
        "injection-label": json.dumps({"alerts": [{**alert, "labels": {"alertname": "x",
                                                                       "instance": "db-1; touch PWNED"}}]}),
        "surrogate": '{"alerts": [{"labels": {"instance": "\\udc00"}}]}',
        "nul-label": '{"alerts": [{"labels": {"instance": "a\\u0000b"}}]}',
    }


# -- values an operator types, an alert carries, a command prints ----------------------------------

# Each would create PWNED in the working directory if it ran as shell code.
INJECTIONS = {
    "dollar-paren": "$(touch PWNED)",
    "backticks": "`touch PWNED`",
    "single-quote": "'; touch PWNED; '",
    "double-quote": '"; touch PWNED; "',
    "escaped-quote": '\\"; touch PWNED; \\"',
    "newline": "x\ntouch PWNED",
    "heredoc-end": "x\nEOF\ntouch PWNED\nEOF",
    "ansi-c": "$'\\x27'; touch PWNED",
    "nested": "'\"$(touch PWNED)\"'",
    "and": "x && touch PWNED",
    "pipe": "x | touch PWNED",
    "brace": "${PATH:+$(touch PWNED)}",
}

# Where a template sits in `run:` (and around it): the contexts E4 names, and a few more.
CONTEXTS = {
    "bare": "echo {{ V }}",
    "single-quotes": "echo '{{ V }}'",
    "double-quotes": 'echo "{{ V }}"',
    "heredoc": "cat <<EOF\n{{ V }}\nEOF",
    "quoted-heredoc": "cat <<'EOF'\n{{ V }}\nEOF",
    "sh-c-double": 'sh -c "echo {{ V }}"',
    "sh-c-single": "sh -c 'echo {{ V }}'",
    "backticks": "echo `echo {{ V }}`",
    "dollar-paren": 'echo "$(echo {{ V }})"',
    "assignment": "X={{ V }}; echo \"$X\"",
    "eval": "eval echo {{ V }}",
}

# Secrets as people choose them: quotes, shell and URL specials, unicode, one character.
SECRETS = {
    "quotes": "it's \"q\" $x `y`",
    "unicode": "pässwörd✓🔑",
    "one-char": "¤",
    "backslash-newline": "a\\b\nc\td",
    "url-specials": "&key=va lue/%2F?#",
    "html": "</script><b>&amp;",
    "json-ish": '{"k": "v"}',
    "digits": "0123456789",
    "dash": "--secret-flag=1",
}

# Templates that would take unbounded time or memory, or reach out of the sandbox.
EXPRESSIONS = {
    "pow": "9**9**9",
    "pow-paren": "9**(9**9)",
    "repeat": "'a' * 10**10",
    "repeat-list": "([1] * 10**9) | length",
    "percent-width": "'%999999999s' % 'x'",
    "format-width": "'{:>999999999}'.format('x')",
    "format-nested": "'{0:{1}}'.format('x', 10**9)",
    "center": "'x' | center(10**9)",
    "indent": "('x\\n' * 3) | indent(10**9)",
    "range": "range(10**9) | list | length",
    "lipsum": "lipsum(10**6) | length",
    "replace-grow": "('a' * 10**4) | replace('a', 'a' * 10**5) | length",
    "int-to-str": "(10**100000) | string | length",
    "sum-range": "range(10**10) | sum",
    "mro": "''.__class__.__mro__[1].__subclasses__()",
    "globals": "cycler.__init__.__globals__",
}
STATEMENTS = {
    "loop": "{% for i in range(10**9) %}{% endfor %}",
    "macro-recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
}
TEMPLATES = {**{name: "{{ " + text + " }}" for name, text in EXPRESSIONS.items()}, **STATEMENTS}

# Backtracking regexes and the output that makes them explode.
REGEXES = {
    "nested-plus": ("(a+)+$", "a" * 40 + "b"),
    "alternation": ("(a|a)*c", "a" * 40),
    "overlap": ("(x+x+)+y", "x" * 40),
    "email-ish": (r"^([a-zA-Z0-9]+\.?)+@", "a" * 40 + "!"),
}
