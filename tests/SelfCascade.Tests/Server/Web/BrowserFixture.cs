using Microsoft.Playwright;

namespace SelfCascade.Tests.Server.Web;

/// <summary>
/// One headless Debian chromium (apt package `chromium`, driven by Microsoft.Playwright; Playwright's own browser
/// download is never used) shared by the page tests. A missing browser fails the tests: CI installs it in .ci/run.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    /// <summary>SELFCASCADE_CHROMIUM overrides the executable (another distribution's path).</summary>
    public static string ExecutablePath => Environment.GetEnvironmentVariable("SELFCASCADE_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    private IPlaywright? _playwright;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ExecutablePath))
            throw new InvalidOperationException($"{ExecutablePath} not found: install Debian's chromium (apt-get install -y --no-install-recommends chromium); .ci/run does this");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            // Root in CI containers: chromium's sandbox needs user namespaces it may not have.
            ChromiumSandbox = false,
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
    }

    /// <summary>Where screenshots go: SELFCASCADE_SCREENSHOTS (docs/images when refreshing the docs), else the test output.</summary>
    public static string ScreenshotPath(string name)
    {
        var dir = Environment.GetEnvironmentVariable("SELFCASCADE_SCREENSHOTS") is { Length: > 0 } d ? d
            : Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }
}
