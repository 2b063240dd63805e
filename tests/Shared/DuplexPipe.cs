using System.IO.Pipelines;

namespace Tunnel2.Testing;

/// <summary>An in-memory duplex byte stream (Kestrel's test DuplexPipe): what one end writes, the other reads.</summary>
public sealed class DuplexPipe : IDuplexPipe
{
    public DuplexPipe(PipeReader input, PipeWriter output)
    {
        Input = input;
        Output = output;
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    /// <summary>Two connected ends with default pipe options (64 KiB back-pressure each way).</summary>
    public static DuplexPipePair CreateConnectionPair()
        => CreateConnectionPair(new PipeOptions(useSynchronizationContext: false), new PipeOptions(useSynchronizationContext: false));

    /// <summary>
    /// Two connected ends. <paramref name="inputOptions"/> configure the pipe that <see cref="DuplexPipePair.Transport"/>
    /// reads (and <see cref="DuplexPipePair.Application"/> writes); <paramref name="outputOptions"/> the other direction.
    /// </summary>
    public static DuplexPipePair CreateConnectionPair(PipeOptions inputOptions, PipeOptions outputOptions)
    {
        var input = new Pipe(inputOptions);
        var output = new Pipe(outputOptions);
        var transport = new DuplexPipe(input.Reader, output.Writer);
        var application = new DuplexPipe(output.Reader, input.Writer);
        return new DuplexPipePair(transport, application);
    }
}

/// <summary>The two ends of an in-memory connection: the code under test runs on <see cref="Transport"/>, the test (or a second peer) on <see cref="Application"/>.</summary>
public readonly record struct DuplexPipePair(IDuplexPipe Transport, IDuplexPipe Application);
