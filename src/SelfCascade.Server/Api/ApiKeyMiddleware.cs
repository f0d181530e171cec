using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace SelfCascade.Server.Api;

/// <summary>
/// With an API key configured, every request (API, events, page) must carry it: <c>Authorization: Bearer KEY</c>,
/// <c>X-API-Key: KEY</c>, or <c>?api_key=KEY</c> (for EventSource and WebSocket clients that cannot set headers).
/// Compared in constant time; a missing or wrong key is a 401 JSON error.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ServerOptions options)
{
    private readonly byte[]? _key = string.IsNullOrEmpty(options.ApiKey) ? null : Encoding.UTF8.GetBytes(options.ApiKey);

    public Task InvokeAsync(HttpContext ctx)
    {
        if (_key is null || Matches(Presented(ctx))) return next(ctx);
        ctx.Response.Headers.WWWAuthenticate = "Bearer";
        return ErrorMiddleware.WriteAsync(ctx, StatusCodes.Status401Unauthorized, "missing or wrong API key (Authorization: Bearer KEY, X-API-Key or ?api_key=)");
    }

    private static string? Presented(HttpContext ctx)
    {
        var auth = ctx.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return auth[7..].Trim();
        var header = ctx.Request.Headers["X-API-Key"].ToString();
        if (header.Length > 0) return header;
        var query = ctx.Request.Query["api_key"].ToString();
        return query.Length > 0 ? query : null;
    }

    private bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), _key);
}
