using System.Net;
using System.Text;
using System.Text.Json;
using SelfCascade.Server.Models;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>
/// A1111's per-server state (the model chosen through /sdapi/v1/options) belongs to its server: two servers in one
/// process (tests start many) must not see each other's choice. It leaked once, when the endpoint groups were
/// process-wide singletons, and made other servers' requests ask for a model they do not serve.
/// </summary>
public class A1111ServerStateTests
{
    private static async Task<string> CurrentModel(TestServer s) =>
        JsonDocument.Parse(await s.Client.GetStringAsync("/sdapi/v1/options")).RootElement.GetProperty("sd_model_checkpoint").GetString()!;

    [Fact]
    public async Task TheChosenModelIsPerServer()
    {
        var model = TestServer.EmbeddedModel;
        await using var a = await TestServer.StartAsync([new ModelSpec("one", model), new ModelSpec("two", model)]);
        await using var b = await TestServer.StartAsync([new ModelSpec("solo", model)]);
        using var r = await a.Client.PostAsync("/sdapi/v1/options", new StringContent("""{"sd_model_checkpoint": "two"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("two", await CurrentModel(a));
        Assert.Equal("solo", await CurrentModel(b));
        await using var c = await TestServer.StartAsync([new ModelSpec("one", model), new ModelSpec("two", model)]);
        Assert.Equal("one", await CurrentModel(c));
    }
}
