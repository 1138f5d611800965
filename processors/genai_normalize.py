"""`genai_normalize`: rewrites every GenAI dialect to spanhouse's canonical attributes.

The mappings are data (`semconv/mappings/*.yaml`, shipped as `spanhouse.mappings`): OpenTelemetry GenAI
(older versions and renames), OpenInference, OpenLLMetry/Traceloop, OpenLIT, Vercel AI SDK,
Logfire/Pydantic AI, Langfuse and MLflow. They are compiled once, at start, into dispatch tables;
each span's attributes are then read in one pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from spanhouse import semconv as sc
from spanhouse.batch import STATUS_CODE_ERROR, SpanBatch
from spanhouse.component import ConfigIssue, Factory, Kind, Processor
from spanhouse.normalize import MappingError, Normalizer, load_mappings
from spanhouse.otlp.values import exception_without_message

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class NormalizeConfig:
    conventions: list[str] = field(default_factory=list)
    """Mapping names to apply (`otel_genai`, `openinference`, `traceloop`, `openlit`, `vercel_ai`,
    `logfire`, `langfuse`, `mlflow`, and any from `extra_mappings`); empty applies all of them."""
    drop_original: bool = False
    """Remove the foreign attributes a mapping consumed. The canonical attributes, unknown attributes
    and general OpenTelemetry names (`session.id`, `user.id`, ...) are always kept."""
    span_events: bool = True
    """Turn deprecated content events on spans (`gen_ai.user.message`, `gen_ai.choice`, ...) into
    message attributes when the span has none. The events themselves are kept."""
    extra_mappings: list[str] = field(default_factory=list)
    """Paths of additional mapping files (format: semconv/mappings/README.md). A file whose name
    matches a shipped mapping replaces it."""

    def validate(self) -> Iterator[ConfigIssue]:
        try:
            mappings = load_mappings(self.extra_mappings)
        except MappingError as exc:
            for problem in exc.problems:
                yield ConfigIssue("extra_mappings", problem)
            return
        known = mappings.names()
        for i, name in enumerate(self.conventions):
            if name not in known:
                yield ConfigIssue(
                    f"conventions[{i}]", f"unknown convention {name!r}; known: {', '.join(known)}"
                )


class NormalizeProcessor(Processor):
    """Adds canonical attributes to each span from the foreign ones it carries.

    Guarantees: a canonical value already on the span (or on its resource) is never replaced, except
    the documented spelling fixes of `fix:` sections; foreign attributes stay unless `drop_original`;
    attributes no mapping names pass untouched; `spanhouse.normalized_from` lists the conventions that
    contributed; usage on aggregate spans (agent runs, Vercel outer calls, MLflow trace totals) is never
    made into model-call usage. A span whose attributes cannot be converted goes on as sent, and is
    counted (`failed_spans`); the processor never drops a span and never raises for bad data.
    """

    def __init__(self, config: NormalizeConfig):
        self.config = config
        self.normalizer = Normalizer(
            load_mappings(config.extra_mappings),
            conventions=config.conventions or None,
            drop_original=config.drop_original,
            span_events=config.span_events,
        )
        self.failed_spans = 0
        self._warned = False

    @property
    def conversion_errors(self) -> int:
        """Values left as sent because they could not be converted (see `Normalizer`)."""
        return self.normalizer.conversion_errors

    def process(self, batch: SpanBatch) -> SpanBatch:
        norm = self.normalizer
        for resource in batch.resources:
            norm.normalize_resource(resource.attributes)
        resources = batch.resources
        attributes, names, events = batch.attributes, batch.name, batch.events
        starts, ends, res_index = batch.start_time_unix_nano, batch.end_time_unix_nano, batch.resource_index
        statuses = batch.status_code
        for i in range(len(attributes)):
            try:
                added = norm.normalize(
                    attributes[i], names[i], starts[i], ends[i], resources[res_index[i]].attributes, events[i]
                )
            except Exception as exc:  # a bug must not cost the span; it goes on as sent
                self.failed_spans += 1
                if not self._warned:
                    self._warned = True
                    # not log.exception: the message may quote a value, and redaction has not run yet
                    log.error(
                        "genai_normalize: a span could not be normalized and was passed on as sent "
                        "(reported once; see failed_spans): %s", exception_without_message(exc)
                    )
                continue
            if added is not None:
                events[i] = added
            if statuses[i] == STATUS_CODE_ERROR:
                _error_type_of_failure(attributes[i], events[i])
        return batch


_OPERATION = sc.GEN_AI_OPERATION_NAME


_OTHER_ERROR = "_OTHER"
"""`error.type`'s fallback value in the OpenTelemetry conventions, for an error the instrumentation
names no type of."""


def _error_type_of_failure(attrs: dict, events: list | None) -> None:
    """A failed GenAI span without `error.type` (OpenInference sets none) takes the type of its last
    recorded exception, as the GenAI conventions ask `error.type` of failed calls; one that recorded
    no exception with a type (Langfuse's OpenAI wrapper sets only the status and its level ERROR) takes
    the conventions' fallback `_OTHER`, so every failed call has one."""
    if _OPERATION not in attrs or sc.ERROR_TYPE in attrs:
        return
    for event in reversed(events or ()):
        if event.name == sc.EVENT_EXCEPTION:
            kind = event.attributes.get(sc.EXCEPTION_TYPE)
            if isinstance(kind, str) and kind:
                attrs[sc.ERROR_TYPE] = kind
                return
            break
    attrs[sc.ERROR_TYPE] = _OTHER_ERROR


def new_factory() -> Factory:
    return Factory(
        kind=Kind.PROCESSOR,
        type="genai_normalize",
        config=NormalizeConfig,
        create=lambda settings, cfg: NormalizeProcessor(cfg),
        stability="development",
    )
