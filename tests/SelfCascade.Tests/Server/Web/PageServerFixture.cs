namespace SelfCascade.Tests.Server.Web;

/// <summary>One real server (<see cref="TestServer"/>: loopback, free port, the embedded emoji model, temp data dir) for the page tests.</summary>
public sealed class PageServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;
    public string BaseUrl => Server.BaseAddress.ToString().TrimEnd('/');
    public HttpClient Http => Server.Client;
    public string DataDir => Server.DataDir;
    public string ModelDir => TestServer.EmbeddedModel;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    /// <summary>Waits until a job is final and asserts it is done.</summary>
    public async Task WaitDone(string id)
    {
        var job = await Server.WaitAsync(id, TimeSpan.FromSeconds(90));
        Assert.True(job.GetProperty("status").GetString() == "done", $"job {id}: {job}");
    }

    public async Task DisposeAsync()
    {
        if (Server is not null) await Server.DisposeAsync();
    }
}
