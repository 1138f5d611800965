"""Load a service configuration in the OpenTelemetry Collector's format.

The sequence is fixed: read → YAML → `${env:VAR}` substitution → typed component configs → validate
every component and the service graph. Every problem is collected with its path
(`exporters::clickhouse::ttl: ...`) and reported at once in one `ConfigError`; nothing is built
from a configuration that has a problem.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spanhouse.component import ComponentID, ConfigIssue, Kind, Registry, default_registry
from spanhouse.errors import ConfigError

SIGNALS = ("traces", "logs")
DEFAULT_CONFIG_NAME = "otel-collector-config.yaml"


# --- value types --------------------------------------------------------------------------

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, order=True)
class Duration:
    """A Go-style duration (`200ms`, `1s`, `1h30m`, `720h`); `0` means none."""

    seconds: float

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if value == 0 or value == "0":
            return cls(0.0)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected a duration with a unit such as '5s', '200ms' or '72h', got {value!r}")
        text = value.strip()
        pos, total = 0, 0.0
        for m in _DURATION_RE.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text):
            raise ValueError(f"expected a duration with a unit such as '5s', '200ms' or '72h', got {value!r}")
        return cls(total)

    def __str__(self) -> str:
        s = self.seconds
        for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
            if s >= size and s % size == 0:
                return f"{int(s // size)}{unit}"
        return f"{s * 1000:g}ms"


def parse_endpoint(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:port`) → (host, port); raises ValueError with what to write."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"expected host:port such as 127.0.0.1:4318, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def endpoint_issues(field_name: str, value: str) -> Iterator[ConfigIssue]:
    """Validation helper for `endpoint` fields in `host:port` form."""
    try:
        parse_endpoint(value)
    except ValueError as exc:
        yield ConfigIssue(field_name, str(exc))


# --- environment substitution --------------------------------------------------------------

_REF_RE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_REF_RE = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.S)


class EnvValue(str):
    """A value that was exactly one `${...}` reference: its text, and what that text reads as in YAML.
    `build` gives a string setting the text as it was (`0123` stays `0123`, `yes` stays `yes`) and any
    other setting the YAML value, so `${env:PORT}` can still be an int."""

    parsed: Any

    def __new__(cls, text: str, parsed: Any) -> EnvValue:
        self = super().__new__(cls, text)
        self.parsed = parsed
        return self


def substitute_env(node: Any, env: Mapping[str, str], path: str, warnings: list[str],
                   problems: list[str] | None = None) -> Any:
    """Replace `${env:VAR}`, `${env:VAR:-default}`, `${VAR}` and `${file:PATH}` (the file's content, without
    its final newline) in string values; `$$` is a literal `$`. Any other `${...}` is a problem: it
    would otherwise end up in the setting as literal text (a redaction key named `${file:...}`).

    A value that is exactly one reference becomes an `EnvValue` (typed by the setting it lands in). A
    variable that is not set becomes empty and is reported as a warning."""
    problems = problems if problems is not None else []
    if isinstance(node, dict):
        return {k: substitute_env(v, env, f"{path}::{k}" if path else str(k), warnings, problems)
                for k, v in node.items()}
    if isinstance(node, list):
        return [substitute_env(v, env, f"{path}[{i}]", warnings, problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        ref = m.group(1)
        if ref.startswith("file:"):
            name = ref[5:]
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: cannot read {name} for ${{{ref}}}: {getattr(exc, 'strerror', None) or exc}")
                return ""
            return text[:-1] if text.endswith("\n") else text
        env_ref = _ENV_REF_RE.fullmatch(ref)
        if env_ref is None:
            scheme = ref.split(":", 1)[0] if ":" in ref else ""
            what = (f"the {scheme}: provider is not supported" if scheme and scheme != "env"
                    else "not a valid environment variable name")
            problems.append(f"{path}: ${{{ref}}}: {what}; use ${{env:NAME}}, ${{env:NAME:-default}} or "
                            "${file:PATH} (write $$ for a literal $)")
            return ""
        name, default = env_ref.group(1), env_ref.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        warnings.append(f"{path}: environment variable {name} is not set; using an empty value")
        return ""

    whole = _REF_RE.fullmatch(node)
    if whole and whole.group(0) != "$$":
        text = repl(whole)
        if not text:
            return ""
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = text
        return EnvValue(text, parsed)
    return _REF_RE.sub(repl, node)


# --- dict → typed dataclass ----------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def build(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    """Convert YAML data to `tp` (dataclass, Enum, Duration, list/dict/tuple, optional, scalar).

    Problems are appended as `path: message`; the return value is then a best-effort placeholder.
    """
    if type(value) is EnvValue and tp is not str:
        origin = typing.get_origin(tp)
        if not (origin in (typing.Union, types.UnionType) and str in typing.get_args(tp)):
            value = value.parsed
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            # a key present with no value (`grpc:`) enables a section with its defaults, as in the Collector
            return build(args[0], {}, path, problems) if dataclasses.is_dataclass(args[0]) else None
        return build(args[0], value, path, problems) if len(args) == 1 else value
    if tp is Any:
        return value
    if tp is Duration:
        try:
            return Duration.parse(value)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            return Duration(0)
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path, problems)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [m.value for m in tp]
        if value in allowed:
            return tp(value)
        problems.append(f"{path}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return next(iter(tp))
    if origin in (list, tuple):
        if value is None:
            return () if origin is tuple else []
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {_type_name(type(value))}")
            return () if origin is tuple else []
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [build(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {_type_name(type(value))}")
            return {}
        _, val_tp = typing.get_args(tp) or (str, Any)
        return {str(k): build(val_tp, v, f"{path}::{k}", problems) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        problems.append(f"{path}: expected true or false, got {value!r}")
        return False
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.append(f"{path}: expected an integer, got {value!r}")
        return 0
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        problems.append(f"{path}: expected a number, got {value!r}")
        return 0.0
    if tp is str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        # the type only: a string setting may be a password or a header, whatever was written instead
        problems.append(f"{path}: expected a string, got {_type_name(type(value))}")
        return ""
    return value


def _build_dataclass(cls: type, value: Any, path: str, problems: list[str]) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a mapping of settings, got {_type_name(type(value))}")
        value = {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "(none)"
            problems.append(f"{path}::{key}: unknown setting; valid settings are: {valid}")
    kwargs = {name: build(hints[name], value[name], f"{path}::{name}", problems)
              for name in fields if name in value}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        problems.append(f"{path}: {exc}")
        return cls()


def validate_tree(obj: Any, path: str, problems: list[str], for_reading: bool = False) -> None:
    """Call `validate()` on `obj` and on every nested config dataclass, prefixing issues with their path.
    `for_reading` leaves out the issues marked `serving_only` (files and variables only a running
    component reads)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, (type, Duration)):
        for f in dataclasses.fields(obj):
            validate_tree(getattr(obj, f.name), f"{path}::{f.name}", problems, for_reading)
        validate = getattr(obj, "validate", None)
        if callable(validate):
            try:
                for issue in validate() or ():
                    if for_reading and getattr(issue, "serving_only", False):
                        continue
                    where = f"{path}::{issue.field}" if issue.field else path
                    problems.append(f"{where}: {issue.message}")
            except ValueError as exc:  # e.g. urllib on a malformed URL: a problem to list, not a traceback
                problems.append(f"{path}: {exc}")
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            validate_tree(item, f"{path}[{i}]", problems, for_reading)
    elif isinstance(obj, dict):
        for k, item in obj.items():
            validate_tree(item, f"{path}::{k}", problems, for_reading)


# --- the service configuration ------------------------------------------------------------


@dataclass(frozen=True)
class PipelineConfig:
    """One pipeline: its receivers, its processors in order, and its exporters."""

    receivers: tuple[ComponentID, ...]
    processors: tuple[ComponentID, ...]
    exporters: tuple[ComponentID, ...]


@dataclass(frozen=True)
class ServiceConfig:
    """A validated configuration: component configs by id, and the pipelines that connect them."""

    receivers: dict[ComponentID, Any] = field(default_factory=dict)
    processors: dict[ComponentID, Any] = field(default_factory=dict)
    exporters: dict[ComponentID, Any] = field(default_factory=dict)
    extensions: dict[ComponentID, Any] = field(default_factory=dict)
    service_extensions: tuple[ComponentID, ...] = ()
    pipelines: dict[ComponentID, PipelineConfig] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: str = ""
    log_level: str = ""
    """`service::telemetry::logs::level` (debug, info, warn, error), as the Collector reads it; "" when unset."""
    for_reading: bool = False
    """Loaded only to find the store and endpoints (see `load_config`): not to be served."""

    def components(self, kind: Kind) -> dict[ComponentID, Any]:
        return getattr(self, kind.value)

    def first(self, kind: Kind, type_: str) -> tuple[ComponentID, Any] | None:
        """The first configured component of `type_` that a pipeline (or the service) uses, if any."""
        used = set(self.service_extensions)
        for p in self.pipelines.values():
            used.update(p.receivers + p.processors + p.exporters)
        for cid, cfg in self.components(kind).items():
            if cid.type == type_ and cid in used:
                return cid, cfg
        return None


LOG_LEVELS = ("debug", "info", "warn", "error")


def _telemetry(node: Any, problems: list[str], warnings: list[str]) -> str:
    """The log level of `service::telemetry`; its other parts (metrics, traces, resource) are the
    Collector's own telemetry, which spanhouse does not emit: a warning says so."""
    if node is None:
        return ""
    if not isinstance(node, dict):
        problems.append("service::telemetry: expected a mapping, e.g. {logs: {level: info}}")
        return ""
    logs = node.get("logs") or {}
    if not isinstance(logs, dict):
        problems.append("service::telemetry::logs: expected a mapping, e.g. {level: info}")
        return ""
    unused = [k for k in node if k != "logs"] + [f"logs::{k}" for k in logs if k != "level"]
    warnings.extend(f"service::telemetry::{k}: not used by spanhouse (only logs::level is)" for k in unused)
    level = str(logs.get("level") or "").lower()
    if level and level not in LOG_LEVELS:
        problems.append(f"service::telemetry::logs::level: {level!r} is not one of {', '.join(LOG_LEVELS)}")
        return ""
    return level


_TOP_KEYS = {"receivers", "processors", "exporters", "extensions", "service", "connectors"}


def parse_config(data: Any, *, registry: Registry | None = None, env: Mapping[str, str] | None = None,
                 source: str = "<config>", for_reading: bool = False) -> ServiceConfig:
    """Validate already-parsed YAML data; raises `ConfigError` listing every problem. `for_reading`: see
    `load_config`."""
    registry = registry or default_registry()
    problems: list[str] = list(registry.load_errors)
    warnings: list[str] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping with receivers, processors, exporters, "
                           "extensions and service"])
    data = substitute_env(data, os.environ if env is None else env, "", warnings, problems)
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown section; valid sections are: {', '.join(sorted(_TOP_KEYS))}")
    if data.get("connectors"):
        problems.append("connectors: connectors are not supported by spanhouse; connect pipelines through an "
                        "exporter and a receiver instead (for example otlp to another spanhouse or Collector)")

    built: dict[Kind, dict[ComponentID, Any]] = {}
    # configured under its section with an unknown type: reported there, so a reference to it is not
    # reported again as "not configured"
    failed: dict[Kind, set[ComponentID]] = {kind: set() for kind in Kind}
    for kind in Kind:
        section = data.get(kind.value) or {}
        built[kind] = {}
        if not isinstance(section, dict):
            problems.append(f"{kind.value}: expected a mapping of component ids to settings")
            continue
        for raw_id, raw_cfg in section.items():
            path = f"{kind.value}::{raw_id}"
            try:
                cid = ComponentID.parse(raw_id)
            except ValueError as exc:
                problems.append(f"{path}: {exc}")
                continue
            factory = registry.get(kind, cid.type)
            if factory is None:
                known = ", ".join(registry.types(kind)) or "(none installed)"
                problems.append(f"{path}: unknown {kind.singular} type {cid.type!r}; known types: {known}")
                failed[kind].add(cid)
                continue
            cfg = build(factory.config, raw_cfg, path, problems)
            validate_tree(cfg, path, problems, for_reading)
            built[kind][cid] = cfg

    service = data.get("service") or {}
    if not isinstance(service, dict):
        problems.append("service: expected a mapping with extensions and pipelines")
        service = {}
    for key in service:
        if key not in ("extensions", "pipelines", "telemetry"):
            problems.append(f"service::{key}: unknown setting; valid settings are: extensions, pipelines, telemetry")
    log_level = _telemetry(service.get("telemetry"), problems, warnings)
    service_exts = tuple(_refs(service.get("extensions"), "service::extensions", Kind.EXTENSION, built, problems,
                               failed))
    pipelines: dict[ComponentID, PipelineConfig] = {}
    raw_pipelines = service.get("pipelines") or {}
    if not isinstance(raw_pipelines, dict) or not raw_pipelines:
        problems.append("service::pipelines: at least one pipeline is required, e.g. traces: {receivers: [otlp], "
                        "exporters: [clickhouse]}")
        raw_pipelines = {}
    for raw_id, raw_p in raw_pipelines.items():
        path = f"service::pipelines::{raw_id}"
        try:
            pid = ComponentID.parse(raw_id)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if pid.type not in SIGNALS:
            problems.append(f"{path}: unsupported signal {pid.type!r}; spanhouse runs {', '.join(SIGNALS)} pipelines")
            continue
        if not isinstance(raw_p, dict):
            problems.append(f"{path}: expected a mapping with receivers, processors and exporters")
            continue
        for key in raw_p:
            if key not in ("receivers", "processors", "exporters"):
                problems.append(f"{path}::{key}: unknown setting; valid settings are: receivers, processors, exporters")
        p = PipelineConfig(
            receivers=tuple(_refs(raw_p.get("receivers"), f"{path}::receivers", Kind.RECEIVER, built, problems,
                                   failed)),
            processors=tuple(_refs(raw_p.get("processors"), f"{path}::processors", Kind.PROCESSOR, built, problems,
                                   failed)),
            exporters=tuple(_refs(raw_p.get("exporters"), f"{path}::exporters", Kind.EXPORTER, built, problems,
                                   failed)),
        )
        # an empty list is its own problem; a list of bad ids has already been reported id by id
        if not p.receivers and not raw_p.get("receivers"):
            problems.append(f"{path}::receivers: a pipeline needs at least one receiver")
        if not p.exporters and not raw_p.get("exporters"):
            problems.append(f"{path}::exporters: a pipeline needs at least one exporter")
        if len(set(p.processors)) != len(p.processors):
            problems.append(f"{path}::processors: a processor may appear only once in a pipeline")
        for kind, ids in ((Kind.RECEIVER, p.receivers), (Kind.PROCESSOR, p.processors), (Kind.EXPORTER, p.exporters)):
            for cid in ids:
                factory = registry.get(kind, cid.type)
                if factory and pid.type not in factory.signals:
                    problems.append(f"{path}::{kind.value}: {kind.singular} {cid} does not support {pid.type}")
        pipelines[pid] = p
    if problems:
        # an unset variable is often the cause of a problem reported on the setting it emptied
        raise ConfigError(problems + [f"(warning) {w}" for w in warnings])
    return ServiceConfig(
        receivers=built[Kind.RECEIVER], processors=built[Kind.PROCESSOR], exporters=built[Kind.EXPORTER],
        extensions=built[Kind.EXTENSION], service_extensions=service_exts, pipelines=pipelines,
        warnings=tuple(warnings), source=source, log_level=log_level, for_reading=for_reading,
    )


def _refs(value: Any, path: str, kind: Kind, built: dict[Kind, dict[ComponentID, Any]],
          problems: list[str], failed: dict[Kind, set[ComponentID]]) -> Iterator[ComponentID]:
    if value is None:
        return
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of {kind.value} ids")
        return
    for i, raw in enumerate(value):
        try:
            cid = ComponentID.parse(raw)
        except ValueError as exc:
            problems.append(f"{path}[{i}]: {exc}")
            continue
        if cid in failed[kind]:
            continue  # configured, and its own problem is reported under its section
        if cid not in built[kind]:
            problems.append(f"{path}[{i}]: {kind.singular} {str(cid)!r} is used here but not configured under "
                            f"{kind.value}")
            continue
        yield cid


def default_config_path() -> Path:
    """`./otel-collector-config.yaml` if present, else the default configuration shipped in the package."""
    local = Path(DEFAULT_CONFIG_NAME)
    if local.is_file():
        return local
    return Path(__file__).with_name(DEFAULT_CONFIG_NAME)


def load_config(path: str | os.PathLike | None = None, *, registry: Registry | None = None,
                env: Mapping[str, str] | None = None, for_reading: bool = False) -> ServiceConfig:
    """Read, substitute, parse and validate a configuration file; raises `ConfigError` on any problem.

    `for_reading` is for commands that only look up the store or an endpoint in the configuration
    (`spanhouse sql`, `trace`, `costs`, `top-traces`, `schema`, `demo`): problems with files and
    variables that only a running component reads (the receivers' bearer tokens and TLS files, the
    exporters' client TLS files) are not reported, since those may exist only where `serve` runs. Such
    a configuration cannot be served."""
    p = Path(path) if path is not None else default_config_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read the configuration file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{p}: not UTF-8 text (byte {exc.object[exc.start]:#04x} on line {line}); "
                           "save the file as UTF-8"]) from None
    return parse_config_text(text, registry=registry, env=env, source=str(p), for_reading=for_reading)


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (as the Collector does): PyYAML
    would keep the last one, so a second `processors:` block would silently replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """A date-shaped value that is not a real date (`2026-13-01`) is a YAML error with its line,
        not a crash inside the loader."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date or time ({exc})", node.start_mark) from None


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", UniqueKeyLoader.construct_yaml_timestamp)


def parse_config_text(text: str, *, registry: Registry | None = None, env: Mapping[str, str] | None = None,
                      source: str = "<config>", for_reading: bool = False) -> ServiceConfig:
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from None
    return parse_config(data, registry=registry, env=env, source=source, for_reading=for_reading)
