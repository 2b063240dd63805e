using Tunnel2.LoadTests.Docker;

namespace Tunnel2.LoadTests.Tests.Docker;

public class ComposeLabelsTests
{
    private static Dictionary<string, string> Labels(string project, string service, string? oneOff = null, string? number = null)
    {
        var labels = new Dictionary<string, string>
        {
            [ComposeLabels.Project] = project,
            [ComposeLabels.Service] = service,
            ["com.docker.compose.version"] = "1.29.2",
        };
        if (oneOff is not null)
        {
            labels[ComposeLabels.OneOff] = oneOff;
        }

        if (number is not null)
        {
            labels[ComposeLabels.ContainerNumber] = number;
        }

        return labels;
    }

    [Fact]
    public void ServiceOf_ServiceContainerOfTheProject_IsItsService()
    {
        Assert.Equal("tunnel_client", ComposeLabels.ServiceOf(Labels("tunnel2dev", "tunnel_client", oneOff: "False"), "tunnel2dev"));
    }

    [Fact]
    public void ServiceOf_AnotherProject_IsNull()
    {
        Assert.Null(ComposeLabels.ServiceOf(Labels("other", "tunnel_client"), "tunnel2dev"));
    }

    [Fact]
    public void ServiceOf_ProjectNameDiffersInCase_IsNull()
    {
        Assert.Null(ComposeLabels.ServiceOf(Labels("Tunnel2Dev", "tunnel_client"), "tunnel2dev"));
    }

    [Theory]
    [InlineData("True")]
    [InlineData("true")]
    public void ServiceOf_OneOffContainer_IsNull(string oneOff)
    {
        // `docker-compose run load_runner` makes a one-off container that carries the service label too.
        Assert.Null(ComposeLabels.ServiceOf(Labels("tunnel2dev", "load_runner", oneOff), "tunnel2dev"));
    }

    [Fact]
    public void ServiceOf_NoLabels_IsNull()
    {
        Assert.Null(ComposeLabels.ServiceOf(null, "tunnel2dev"));
        Assert.Null(ComposeLabels.ServiceOf(new Dictionary<string, string>(), "tunnel2dev"));
        Assert.Null(ComposeLabels.ServiceOf(new Dictionary<string, string> { [ComposeLabels.Project] = "tunnel2dev" }, "tunnel2dev"));
    }

    [Fact]
    public void NumberOf_ReadsTheReplicaNumber_DefaultsToOne()
    {
        Assert.Equal(2, ComposeLabels.NumberOf(Labels("p", "s", number: "2")));
        Assert.Equal(1, ComposeLabels.NumberOf(Labels("p", "s")));
        Assert.Equal(1, ComposeLabels.NumberOf(Labels("p", "s", number: "x")));
        Assert.Equal(1, ComposeLabels.NumberOf(null));
    }

    [Fact]
    public void ProjectFilter_IsTheEngineApiLabelFilter()
    {
        var filter = ComposeLabels.ProjectFilter("tunnel2dev");

        var label = Assert.Single(filter);
        Assert.Equal("label", label.Key);
        Assert.Equal(new Dictionary<string, bool> { ["com.docker.compose.project=tunnel2dev"] = true }, label.Value);
    }

    [Fact]
    public void StartOrder_BackendsThenServerThenClient_UnknownLastByName()
    {
        var order = ComposeLabels.StartOrder(["tunnel_client", "zeta", "tunnel_server", "alpha", "httpbin", "test_backend", "httpbin"]);

        Assert.Equal(["test_backend", "httpbin", "tunnel_server", "tunnel_client", "alpha", "zeta"], order);
    }
}
