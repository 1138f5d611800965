"""Jaeger query API over the ClickHouse store."""
