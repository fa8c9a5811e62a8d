# Arcadia's app image; compose.yaml runs it as the game and as the scene-art worker.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 arcadia
WORKDIR /app

# Editable install: templates/ and static/ live beside the package (game.settings.PROJECT_ROOT)
# and are not packaged. They are copied after it, so editing them reuses the installed layer.
COPY pyproject.toml README.md ./
COPY game ./game
RUN pip install -e .
COPY templates ./templates
COPY static ./static

# .data holds the generated cookie-signing key and (under images/) the scene pictures; compose
# mounts volumes here, and new named volumes take this owner.
RUN mkdir -p .data/images && chown -R arcadia:arcadia .data
USER arcadia

ENV CHATGAME_HOST=0.0.0.0 \
    CHATGAME_PORT=3000
EXPOSE 3000
# No HEALTHCHECK here: the worker runs this image too and serves no HTTP; compose.yaml checks
# the app at /healthz.
CMD ["python", "-m", "game"]
