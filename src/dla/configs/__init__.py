"""Configs shipped inside the package (the demo's), so that ``dla demo`` runs from any installation."""

from pathlib import Path

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")
