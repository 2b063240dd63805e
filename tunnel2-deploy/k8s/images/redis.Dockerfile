# tunnel2/redis: Debian bookworm's redis-server (7.0) on tunnel2/base, for the scale-out session directory
# (../redis.yaml). Built like tunnel2/httpbin, with `docker build --network host` so that apt reaches the mirror set in
# tunnel2/base. Nothing comes from Docker Hub:
#   DOCKER_BUILDKIT=0 docker build --network host -f tunnel2-deploy/k8s/images/redis.Dockerfile \
#     --build-arg BASE=tunnel2/base:bookworm -t tunnel2/redis:dev tunnel2-deploy/k8s/images
ARG BASE=tunnel2/base:bookworm
FROM ${BASE}
# policy-rc.d: the package's maintainer scripts must not start a redis-server during the build.
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && apt-get clean \
 && rm -f /usr/sbin/policy-rc.d \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/* \
 && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["redis-server"]
# Without a config file: in memory only, no persistence. The Deployment passes its own arguments (password file etc.).
CMD ["--bind", "0.0.0.0", "--port", "6379", "--save", "", "--appendonly", "no", "--dir", "/data"]
LABEL org.opencontainers.image.title="tunnel2 redis (Debian redis-server) for the session directory"
