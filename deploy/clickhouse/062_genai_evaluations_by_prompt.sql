-- genai_evaluations_full of a time range, each result under the prompt of the output it judges:
--   SELECT ... FROM genai_evaluations_by_prompt(since = now() - INTERVAL 7 DAY, until = now())
-- A result keeps the prompt genai_evaluations_full gives it (the result's own, or its span's:
-- PromptSource 'result'). One without takes, in this order: the prompt its evaluated span names when
-- that span is not a GenAI span ('span': MLflow's root, an OpenInference CHAIN; genai_prompt_links);
-- its nearest ancestor's, walked up as genai_spans_by_prompt walks ('ancestor', with the evaluated span's
-- own version if it has one); or, for a result on a span above the model calls (a root, an agent), the
-- prompt the model calls under it ran under, if they ran under one name@version ('descendants'; a call
-- under no prompt does not count, calls under two leave the result without). Else PromptSource is ''.
-- The range bounds every read: the results of [since, until], and, for the traces with a result without
-- a prompt and a span naming one, their links, parent ids and model calls from an hour before `since` on.
CREATE OR REPLACE VIEW ${genai_evaluations_by_prompt_view} ${on_cluster} AS
SELECT
    r.* REPLACE (
        if(r.PromptName != '', r.PromptName, a.FoundName) AS PromptName,
        if(r.PromptName != '', r.PromptVersion, a.FoundVersion) AS PromptVersion),
    if(r.PromptName != '', 'result', a.FoundSource) AS PromptSource
FROM ${genai_evaluations_full_view} AS r
ANY LEFT JOIN (
    SELECT t.TraceId AS FoundTraceId, t.SpanId AS FoundSpanId,
           -- the evaluated span, then its ancestors, nearest first
           arrayFold((acc, i) -> if(acc[-1] = '', acc, arrayPushBack(acc, x.Parents[acc[-1]])),
                     range(least(${prompt_depth}, length(x.Parents) + 1)), [t.SpanId]) AS up,
           arrayFirst(id -> mapContains(x.Names, id), up) AS hit,
           arrayDistinct(arrayMap(c -> (c.1, c.2), arrayFilter(c -> c.1 != '' AND has(c.3, t.SpanId), x.Calls))) AS below,
           multiIf(hit != '', x.Names[hit], length(below) = 1, below[1].1, '') AS FoundName,
           multiIf(hit = t.SpanId, x.Versions[hit],
                   hit != '', if(x.OwnVersions[t.SpanId] != '', x.OwnVersions[t.SpanId], x.Versions[hit]),
                   length(below) = 1, below[1].2, '') AS FoundVersion,
           multiIf(hit = t.SpanId, 'span', hit != '', 'ancestor', length(below) = 1, 'descendants', '') AS FoundSource
    FROM (
        SELECT TraceId, SpanId
        FROM ${genai_evaluations_table}
        WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp <= {until:DateTime64(9)}
          AND PromptName = '' AND SpanId != ''
          AND TraceId IN (SELECT TraceId FROM ${genai_prompt_links_table}
                          WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1)
                            AND Timestamp <= {until:DateTime64(9)})
        GROUP BY TraceId, SpanId
    ) AS t
    INNER JOIN (
        -- per trace: the spans naming a prompt, the parent ids, and each model call with the prompt it
        -- ran under (its own, else its nearest ancestor's) and its ancestors
        SELECT p.TraceId AS TraceId, p.Names AS Names, p.Versions AS Versions, g.Parents AS Parents,
               m.OwnVersions AS OwnVersions,
               arrayMap(c -> (if(c.3 != '', c.3, p.Names[arrayFirst(id -> mapContains(p.Names, id), c.5)]),
                              if(c.3 != '' OR c.4 != '', c.4, p.Versions[arrayFirst(id -> mapContains(p.Names, id), c.5)]),
                              c.5),
                        arrayMap(c -> (c.1, c.2, c.3, c.4,
                                       arrayFold((acc, i) -> if(acc[-1] = '', acc, arrayPushBack(acc, g.Parents[acc[-1]])),
                                                 range(least(${prompt_depth}, length(g.Parents) + 1)), [c.2])),
                                 m.Calls)) AS Calls
        FROM (
            SELECT TraceId, CAST((groupArray(SpanId), groupArray(PromptName)), 'Map(String, String)') AS Names,
                   CAST((groupArray(SpanId), groupArray(PromptVersion)), 'Map(String, String)') AS Versions
            FROM ${genai_prompt_links_table}
            WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1) AND Timestamp <= {until:DateTime64(9)}
            GROUP BY TraceId
        ) AS p
        LEFT JOIN (
            SELECT TraceId, CAST((groupArray(SpanId), groupArray(ParentSpanId)), 'Map(String, String)') AS Parents
            FROM ${traces_table}
            WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1) AND Timestamp <= {until:DateTime64(9)}
              AND ParentSpanId != ''
              AND TraceId IN (SELECT TraceId FROM ${genai_evaluations_table}
                              WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp <= {until:DateTime64(9)}
                                AND PromptName = '' AND SpanId != ''
                                AND TraceId IN (SELECT TraceId FROM ${genai_prompt_links_table}
                                                WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1)
                                                  AND Timestamp <= {until:DateTime64(9)}))
            GROUP BY TraceId
            -- as in genai_spans_by_prompt: checking the trace-id bloom filter against many ids costs more
            -- than reading the ids
            SETTINGS use_index_for_in_with_subqueries_max_values = 10000
        ) AS g ON g.TraceId = p.TraceId
        LEFT JOIN (
            SELECT TraceId,
                   groupArrayIf((SpanId, ParentSpanId, PromptName, PromptVersion), ${model_call}) AS Calls,
                   CAST((groupArrayIf(SpanId, s.PromptName = '' AND s.PromptVersion != ''),
                         groupArrayIf(PromptVersion, s.PromptName = '' AND s.PromptVersion != '')),
                        'Map(String, String)') AS OwnVersions
            FROM ${genai_spans_table} AS s
            WHERE s.Timestamp >= {since:DateTime64(9)} - toIntervalHour(1) AND s.Timestamp <= {until:DateTime64(9)}
              AND s.TraceId IN (SELECT TraceId FROM ${genai_evaluations_table}
                                WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp <= {until:DateTime64(9)}
                                  AND PromptName = '' AND SpanId != ''
                                  AND TraceId IN (SELECT TraceId FROM ${genai_prompt_links_table}
                                                  WHERE Timestamp >= {since:DateTime64(9)} - toIntervalHour(1)
                                                    AND Timestamp <= {until:DateTime64(9)}))
            GROUP BY TraceId
            SETTINGS use_index_for_in_with_subqueries_max_values = 10000
        ) AS m ON m.TraceId = p.TraceId
    ) AS x ON x.TraceId = t.TraceId
) AS a ON a.FoundTraceId = r.TraceId AND a.FoundSpanId = r.SpanId
WHERE r.Timestamp >= {since:DateTime64(9)} AND r.Timestamp <= {until:DateTime64(9)}
