namespace SelfCascade.Tests.Data;

/// <summary>A small Iconify JSON set written by the tests (no network): shapes with known pixels, broken bodies, aliases, a tone variant.</summary>
internal static class TestIconSet
{
    public const string Json = """
    {
      "prefix": "test",
      "width": 32,
      "height": 32,
      "info": {
        "name": "Test Shapes",
        "author": { "name": "Test Author", "url": "https://example.org/shapes" },
        "license": { "title": "MIT License", "spdx": "MIT", "url": "https://example.org/shapes/LICENSE" }
      },
      "icons": {
        "red-circle": { "body": "<circle cx=\"16\" cy=\"16\" r=\"12\" fill=\"#ff0000\"/>" },
        "blue-square": { "body": "<rect x=\"8\" y=\"8\" width=\"16\" height=\"16\" fill=\"#0000ff\"/>" },
        "wide-bar": { "body": "<rect x=\"0\" y=\"0\" width=\"64\" height=\"32\" fill=\"#00ff00\"/>", "width": 64 },
        "left-half": { "body": "<rect x=\"0\" y=\"0\" width=\"16\" height=\"32\" fill=\"#ff0000\"/>" },
        "broken-body": { "body": "<circle cx=\"16\" " },
        "empty-body": { "body": "<g/>" },
        "waving-hand": { "body": "<rect x=\"4\" y=\"4\" width=\"24\" height=\"24\" fill=\"#ffcc00\"/>" },
        "waving-hand-dark": { "body": "<rect x=\"4\" y=\"4\" width=\"24\" height=\"24\" fill=\"#5c3a1e\"/>" },
        "traffic-light": { "body": "<rect x=\"12\" y=\"2\" width=\"8\" height=\"28\" fill=\"#333333\"/>" }
      },
      "aliases": {
        "circle-red": { "parent": "red-circle" },
        "right-half": { "parent": "left-half", "hFlip": true },
        "orphan-flip": { "parent": "no-such-icon", "hFlip": true }
      }
    }
    """;

    /// <summary>Writes the set as DIR/icons.json and returns the path.</summary>
    public static string Write(string dir, string json = Json, string file = "icons.json")
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, file);
        File.WriteAllText(path, json);
        return path;
    }
}
