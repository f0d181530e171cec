using Microsoft.AspNetCore.Builder;

namespace SelfCascade.Server;

/// <summary>A group of endpoints (native API, A1111, ComfyUI, the page). Registered in <see cref="EndpointModules.Create"/>.</summary>
public interface IEndpointModule
{
    /// <summary>Maps the group's routes. Services: <c>app.Services.GetRequiredService&lt;JobQueue&gt;()</c>.</summary>
    void Map(WebApplication app);
}

/// <summary>The one place endpoint groups are registered: each group adds one line here.</summary>
public static class EndpointModules
{
    /// <summary>
    /// Fresh instances for one server: a group may keep per-server state (A1111's current model and options, its
    /// active batch), which must not leak between two servers in one process (tests start many).
    /// </summary>
    public static IReadOnlyList<IEndpointModule> Create() =>
    [
        new Api.NativeApi(),
        new Compat.A1111.A1111Api(),
        new Compat.ComfyUI.ComfyApi(),
        new Web.WebPage(),
    ];
}
