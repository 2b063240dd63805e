# tunnel2/httpbin: Debian's python3-httpbin served by gunicorn with gevent workers, as the unprivileged user tunnel2.
# Built with `docker build --network host` so apt reaches the mirror configured in tunnel2/base (no Docker Hub).
ARG BASE=tunnel2/base:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-httpbin gunicorn python3-gevent \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/*
USER 10001:10001
WORKDIR /tmp
EXPOSE 12005
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=6 CMD ["t2-probe", "http://127.0.0.1:12005/get", "3"]
ENTRYPOINT ["gunicorn"]
CMD ["-b", "0.0.0.0:12005", "httpbin:app", "-k", "gevent", "--workers", "8", "--worker-connections", "1000", "--graceful-timeout", "5", "--worker-tmp-dir", "/tmp"]
LABEL org.opencontainers.image.title="tunnel2 httpbin (Debian python3-httpbin, gunicorn, gevent)"
