"""In-app side of spanhouse: redact spans before they leave the process, and mark them.

```python
from spanhouse import sdk

sdk.configure(endpoint="http://127.0.0.1:4318", service_name="support-copilot",
              environment="production", policy="redacted")
with sdk.feature("ticket_reply"), sdk.prompt("ticket_reply_prompt", version="v17"):
    reply = client.chat.completions.create(...)   # spans from any OTel instrumentation
```

The redaction core is the one the `genai_redact` processor runs (`spanhouse.redact`). Export is
bounded and non-blocking: when spanhouse is down or slow, spans are dropped, never waited for.
"""

from spanhouse.sdk._configure import configure
from spanhouse.sdk._context import (
    MarkingLogRecordProcessor,
    MarkingSpanProcessor,
    dataset_example,
    feature,
    prompt,
    tenant,
)
from spanhouse.sdk._exporter import RedactingSpanExporter

__all__ = [
    "configure",
    "dataset_example",
    "feature",
    "MarkingLogRecordProcessor",
    "MarkingSpanProcessor",
    "prompt",
    "RedactingSpanExporter",
    "tenant",
]
