using System.CommandLine;
using System.Text;
using SelfCascade.Cli;

namespace SelfCascade.Tests.Cli;

/// <summary>
/// Every command's `--help` (the root's too) names the program `selfcascade` and ends with an example a user can
/// paste: an "Example" heading, a line starting with `selfcascade COMMAND`, and every example line parses cleanly
/// against the real command tree (so an example cannot name an option that does not exist).
/// </summary>
public sealed class HelpExamplesTests
{
    private static IEnumerable<(string[] Path, Command Command)> AllCommands(Command c, string[] path)
    {
        yield return (path, c);
        foreach (var sub in c.Subcommands)
            foreach (var x in AllCommands(sub, [.. path, sub.Name])) yield return x;
    }

    /// <summary>Splits a shell line on spaces, honouring double quotes (all the examples need).</summary>
    private static string[] ShellWords(string line)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        bool quoted = false, any = false;
        foreach (var ch in line)
        {
            if (ch == '"') { quoted = !quoted; any = true; }
            else if (ch == ' ' && !quoted) { if (any) words.Add(cur.ToString()); cur.Clear(); any = false; }
            else { cur.Append(ch); any = true; }
        }
        Assert.False(quoted, $"unbalanced quotes in: {line}");
        if (any) words.Add(cur.ToString());
        return [.. words];
    }

    [Fact]
    public void EveryCommandsHelpHasAPastableExample()
    {
        var root = CliApp.BuildRoot(new CliConsole(TextWriter.Null, TextWriter.Null, false));
        var commands = AllCommands(root, []).ToList();
        Assert.True(commands.Count > 10, $"only {commands.Count} commands found");
        foreach (var (path, command) in commands)
        {
            var name = string.Join(' ', ["selfcascade", .. path]);
            var (code, output, err) = CliRunner.Run([.. path, "--help"]);
            Assert.True(code == 0, $"{name} --help: {err}");
            var lines = output.ReplaceLineEndings("\n").Split('\n');
            Assert.Contains(lines, l => l.TrimEnd() == "  " + name + (command.Subcommands.Count > 0 ? " [command] [options]" : " [options]"));
            Assert.DoesNotContain("SelfCascade.Cli", output);
            int heading = Array.FindIndex(lines, l => l is "Example:" or "Examples:");
            Assert.True(heading >= 0, $"{name} --help has no Example heading:\n{output}");
            var examples = lines.Skip(heading + 1).TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal)).Select(l => l.Trim()).ToList();
            Assert.True(examples.Count > 0, $"{name}: empty Example section");
            Assert.Contains(examples, e => e.StartsWith(path.Length == 0 ? "selfcascade " : name + " ", StringComparison.Ordinal));
            foreach (var example in examples)
            {
                var words = ShellWords(example);
                Assert.Equal("selfcascade", words[0]);
                var parsed = root.Parse(words[1..]);
                Assert.True(parsed.Errors.Count == 0, $"'{example}' does not parse: {string.Join("; ", parsed.Errors.Select(e => e.Message))}");
            }
        }
    }
}
