"""Redaction of LLM telemetry: policies, field rules and linear-time detectors of sensitive values.

`Redactor` is the core shared by the `genai_redact` processor and the in-app `spanhouse.sdk`;
`RedactionSettings` configures it. Detectors are compiled once into one RE2 set (see `scanner`).
"""

from spanhouse.redact.detectors import BUILTIN_NAMES, Detector
from spanhouse.redact.engine import Record, Redactor
from spanhouse.redact.scanner import Finding, Scanner
from spanhouse.redact.settings import (
    FieldAction,
    FieldRule,
    PatternSpec,
    Policy,
    PolicyRule,
    RedactionSettings,
)
from spanhouse.redact.text import DROP, TextRedactor

__all__ = [
    "BUILTIN_NAMES",
    "Detector",
    "DROP",
    "FieldAction",
    "FieldRule",
    "Finding",
    "PatternSpec",
    "Policy",
    "PolicyRule",
    "Record",
    "RedactionSettings",
    "Redactor",
    "Scanner",
    "TextRedactor",
]
