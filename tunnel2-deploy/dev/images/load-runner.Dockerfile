# tunnel2/load-runner: the LoadTests harness, framework-dependent, as the unprivileged user tunnel2 (10001).
# Reports go to /reports/artifacts/load/<timestamp>-<profile> (mount the repository's artifacts/ on /reports/artifacts).
ARG RUNTIME=tunnel2/dotnet:10.0
FROM ${RUNTIME}
# The plots name DejaVu Sans.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-dejavu-core \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/* \
 && mkdir -p /reports/artifacts && chown -R 10001:10001 /reports
COPY app/ /app/
WORKDIR /reports
USER 10001:10001
HEALTHCHECK NONE
ENTRYPOINT ["dotnet", "/app/LoadTests.dll"]
CMD ["--help"]
LABEL org.opencontainers.image.title="tunnel2 load harness"
