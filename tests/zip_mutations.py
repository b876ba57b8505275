"""Zip-level and XML-level damage to xlsx workbooks (used by tests.format_mutations).

The archive is taken apart into raw members (compressed payload plus the header fields)
and written back by hand, so a mutation can make any field lie: sizes, CRCs, compression
method, flags, names. XML-level operators instead damage one member's XML and write a
clean archive around it. Inflation bombs are built from one reusable deflate block (a
full flush resets the dictionary, so the same compressed megabyte can be repeated).
"""

from __future__ import annotations

import io
import lzma
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

Mutator = Callable[[bytes, random.Random], bytes]
MiB = 1024 * 1024
_DOS_TIME, _DOS_DATE = 0, (2020 - 1980) << 9 | 1 << 5 | 1
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")


@dataclass(frozen=True)
class RawMember:
    name: bytes
    payload: bytes  # the compressed bytes as stored
    method: int
    flags: int
    crc: int
    compress_size: int
    file_size: int
    # what the central directory says, when it lies differently from the local header
    central_crc: int | None = None
    central_file_size: int | None = None
    central_compress_size: int | None = None


def parse(data: bytes) -> list[RawMember] | None:
    """The members of a readable zip (None when zipfile cannot list them)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return None
    members = []
    for info in infos:
        off = info.header_offset
        if off + _LOCAL.size > len(data):
            return None
        fields = _LOCAL.unpack_from(data, off)
        start = off + _LOCAL.size + fields[9] + fields[10]
        members.append(
            RawMember(
                name=info.orig_filename.encode("utf-8", errors="replace"),
                payload=data[start : start + info.compress_size],
                method=info.compress_type,
                flags=info.flag_bits & ~0x8,  # sizes are always written in the headers
                crc=info.CRC,
                compress_size=info.compress_size,
                file_size=info.file_size,
            )
        )
    return members


def build(members: list[RawMember]) -> bytes:
    """A zip archive of exactly these members and header fields (lies included)."""
    out = bytearray()
    central = bytearray()
    for m in members:
        offset = len(out)
        out += _LOCAL.pack(
            b"PK\x03\x04", 20, m.flags, m.method, _DOS_TIME, _DOS_DATE,
            m.crc & 0xFFFFFFFF, _u32(m.compress_size), _u32(m.file_size), len(m.name), 0,
        )  # fmt: skip
        out += m.name + m.payload
        central += _CENTRAL.pack(
            b"PK\x01\x02", 20, 20, m.flags, m.method, _DOS_TIME, _DOS_DATE,
            _u32(m.crc if m.central_crc is None else m.central_crc),
            _u32(m.compress_size if m.central_compress_size is None else m.central_compress_size),
            _u32(m.file_size if m.central_file_size is None else m.central_file_size),
            len(m.name), 0, 0, 0, 0, 0, _u32(offset),
        )  # fmt: skip
        central += m.name
    start = len(out)
    out += central
    n = min(len(members), 0xFFFF)
    out += _END.pack(b"PK\x05\x06", 0, 0, n, n, len(central), start, 0)
    return bytes(out)


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


def deflated(name: str, content: bytes) -> RawMember:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = c.compress(content) + c.flush()
    return RawMember(
        name=name.encode(),
        payload=payload,
        method=zipfile.ZIP_DEFLATED,
        flags=0,
        crc=zlib.crc32(content),
        compress_size=len(payload),
        file_size=len(content),
    )


def members_of(data: bytes) -> dict[str, bytes] | None:
    """Name → content of a zip that reads cleanly (for XML-level damage); None otherwise."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if sum(i.file_size for i in zf.infolist()) > 40 * MiB:
                return None  # a bomb from an earlier operator: editing it would be the slow part
            return {i.filename: zf.read(i) for i in zf.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, zlib.error):
        return None
    except (RuntimeError, lzma.LZMAError):  # encrypted; LZMA method on data that is not
        return None


def write_clean(members: dict[str, bytes]) -> bytes:
    return build([deflated(name, content) for name, content in members.items()])


def _pick(members: list[RawMember], rng: random.Random) -> int:
    """A member index, favouring the worksheets (where the data is)."""
    sheets = [k for k, m in enumerate(members) if b"worksheets/" in m.name]
    if sheets and rng.random() < 0.6:
        return rng.choice(sheets)
    return rng.randrange(len(members))


def _raw_operator(change: Callable[[list[RawMember], random.Random], list[RawMember]]) -> Mutator:
    def apply(data: bytes, rng: random.Random) -> bytes:
        members = parse(data)
        if not members:
            return _flip(data, rng)
        return build(change(members, rng))

    apply.__name__ = change.__name__
    return apply


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data or b"\x00")
    i = rng.randrange(len(out))
    out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


# --- zip-level operators ---------------------------------------------------------------


def _truncate_member(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    k = _pick(members, rng)
    m = members[k]
    cut = rng.randrange(len(m.payload)) if m.payload else 0
    honest = rng.random() < 0.3  # sizes updated to the cut, or still claiming the whole
    members[k] = replace(
        m, payload=m.payload[:cut], compress_size=cut if honest else m.compress_size
    )
    return members


def cut_inside_member(data: bytes, rng: random.Random) -> bytes:
    """The file ends inside a member's compressed data (central directory lost)."""
    members = parse(data)
    if not members:
        return _flip(data, rng)
    k = _pick(members, rng)
    start = sum(_LOCAL.size + len(m.name) + len(m.payload) for m in members[:k])
    start += _LOCAL.size + len(members[k].name)
    return data[: start + rng.randrange(max(1, len(members[k].payload)))]


def _flip_in_deflate(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    k = _pick(members, rng)
    m = members[k]
    if not m.payload:
        return members
    payload = bytearray(m.payload)
    for _ in range(rng.choice((1, 1, 2, 4))):
        i = rng.randrange(len(payload))
        payload[i] ^= 1 << rng.randrange(8)
    members[k] = replace(m, payload=bytes(payload))
    return members


def _bad_crc(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    k = _pick(members, rng)
    m = members[k]
    wrong = m.crc ^ (1 << rng.randrange(32))
    where = rng.randrange(3)
    if where == 0:
        members[k] = replace(m, crc=wrong, central_crc=m.crc)
    elif where == 1:
        members[k] = replace(m, central_crc=wrong)
    else:
        members[k] = replace(m, crc=wrong)
    return members


def _lying_sizes(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    k = _pick(members, rng)
    m = members[k]
    size = rng.choice(
        (0, 1, m.file_size // 2, m.file_size - 1, m.file_size + 1, m.file_size * 1000,
         63 * MiB, 65 * MiB, 2**31 - 1, 0xFFFFFFFF)
    )  # fmt: skip
    if rng.random() < 0.7:
        members[k] = replace(m, central_file_size=size, file_size=rng.choice((size, m.file_size)))
    else:
        lie = max(0, m.compress_size + rng.choice((-100, -1, 1, 100, 10_000, 2**31)))
        members[k] = replace(m, central_compress_size=lie)
    return members


def _odd_method(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    k = _pick(members, rng)
    members[k] = replace(members[k], method=rng.choice((0, 1, 6, 9, 12, 14, 93, 95, 98, 99)))
    return members


def _encrypted_flag(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    k = _pick(members, rng)
    members[k] = replace(members[k], flags=members[k].flags | rng.choice((0x1, 0x41, 0x2000)))
    return members


def _member_set(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    k = _pick(members, rng)
    action = rng.randrange(4)
    if action == 0 and len(members) > 1:
        del members[k]
    elif action == 1:
        members.insert(rng.randrange(len(members) + 1), members[k])
    elif action == 2:
        name = rng.choice(
            (b"../../etc/passwd", b"/abs/sheet1.xml", b"XL/WORKSHEETS/SHEET1.XML", b"\xff\xfe.xml",
             b"", b"xl/worksheets/sheet9.xml", members[k].name + b"\x00")
        )  # fmt: skip
        members[k] = replace(members[k], name=name)
    else:
        rng.shuffle(members)
    return members


# --- inflation bombs -------------------------------------------------------------------

_SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b"<sheetData>"
)
_SHEET_TAIL = b"</sheetData></worksheet>"
BOMB_FILLERS = {
    "spaces": b" " * 64,
    "rows": b'<row><c t="n"><v>1.25</v></c><c t="n"><v>2.5</v></c></row>',
    "empty_rows": b"<row/>",
}


@dataclass(frozen=True)
class Bomb:
    payload: bytes
    size: int
    crc: int | None  # None when not computed (sizes the limits refuse anyway)


@lru_cache(maxsize=16)
def _bomb_block(filler: bytes) -> bytes:
    block = filler * (MiB // len(filler))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)


@lru_cache(maxsize=16)
def sheet_bomb(filler_name: str, mebibytes: int, with_crc: bool) -> Bomb:
    """A worksheet member that inflates to about ``mebibytes`` MiB of XML."""
    filler = BOMB_FILLERS[filler_name]
    block = filler * (MiB // len(filler))
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(_SHEET_HEAD) + head.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = tail.compress(_SHEET_TAIL) + tail.flush()
    payload = first + _bomb_block(filler) * mebibytes + last
    size = len(_SHEET_HEAD) + len(block) * mebibytes + len(_SHEET_TAIL)
    crc = None
    if with_crc:
        crc = zlib.crc32(_SHEET_HEAD)
        for _ in range(mebibytes):
            crc = zlib.crc32(block, crc)
        crc = zlib.crc32(_SHEET_TAIL, crc)
    return Bomb(payload, size, crc)


def _inflation_bomb(members: list[RawMember], rng: random.Random) -> list[RawMember]:
    sheets = [k for k, m in enumerate(members) if b"worksheets/" in m.name]
    k = rng.choice(sheets) if sheets else _pick(members, rng)
    mebibytes = rng.choice((8, 60, 70, 300))
    bomb = sheet_bomb(rng.choice(sorted(BOMB_FILLERS)), mebibytes, mebibytes <= 70)
    declared = rng.choice(("honest", "honest", "small", "wrapped"))
    size = {"honest": bomb.size, "small": members[k].file_size, "wrapped": bomb.size % 2**32}
    members[k] = replace(
        members[k],
        payload=bomb.payload,
        method=zipfile.ZIP_DEFLATED,
        crc=bomb.crc if bomb.crc is not None else members[k].crc,
        compress_size=len(bomb.payload),
        file_size=size[declared],
    )
    return members


ZIP_OPERATORS: tuple[tuple[str, Mutator], ...] = (
    ("zip_truncate_member", _raw_operator(_truncate_member)),
    ("zip_cut_inside_member", cut_inside_member),
    ("zip_flip_in_deflate", _raw_operator(_flip_in_deflate)),
    ("zip_bad_crc", _raw_operator(_bad_crc)),
    ("zip_lying_sizes", _raw_operator(_lying_sizes)),
    ("zip_odd_method", _raw_operator(_odd_method)),
    ("zip_encrypted_flag", _raw_operator(_encrypted_flag)),
    ("zip_member_set", _raw_operator(_member_set)),
    ("zip_inflation_bomb", _raw_operator(_inflation_bomb)),
)


# --- XML-level operators ---------------------------------------------------------------

_WEIRD_REFS = (
    "A0", "A1048577", "XFD1048576", "XFE1", "AAAA1", "A99999999999", "", "1A", "Ä1",
    "A-1", "a1", "$A$1", "A1:B2", "ZZ7", "AF48", "P24", "M1", "A2",
)  # fmt: skip
_WEIRD_TYPES = ('t="s"', 't="n"', 't="b"', 't="e"', 't="d"', 't="str"', 't="inlineStr"', 't="?"')
_WEIRD_VALUES = (
    "999999", "-1", "1e977", "nan", "2", "", "abc", "9999-99-99T99:99:99", "#DIV/0!",
    "1" * 400, "0x10", "  1  ", "1e-400",
)  # fmt: skip
_WEIRD_DIMENSIONS = ("A1:XFD1048576", "A1:A1048576", "XFD1:XFD1", "A1:ZZZ9", "B2:A1", "", "A0:A0")


def _sheet_and_others(members: dict[str, bytes], rng: random.Random) -> str:
    names = sorted(members)
    sheets = [n for n in names if "worksheets/" in n and n.endswith(".xml")]
    roll = rng.random()
    if sheets and roll < 0.65:
        return rng.choice(sheets)
    if "xl/sharedStrings.xml" in members and roll < 0.8:
        return "xl/sharedStrings.xml"
    return rng.choice(names)


def _xml_operator(change: Callable[[str, random.Random], str]) -> Mutator:
    def apply(data: bytes, rng: random.Random) -> bytes:
        members = members_of(data)
        if not members:
            return _flip(data, rng)
        name = _sheet_and_others(members, rng)
        text = members[name].decode("utf-8", errors="replace")
        members[name] = change(text, rng).encode("utf-8", errors="replace")
        return write_clean(members)

    apply.__name__ = change.__name__
    return apply


def _sub_some(pattern: str, text: str, rng: random.Random, make: Callable[[], str]) -> str:
    found = list(re.finditer(pattern, text))
    if not found:
        return text
    chosen = {m.start() for m in rng.sample(found, min(len(found), rng.choice((1, 1, 3))))}
    return re.sub(pattern, lambda m: make() if m.start() in chosen else m.group(0), text)


def _cell_refs(text: str, rng: random.Random) -> str:
    if rng.random() < 0.3:  # row numbers
        weird = ("0", "-1", "1048577", "99999999999", "1e10", "Ä", "", "3")
        return _sub_some(r'<row r="[^"]*"', text, rng, lambda: f'<row r="{rng.choice(weird)}"')
    return _sub_some(r' r="[A-Z]+[0-9]+"', text, rng, lambda: f' r="{rng.choice(_WEIRD_REFS)}"')


def _cell_types(text: str, rng: random.Random) -> str:
    if ' t="' in text and rng.random() < 0.5:
        return _sub_some(r' t="[^"]*"', text, rng, lambda: " " + rng.choice(_WEIRD_TYPES))
    return _sub_some(r"<c ", text, rng, lambda: "<c " + rng.choice(_WEIRD_TYPES) + " ")


def _cell_values(text: str, rng: random.Random) -> str:
    return _sub_some(r"<v>[^<]*</v>", text, rng, lambda: f"<v>{rng.choice(_WEIRD_VALUES)}</v>")


def _dimension(text: str, rng: random.Random) -> str:
    ref = rng.choice(_WEIRD_DIMENSIONS)
    if "<dimension " in text:
        return re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="{ref}"', text, count=1)
    return text.replace("<sheetData", f'<dimension ref="{ref}"/><sheetData', 1)


def _entities(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        doctype = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">' + "".join(
            f'<!ENTITY {chr(98 + k)} "' + f"&{chr(97 + k)};" * 10 + '">' for k in range(8)
        )
        doctype += "]>"
        ref = "&i;"
    else:
        doctype = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        ref = "&e;"
    body = re.sub(r"^<\?xml[^>]*\?>", "", text)
    body = body.replace("<v>", "<v>" + ref, 1) if "<v>" in body else body + ref
    return '<?xml version="1.0"?>' + doctype + body


def _nesting(text: str, rng: random.Random) -> str:
    depth = rng.choice((100, 5000, 100_000))
    at = text.find("<sheetData>")
    at = at + len("<sheetData>") if at >= 0 else rng.randrange(len(text) + 1)
    return text[:at] + "<row>" + "<is>" * depth + "</is>" * depth + "</row>" + text[at:]


def _chunk_edit(text: str, rng: random.Random) -> str:
    if not text:
        return "<"
    i = rng.randrange(len(text))
    j = min(len(text), i + rng.choice((1, 5, 50, 500)))
    roll = rng.randrange(3)
    if roll == 0:
        return text[:i] + text[j:]
    if roll == 1:
        return text[:j] + text[i:j] * rng.choice((1, 2, 100)) + text[j:]
    return text[:i]


def xml_operators(pick_token: Callable[[random.Random], str]) -> tuple[tuple[str, Mutator], ...]:
    def insert_token(text: str, rng: random.Random) -> str:
        return _sub_some(
            r"<v>[^<]*</v>|<t>[^<]*</t>", text, rng, lambda: f"<v>{pick_token(rng)}</v>"
        )

    return (
        ("xml_cell_refs", _xml_operator(_cell_refs)),
        ("xml_cell_types", _xml_operator(_cell_types)),
        ("xml_cell_values", _xml_operator(_cell_values)),
        ("xml_tokens", _xml_operator(insert_token)),
        ("xml_dimension", _xml_operator(_dimension)),
        ("xml_entities", _xml_operator(_entities)),
        ("xml_nesting", _xml_operator(_nesting)),
        ("xml_chunk_edit", _xml_operator(_chunk_edit)),
    )
