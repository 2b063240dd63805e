using System.Net;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Tunnel2.Benchmarks.HeaderBlocks;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Server.ProxyEntry;

namespace Tunnel2.Benchmarks.ProxyEntry;

/// <summary>
/// The heads as the server really handles them, on a <see cref="DefaultHttpContext"/> (Kestrel's own header
/// collections differ, so these are indicative): <see cref="RequestHeadEncoder"/> turning the public request into a
/// header block (hop-by-hop fields dropped, X-Forwarded-* added), and <see cref="ResponseHeadDecoder"/> applying the
/// response block to the public response. They add the HttpContext side to the codec numbers of
/// <see cref="HeaderBlockBenchmarks"/>.
/// </summary>
[MemoryDiagnoser]
public class ProxyEntryHeadBenchmarks
{
    private const string ForwardPrefix = "/session/22222222-2222-2222-2222-222222222222";

    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly DefaultHttpContext _request = new();
    private readonly DefaultHttpContext _response = new();
    private byte[] _responseBlock = [];

    [GlobalSetup]
    public void Setup()
    {
        var request = _request.Request;
        request.Method = HttpMethods.Get;
        request.Scheme = "https";
        _request.Connection.RemoteIpAddress = IPAddress.Parse("203.0.113.7");
        request.Headers.Host = "tunnel.example.com";
        request.Headers.Connection = "keep-alive";
        foreach (var (name, value) in SampleHeads.RequestFields)
        {
            if (!name.StartsWith("X-Forwarded-", StringComparison.Ordinal))
            {
                request.Headers.Append(name, value);
            }
        }

        _responseBlock = _buffer.AsSpan(0, SampleHeads.EncodeResponse(_buffer)).ToArray();
        var length = EncodeRequestHead();
        Console.WriteLine($"// RequestHeadEncoder block: {length} B (SampleHeads request block: {SampleHeads.EncodeRequest(new byte[4096])} B).");
        if (DecodeResponseHead() != SampleHeads.ResponseStatus || _response.Response.Headers.Count != SampleHeads.ResponseFields.Length)
        {
            throw new InvalidOperationException("The response head was not applied.");
        }
    }

    /// <returns>The block's length in bytes.</returns>
    [Benchmark]
    public int EncodeRequestHead()
    {
        var writer = new HeaderBlockWriter(_buffer);
        writer.WriteRequestHead(_request.Request.Method, SampleHeads.RequestTarget);
        return RequestHeadEncoder.Write(ref writer, _request, ForwardPrefix, upgrade: null) ? writer.Length : -1;
    }

    /// <returns>The status applied.</returns>
    [Benchmark]
    public int DecodeResponseHead()
    {
        var response = _response.Response;
        response.Headers.Clear();
        response.ContentLength = null;
        var decoder = new ResponseHeadDecoder(response);
        var error = HeaderBlockReader.Read(_responseBlock, ref decoder, int.MaxValue) ?? decoder.Error;
        return error is null ? decoder.StatusCode : -1;
    }
}
