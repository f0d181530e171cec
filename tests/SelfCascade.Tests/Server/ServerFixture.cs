namespace SelfCascade.Tests.Server;

/// <summary>One server on the embedded model shared by a test class (the model loads once).</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(maxBodyBytes: 1L << 20,
        limits: new SelfCascade.Server.Jobs.JobLimits { MaxPixels = 512L * 512, MaxSide = 1024, MaxSteps = 500, MaxInputPixels = 256L * 256 });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
