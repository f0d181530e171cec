using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SelfCascade.Server.Api;
using SelfCascade.Server.Extras;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Models;
using SelfCascade.Server.Storage;

namespace SelfCascade.Server;

/// <summary>
/// Builds the server: Kestrel on the asked address (loopback unless an API key is set), the job engine
/// (<see cref="JobQueue"/> with its <see cref="ModelRegistry"/>, <see cref="JobStore"/>, <see cref="OutputStore"/>,
/// all in DI), the error and API-key middleware, /openapi.json, and every <see cref="EndpointModules.Create"/> group.
/// </summary>
public static class ServerApp
{
    /// <param name="configureLogging">The CLI adds a console logger; tests and the default add none.</param>
    /// <param name="extraEndpoints">Mapped after the registered modules (tests, embedding applications).</param>
    public static WebApplication Build(ServerOptions options, Action<WebApplication>? extraEndpoints = null,
        Action<ILoggingBuilder>? configureLogging = null)
    {
        if (!ServerOptions.IsLoopback(options.Host) && string.IsNullOrEmpty(options.ApiKey))
            throw new ArgumentException($"--host {options.Host} is not a loopback address: an API key is required (--api-key or SELFCASCADE_API_KEY)");
        if (options.MaxQueue < 1) throw new ArgumentException($"--max-queue must be at least 1 (got {options.MaxQueue})");
        Directory.CreateDirectory(options.DataDir);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "SelfCascade.Server" });
        builder.Logging.ClearProviders();
        configureLogging?.Invoke(builder.Logging);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
            if (options.Host == "localhost" && options.Port != 0) k.ListenLocalhost(options.Port);
            else
            {
                var ip = options.Host == "localhost" ? IPAddress.Loopback
                    : IPAddress.TryParse(options.Host.Trim('[', ']'), out var a) ? a
                    : throw new ArgumentException($"--host '{options.Host}' is not an IP address or 'localhost'");
                k.Listen(ip, options.Port);
            }
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownGrace + TimeSpan.FromSeconds(60));
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddOpenApi("v1", o => o.AddDocumentTransformer((doc, _, _) =>
        {
            doc.Info.Title = "SelfCascade native API";
            doc.Info.Description = "Text-to-image with the self-cascade, upscaling, job status, Server-Sent Events, results. docs/SERVER.md.";
            return Task.CompletedTask;
        }));

        // The engine is created before the server listens, so a bad model or data dir fails the start, and jobs a
        // previous process left queued or running are marked interrupted first.
        var extras = new ServedExtras(options.Upsamplers, options.Loras);
        var store = new JobStore(Path.Combine(options.DataDir, "jobs.db"));
        var interrupted = store.MarkInterrupted(DateTimeOffset.UtcNow);
        ModelRegistry? models = null;
        try
        {
            models = new ModelRegistry(options.Models, options.Pipeline,
                options.ModelMemoryBudgetBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2, options.Loader);
        }
        catch
        {
            store.Dispose();
            throw;
        }
        var outputs = new OutputStore(options.DataDir);
        var queue = new JobQueue(models, store, outputs, new JobQueueOptions
        {
            MaxQueue = options.MaxQueue, Limits = options.Limits, ShutdownGrace = options.ShutdownGrace, Extras = extras,
        });
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(_ => store);
        builder.Services.AddSingleton(_ => models);
        builder.Services.AddSingleton(outputs);
        builder.Services.AddSingleton(extras);
        builder.Services.AddSingleton(_ => queue);
        builder.Services.AddSingleton(new StartupReport(interrupted.Count));
        builder.Services.AddHostedService<JobEngineLifetime>();

        var app = builder.Build();
        // Resolved in dependency order, so the container disposes the queue first, then models, then the store.
        app.Services.GetRequiredService<JobStore>();
        app.Services.GetRequiredService<ModelRegistry>();
        app.Services.GetRequiredService<JobQueue>();
        app.UseMiddleware<ErrorMiddleware>();
        app.UseMiddleware<ApiKeyMiddleware>();
        app.UseStatusCodePages(ErrorMiddleware.WriteEmptyStatusAsync);
        app.MapOpenApi("/openapi.json");
        foreach (var module in EndpointModules.Create()) module.Map(app);
        extraEndpoints?.Invoke(app);
        return app;
    }

    /// <summary>The URLs the started server listens on (with the real port when 0 was asked).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
}

/// <summary>What the start found: jobs a previous process left unfinished (now marked interrupted).</summary>
public sealed record StartupReport(int InterruptedJobs);

/// <summary>Stops the job engine when the host stops (SIGTERM, Ctrl+C): see <see cref="JobQueue.ShutdownAsync"/>.</summary>
internal sealed class JobEngineLifetime(JobQueue queue) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => queue.ShutdownAsync(cancellationToken);
}
