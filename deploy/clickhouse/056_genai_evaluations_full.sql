-- genai_evaluations as dashboards, alert rules and `spanhouse sql` should read it:
-- * a result sent as a log record gets the evaluated span's operation, model, prompt name and version,
--   feature, tenant, environment and release from genai_spans where it did not carry them, at read
--   time, so it does not matter whether the span or its result arrived first, or how long after (the
--   record's own values win);
-- * a result sent twice counts once (spanhouse.scores: the same idempotency key of the same span and
--   evaluation, the first kept; without keys, the same value, label and explanation on a span event and
--   a log record within ${pair_window_ms} ms of it (OpenLIT's log_score inside a span), the span event
--   kept, or twice the same record);
-- * Passed says whether a result passed (1), failed (0) or is neither (NULL), as spanhouse.scores defines
--   it: the dashboards' pass rates are avg(Passed), the alert rules count Passed = 0.
-- Both joins read only what results sent as log records or with keys refer to: genai_spans through its
-- TraceId index, genai_evaluations twice; rows that are span events without keys need neither.
CREATE OR REPLACE VIEW ${genai_evaluations_full_view} ${on_cluster} AS
SELECT
    e.* EXCEPT (RowId) REPLACE (
        if(e.Environment != '', e.Environment, s.SpanEnvironment) AS Environment,
        if(e.Release != '', e.Release, s.SpanRelease) AS Release,
        if(e.Feature != '', e.Feature, s.SpanFeature) AS Feature,
        if(e.TenantId != '', e.TenantId, s.SpanTenantId) AS TenantId,
        if(e.Operation != '', e.Operation, s.SpanOperation) AS Operation,
        if(e.RequestModel != '', e.RequestModel, s.SpanRequestModel) AS RequestModel,
        if(e.PromptName != '', e.PromptName, s.SpanPromptName) AS PromptName,
        if(e.PromptName != '', e.PromptVersion, s.SpanPromptVersion) AS PromptVersion),
    ${passed} AS Passed
FROM ${genai_evaluations_table} AS e
LEFT JOIN (
    SELECT TraceId AS SpanTraceId, SpanId AS SpanSpanId, any(Operation) AS SpanOperation,
           any(RequestModel) AS SpanRequestModel, any(PromptName) AS SpanPromptName,
           any(PromptVersion) AS SpanPromptVersion, any(Environment) AS SpanEnvironment,
           any(Release) AS SpanRelease, any(Feature) AS SpanFeature, any(TenantId) AS SpanTenantId
    FROM ${genai_spans_table}
    WHERE TraceId IN (SELECT TraceId FROM ${genai_evaluations_table} WHERE Source = ${log_record} AND SpanId != '')
    GROUP BY TraceId, SpanId
) AS s ON s.SpanTraceId = e.TraceId AND s.SpanSpanId = e.SpanId
LEFT JOIN (
    SELECT TraceId AS CopyTraceId, SpanId AS CopySpanId, EvaluationName AS CopyName,
           groupArray((Source != ${span_event}, Timestamp, RowId, IdempotencyKey,
                       cityHash64(ifNull(toString(ScoreValue), ''), ScoreLabel, Explanation), Source)) AS copies
    FROM ${genai_evaluations_table}
    WHERE TraceId IN (SELECT TraceId FROM ${genai_evaluations_table}
                      WHERE Source = ${log_record} OR IdempotencyKey != '')
    GROUP BY TraceId, SpanId, EvaluationName
    HAVING count() > 1
) AS d ON d.CopyTraceId = e.TraceId AND d.CopySpanId = e.SpanId AND d.CopyName = e.EvaluationName
WHERE NOT arrayExists(
    c -> if(e.IdempotencyKey != '',
            c.4 = e.IdempotencyKey AND (c.1, c.2, c.3) < (e.Source != ${span_event}, e.Timestamp, e.RowId),
            c.4 = '' AND c.5 = cityHash64(ifNull(toString(e.ScoreValue), ''), e.ScoreLabel, e.Explanation)
                AND ((e.Source = ${log_record} AND c.6 = ${span_event}
                      AND abs(dateDiff('millisecond', c.2, e.Timestamp)) <= ${pair_window_ms})
                     OR (c.6 = e.Source AND c.2 = e.Timestamp AND c.3 < e.RowId))),
    d.copies)
