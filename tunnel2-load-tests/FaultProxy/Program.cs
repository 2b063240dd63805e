using System.Net;
using Tunnel2.FaultProxy;

// FaultProxy --target HOST:PORT [--listen 127.0.0.1:PORT] [--upstream "latency=50ms ..."] [--downstream "..."] [--seed N]
//            [--buffer-size 16k]
// --buffer-size is the largest read per direction (FaultProxyOptions.BufferSize); at most 8 reads queue per direction
// plus the one being delayed, so under latency it also bounds the bytes in flight: about 9 × buffer-size per one-way
// latency, like a TCP window of 18 × buffer-size over the round trip.
// Prints "listening <address> -> <target>" first, then reads control commands (ControlCommands) from standard input,
// one per line, until "quit", Ctrl+C or SIGTERM. At the end of standard input it keeps running.
string? target = null;
var listen = new IPEndPoint(IPAddress.Loopback, 0);
string? upstream = null;
string? downstream = null;
int? seed = null;
var bufferSize = new FaultProxyOptions().BufferSize;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        var value = i + 1 < args.Length ? args[i + 1] : throw new FormatException($"{args[i]} needs a value.");
        switch (args[i])
        {
            case "--target":
                target = value;
                break;
            case "--listen":
                listen = IPEndPoint.Parse(value);
                break;
            case "--upstream":
                upstream = value;
                break;
            case "--downstream":
                downstream = value;
                break;
            case "--seed":
                seed = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                break;
            case "--buffer-size":
                var size = ToxicSyntax.ParseSize(value);
                bufferSize = size is >= 1024 and <= 64L * 1024 * 1024 ? (int)size : throw new FormatException("--buffer-size must be between 1k and 64m.");
                break;
            default:
                throw new FormatException($"Unknown option {args[i]}.");
        }

        i++;
    }

    if (target is null)
    {
        throw new FormatException("--target HOST:PORT is required.");
    }
}
catch (FormatException ex)
{
    await Console.Error.WriteLineAsync($"{ex.Message}\nUsage: FaultProxy --target HOST:PORT [--listen 127.0.0.1:PORT] [--upstream \"latency=50ms ...\"] [--downstream \"...\"] [--seed N] [--buffer-size 16k]\nCommands on stdin: {ControlCommands.Help}");
    return 2;
}

var separator = target.LastIndexOf(':');
if (separator <= 0 || !int.TryParse(target.AsSpan(separator + 1), out var port))
{
    await Console.Error.WriteLineAsync($"--target must be HOST:PORT, got '{target}'.");
    return 2;
}

var host = target[..separator].Trim('[', ']');
EndPoint targetEndPoint = IPAddress.TryParse(host, out var address) ? new IPEndPoint(address, port) : new DnsEndPoint(host, port);

await using var proxy = await FaultProxy.StartAsync(targetEndPoint, new FaultProxyOptions { ListenEndPoint = listen, Seed = seed, BufferSize = bufferSize });
try
{
    if (upstream is not null)
    {
        ControlCommands.Execute(proxy, "upstream " + upstream);
    }

    if (downstream is not null)
    {
        ControlCommands.Execute(proxy, "downstream " + downstream);
    }
}
catch (FormatException ex)
{
    await Console.Error.WriteLineAsync(ex.Message);
    return 2;
}

Console.WriteLine($"listening {proxy.EndPoint} -> {proxy.Target}");
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});

try
{
    while (!stop.IsCancellationRequested)
    {
        var line = await Console.In.ReadLineAsync(stop.Token);
        if (line is null)
        {
            // End of standard input (started in the background): run until a signal.
            await Task.Delay(Timeout.Infinite, stop.Token);
            break;
        }

        if (line.Trim() is "quit" or "exit")
        {
            break;
        }

        try
        {
            var reply = ControlCommands.Execute(proxy, line);
            if (reply.Length > 0)
            {
                Console.WriteLine(reply);
            }
        }
        catch (FormatException ex)
        {
            await Console.Error.WriteLineAsync(ex.Message);
        }
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
}

return 0;
