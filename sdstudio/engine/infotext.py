"""The A1111 "parameters" text that every saved PNG carries, written and parsed back.

Format (as A1111, Forge and Fooocus in A1111 mode write it)::

    <prompt, possibly several lines>
    Negative prompt: <negative, possibly several lines>
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model: name

The last line holds `Key: value` pairs joined by ", "; a value holding ",", ":" or a
newline is JSON-quoted. Unknown keys survive a parse/format round trip in their order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

NEGATIVE_PREFIX = "Negative prompt:"

# One `Key: value` pair: a quoted value may contain anything JSON allows.
_PAIR = re.compile(r'\s*([\w \-/+().]+?):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
# The parameters line is the last line that reads like at least three pairs.
_PARAMS_LINE = re.compile(r"^(?:\s*[\w \-/+().]+?:\s*(?:\"(?:\\.|[^\\\"])+\"|[^,]*)(?:,|$)){3,}\s*$")


@dataclass
class Infotext:
    prompt: str = ""
    negative_prompt: str = ""
    params: dict[str, str] = field(default_factory=dict)


def quote(value: object) -> str:
    """Render one value, JSON-quoting it where it would break the `k: v, k: v` line."""
    text = _plain(value)
    if any(c in text for c in ",:\n") or text.startswith('"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            return str(json.loads(text))
        except json.JSONDecodeError:
            return text
    return text


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_infotext(prompt: str, negative_prompt: str, params: dict[str, object]) -> str:
    """Write the A1111 text. Keys whose value is None or "" are left out."""
    lines = [prompt]
    if negative_prompt:
        lines.append(f"{NEGATIVE_PREFIX} {negative_prompt}")
    pairs = [f"{k}: {quote(v)}" for k, v in params.items() if v is not None and v != ""]
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def parse_params_line(line: str) -> dict[str, str]:
    return {m.group(1).strip(): unquote(m.group(2)) for m in _PAIR.finditer(line) if m.group(1)}


def parse_infotext(text: str | None) -> Infotext:
    """Read the A1111 text. Anything unreadable gives what could be read, never an exception."""
    if not text:
        return Infotext()
    lines = text.strip("\n").split("\n")
    params: dict[str, str] = {}
    if lines and _PARAMS_LINE.match(lines[-1]):
        params = parse_params_line(lines.pop())
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if target is prompt_lines and line.startswith(NEGATIVE_PREFIX):
            target = negative_lines
            line = line[len(NEGATIVE_PREFIX) :].lstrip()
        target.append(line)
    return Infotext("\n".join(prompt_lines), "\n".join(negative_lines), params)
