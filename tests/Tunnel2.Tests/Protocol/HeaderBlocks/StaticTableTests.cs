using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

public class StaticTableTests
{
    /// <summary>
    /// The table as shipped. It is part of the wire format (docs/protocol.md §4.3): entries may be appended, never
    /// reordered, renamed or removed, or old and new peers would read each other's headers wrong. If this test fails
    /// because an entry was added at the end, extend this list; any other failure is a breaking change.
    /// </summary>
    private static readonly string[] s_expectedNames =
    [
        "Accept",
        "Accept-Charset",
        "Accept-Encoding",
        "Accept-Language",
        "Accept-Ranges",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Headers",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Origin",
        "Access-Control-Expose-Headers", // 10
        "Access-Control-Max-Age",
        "Access-Control-Request-Headers",
        "Access-Control-Request-Method",
        "Age",
        "Allow",
        "Authorization",
        "Cache-Control",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language", // 20
        "Content-Length",
        "Content-Location",
        "Content-Range",
        "Content-Security-Policy",
        "Content-Type",
        "Cookie",
        "Date",
        "ETag",
        "Expect",
        "Expires", // 30
        "From",
        "Host",
        "If-Match",
        "If-Modified-Since",
        "If-None-Match",
        "If-Range",
        "If-Unmodified-Since",
        "Last-Modified",
        "Link",
        "Location", // 40
        "Max-Forwards",
        "Origin",
        "Pragma",
        "Range",
        "Referer",
        "Referrer-Policy",
        "Refresh",
        "Retry-After",
        "Sec-Fetch-Dest",
        "Sec-Fetch-Mode", // 50
        "Sec-Fetch-Site",
        "Sec-Fetch-User",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Version",
        "Server",
        "Set-Cookie",
        "Strict-Transport-Security", // 60
        "Upgrade",
        "User-Agent",
        "Vary",
        "Via",
        "WWW-Authenticate",
        "X-Content-Type-Options",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Prefix",
        "X-Forwarded-Proto", // 70
        "X-Frame-Options",
        "X-Request-Id",
        "X-Requested-With",
        "traceparent",
        "tracestate",
        "baggage",
        "Sec-CH-UA",
        "Sec-CH-UA-Mobile",
        "Sec-CH-UA-Platform",
        "Upgrade-Insecure-Requests", // 80
        "DNT",
        "Priority",
        "X-Powered-By",
        "Connection",
        "Grpc-Status",
        "Grpc-Message",
        "Grpc-Encoding",
        "Grpc-Accept-Encoding",
        "Grpc-Timeout",
        "TE", // 90
    ];

    private static readonly string[] s_expectedMethods =
    [
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "TRACE",
        "CONNECT",
    ];

    [Fact]
    public void Names_MatchTheShippedTablePrefix()
    {
        Assert.True(StaticTable.NameCount - 1 >= s_expectedNames.Length, "Entries were removed from the static table.");
        for (var i = 0; i < s_expectedNames.Length; i++)
        {
            Assert.Equal(s_expectedNames[i], StaticTable.GetName(i + 1));
        }
    }

    [Fact]
    public void Methods_MatchTheShippedTablePrefix()
    {
        Assert.True(StaticTable.MethodCount - 1 >= s_expectedMethods.Length, "Methods were removed from the static table.");
        for (var i = 0; i < s_expectedMethods.Length; i++)
        {
            Assert.Equal(s_expectedMethods[i], StaticTable.GetMethod(i + 1));
        }
    }

    [Fact]
    public void Names_FitTheOneByteIndexAndAreTokens()
    {
        Assert.InRange(StaticTable.NameCount - 1, 1, StaticTable.MaxIndex);
        for (var i = 1; i < StaticTable.NameCount; i++)
        {
            Assert.True(HeaderValidation.IsToken(StaticTable.GetName(i)), $"Entry {i} is not a token.");
        }
    }

    [Fact]
    public void Names_AreUniqueIgnoringCase()
    {
        var names = Enumerable.Range(1, StaticTable.NameCount - 1).Select(i => StaticTable.GetName(i)!);

        Assert.Equal(StaticTable.NameCount - 1, names.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void GetName_IndexZeroOrNegative_Null(int index)
    {
        Assert.Null(StaticTable.GetName(index));
        Assert.Null(StaticTable.GetMethod(index));
    }

    [Fact]
    public void GetName_PastTheEnd_Null()
    {
        Assert.Null(StaticTable.GetName(StaticTable.NameCount));
        Assert.Null(StaticTable.GetName(StaticTable.MaxIndex + 1));
        Assert.Null(StaticTable.GetMethod(StaticTable.MethodCount));
    }

    [Theory]
    [InlineData("content-length")]
    [InlineData("CONTENT-LENGTH")]
    [InlineData("Content-Length")]
    public void FindName_IgnoresCase(string name)
    {
        Assert.Equal("Content-Length", StaticTable.GetName(StaticTable.FindName(name)));
    }

    [Theory]
    [InlineData("X-Not-In-Table")]
    [InlineData("")]
    public void FindName_Unknown_Zero(string name)
    {
        Assert.Equal(0, StaticTable.FindName(name));
    }

    [Theory]
    [InlineData("get")]
    [InlineData("Post")]
    [InlineData("PROPFIND")]
    public void FindMethod_IsCaseSensitive(string method)
    {
        Assert.Equal(0, StaticTable.FindMethod(method));
    }
}
