"""Operations: what an operator needs to run, watch and report on the server.

* ``settings``: the ``[backup]``, ``[metrics]`` and ``[report]`` config sections;
* ``backup``: consistent online backups, verification against a sha256 manifest,
  restore into an empty data directory, the schedule with retention;
* ``report`` and ``report_html``: the six-monthly usage report (Decision
  70/2009 Điều 12) and the agency-mailbox check compliance (Điều 10 khoản 2),
  as data plus table/CSV/JSON/HTML renderers the web portal reuses;
* ``metrics``: Prometheus text exposition over HTTP;
* ``logs``: text or JSON-lines logging with per-session ids, never secrets;
* ``health``: the container HEALTHCHECK;
* ``mailadmin``: finding and removing unsuitable mail with an audit record.
"""
