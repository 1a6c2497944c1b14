"""The A1111 "parameters" text that every saved PNG carries, written and parsed back.

Format (as A1111, Forge and Fooocus in A1111 mode write it)::

    <prompt, possibly several lines>
    Negative prompt: <negative, possibly several lines>
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model: name

The parameters line holds `Key: value` pairs joined by ", "; a value holding ",", ":" or a
newline is JSON-quoted. Unknown keys survive a parse/format round trip in their order.

Reading follows A1111's `parse_generation_parameters` (modules/infotext_utils.py), plus what
files in the wild hold and A1111 trips on:

- the parameters line is the last non-blank line with at least three pairs; lines after it
  are accepted when they read as `Key: value` blocks (old Dynamic Prompts writes multi-line
  `Template:` and `Negative Template:` there) and become parameters, never prompt text;
- a value may be a JSON object or array holding ", " and ":" (Civitai's `Hashes: {...}`,
  `Civitai resources: [...]`); it is kept as its raw text;
- every line from the first one starting with "Negative prompt:" on is the negative prompt, so
  a text whose first line starts with it has an empty prompt (as in A1111);
- a `Prompt` or `Negative prompt` pair on the parameters line overrides the prompt lines (A1111
  assigns the pairs after the prompt, so it does the same); `format_infotext` uses that to write
  prompts the plain layout cannot carry;
- CRLF line ends read as LF; prompt, negative prompt, keys and values are read without their
  surrounding whitespace.

The scanner is hand-written and runs in time linear in the text's length on any input: each
character is looked at a bounded number of times (its regexes are character classes with
possessive quantifiers, which cannot backtrack). Parsing never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

NEGATIVE_PREFIX = "Negative prompt:"
PROMPT_KEY = "Prompt"
NEGATIVE_KEY = "Negative prompt"

# A key starts with a word character; A1111 also writes spaces, "-" and "/", others "+().".
# Possessive quantifiers (*+) never give back what they matched, so nothing backtracks.
_KEY = re.compile(r"\w[\w \-/+().]*+")
# A JSON string token. Its two alternatives start differently and both are possessive, so it
# scans straight to the closing quote. A value's opening quote follows ":" or whitespace, never
# a backslash, so a scan from one stops at or before the next value's: scans never overlap.
_STRING = r'"(?:[^"\\]++|\\.)*+"'
# Whitespace, a key, ":", whitespace, then the value: group 2 a quoted one (when nothing but
# whitespace follows it before "," or the end), group 3 one neither quoted nor JSON, up to the
# next ",". With neither group the match ends where another quoted or a JSON value starts.
_PAIR = re.compile(
    r"\s*+(\w[\w \-/+().]*+):\s*+(?:(" + _STRING + r')\s*+(?=,|\Z)|(?!["\[{])([^,]*+))?',
    re.DOTALL,
)
_STRING_AT = re.compile(_STRING, re.DOTALL)
_JSON_MARK = re.compile(r'[\[\]{}"]')
_CLOSER = {"[": "]", "{": "}"}
# Deeper nesting is taken for no JSON at all (real values nest two or three levels), which
# also ends a hostile "[[[[..." scan early.
_MAX_DEPTH = 64
# A1111 takes a line as the parameters line from three pairs on.
_MIN_PAIRS = 3


@dataclass
class Infotext:
    prompt: str = ""
    negative_prompt: str = ""
    params: dict[str, str] = field(default_factory=dict)


def quote(value: object) -> str:
    """Render one value, JSON-quoting it where the scanner would not read it back as it is."""
    text = _plain(value)
    if _needs_quotes(text):
        return _json(text)
    return text


def unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return _decode(text)
    return text


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _needs_quotes(text: str) -> bool:
    # ", " ends a value and "\n" the line; ":" is quoted as A1111 does; a leading quote or
    # bracket would be read as a quoted or JSON value; outer whitespace would be stripped.
    return (
        text != text.strip() or text.startswith(('"', "[", "{")) or any(c in text for c in ",:\n\r")
    )


def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _decode(token: str) -> str:
    """A JSON string token's text; the token itself when it is not valid JSON."""
    try:
        value = json.loads(token, strict=False)
    except ValueError:
        return token
    return value if isinstance(value, str) else token


# --- the scanner ----------------------------------------------------------------------------


def _bracket_end(line: str, start: int) -> int:
    """Index just past the bracket closing the JSON object/array at `start`, or -1."""
    closers: list[str] = []
    j = start
    while True:
        m = _JSON_MARK.search(line, j)
        if m is None:
            return -1
        ch, j = m.group(), m.end()
        if ch == '"':
            string = _STRING_AT.match(line, m.start())
            if string is None:
                return -1
            j = string.end()
        elif ch in _CLOSER:
            if len(closers) == _MAX_DEPTH:
                return -1
            closers.append(_CLOSER[ch])
        elif not closers or closers.pop() != ch:
            return -1
        if not closers:
            return j


def _value_stop(line: str, i: int) -> int:
    comma = line.find(",", i)
    return len(line) if comma < 0 else comma


def _pairs(line: str) -> Iterator[tuple[str, str]]:
    """The `Key: value` pairs of one line, in order; segments that are no pair are skipped."""
    n = len(line)
    i = 0
    # One failed JSON scan may run to the line's end; after it JSON is no longer tried on this
    # line, so a line of many unclosed "[" stays linear.
    json_ok = True
    while i < n:
        pair = _PAIR.match(line, i)
        if pair is None:
            i = _value_stop(line, i) + 1
            continue
        key, quoted, plain = pair.groups()
        key = key.rstrip()
        i = pair.end()
        if quoted is not None:
            yield key, _decode(quoted)
        elif plain is not None:
            yield key, plain.strip()
        else:
            # JSON, or a quoted value with more than whitespace after it; it starts at i.
            end = -1
            if json_ok and line[i] != '"':
                end = _bracket_end(line, i)
                json_ok = end >= 0
            stop = _value_stop(line, max(i, end))
            yield key, line[i:stop].strip()
            i = stop
        i += 1


def _is_params_line(line: str) -> bool:
    if line.count(":") < 2:  # cheap: most prompt lines end here
        return False
    found = []
    for pair in _pairs(line):
        found.append(pair[0])
        if len(found) == _MIN_PAIRS:
            return True
    # Two pairs led by `Prompt` are how format_infotext escapes a prompt with no parameters.
    return len(found) == 2 and found[0] == PROMPT_KEY


def _line_key(line: str) -> tuple[str, str] | None:
    """(key, rest) when `line` starts with `Key:`, as the lines after the parameters line do."""
    key = _KEY.match(line)
    if key is None or key.end() >= len(line) or line[key.end()] != ":":
        return None
    return key.group().rstrip(), line[key.end() + 1 :]


def _find_params_line(lines: list[str], end: int) -> int | None:
    """Index of the parameters line among lines[:end]: the last line of enough pairs that is
    the last line or followed by `Key: value` lines."""
    for at in range(end - 1, -1, -1):
        if _is_params_line(lines[at]) and (at == end - 1 or _line_key(lines[at + 1])):
            return at
    return None


def _block_params(lines: list[str]) -> dict[str, str]:
    """`Key: value` lines after the parameters line; a line with no key continues the value
    above it (Dynamic Prompts' templates keep their newlines)."""
    params: dict[str, str] = {}
    key = ""
    parts: list[str] = []
    for line in lines:
        head = _line_key(line)
        if head is None:
            parts.append(line)
            continue
        if parts:
            params[key] = "\n".join(parts).strip()
        key, rest = head
        parts = [rest]
    if parts:
        params[key] = "\n".join(parts).strip()
    return params


def _split_prompt(lines: list[str]) -> tuple[str, str]:
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines:
        stripped = line.lstrip()
        # As A1111: every such line drops its prefix, and from the first one on it is negative.
        if stripped.startswith(NEGATIVE_PREFIX):
            target = negative
            line = stripped[len(NEGATIVE_PREFIX) :]
        target.append(line)
    return "\n".join(prompt).strip(), "\n".join(negative).strip()


# --- public API -----------------------------------------------------------------------------


def parse_params_line(line: str) -> dict[str, str]:
    """The pairs of one parameters line; a key given twice keeps its last value."""
    return dict(_pairs(line))


def parse_infotext(text: str | None) -> Infotext:
    """Read the A1111 text. Anything unreadable gives what could be read, never an exception."""
    if not isinstance(text, str) or not text:
        return Infotext()
    lines = text.replace("\r\n", "\n").split("\n")
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    at = _find_params_line(lines, end)
    params: dict[str, str] = {}
    if at is not None:
        params = parse_params_line(lines[at])
        params.update(_block_params(lines[at + 1 : end]))
        end = at
    prompt, negative = _split_prompt(lines[:end])
    prompt = params.pop(PROMPT_KEY, prompt)
    negative = params.pop(NEGATIVE_KEY, negative)
    return Infotext(prompt, negative, params)


def format_infotext(prompt: str, negative_prompt: str, params: dict[str, object]) -> str:
    """Write the A1111 text. Keys whose value is None or renders as "" are left out.

    The text always parses back to the same prompt, negative prompt and pairs (in order).
    Where the plain layout would not (a prompt line starting with "Negative prompt:", a line
    of the prompt that reads as parameters, whitespace at either end, CRLF, fewer than three
    pairs), the parameters line also carries the prompt and negative prompt as JSON-quoted
    `Prompt` and `Negative prompt` pairs, which A1111 reads too once the line has three pairs
    (with no other pair it has two, and only this parser reads it). The plain prompt lines stay
    above it for readers that look no further.

    Raises ValueError for a key that cannot stand on the line: one that is no `\\w[\\w -/+().]*`
    name, has outer whitespace, or is `Prompt`/`Negative prompt` (those are the prompt fields).
    """
    values: dict[str, str] = {}
    for key, value in params.items():
        text = "" if value is None else _plain(value)
        if text:
            values[_checked_key(key)] = text
    head = [prompt] + ([f"{NEGATIVE_PREFIX} {negative_prompt}"] if negative_prompt else [])
    line = ", ".join(f"{k}: {quote(v)}" for k, v in values.items())
    plain = "\n".join([*head, line])
    back = parse_infotext(plain)
    if (back.prompt, back.negative_prompt, list(back.params.items())) == (
        prompt,
        negative_prompt,
        list(values.items()),
    ):
        return plain
    prompts = f"{PROMPT_KEY}: {_json(prompt)}, {NEGATIVE_KEY}: {_json(negative_prompt)}"
    return "\n".join([*head, f"{prompts}, {line}" if line else prompts])


def _checked_key(key: object) -> str:
    if (
        not isinstance(key, str)
        or not _KEY.fullmatch(key)
        or key != key.rstrip()
        or key in (PROMPT_KEY, NEGATIVE_KEY)
    ):
        raise ValueError(f"{key!r} cannot be a key of the A1111 parameters line")
    return key
