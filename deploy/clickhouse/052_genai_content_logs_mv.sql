-- Content log records → genai_content. The event is named by EventName or, from older SDKs, by the
-- event.name attribute. operation.details carries canonical arrays in its attributes; the deprecated
-- per-message events carry one OpenAI-style message in the body, converted here to a canonical
-- message: text parts, tool_call parts (arguments parsed when they are a JSON string), and
-- tool_call_response parts for tool results. A choice's finish reason is written in the canonical
-- words (values.yaml's finish_reason map), as genai_normalize writes it in span messages.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_content_logs_view} ${on_cluster}
TO ${genai_content_table}
AS WITH
    LogAttributes AS a,
    if(EventName != '', EventName, a[${EVENT_NAME}]) AS name,
    name = ${EVENT_GEN_AI_CHOICE} AS is_choice,
    Body AS b,
    JSONExtractString(b, 'finish_reason') AS finish_sent,
    transform(lower(finish_sent), ${finish_reason_from}, ${finish_reason_to}, finish_sent) AS finish,
    isValidJSON(b) AND JSONType(b) = 'Object' AS is_object,
    if(is_choice AND JSONType(b, 'message') = 'Object', JSONExtractRaw(b, 'message'), b) AS m,
    JSONType(m, 'content') AS content_type,
    JSONExtractArrayRaw(m, 'content') AS content_items,
    multiIf(
        NOT is_object, if(b = '', [], [concat('{"type":"text","content":', toJSONString(b), '}')]),
        content_type = 'String', [concat('{"type":"text","content":', JSONExtractRaw(m, 'content'), '}')],
        content_type = 'Array' AND arrayAll(p -> JSONType(p) = 'Object', content_items),
            arrayMap(p -> multiIf(
                JSONExtractString(p, 'type') = 'text' AND JSONHas(p, 'text'),
                    concat('{"type":"text","content":', JSONExtractRaw(p, 'text'), '}'),
                JSONExtractString(p, 'type') = 'image_url',
                    concat('{"type":"uri","modality":"image","uri":', JSONExtractRaw(p, 'image_url', 'url'), '}'),
                p), content_items),
        content_type IN ('Null', ''), [],
        [concat('{"type":"text","content":', toJSONString(JSONExtractRaw(m, 'content')), '}')]
    ) AS text_parts,
    if(JSONType(m, 'tool_calls') = 'Array', JSONExtractArrayRaw(m, 'tool_calls'),
       JSONExtractArrayRaw(b, 'tool_calls')) AS calls,
    arrayMap(c -> concat(
        '{"type":"tool_call","id":', if(JSONHas(c, 'id'), JSONExtractRaw(c, 'id'), 'null'),
        ',"name":', if(JSONHas(c, 'function', 'name'), JSONExtractRaw(c, 'function', 'name'), '""'),
        multiIf(NOT JSONHas(c, 'function', 'arguments'), '',
                JSONType(c, 'function', 'arguments') = 'String'
                    AND isValidJSON(JSONExtractString(c, 'function', 'arguments')),
                    concat(',"arguments":', JSONExtractString(c, 'function', 'arguments')),
                concat(',"arguments":', JSONExtractRaw(c, 'function', 'arguments'))),
        '}'), calls) AS call_parts,
    concat('{"type":"tool_call_response","id":',
           multiIf(JSONHas(b, 'id'), JSONExtractRaw(b, 'id'), JSONHas(b, 'tool_call_id'),
                   JSONExtractRaw(b, 'tool_call_id'), 'null'),
           ',"response":', multiIf(NOT is_object, toJSONString(b), JSONHas(b, 'content'), JSONExtractRaw(b, 'content'),
                                  'null'),
           '}') AS response_part,
    multiIf(JSONExtractString(m, 'role') != '', JSONExtractString(m, 'role'),
            name = ${EVENT_GEN_AI_SYSTEM_MESSAGE}, 'system', name = ${EVENT_GEN_AI_USER_MESSAGE}, 'user',
            name = ${EVENT_GEN_AI_TOOL_MESSAGE}, 'tool', 'assistant') AS role,
    concat('[{"role":', toJSONString(role), ',"parts":[',
           arrayStringConcat(if(name = ${EVENT_GEN_AI_TOOL_MESSAGE}, [response_part],
                                arrayConcat(text_parts, call_parts)), ','),
           ']',
           if(is_choice AND finish != '', concat(',"finish_reason":', toJSONString(finish)), ''),
           '}]') AS message,
    multiIf(
        name = ${EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS},
            arrayFilter(f -> f.4 != '', [
                ('system_instructions', 1, 0, a[${GEN_AI_SYSTEM_INSTRUCTIONS}]),
                ('input', 1, 0, a[${GEN_AI_INPUT_MESSAGES}]),
                ('output', 1, 0, a[${GEN_AI_OUTPUT_MESSAGES}])]),
        name = ${EVENT_GEN_AI_SYSTEM_MESSAGE},
            if(empty(text_parts), [],
               [('system_instructions', 0, 0, concat('[', arrayStringConcat(text_parts, ','), ']'))]),
        is_choice, [('output', 0, toUInt32(JSONExtractUInt(b, 'index')), message)],
        [('input', 0, 0, message)]
    ) AS pieces
SELECT
    Timestamp, TraceId, SpanId, ServiceName,
    if(ResourceAttributes[${DEPLOYMENT_ENVIRONMENT_NAME}] != '', ResourceAttributes[${DEPLOYMENT_ENVIRONMENT_NAME}],
       a[${DEPLOYMENT_ENVIRONMENT_NAME}]) AS Environment,
    if(a[${SPANHOUSE_FEATURE}] != '', a[${SPANHOUSE_FEATURE}], ResourceAttributes[${SPANHOUSE_FEATURE}]) AS Feature,
    if(a[${SPANHOUSE_TENANT_ID}] != '', a[${SPANHOUSE_TENANT_ID}], ResourceAttributes[${SPANHOUSE_TENANT_ID}]) AS TenantId,
    name AS EventName,
    piece.1 AS Kind,
    piece.2 AS Complete,
    piece.3 AS Position,
    rowNumberInBlock() AS Seq,
    piece.4 AS Content
FROM ${logs_table}
ARRAY JOIN pieces AS piece
WHERE SpanId != ''
  AND name IN (${EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS}, ${EVENT_GEN_AI_SYSTEM_MESSAGE},
               ${EVENT_GEN_AI_USER_MESSAGE}, ${EVENT_GEN_AI_ASSISTANT_MESSAGE}, ${EVENT_GEN_AI_TOOL_MESSAGE},
               ${EVENT_GEN_AI_CHOICE})
