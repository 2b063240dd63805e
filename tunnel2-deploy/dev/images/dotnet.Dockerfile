# tunnel2/dotnet: the .NET and ASP.NET Core shared runtimes (copied from the SDK that built the apps) on tunnel2/base.
# The app images add only their framework-dependent publish output (a few MB each) and share this layer.
ARG BASE=tunnel2/base:bookworm
FROM ${BASE}
COPY dotnet/ /usr/share/dotnet/
ENV PATH=/usr/share/dotnet:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DOTNET_ROOT=/usr/share/dotnet \
    DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 \
    DOTNET_NOLOGO=1 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    HOME=/tmp
LABEL org.opencontainers.image.title="tunnel2 .NET runtime" \
      org.opencontainers.image.description="Debian bookworm minbase + Microsoft.NETCore.App + Microsoft.AspNetCore.App"
