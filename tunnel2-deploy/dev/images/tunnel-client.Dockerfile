# tunnel2/tunnel-client: TunnelClient, framework-dependent, as the unprivileged user tunnel2 (10001).
# Configure with TUNNEL2_TOKEN (or --token-file on a mounted secret) and Tunnel__Server, Tunnel__Backend,
# Tunnel__Routes__<prefix>, Tunnel__Session, Tunnel__ServerCertificateSha256.
ARG RUNTIME=tunnel2/dotnet:10.0
FROM ${RUNTIME}
COPY app/ /app/
WORKDIR /app
USER 10001:10001
# The client has no listening port: it is healthy when a request through its own session gets 2xx. Set
# TUNNEL2_HEALTH_URL to such a URL (e.g. http://tunnel_server:12000/session/<id>/<path>); unset, the check passes.
ENV TUNNEL2_HEALTH_URL=
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=6 CMD if [ -n "$TUNNEL2_HEALTH_URL" ]; then t2-probe "$TUNNEL2_HEALTH_URL" 3; fi
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "/app/TunnelClient.dll"]
LABEL org.opencontainers.image.title="tunnel2 TunnelClient"
