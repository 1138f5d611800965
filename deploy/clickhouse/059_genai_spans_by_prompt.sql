-- genai_spans of a time range, each model call under the prompt it ran for:
--   SELECT ... FROM genai_spans_by_prompt(since = now() - INTERVAL 7 DAY, until = now())
-- A model call that names no prompt of its own takes the name of its nearest ancestor that names one
-- (genai_prompt_links, walked up through otel_traces' parent ids, at most ${prompt_depth} levels and no
-- more than the trace has spans), and that ancestor's version unless the call carries a version of its
-- own (OpenInference: the template version on the call, prompt.id on the app's span). A call that names
-- its prompt keeps it; a call with no such ancestor keeps none. PromptSource says which: 'span',
-- 'ancestor' or ''.
-- The range bounds every read: genai_spans' rows of [since, until], and, for the traces that have both
-- a call without a prompt and a span naming one, their links and parent ids from an hour before `since`
-- on (an ancestor starts before its calls); stores and traces without such calls cost one extra scan.
CREATE OR REPLACE VIEW ${genai_spans_by_prompt_view} ${on_cluster} AS
SELECT
    s.* REPLACE (
        if(s.PromptName != '', s.PromptName, a.AncestorPromptName) AS PromptName,
        if(s.PromptName != '' OR s.PromptVersion != '', s.PromptVersion, a.AncestorPromptVersion) AS PromptVersion),
    multiIf(s.PromptName != '', 'span', a.AncestorPromptName != '', 'ancestor', '') AS PromptSource
FROM ${genai_spans_table} AS s
ANY LEFT JOIN (
    SELECT o.TraceId AS CallTraceId, o.SpanId AS CallSpanId,
           arrayFold((acc, i) -> if(acc.2 != '' OR acc.1 = '', acc,
                                    if(mapContains(p.Names, acc.1), (acc.1, p.Names[acc.1], p.Versions[acc.1]),
                                       (e.Parents[acc.1], '', ''))),
                     range(least(${prompt_depth}, length(e.Parents) + 1)), (o.ParentSpanId, '', '')) AS found,
           found.2 AS AncestorPromptName, found.3 AS AncestorPromptVersion
    FROM (
        SELECT TraceId, SpanId, any(ParentSpanId) AS ParentSpanId
        FROM ${genai_spans_table} AS s
        WHERE s.Timestamp >= {since:DateTime64(9)} AND s.Timestamp <= {until:DateTime64(9)}
          AND s.PromptName = '' AND s.ParentSpanId != '' AND ${model_call}
          AND s.TraceId IN (SELECT TraceId FROM ${genai_prompt_links_table}
                            WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1)
                              AND Timestamp <= {until:DateTime64(9)})
        GROUP BY TraceId, SpanId
    ) AS o
    INNER JOIN (
        SELECT TraceId, CAST((groupArray(SpanId), groupArray(PromptName)), 'Map(String, String)') AS Names,
               CAST((groupArray(SpanId), groupArray(PromptVersion)), 'Map(String, String)') AS Versions
        FROM ${genai_prompt_links_table}
        WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1) AND Timestamp <= {until:DateTime64(9)}
        GROUP BY TraceId
    ) AS p ON p.TraceId = o.TraceId
    LEFT JOIN (
        SELECT TraceId, CAST((groupArray(SpanId), groupArray(ParentSpanId)), 'Map(String, String)') AS Parents
        FROM ${traces_table}
        WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1) AND Timestamp <= {until:DateTime64(9)}
          AND ParentSpanId != ''
          AND TraceId IN (SELECT TraceId FROM ${genai_spans_table} AS s
                          WHERE s.Timestamp >= {since:DateTime64(9)} AND s.Timestamp <= {until:DateTime64(9)}
                            AND s.PromptName = '' AND s.ParentSpanId != '' AND ${model_call}
                            AND s.TraceId IN (SELECT TraceId FROM ${genai_prompt_links_table}
                                              WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1)
                                                AND Timestamp <= {until:DateTime64(9)}))
        GROUP BY TraceId
        -- the trace-id bloom filter skips granules for a few traces, but checking it against many ids
        -- costs more than reading the ids (10x at 40k traces in 200k spans)
        SETTINGS use_index_for_in_with_subqueries_max_values = 10000
    ) AS e ON e.TraceId = o.TraceId
) AS a ON a.CallTraceId = s.TraceId AND a.CallSpanId = s.SpanId
WHERE s.Timestamp >= {since:DateTime64(9)} AND s.Timestamp <= {until:DateTime64(9)}
