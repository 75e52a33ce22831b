"""Enforcement analytics: restricted-party screening, entity resolution of consignees,
structuring and diversion signals, and ranked cases (contract §3)."""

from aiexport.intel.investigate import Case, Investigation, investigate
from aiexport.intel.lists import ListEntry, ScreeningList, bundled_list_path, load_lists
from aiexport.intel.resolve import Model
from aiexport.intel.screening import CONFIDENT, REVIEW, Match, Screener, party_screen
from aiexport.intel.signals import Signal

__all__ = [
    "CONFIDENT",
    "REVIEW",
    "Case",
    "Investigation",
    "ListEntry",
    "Match",
    "Model",
    "Screener",
    "ScreeningList",
    "Signal",
    "bundled_list_path",
    "investigate",
    "load_lists",
    "party_screen",
]
