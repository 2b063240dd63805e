# tunnel2/test-backend: the load tests' TestBackend, framework-dependent, as the unprivileged user tunnel2 (10001).
ARG RUNTIME=tunnel2/dotnet:10.0
FROM ${RUNTIME}
COPY app/ /app/
WORKDIR /app
USER 10001:10001
EXPOSE 12007
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=6 CMD ["t2-probe", "http://127.0.0.1:12007/loadtest/ping", "3"]
ENTRYPOINT ["dotnet", "/app/TestBackend.dll"]
CMD ["--urls", "http://0.0.0.0:12007"]
LABEL org.opencontainers.image.title="tunnel2 TestBackend"
