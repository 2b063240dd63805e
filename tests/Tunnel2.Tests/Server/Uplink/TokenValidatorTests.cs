using Microsoft.Extensions.Options;
using Tunnel2.Server;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Tests.Server.Uplink;

public sealed class TokenValidatorTests
{
    private const string AliceToken = "t2_alice_0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
    private const string BobToken = "t2_bob_fedcba9876543210fedcba9876543210fedcba9876543210fedcba98";

    private static TokenValidator Create()
    {
        var options = new TunnelServerOptions();
        options.Tokens.Add(new TunnelTokenOptions { Name = "alice", Sha256 = TokenValidator.HashToken(AliceToken) });
        var bob = new TunnelTokenOptions { Name = "bob", Sha256 = TokenValidator.HashToken(BobToken).ToUpperInvariant() };
        bob.Sessions.Add("22222222-2222-2222-2222-222222222222");
        options.Tokens.Add(bob);
        return new TokenValidator(Options.Create(options));
    }

    [Fact]
    public void Validate_KnownTokens_ReturnTheirPrincipals()
    {
        var validator = Create();

        Assert.Equal("alice", validator.Validate(AliceToken)?.Name);
        var bob = validator.Validate(BobToken);
        Assert.Equal("bob", bob?.Name);
        Assert.Contains(Guid.Parse("22222222-2222-2222-2222-222222222222"), (IReadOnlySet<Guid>)bob!.Sessions);
    }

    [Theory]
    [InlineData("")]
    [InlineData("t2_alice")]
    [InlineData(AliceToken + "x")]
    [InlineData(" " + AliceToken)]
    public void Validate_UnknownOrAlteredToken_Null(string token)
        => Assert.Null(Create().Validate(token));

    [Fact]
    public void Validate_OverlongToken_RejectedBeforeHashing()
        => Assert.Null(Create().Validate(new string('a', TokenValidator.MaxTokenLength + 1)));

    [Fact]
    public void HashToken_IsLowerHexSha256()
        => Assert.Equal("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", TokenValidator.HashToken("test"));
}
