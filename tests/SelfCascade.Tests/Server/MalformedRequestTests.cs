using System.Net;
using System.Text;
using System.Text.Json;

namespace SelfCascade.Tests.Server;

/// <summary>
/// Every malformed request gets a 4xx with a JSON error body, never a 5xx: wrong types, unknown fields, sizes beyond
/// the limits, unknown model, huge bodies, invalid base64, images whose header claims too many pixels, hostile ids
/// and file names. The server keeps serving afterwards.
/// </summary>
public sealed class MalformedRequestTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _s = fixture.Server;

    public static IEnumerable<object[]> Bodies()
    {
        string[] jobs =
        [
            "", "{", "[]", "null", "42", "\"x\"", "{\"prompt\": 5}", "{\"prompt\": null}", "{}", "{\"prompt\": \"\"}", "{\"prompt\": \"   \"}",
            "{\"prompt\": \"a\", \"steps\": \"ten\"}", "{\"prompt\": \"a\", \"steps\": 1.5}", "{\"prompt\": \"a\", \"steps\": 0}",
            "{\"prompt\": \"a\", \"steps\": -3}", "{\"prompt\": \"a\", \"steps\": 100000}", "{\"prompt\": \"a\", \"steps\": 99999999999999999999}",
            "{\"prompt\": \"a\", \"seed\": -5}", "{\"prompt\": \"a\", \"seed\": \"abc\"}", "{\"prompt\": \"a\", \"width\": 100000, \"height\": 64}",
            "{\"prompt\": \"a\", \"width\": -64, \"height\": 64}", "{\"prompt\": \"a\", \"size\": \"4096x4096\"}", "{\"prompt\": \"a\", \"size\": \"64\"}",
            "{\"prompt\": \"a\", \"size\": \"axb\"}", "{\"prompt\": \"a\", \"size\": \"64x64\", \"width\": 64}", "{\"prompt\": \"a\", \"size\": \"0x64\"}",
            "{\"prompt\": \"a\", \"model\": \"nope\"}", "{\"prompt\": \"a\", \"model\": \"../../etc/passwd\"}", "{\"prompt\": \"a\", \"method\": \"magic\"}",
            "{\"prompt\": \"a\", \"scheduler\": \"nope\"}", "{\"prompt\": \"a\", \"guidance\": -1}", "{\"prompt\": \"a\", \"guidance\": 1e300}",
            "{\"prompt\": \"a\", \"pivot_strength\": 0}", "{\"prompt\": \"a\", \"pivot_strength\": 1.5}", "{\"prompt\": \"a\", \"num_images\": 0}",
            "{\"prompt\": \"a\", \"num_images\": 1000}", "{\"prompt\": \"a\", \"base_size\": \"7x7x7\"}", "{\"prompt\": \"a\", \"pivot_mode\": \"nearest\"}",
            "{\"prompt\": \"a\", \"vae_tiling\": \"maybe\"}", "{\"prompt\": \"a\", \"stage_steps\": [0]}", "{\"prompt\": \"a\", \"stage_strength\": [2]}",
            "{\"prompt\": \"a\", \"stage_steps\": \"4,4\"}", "{\"prompt\": \"a\", \"stage_steps\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}",
            "{\"prompt\": \"a\", \"preview_every\": -1}", "{\"prompt\": \"a\", \"unknown_field\": 1}", "{\"prompt\": \"a\", \"size\": \"96x64\", \"stage_steps\": [4, 1], \"stage_strength\": [0.01]}",
            "{\"prompt\": \"" + new string('x', 5000) + "\"}", "{\"prompt\": \"a\", \"size\": \"1x100000\"}",
        ];
        foreach (var b in jobs) yield return ["/api/jobs", b];
        string bomb = Convert.ToBase64String(PngHeaderClaiming(100_000, 100_000));
        string[] upscales =
        [
            "{}", "{\"image\": \"not base64 !!!\"}", "{\"image\": \"aGVsbG8=\"}", "{\"image\": \"data:image/png,abc\"}",
            "{\"image\": \"" + bomb + "\"}", "{\"image\": \"" + bomb + "\", \"job_id\": \"x\"}", "{\"job_id\": \"../../../etc\"}",
            "{\"job_id\": \"00000000-0000-0000-0000-000000000000\"}", "{\"image\": 5}", "{\"image\": \"" + Convert.ToBase64String(TinyPng()) + "\", \"scale\": 3}",
            "{\"image\": \"" + Convert.ToBase64String(TinyPng()) + "\", \"scale\": 2, \"steps\": 0}",
        ];
        foreach (var b in upscales) yield return ["/api/upscale", b];
    }

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task MalformedBodiesAre4xxJsonErrors(string path, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await _s.Client.PostAsync(path, content);
        await AssertJson4xx(response, $"{path} {Short(body)}");
    }

    [Fact]
    public async Task HostileRoutesMethodsAndBodiesAre4xxJsonErrors()
    {
        var requests = new List<HttpRequestMessage>
        {
            new(HttpMethod.Get, "/api/jobs/not-a-job"),
            new(HttpMethod.Get, "/api/jobs/..%2F..%2Fjobs.db"),
            new(HttpMethod.Get, "/api/jobs/00000000-0000-0000-0000-000000000000"),
            new(HttpMethod.Get, "/api/jobs/00000000-0000-0000-0000-000000000000/images/0"),
            new(HttpMethod.Get, "/api/jobs/00000000-0000-0000-0000-000000000000/events"),
            new(HttpMethod.Get, "/api/jobs/00000000-0000-0000-0000-000000000000/files/..%2F..%2Fjobs.db"),
            new(HttpMethod.Get, "/api/jobs/..%2F..%2F/files/jobs.db"),
            new(HttpMethod.Get, "/api/jobs/x/images/notanumber"),
            new(HttpMethod.Get, "/api/jobs?status=bogus"),
            new(HttpMethod.Get, "/api/jobs?limit=abc"),
            new(HttpMethod.Post, "/api/jobs/00000000-0000-0000-0000-000000000000/cancel"),
            new(HttpMethod.Delete, "/api/jobs/nope"),
            new(HttpMethod.Get, "/api/nothing-here"),
            new(HttpMethod.Put, "/api/jobs"),
            new(HttpMethod.Post, "/api/jobs") { Content = new StringContent("prompt=a", Encoding.UTF8, "application/x-www-form-urlencoded") },
            new(HttpMethod.Post, "/api/jobs") { Content = new StringContent("{\"prompt\":\"a\"}", Encoding.UTF8, "text/plain") },
        };
        foreach (var r in requests)
        {
            var label = $"{r.Method} {r.RequestUri}";
            using var response = await _s.Client.SendAsync(r);
            await AssertJson4xx(response, label);
            r.Dispose();
        }
        // Bodies over the 1 MiB limit: 413 as soon as the headers say so, before the body is read (sent over a raw
        // socket: HttpClient reports a broken pipe when the server answers and closes before the upload ends).
        foreach (var path in new[] { "/api/jobs", "/api/upscale" })
        {
            var (status, body) = await RawPost(_s.BaseAddress, path, contentLength: 50L << 20, firstBytes: "{\"image\": \"AAAA");
            Assert.True(status == 413, $"{path}: HTTP {status} {body}");
            Assert.Equal(413, JsonDocument.Parse(body).RootElement.GetProperty("status").GetInt32());
        }
        // Still serving.
        var models = await _s.Client.GetAsync("/api/models");
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
    }

    private static async Task AssertJson4xx(HttpResponseMessage response, string label)
    {
        var text = await response.Content.ReadAsStringAsync();
        int code = (int)response.StatusCode;
        Assert.True(code is >= 400 and < 500, $"{label}: HTTP {code} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(text).RootElement;
        Assert.False(string.IsNullOrWhiteSpace(json.GetProperty("error").GetString()), label);
        Assert.Equal(code, json.GetProperty("status").GetInt32());
    }

    /// <summary>An HTTP/1.1 POST with the given Content-Length whose body is only <paramref name="firstBytes"/>; returns status and body.</summary>
    private static async Task<(int Status, string Body)> RawPost(Uri baseAddress, string path, long contentLength, string firstBytes)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(baseAddress.Host, baseAddress.Port);
        using var stream = tcp.GetStream();
        var head = $"POST {path} HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nContent-Type: application/json\r\nContent-Length: {contentLength}\r\nConnection: close\r\n\r\n{firstBytes}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var statusLine = await reader.ReadLineAsync(cts.Token) ?? "";
        int status = int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        bool chunked = false;
        while (await reader.ReadLineAsync(cts.Token) is { Length: > 0 } header)
            if (header.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && header.Contains("chunked", StringComparison.OrdinalIgnoreCase)) chunked = true;
        var rest = await reader.ReadToEndAsync(cts.Token);
        if (!chunked) return (status, rest);
        // De-chunk: "SIZE\r\nDATA\r\n" ... "0\r\n\r\n".
        var body = new StringBuilder();
        int pos = 0;
        while (pos < rest.Length)
        {
            int eol = rest.IndexOf("\r\n", pos, StringComparison.Ordinal);
            int size = Convert.ToInt32(rest[pos..eol], 16);
            if (size == 0) break;
            body.Append(rest, eol + 2, size);
            pos = eol + 2 + size + 2;
        }
        return (status, body.ToString());
    }

    private static string Short(string s) => s.Length <= 120 ? s : s[..120] + "...";

    private static byte[] TinyPng() => new SelfCascade.Imaging.RgbImage(8, 8).EncodePng();

    /// <summary>A valid PNG signature and IHDR chunk for a huge image, and no pixel data (a decompression-bomb shape).</summary>
    private static byte[] PngHeaderClaiming(int width, int height)
    {
        var png = TinyPng();
        // IHDR data starts at byte 16 (8 signature + 4 length + 4 type); fix the CRC after patching the size.
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        uint crc = Crc32(png.AsSpan(12, 17));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), crc);
        return png;
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }
}
