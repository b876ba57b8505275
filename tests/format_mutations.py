"""Mutation operators for export files: what the fuzz harness and the property tests apply.

Every operator is a pure function of the input bytes and a :class:`random.Random`, so a
case is reproduced from (seed file, operator names, rng seed). Text operators decode the
file (UTF-16 by BOM, UTF-8, else Latin-1, which round-trips any byte) and encode it back
the same way; zip operators (``zip_*``) rewrite the archive member by member
(:mod:`tests.zip_mutations`); ``xml_*`` operators damage the XML inside a workbook.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from tests import zip_mutations

Mutator = Callable[[bytes, random.Random], bytes]

# Tokens the readers give a meaning to, and tokens that broke readers before.
READER_TOKENS = (
    "OVRFLW",
    "MISSED",
    "?????",
    "<0.000",
    ">3.5",
    "*",
    "Software Version\t3.12.08",
    "Plate Number\tPlate 9",
    "Plate Type\t384 WELL PLATE",
    "Plate Type\t1536",
    "Read\t570nm",
    "\tFull Plate",
    "Time\tT° 600\tA1\tA2",
    "0:00:00",
    "1:04:22",
    "99:99:99",
    "Results",
    "Layout",
    "Well ID",
    "well",
    "row,col,value",
    "plate,well,od",
    "replicate",
    "barcode",
    "nm562",
    "abs450:450",
    "<>",
    "\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12",
    ",1,2,3",
    "A",
    "H",
    "P",
    "AF",
    "ZZ",
    "B7",
    "A0",
    "A00",
    "P24",
    "AF48",
    "A999",
    "##BLOCKS",
    "~End",
)
HOSTILE_TOKENS = (
    "1e977",
    "-1e977",
    "1e-400",
    "-1",
    "0",
    "00",
    "-0",
    "+7",
    "7.0",
    "1.7976931348623157e308",
    "18446744073709551616",
    "9" * 400,
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "²",
    "Ä",
    "ß",
    "İ",
    "ǅ",
    "٣",
    "１２",
    "Ⅻ",
    "\u00b9\u00b2",
    "\ufeff",
    "\u2028",
    "\x85",
    "\x0c",
    "\x1c",
    "\x00",
    '"',
    '""',
    '"a,b"',
    "'",
    "\\",
    "=1+1",
    "%s%n",
    "{0}",
    "\r",
    "\t",
    ";",
    ",",
    " ",
)
_LONG = 131_073  # one more than the csv module's default field limit
LONG_FIELDS: tuple[Callable[[], str], ...] = (
    lambda: "9" * (_LONG + 7),
    lambda: "A" * _LONG,
    lambda: '"' + "x" * _LONG,
    lambda: "1," * (_LONG // 2),
    lambda: "\t".join("0.5" for _ in range(40_000)),
)
INTERESTING_NUMBERS = (
    "0",
    "-1",
    "1",
    "-0",
    "1e977",
    "-1e977",
    "1e-400",
    "1e308",
    "4.9e-324",
    "12",
    "13",
    "24",
    "25",
    "48",
    "49",
    "96",
    "384",
    "1536",
    "65535",
    "2147483648",
    "18446744073709551616",
    "0.0",
    "00007",
    "1.",
    ".5",
    "1,5",
    "1.5e",
    "NaN",
)
_NUMBER = re.compile(r"[-+]?[0-9]+(?:[.,][0-9]+)?(?:[eE][-+]?[0-9]+)?", re.ASCII)
_DELIMITERS = ("\t", ",", ";", " ", "|", "\t\t")


# --- text views ------------------------------------------------------------------------


def _as_text(data: bytes) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _as_bytes(text: str, codec: str) -> bytes:
    return text.encode(codec, errors="replace")


def text_operator(change: Callable[[str, random.Random], str]) -> Mutator:
    """A mutator that edits the decoded text and encodes it back the same way."""

    def apply(data: bytes, rng: random.Random) -> bytes:
        text, codec = _as_text(data)
        return _as_bytes(change(text, rng), codec)

    apply.__name__ = change.__name__
    return apply


def pick_token(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(LONG_FIELDS)()
    if roll < 0.5:
        return rng.choice(READER_TOKENS)
    return rng.choice(HOSTILE_TOKENS)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True) or [text]


def _main_delimiter(line: str) -> str:
    return max(("\t", ";", ","), key=line.count)


# --- byte-level ------------------------------------------------------------------------


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\x00"
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        if rng.random() < 0.5:
            out[i] ^= 1 << rng.randrange(8)
        else:
            out[i] = rng.randrange(256)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))] if data else data


def truncate_at_line_end(data: bytes, rng: random.Random) -> bytes:
    ends = [m.end() for m in re.finditer(rb"\r\n|\n|\r", data)]
    if not ends:
        return truncate(data, rng)
    return data[: rng.choice(ends)]


# --- text-level ------------------------------------------------------------------------


def _insert_token(text: str, rng: random.Random) -> str:
    token = pick_token(rng)
    if text and rng.random() < 0.6:  # at a field boundary
        spots = [m.end() for m in re.finditer(r"[\t,;\n]", text)]
        at = rng.choice(spots) if spots else rng.randrange(len(text) + 1)
    else:
        at = rng.randrange(len(text) + 1)
    return text[:at] + token + text[at:]


def _replace_field(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    k = rng.randrange(len(lines))
    body = lines[k].rstrip("\r\n")
    ending = lines[k][len(body) :]
    delim = _main_delimiter(body)
    fields = body.split(delim)
    fields[rng.randrange(len(fields))] = pick_token(rng)
    lines[k] = delim.join(fields) + ending
    return "".join(lines)


def _delete_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    start = rng.randrange(len(lines))
    del lines[start : start + rng.choice((1, 1, 1, 2, 5, 20))]
    return "".join(lines)


def _duplicate_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    start = rng.randrange(len(lines))
    chunk = lines[start : start + rng.choice((1, 1, 2, 8, 30))]
    times = rng.choice((1, 1, 2, 50))
    lines[start:start] = chunk * times
    return "".join(lines)


def _shuffle_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    if rng.random() < 0.5:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        start = rng.randrange(len(lines))
        window = lines[start : start + rng.randint(2, 12)]
        rng.shuffle(window)
        lines[start : start + len(window)] = window
    return "".join(lines)


def _swap_delimiters(text: str, rng: random.Random) -> str:
    old = rng.choice(("\t", ",", ";"))
    new = rng.choice([d for d in _DELIMITERS if d != old])
    if rng.random() < 0.5:
        return text.replace(old, new)
    lines = _lines(text)
    start = rng.randrange(len(lines))
    for k in range(start, min(len(lines), start + rng.randint(1, 10))):
        lines[k] = lines[k].replace(old, new)
    return "".join(lines)


def _swap_decimal(text: str, rng: random.Random) -> str:
    to_comma = rng.random() < 0.6
    share = rng.choice((1.0, 0.5, 0.05))

    def swap(m: re.Match[str]) -> str:
        if rng.random() > share:
            return m.group(0)
        return m.group(0).replace(".", ",") if to_comma else m.group(0).replace(",", ".")

    return _NUMBER.sub(swap, text)


def _replace_numbers(text: str, rng: random.Random) -> str:
    found = list(_NUMBER.finditer(text))
    if not found:
        return _insert_token(text, rng)
    chosen = sorted(rng.sample(found, min(len(found), rng.choice((1, 1, 3, 20)))), key=_start)
    out, last = [], 0
    for m in chosen:
        out += [text[last : m.start()], rng.choice(INTERESTING_NUMBERS)]
        last = m.end()
    return "".join(out) + text[last:]


def _start(m: re.Match[str]) -> int:
    return m.start()


def _change_line_ends(text: str, rng: random.Random) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return re.sub(r"\r\n|\r", "\n", text)
    if choice == 1:
        return re.sub(r"\r\n|\n|\r", "\r\n", text)
    if choice == 2:
        return re.sub(r"\r\n|\n", "\r", text)  # old Mac files: lone CRs only
    if choice == 3:  # a few lone CRs inside lines
        out = list(text)
        for _ in range(rng.randint(1, 5)):
            out.insert(rng.randrange(len(out) + 1), "\r")
        return "".join(out)
    if choice == 4:
        return text.rstrip("\r\n")
    return text + rng.choice(("\n", "\r\n\r\n\r\n", "\r", "\n" * 500))


def reencode(data: bytes, rng: random.Random) -> bytes:
    text, _ = _as_text(data)
    codec = rng.choice(
        ("utf-16", "utf-16-be-bom", "utf-16-le", "utf-16-be", "cp1252", "utf-8-sig", "utf-32")
    )
    if codec == "utf-16-be-bom":
        return b"\xfe\xff" + text.encode("utf-16-be", errors="replace")
    return text.encode(codec, errors="replace")


# --- the table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    name: str
    apply: Mutator
    targets: str  # "text": decoded text files; "zip": xlsx workbooks; "any": both


OPERATORS: tuple[Operator, ...] = (
    Operator("flip_bytes", flip_bytes, "any"),
    Operator("truncate", truncate, "any"),
    Operator("truncate_at_line_end", truncate_at_line_end, "text"),
    Operator("insert_token", text_operator(_insert_token), "text"),
    Operator("replace_field", text_operator(_replace_field), "text"),
    Operator("delete_lines", text_operator(_delete_lines), "text"),
    Operator("duplicate_lines", text_operator(_duplicate_lines), "text"),
    Operator("shuffle_lines", text_operator(_shuffle_lines), "text"),
    Operator("swap_delimiters", text_operator(_swap_delimiters), "text"),
    Operator("swap_decimal", text_operator(_swap_decimal), "text"),
    Operator("replace_numbers", text_operator(_replace_numbers), "text"),
    Operator("change_line_ends", text_operator(_change_line_ends), "text"),
    Operator("reencode", reencode, "text"),
    *(Operator(name, fn, "zip") for name, fn in zip_mutations.ZIP_OPERATORS),
    *(Operator(name, fn, "zip") for name, fn in zip_mutations.xml_operators(pick_token)),
)
BY_NAME = {op.name: op for op in OPERATORS}


def operators_for(data: bytes) -> list[Operator]:
    kind = "zip" if data[:4] == b"PK\x03\x04" else "text"
    return [op for op in OPERATORS if op.targets in (kind, "any")]


def choose_operators(data: bytes, rng: random.Random) -> list[str]:
    """One to three operator names for a case (most cases get one)."""
    count = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
    return [rng.choice(operators_for(data)).name for _ in range(count)]


def mutate(data: bytes, names: list[str], rng: random.Random) -> bytes:
    """Apply the named operators in order (each to the result of the one before)."""
    for name in names:
        data = BY_NAME[name].apply(data, rng)
    return data
