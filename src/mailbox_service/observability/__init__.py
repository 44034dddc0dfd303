"""What operators see of a running process: request ids, Prometheus metrics, OpenTelemetry traces.

Metrics and traces live in process-wide registries by the nature of both libraries
(prometheus_client's default registry, one tracer per process); `metrics.configure` and
`tracing.configure` are the one place each is switched on, at start-up, like the broker.
"""
