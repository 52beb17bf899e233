"""What a running instance tells its operator: request ids, logs, metrics and traces.

- `request_id`: the id each request gets, in its answer and in every line it logs;
- `logs`: text (development) or JSON lines (LOG_FORMAT=json), uvicorn's own included;
- `requests`: the middleware that times each request, logs it and counts it;
- `metrics`: the Prometheus metrics, across worker processes;
- `metrics_port`: where they are served, a port of their own (METRICS_PORT);
- `database`: pool and query figures from SQLAlchemy's events, and slow queries;
- `tracing`: OpenTelemetry traces, on through the standard `OTEL_*` variables.
"""
