using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>A prompt as ComfyUI keeps it: queue number, client, the graph, extra_data and the outputs to run.</summary>
public sealed class ComfyPromptRecord(double number, string? clientId, JsonObject graph, JsonObject extraData, IReadOnlyList<string> outputs)
{
    public double Number { get; } = number;
    public string? ClientId { get; } = clientId;
    public JsonObject Graph { get; } = graph;
    public JsonObject ExtraData { get; } = extraData;
    public IReadOnlyList<string> Outputs { get; } = outputs;
    /// <summary>Execution has ended (ComfyUI removes the prompt from queue_running as it finishes, before the job record is final).</summary>
    public volatile bool Finished;

    /// <summary>The queue/history "prompt" entry: <c>[number, prompt_id, prompt, extra_data, outputs_to_execute]</c>.</summary>
    public JsonArray QueueItem(string promptId) => new(
        JsonValue.Create(Number), JsonValue.Create(promptId), Graph.DeepClone(), ExtraData.DeepClone(),
        new JsonArray(Outputs.Select(o => (JsonNode?)JsonValue.Create(o)).ToArray()));
}

/// <summary>
/// ComfyUI's /ws side and history: connected clients (by clientId = sid), messages as <c>{"type", "data"}</c> JSON
/// text frames (status to everyone; execution messages to the prompt's client only, as ComfyUI), prompt records and
/// history entries (kept in memory and in the job folder as comfyui-history.json, so they survive a restart).
/// Each client has a bounded outgoing queue (oldest dropped), so a slow client cannot grow memory.
/// </summary>
public sealed class ComfyHub
{
    public const string HistoryFile = "comfyui-history.json";
    private readonly ConcurrentDictionary<string, Client> _clients = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ComfyPromptRecord> _prompts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, JsonObject> _history = new(StringComparer.Ordinal);
    private long _number;

    public int ClientCount => _clients.Count;

    public double NextNumber() => Interlocked.Increment(ref _number) - 1;

    public void AddPrompt(string promptId, ComfyPromptRecord record) => _prompts[promptId] = record;
    public ComfyPromptRecord? Prompt(string promptId) => _prompts.GetValueOrDefault(promptId);

    // ------------------------------------------------------------------ history

    public void SetHistory(string promptId, JsonObject entry, string? jobDir)
    {
        _history[promptId] = entry;
        if (jobDir is null) return;
        try { SelfCascade.IO.AtomicFile.WriteAllBytes(Path.Combine(jobDir, HistoryFile), Encoding.UTF8.GetBytes(entry.ToJsonString())); }
        catch (IOException) { /* kept in memory; lost on restart only */ }
    }

    /// <summary>A history entry from memory, else from the job folder (after a restart); null if none.</summary>
    public JsonObject? History(string promptId, string? jobDir)
    {
        if (_history.TryGetValue(promptId, out var h)) return h;
        if (jobDir is null) return null;
        var path = Path.Combine(jobDir, HistoryFile);
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException) { return null; }
    }

    public void DeleteHistory(string promptId, string? jobDir)
    {
        _history.TryRemove(promptId, out _);
        if (jobDir is not null) File.Delete(Path.Combine(jobDir, HistoryFile));
    }

    public void ForgetHistoryCache() => _history.Clear();

    // ------------------------------------------------------------------ sockets

    /// <summary>Serves one WebSocket until it closes: sends "status" first, then whatever is queued for it.</summary>
    public async Task ServeAsync(WebSocket socket, string sid, JsonObject status, CancellationToken ct)
    {
        var client = new Client(socket);
        if (_clients.TryRemove(sid, out var old)) old.Complete();
        _clients[sid] = client;
        client.Enqueue(Message("status", new JsonObject { ["status"] = status, ["sid"] = sid }));
        var sending = client.SendLoopAsync(ct);
        var buffer = new byte[4096];
        try
        {
            // ComfyUI ignores what clients send; read (and drop) until the client closes.
            while (socket.State == WebSocketState.Open && !ct.IsCancellationRequested)
            {
                var r = await socket.ReceiveAsync(buffer, ct);
                if (r.MessageType == WebSocketMessageType.Close) break;
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        finally
        {
            _clients.TryRemove(new KeyValuePair<string, Client>(sid, client));
            client.Complete();
            try { await sending; } catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                try { await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None); }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
            }
        }
    }

    /// <summary>To one client (ComfyUI sends execution messages only to the prompt's client_id); nothing when none.</summary>
    public void Send(string? sid, string type, JsonObject data)
    {
        if (sid is not null && _clients.TryGetValue(sid, out var c)) c.Enqueue(Message(type, data));
    }

    public void Broadcast(string type, JsonObject data)
    {
        var m = Message(type, data);
        foreach (var c in _clients.Values) c.Enqueue(m);
    }

    private static byte[] Message(string type, JsonObject data) =>
        Encoding.UTF8.GetBytes(new JsonObject { ["type"] = type, ["data"] = data }.ToJsonString());

    private sealed class Client(WebSocket socket)
    {
        private readonly Channel<byte[]> _out = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropOldest });

        public void Enqueue(byte[] message) => _out.Writer.TryWrite(message);
        public void Complete() => _out.Writer.TryComplete();

        public async Task SendLoopAsync(CancellationToken ct)
        {
            await foreach (var m in _out.Reader.ReadAllAsync(ct))
            {
                if (socket.State != WebSocketState.Open) return;
                await socket.SendAsync(m, WebSocketMessageType.Text, true, ct);
            }
        }
    }
}
