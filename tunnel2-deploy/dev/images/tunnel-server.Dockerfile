# tunnel2/tunnel-server: TunnelServer, framework-dependent, as the unprivileged user tunnel2 (10001).
# Configure with environment variables (Tunnel__Tokens__0__Sha256=…, Kestrel__Certificates__Default__Path=…).
ARG RUNTIME=tunnel2/dotnet:10.0
FROM ${RUNTIME}
COPY app/ /app/
WORKDIR /app
USER 10001:10001
EXPOSE 12000
# /readyz turns 503 while the server drains on shutdown.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=6 CMD ["t2-probe", "http://127.0.0.1:12000/readyz", "3"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "/app/TunnelServer.dll"]
CMD ["--urls", "http://0.0.0.0:12000"]
LABEL org.opencontainers.image.title="tunnel2 TunnelServer"
