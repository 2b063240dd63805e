using Tunnel2.LoadTests.Thresholds;

namespace Tunnel2.LoadTests.Tests.Thresholds;

public class ThresholdExpressionTests
{
    [Theory]
    [InlineData("p(99)<3", "Percentile", 99, "<", 3)]
    [InlineData("p(99.9) <= 12.5", "Percentile", 99.9, "<=", 12.5)]
    [InlineData("avg<20", "Average", 0, "<", 20)]
    [InlineData("med>=0.1", "Median", 0, ">=", 0.1)]
    [InlineData("rate<=0.01", "Rate", 0, "<=", 0.01)]
    [InlineData("count==0", "Count", 0, "==", 0)]
    public void Parse_K6Syntax(string text, string aggregation, double percentile, string op, double limit)
    {
        var expression = ThresholdExpression.Parse(text);

        Assert.Equal(Enum.Parse<Aggregation>(aggregation), expression.Aggregation);
        Assert.Equal(percentile, expression.Percentile);
        Assert.Equal(op, expression.Operator);
        Assert.Equal(limit, expression.Limit);
    }

    [Theory]
    [InlineData("p99<3")]
    [InlineData("p(101)<3")]
    [InlineData("avg=<3")]
    [InlineData("mean<3")]
    [InlineData("")]
    public void Parse_Malformed_Throws(string text)
    {
        Assert.Throws<FormatException>(() => ThresholdExpression.Parse(text));
    }

    [Theory]
    [InlineData("p(99)<50", 49.9, true)]
    [InlineData("p(99)<50", 50, false)]
    [InlineData("p(99)<=50", 50, true)]
    [InlineData("rate>0.99", 0.99, false)]
    [InlineData("rate>=0.99", 0.99, true)]
    [InlineData("count==0", 0, true)]
    [InlineData("count==0", 1, false)]
    [InlineData("count!=0", 1, true)]
    public void IsSatisfiedBy_AppliesTheOperator(string text, double observed, bool satisfied)
    {
        Assert.Equal(satisfied, ThresholdExpression.Parse(text).IsSatisfiedBy(observed));
    }

    [Fact]
    public void Key_ParsesMetricAndTags()
    {
        var key = ThresholdKey.Parse("http_req_duration{scenario:get,kind:tunnel}");

        Assert.Equal("http_req_duration", key.Metric);
        Assert.Equal("get", key.Tags["scenario"]);
        Assert.Equal("tunnel", key.Tags["kind"]);
    }

    [Theory]
    [InlineData("http_req_latency")]
    [InlineData("http_req_duration{colour:red}")]
    [InlineData("http_req_duration{scenario}")]
    public void Key_UnknownMetricOrTag_Throws(string text)
    {
        Assert.Throws<FormatException>(() => ThresholdKey.Parse(text));
    }

    [Theory]
    [InlineData("http_req_duration", "rate<0.1")]
    [InlineData("http_req_failed", "p(99)<5")]
    [InlineData("dropped_iterations", "avg<1")]
    public void Create_AggregationThatDoesNotFitTheMetric_IsRejectedUpFront(string key, string expression)
    {
        Assert.Throws<FormatException>(() => Threshold.Create(ThresholdKey.Parse(key), ThresholdExpression.Parse(expression), "test"));
    }

    [Fact]
    public void Defaults_AreTheOriginalReportsLines()
    {
        Assert.Equal(
            ["http_req_duration p(99)<50", "http_req_failed rate<=0.01", "http_req_duration avg<20"],
            Threshold.Defaults.Select(t => $"{t.Key} {t.Expression}"));
    }
}
