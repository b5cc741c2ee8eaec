"""Household scene graphs in VirtualHome's JSON format (``example_apartment.json``: a small hand-written apartment)."""
from pathlib import Path

EXAMPLE_APARTMENT = Path(__file__).with_name("example_apartment.json")
