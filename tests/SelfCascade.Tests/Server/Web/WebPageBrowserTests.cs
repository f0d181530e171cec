using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;

namespace SelfCascade.Tests.Server.Web;

/// <summary>
/// The page (src/SelfCascade.Server/Web) in a real browser against the real server on loopback with the embedded emoji
/// model: generate from the form (progress, every stage's preview, the result), cancel, open a past result and upscale
/// it, a server error shown as the server words it. Assertions are on values: pixels the browser decoded against the
/// server's files, image sizes against the cascade plan, job records against the form. Screenshots: docs/images.
/// </summary>
public sealed class WebPageBrowserTests(BrowserFixture browser, PageServerFixture server)
    : IClassFixture<BrowserFixture>, IClassFixture<PageServerFixture>
{
    private const int Timeout = 60_000;

    // Records what the page showed over time: progress values and every stage image it displayed (latent previews
    // and decoded stages), so a test can assert on the whole run, not just the end state.
    private const string Recorder = """
        document.addEventListener('DOMContentLoaded', () => {
          window.__seen = { progress: [], stageImages: [] };
          new MutationObserver(records => {
            for (const r of records) {
              const t = r.target;
              if (t.id === 'progress' && r.attributeName === 'aria-valuenow') window.__seen.progress.push(+t.getAttribute('aria-valuenow'));
              if (t.tagName === 'IMG' && r.attributeName === 'src' && t.closest('.stage'))
                window.__seen.stageImages.push({ stage: +t.closest('.stage').dataset.stage, src: t.src.slice(0, 40), decoded: t.closest('.stage').classList.contains('decoded') });
            }
          }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow', 'src'] });
        });
        """;

    private async Task<IPage> OpenPage(int width = 1280, int height = 900)
    {
        var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = height } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(Timeout);
        await page.AddInitScriptAsync(Recorder);
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-ready=true]");
        Assert.Empty(errors);
        return page;
    }

    private static Task WaitForStatus(IPage page, string status) =>
        page.WaitForFunctionAsync("s => document.getElementById('job-status').textContent === s", status, new() { Timeout = Timeout });

    /// <summary>The RGB pixels of an &lt;img&gt; as the browser decoded it (drawn to a canvas).</summary>
    private static async Task<RgbImage> BrowserPixels(IPage page, string selector)
    {
        var r = await page.EvalOnSelectorAsync<JsonElement>(selector, """
            img => {
              const c = document.createElement('canvas');
              c.width = img.naturalWidth; c.height = img.naturalHeight;
              const g = c.getContext('2d');
              g.drawImage(img, 0, 0);
              const d = g.getImageData(0, 0, c.width, c.height).data;
              const rgb = [];
              for (let i = 0; i < d.length; i += 4) rgb.push(d[i], d[i + 1], d[i + 2]);
              return { w: c.width, h: c.height, rgb };
            }
            """);
        var rgb = r.GetProperty("rgb").EnumerateArray().Select(e => (byte)e.GetInt32()).ToArray();
        return new RgbImage(r.GetProperty("w").GetInt32(), r.GetProperty("h").GetInt32(), rgb);
    }

    private async Task<RgbImage> ServerImage(string url)
    {
        var bytes = await server.Http.GetByteArrayAsync(url);
        var path = Path.Combine(server.DataDir, $"check-{Guid.NewGuid():N}.png");
        await File.WriteAllBytesAsync(path, bytes);
        try { return RgbImage.Load(path); } finally { File.Delete(path); }
    }

    private static void AssertSamePixels(RgbImage expected, RgbImage actual, string what)
    {
        Assert.True(expected.Width == actual.Width && expected.Height == actual.Height,
            $"{what}: {actual.Width}x{actual.Height}, expected {expected.Width}x{expected.Height}");
        int differing = expected.Pixels.Where((b, i) => b != actual.Pixels[i]).Count();
        Assert.True(differing == 0, $"{what}: {differing} of {expected.Pixels.Length} channel values differ");
    }

    private async Task<JsonElement> Job(string id) => await server.Http.GetFromJsonAsync<JsonElement>($"/api/jobs/{id}");

    [Fact]
    public async Task Generate_from_the_page_shows_progress_every_stage_and_the_result()
    {
        var page = await OpenPage();
        await page.FillAsync("#prompt", "red heart");
        await page.FillAsync("#seed", "7");
        await page.FillAsync("#steps", "6");
        // The 4x preset of the 32 px model: 128x128, a three-stage cascade (32 -> 64 -> 128).
        await page.ClickAsync("#size-presets .chip:nth-child(3)");
        Assert.Equal("128", await page.InputValueAsync("#width"));
        Assert.Equal("128", await page.InputValueAsync("#height"));
        await page.ClickAsync("#generate");
        await WaitForStatus(page, "done");

        var id = (await page.GetAttributeAsync("#job-id", "data-job"))!;
        var job = await Job(id);
        // The job ran what the form said.
        var p = job.GetProperty("parameters");
        Assert.Equal("red heart", p.GetProperty("prompt").GetString());
        Assert.Equal(7, p.GetProperty("seed").GetInt64());
        Assert.Equal(6, p.GetProperty("steps").GetInt32());
        Assert.Equal(128, p.GetProperty("width").GetInt32());

        // The plan, computed here from the model's configs, is what the page showed: one decoded card per stage,
        // each the size of its stage.
        var plan = CascadeGenerator.Plan(ModelGeometry.FromFolder(server.ModelDir), 128, 128,
            new CascadeRequest { Request = new GenerationRequest("red heart") { Steps = 6, Width = 128, Height = 128 } });
        Assert.Equal(3, plan.Stages.Count);
        Assert.Equal(plan.Stages.Count, await page.Locator("#stages .stage").CountAsync());
        Assert.Equal(plan.Stages.Count, await page.Locator("#stages .stage.decoded img").CountAsync());
        var jobStages = job.GetProperty("stages").EnumerateArray().ToList();
        Assert.Equal(plan.Stages.Count, jobStages.Count);
        for (int i = 0; i < plan.Stages.Count; i++)
        {
            var shown = await BrowserPixels(page, $"#stages .stage[data-stage='{i}'] img");
            Assert.Equal((plan.Stages[i].Width, plan.Stages[i].Height), (shown.Width, shown.Height));
            // Earlier stages: the stage file the server saved; the last: the result.
            var url = i < plan.Stages.Count - 1 ? job.GetProperty("stage_images")[i].GetString()! : job.GetProperty("images")[0].GetString()!;
            AssertSamePixels(await ServerImage(url), shown, $"stage {i}");
        }

        // The result as the browser decoded it is the server's PNG, at the asked size.
        var result = await BrowserPixels(page, "#result-img");
        AssertSamePixels(await ServerImage(job.GetProperty("images")[0].GetString()!), result, "result");
        Assert.Equal((128, 128), (result.Width, result.Height));
        Assert.Contains("seed 7", await page.TextContentAsync("#result-caption"));

        // Progress went up step by step to 100; latent previews arrived before stages were decoded.
        var seen = await page.EvaluateAsync<JsonElement>("() => window.__seen");
        var progress = seen.GetProperty("progress").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.Equal(100, progress[^1]);
        Assert.True(progress.Count(v => v is > 0 and < 100) >= 3, $"progress values: {string.Join(",", progress)}");
        var images = seen.GetProperty("stageImages").EnumerateArray().ToList();
        Assert.Contains(images, e => !e.GetProperty("decoded").GetBoolean() && e.GetProperty("src").GetString()!.StartsWith("data:image/png;base64,"));

        // "Reuse" puts the result's seed back after the seed was changed.
        await page.ClickAsync("#seed-random");
        await page.ClickAsync("#seed-reuse");
        Assert.Equal("7", await page.InputValueAsync("#seed"));

        // The finished job is first in the gallery, with its parameters.
        var card = page.Locator($".card[data-job='{id}']");
        await card.WaitForAsync();
        Assert.Equal("done", await card.GetAttributeAsync("data-status"));
        Assert.Contains("128×128 · seed 7", await card.Locator(".sub").TextContentAsync());
        await page.ScreenshotAsync(new() { Path = BrowserFixture.ScreenshotPath("server-page.png"), FullPage = true });
    }

    [Fact]
    public async Task Cancel_from_the_page_stops_the_job_and_shows_it_cancelled()
    {
        var page = await OpenPage();
        await page.FillAsync("#prompt", "blue star");
        await page.FillAsync("#steps", "400");
        await page.ClickAsync("#size-presets .chip:nth-child(3)");
        await page.ClickAsync("#generate");
        // Cancel once it is denoising (a progress value above zero arrived).
        await page.WaitForFunctionAsync("() => document.getElementById('progress-text').textContent.includes('denoise')");
        var id = (await page.GetAttributeAsync("#job-id", "data-job"))!;
        // A second tab opened now follows the running job too.
        var other = await OpenPage();
        await other.WaitForFunctionAsync("id => document.getElementById('job-id').dataset.job === id", id);
        await page.ClickAsync("#cancel");
        await WaitForStatus(page, "cancelled");
        await WaitForStatus(other, "cancelled");
        var job = await Job(id);
        Assert.Equal("cancelled", job.GetProperty("status").GetString());
        Assert.Equal(0, job.GetProperty("images").GetArrayLength());
        Assert.True(await page.IsDisabledAsync("#cancel"));
        Assert.StartsWith("Cancelled", await page.TextContentAsync("#progress-text"));
        var card = page.Locator($".card[data-job='{id}']");
        await card.WaitForAsync();
        Assert.Equal("cancelled", await card.GetAttributeAsync("data-status"));
        Assert.Equal("cancelled", (await card.Locator(".status-badge").TextContentAsync())!.Trim());
        await page.ScreenshotAsync(new() { Path = BrowserFixture.ScreenshotPath("server-page-cancelled.png") });
    }

    [Fact]
    public async Task A_past_result_opens_with_its_parameters_and_upscale_this_doubles_it()
    {
        // A finished job from before the page was opened (another client, or an earlier visit).
        var submitted = await server.Http.PostAsJsonAsync("/api/jobs", new { prompt = "green apple", seed = 11, steps = 4, width = 32, height = 32 });
        Assert.Equal(System.Net.HttpStatusCode.Accepted, submitted.StatusCode);
        var id = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        await server.WaitDone(id);

        var page = await OpenPage();
        var card = page.Locator($".card[data-job='{id}']");
        await card.Locator("img.thumb").ClickAsync();
        await page.WaitForSelectorAsync("#viewer[open]");
        Assert.Equal("11", await page.TextContentAsync("#viewer-params dd[data-param='seed']"));
        Assert.Equal("green apple", await page.TextContentAsync("#viewer-params dd[data-param='prompt']"));
        Assert.Equal("32×32", await page.TextContentAsync("#viewer-params dd[data-param='size']"));
        var job = await Job(id);
        AssertSamePixels(await ServerImage(job.GetProperty("images")[0].GetString()!), await BrowserPixels(page, "#viewer-img"), "opened result");
        await page.ScreenshotAsync(new() { Path = BrowserFixture.ScreenshotPath("server-page-viewer.png") });

        await page.ClickAsync("#viewer-upscale");
        await page.WaitForFunctionAsync("id => document.getElementById('job-id').dataset.job !== id", id);
        await WaitForStatus(page, "done");
        var upId = (await page.GetAttributeAsync("#job-id", "data-job"))!;
        var up = await Job(upId);
        Assert.Equal("upscale", up.GetProperty("kind").GetString());
        Assert.Equal((64, 64), (up.GetProperty("width").GetInt32(), up.GetProperty("height").GetInt32()));
        Assert.Equal(11, up.GetProperty("seed").GetInt64());
        Assert.Equal(4, up.GetProperty("parameters").GetProperty("steps").GetInt32()); // the source job's steps
        Assert.Contains(id, up.GetProperty("parameters").GetProperty("source").GetString());
        var shown = await BrowserPixels(page, "#result-img");
        AssertSamePixels(await ServerImage(up.GetProperty("images")[0].GetString()!), shown, "upscaled result");
    }

    [Fact]
    public async Task A_request_the_server_refuses_shows_the_servers_message()
    {
        var page = await OpenPage();
        await page.FillAsync("#prompt", "red heart");
        await page.FillAsync("#width", "100000");
        await page.FillAsync("#height", "64");
        await page.ClickAsync("#generate");
        await page.WaitForSelectorAsync("#error:not([hidden])");
        var text = (await page.TextContentAsync("#error-text"))!;
        Assert.StartsWith("400", text);
        Assert.Contains("100000x64", text);
        Assert.Equal("idle", (await page.TextContentAsync("#job-status"))!.Trim());
        // An empty prompt is caught on the page before anything is sent.
        await page.ClickAsync("#error-close");
        await page.FillAsync("#prompt", "  ");
        await page.ClickAsync("#generate");
        Assert.Equal("Write a prompt first.", await page.TextContentAsync("#error-text"));
    }

    [Fact]
    public async Task With_an_api_key_the_page_needs_it_and_sends_it_with_every_call()
    {
        await using var keyed = await TestServer.StartAsync(apiKey: "s3cret");
        var url = keyed.BaseAddress.ToString().TrimEnd('/');
        using var http = new HttpClient { BaseAddress = keyed.BaseAddress };
        // The page itself and the API need the key; the page's static scripts and styles do not (a browser
        // fetches them without it).
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.GetAsync("/")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.GetAsync("/api/jobs")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("/js/app.js")).StatusCode);

        var context = await browser.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(Timeout);
        await page.GotoAsync(url + "/?api_key=s3cret");
        await page.WaitForSelectorAsync("body[data-ready=true]");
        Assert.Equal("emoji-base", await page.InputValueAsync("#model"));
        Assert.True(await page.IsHiddenAsync("#error"));

        // The key went with the API calls: the server's jobs list came back (empty) without an error shown.
        Assert.True(await page.IsVisibleAsync("#gallery-empty"));
        // A wrong key gets the server's 401 for the page itself.
        var wrong = await (await context.NewPageAsync()).GotoAsync(url + "/?api_key=nope");
        Assert.Equal(401, wrong!.Status);
        await context.DisposeAsync();
    }

    [Fact]
    public async Task The_page_is_served_from_the_assembly_with_a_content_security_policy()
    {
        var index = await server.Http.GetAsync("/");
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        Assert.Contains("script-src 'self'", index.Headers.GetValues("Content-Security-Policy").Single());
        // What is served is what the repository holds (the compiled scripts are committed, not built at run time).
        var web = Path.Combine(RepoRoot(), "src", "SelfCascade.Server", "Web", "wwwroot");
        foreach (var file in new[] { "index.html", "css/app.css", "js/app.js", "js/api.js" })
        {
            var served = await server.Http.GetByteArrayAsync("/" + file);
            var committed = await File.ReadAllBytesAsync(Path.Combine(web, file));
            Assert.True(served.SequenceEqual(committed), $"{file} differs from the repository's");
        }
        Assert.Equal("text/javascript", (await server.Http.GetAsync("/js/app.js")).Content.Headers.ContentType?.MediaType);
        // Nothing else: no sources, no traversal to the data dir.
        foreach (var path in new[] { "/ts/app.ts", "/js/../../jobs.db", "/%2e%2e/jobs.db", "/package.json", "/wwwroot/index.html" })
        {
            var r = await server.Http.GetAsync(path);
            Assert.True(r.StatusCode == System.Net.HttpStatusCode.NotFound, $"{path}: {(int)r.StatusCode}");
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SelfCascade.slnx"))) return dir.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}
