"""Configuration: the pydantic schema, its loader and the embedded defaults."""

from config.loader import (
    DEFAULT_CONFIG_PATH,
    load_config,
    load_reference_ic50,
)
from config.schema import Settings

__all__ = ["DEFAULT_CONFIG_PATH", "Settings", "load_config", "load_reference_ic50"]
