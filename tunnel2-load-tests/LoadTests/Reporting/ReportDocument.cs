using System.Net;
using System.Text;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>A report as a list of blocks, rendered to Markdown and to HTML from the same content.</summary>
internal sealed record ReportDocument(string Title, IReadOnlyList<ReportBlock> Blocks);

internal abstract record ReportBlock;

internal sealed record HeadingBlock(int Level, string Text) : ReportBlock;

internal sealed record ParagraphBlock(string Text) : ReportBlock;

internal sealed record ListBlock(IReadOnlyList<string> Items) : ReportBlock;

/// <summary>A table; columns whose cells all look numeric are right-aligned.</summary>
internal sealed record TableBlock(IReadOnlyList<string> Headers, IReadOnlyList<IReadOnlyList<string>> Rows) : ReportBlock;

/// <summary>A PNG next to the report.</summary>
internal sealed record ImageBlock(string FileName, string Caption) : ReportBlock;

/// <summary>Renders a <see cref="ReportDocument"/>.</summary>
internal static class ReportRenderer
{
    public static string ToMarkdown(ReportDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var md = new StringBuilder();
        md.Append("# ").AppendLine(document.Title).AppendLine();
        foreach (var block in document.Blocks)
        {
            switch (block)
            {
                case HeadingBlock heading:
                    md.Append('#', heading.Level + 1).Append(' ').AppendLine(heading.Text).AppendLine();
                    break;
                case ParagraphBlock paragraph:
                    md.AppendLine(paragraph.Text).AppendLine();
                    break;
                case ListBlock list:
                    foreach (var item in list.Items)
                    {
                        md.Append("- ").AppendLine(item);
                    }

                    md.AppendLine();
                    break;
                case TableBlock table:
                    var right = RightAligned(table);
                    md.Append("| ").AppendJoin(" | ", table.Headers.Select(EscapeCell)).AppendLine(" |");
                    md.Append('|').AppendJoin('|', right.Select(r => r ? "---:" : "---")).AppendLine("|");
                    foreach (var row in table.Rows)
                    {
                        md.Append("| ").AppendJoin(" | ", row.Select(EscapeCell)).AppendLine(" |");
                    }

                    md.AppendLine();
                    break;
                case ImageBlock image:
                    md.Append("![").Append(image.Caption).Append("](").Append(image.FileName).AppendLine(")").AppendLine();
                    break;
            }
        }

        return md.ToString();
    }

    /// <summary>A self-contained page: CSS inline, images embedded as base64 (read from <paramref name="directory"/>).</summary>
    public static string ToHtml(ReportDocument document, string directory)
    {
        ArgumentNullException.ThrowIfNull(document);
        var html = new StringBuilder();
        html.AppendLine("<!DOCTYPE html>")
            .AppendLine("<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<title>").Append(WebUtility.HtmlEncode(document.Title)).AppendLine("</title>")
            .AppendLine("<style>")
            .AppendLine("body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:2rem auto;max-width:1400px;padding:0 1rem;color:#222}")
            .AppendLine("table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.85rem}")
            .AppendLine("th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:left;vertical-align:top}")
            .AppendLine("th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}")
            .AppendLine("tr:nth-child(even) td{background:#fafafa}img{max-width:100%;border:1px solid #ddd}")
            .AppendLine(".pass{color:#176f2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}code{background:#f4f4f4;padding:0 0.2rem}")
            .AppendLine("</style></head><body>")
            .Append("<h1>").Append(WebUtility.HtmlEncode(document.Title)).AppendLine("</h1>");
        foreach (var block in document.Blocks)
        {
            switch (block)
            {
                case HeadingBlock heading:
                    html.Append("<h").Append(heading.Level + 1).Append('>').Append(WebUtility.HtmlEncode(heading.Text))
                        .Append("</h").Append(heading.Level + 1).AppendLine(">");
                    break;
                case ParagraphBlock paragraph:
                    html.Append("<p>").Append(Inline(paragraph.Text)).AppendLine("</p>");
                    break;
                case ListBlock list:
                    html.AppendLine("<ul>");
                    foreach (var item in list.Items)
                    {
                        html.Append("<li>").Append(Inline(item)).AppendLine("</li>");
                    }

                    html.AppendLine("</ul>");
                    break;
                case TableBlock table:
                    var right = RightAligned(table);
                    html.Append("<table><thead><tr>");
                    foreach (var header in table.Headers)
                    {
                        html.Append("<th>").Append(WebUtility.HtmlEncode(header)).Append("</th>");
                    }

                    html.AppendLine("</tr></thead><tbody>");
                    foreach (var row in table.Rows)
                    {
                        html.Append("<tr>");
                        for (var i = 0; i < row.Count; i++)
                        {
                            html.Append(right[i] ? "<td class=\"num\">" : "<td>").Append(Inline(row[i])).Append("</td>");
                        }

                        html.AppendLine("</tr>");
                    }

                    html.AppendLine("</tbody></table>");
                    break;
                case ImageBlock image:
                    var path = Path.Combine(directory, image.FileName);
                    var source = File.Exists(path) ? "data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(path)) : image.FileName;
                    html.Append("<figure><img src=\"").Append(source).Append("\" alt=\"").Append(WebUtility.HtmlEncode(image.Caption))
                        .Append("\"><figcaption>").Append(WebUtility.HtmlEncode(image.Caption)).AppendLine("</figcaption></figure>");
                    break;
            }
        }

        html.AppendLine("</body></html>");
        return html.ToString();
    }

    private static bool[] RightAligned(TableBlock table) => Enumerable.Range(0, table.Headers.Count)
        .Select(column => table.Rows.Count > 0 && table.Rows.All(row => column < row.Count && LooksNumeric(row[column])))
        .ToArray();

    private static bool LooksNumeric(string cell) =>
        cell.Length > 0 && (cell == "—" || cell.TrimStart('+', '−', '-').Replace(",", "", StringComparison.Ordinal).Replace(" %", "", StringComparison.Ordinal)
            .All(c => char.IsAsciiDigit(c) || c == '.'));

    private static string EscapeCell(string cell) => cell.Replace("|", "\\|", StringComparison.Ordinal);

    // Markdown's `code` and **bold** are the only inline markup the report uses.
    private static string Inline(string text)
    {
        var encoded = WebUtility.HtmlEncode(text);
        encoded = ReplacePairs(encoded, "**", "<b>", "</b>");
        encoded = ReplacePairs(encoded, "`", "<code>", "</code>");
        encoded = encoded.Replace("PASS", "<span class=\"pass\">PASS</span>", StringComparison.Ordinal)
            .Replace("FAIL", "<span class=\"fail\">FAIL</span>", StringComparison.Ordinal);
        return encoded;
    }

    private static string ReplacePairs(string text, string marker, string open, string close)
    {
        var parts = text.Split(marker);
        if (parts.Length < 3)
        {
            return text;
        }

        // An unmatched last marker stays literal.
        var paired = (parts.Length - 1) / 2 * 2;
        var result = new StringBuilder(parts[0]);
        for (var i = 1; i < parts.Length; i++)
        {
            result.Append(i > paired ? marker : i % 2 == 1 ? open : close).Append(parts[i]);
        }

        return result.ToString();
    }
}
