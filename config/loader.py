"""Loading the TOML configuration and the reference IC50 table, with one-line errors."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.schema import Settings
from datamodel.names import line_key
from errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG_PATH = CONFIG_DIR / "platewatch.toml"
DEFAULT_REFERENCE_IC50 = CONFIG_DIR / "reference_ic50.toml"


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a ConfigError naming it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file not found", source=path) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a TOML file", source=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=path) from None
    except UnicodeDecodeError:
        raise ConfigError("not valid TOML: not UTF-8 text", source=path) from None


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error as 'key: problem' (one line)."""
    first = exc.errors()[0]
    key = _key_path(tuple(first["loc"])) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    return f"{key}: {first['msg']}" + (f" (got {first['input']!r})" if "input" in first else "")


def load_config(path: str | Path | None = None) -> Settings:
    """Load and validate a config file (the embedded default when ``path`` is None).

    Relative paths inside the file are kept relative to the working directory, as the
    daemon is started from its state directory's parent (systemd ``WorkingDirectory``).
    """
    source = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    data = read_toml(source)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), source=source) from None


@dataclass(frozen=True)
class ReferenceIC50:
    """A published IC50 for a cell line and the range that counts as 'as expected'."""

    cell_line: str
    low: float
    high: float
    unit: str
    ic50: float | None = None
    note: str = ""

    @property
    def resistant(self) -> bool:
        """Only a lower bound is known (e.g. '> 25 IU/mL'): a weak response is expected."""
        return math.isinf(self.high)


def load_reference_ic50(path: str | Path | None = None) -> dict[str, ReferenceIC50]:
    """The reference IC50 table keyed by normalised cell-line name ('MOLT-4P' → 'MOLT4P')."""
    source = Path(path) if path is not None else DEFAULT_REFERENCE_IC50
    data = read_toml(source)
    unit = str(data.get("unit", "IU/mL"))
    lines = data.get("line", {})
    if not isinstance(lines, dict):
        raise ConfigError("[line] must be a table of cell lines", source=source)
    table: dict[str, ReferenceIC50] = {}
    for name, entry in lines.items():
        if not isinstance(entry, dict) or "range" not in entry:
            raise ConfigError(f"line.{name}: needs range = [low, high]", source=source)
        rng = entry["range"]
        if (
            not isinstance(rng, list)
            or len(rng) != 2
            or not all(isinstance(v, int | float) for v in rng)
            or not 0 <= rng[0] <= rng[1]
        ):
            raise ConfigError(
                f"line.{name}.range: must be [low, high] with low <= high", source=source
            )
        table[line_key(name)] = ReferenceIC50(
            cell_line=name,
            low=float(rng[0]),
            high=float(rng[1]),
            unit=str(entry.get("unit", unit)),
            ic50=float(entry["ic50"]) if "ic50" in entry else None,
            note=str(entry.get("note", "")),
        )
    return table
