# mailbox-service: one image for the API (`serve`) and the worker (`worker`).
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
# The project as a wheel, not editable: it carries templates and migrations as package data
# and leaves the developer tools (src/mailbox_devtools) out.
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app mailbox
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH MAILBOX_LOG_FORMAT=json PYTHONUNBUFFERED=1
USER mailbox
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live').status != 200)"
CMD ["mailbox-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
