# Minimal image; the operations issue turns this into the multi-stage production build.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mailserver ./mailserver
COPY storage ./storage
COPY policy ./policy
COPY pki ./pki
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/mailserver mail-server \
    && mkdir -p /var/lib/mailserver && chown mail-server /var/lib/mailserver
USER mail-server
WORKDIR /var/lib/mailserver
EXPOSE 2525 2587 2465 2143 2993
ENTRYPOINT ["mailserver"]
CMD ["serve"]
