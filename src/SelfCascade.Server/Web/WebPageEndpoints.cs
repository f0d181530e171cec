using System.Collections.Frozen;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace SelfCascade.Server.Web;

/// <summary>The page's endpoint group (registered in <see cref="EndpointModules.Create"/>).</summary>
public sealed class WebPage : IEndpointModule
{
    public void Map(WebApplication app) => app.MapWebPage();
}

/// <summary>
/// Marks the page's static code (scripts, styles): served without the API key, because a browser fetches them with
/// no way to add it and they hold nothing private. index.html itself and every API call still need the key.
/// </summary>
public sealed class PublicPageAsset;

/// <summary>
/// The page (Web/wwwroot: index.html, css/, js/), embedded in this assembly and served by the same process at "/".
/// Files are looked up by exact name in a fixed table built from the embedded resources, so a request path can never
/// reach the file system. The TypeScript sources (Web/ts) are compiled into wwwroot/js in the repository; nothing is
/// built or fetched at run time.
/// </summary>
public static class WebPageEndpoints
{
    private const string ResourcePrefix = "web/";

    private static readonly FrozenDictionary<string, string> ContentTypes = new Dictionary<string, string>
    {
        [".html"] = "text/html; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
    }.ToFrozenDictionary();

    private static readonly Lazy<FrozenDictionary<string, byte[]>> Files = new(LoadFiles);

    /// <summary>The embedded page files by URL path ("index.html", "js/app.js", ...).</summary>
    public static IReadOnlyDictionary<string, byte[]> Embedded => Files.Value;

    private static FrozenDictionary<string, byte[]> LoadFiles()
    {
        var asm = typeof(WebPageEndpoints).Assembly;
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in asm.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            using var stream = asm.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            files[name[ResourcePrefix.Length..].Replace('\\', '/')] = copy.ToArray();
        }
        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Maps GET "/" (index.html) and GET "/{file}" for every embedded file.</summary>
    public static IEndpointRouteBuilder MapWebPage(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", (HttpContext ctx) => Serve(ctx, "index.html")).ExcludeFromDescription();
        foreach (var path in Embedded.Keys)
        {
            var file = path;
            var endpoint = app.MapGet("/" + file, (HttpContext ctx) => Serve(ctx, file)).ExcludeFromDescription();
            if (file != "index.html") endpoint.WithMetadata(new PublicPageAsset());
        }
        return app;
    }

    private static IResult Serve(HttpContext ctx, string path)
    {
        if (!Embedded.TryGetValue(path, out var bytes)) return Results.NotFound();
        // The page changes with the server build; revalidate instead of caching stale scripts.
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers.XContentTypeOptions = "nosniff";
        if (path.EndsWith(".html", StringComparison.Ordinal))
            ctx.Response.Headers.ContentSecurityPolicy =
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
        var type = ContentTypes.TryGetValue(Path.GetExtension(path), out var t) ? t : "application/octet-stream";
        return Results.Bytes(bytes, type);
    }
}
