# syntax=docker/dockerfile:1
# Production image of the Dong Nai mail server (docs: README.md, "Operations").
# Stage 1 builds a wheel from the source tree; stage 2 installs only that wheel
# (no development tree in the image) and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mailserver ./mailserver
COPY storage ./storage
COPY policy ./policy
COPY pki ./pki
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="dongnai-mailserver" \
      org.opencontainers.image.description="Mail server for the state agencies of Dong Nai province"
# postgresql-client: pg_dump/pg_restore for `mailserver backup` (major version 15 = the compose database).
# fonts-dejavu-core: the visible block of signed PDFs (pki.pdf_font; Vietnamese letters).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10025 mailserver \
    && useradd --system --uid 10025 --gid 10025 --home-dir /var/lib/mailserver --shell /usr/sbin/nologin mailserver \
    && mkdir -p /var/lib/mailserver /etc/mailserver \
    && chown mailserver:mailserver /var/lib/mailserver
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY conf/container.toml /etc/mailserver/mailserver.toml
ENV MAILSERVER_CONFIG=/etc/mailserver/mailserver.toml \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/mailserver"]
USER 10025:10025
WORKDIR /var/lib/mailserver
# 25 MX, 465/587 submission, 143/993 IMAP, 8080 web portal, 9100 metrics.
# Binding ports below 1024 as non-root: compose grants CAP_NET_BIND_SERVICE
# via sysctl net.ipv4.ip_unprivileged_port_start=0 (see compose.yaml).
EXPOSE 25 465 587 143 993 4190 8080 9100
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["mailserver", "health", "--quiet"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["mailserver"]
CMD ["serve"]
