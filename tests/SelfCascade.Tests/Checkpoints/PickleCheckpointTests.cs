using System.IO.Compression;
using System.Text;
using SelfCascade.Checkpoints.Pickle;
using SelfCascade.IO;
using SelfCascade.Tests.Support;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Checkpoints;

/// <summary>
/// The allow-list unpickler on real torch.save files (tests/reference/pickle, made by make_pickle.py with torch 1.13):
/// values against the safetensors reference, refusal of every non-allowed global, and fuzzed/hostile inputs.
/// </summary>
public sealed class PickleCheckpointTests : IDisposable
{
    private readonly ITestOutputHelper _out;
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-pkl-").FullName;

    public PickleCheckpointTests(ITestOutputHelper output) { _out = output; TorchSetup.Ensure(); }
    public void Dispose() => Directory.Delete(_dir, true);

    private static string Ref(string name) => Path.Combine(Fixtures.RepoRoot, "tests", "reference", "pickle", name);
    private string P(string name) => Path.Combine(_dir, name);

    [Theory]
    [InlineData("state.pt", "zip")]
    [InlineData("state_p4.pt", "zip")]
    [InlineData("legacy.pt", "legacy")]
    [InlineData("nested.ckpt", "zip")]
    public void EveryTensorMatchesTheReference(string file, string format)
    {
        using var expected = SafeTensorsFile.Open(Ref("expected.safetensors"));
        using var ckpt = PickleCheckpoint.Open(Ref(file));
        Assert.Equal(format, ckpt.Format);
        Assert.Equal(expected.Entries.Keys.OrderBy(k => k, StringComparer.Ordinal), ckpt.Entries.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (name, e) in expected.Entries)
        {
            Assert.Equal(e.DType, ckpt.Entries[name].DType);
            Assert.Equal(e.Shape, ckpt.Entries[name].Shape);
            using var want = expected.Read(name);
            using var got = ckpt.Read(name);
            Assert.Equal(want.dtype, got.dtype);
            Assert.Equal(want.shape, got.shape);
            if (want.numel() > 0) Parity.AssertEqual(got, want, $"{file}:{name}");
            // ReadInto converts on the way (fp32 destination).
            if (want.is_floating_point() && want.numel() > 0)
            {
                using var dest = torch.empty(want.shape, ScalarType.Float32);
                ckpt.ReadInto(name, dest);
                using var w32 = want.to_type(ScalarType.Float32);
                Parity.AssertEqual(dest, w32, $"{file}:{name} (ReadInto fp32)");
            }
        }
        if (file == "nested.ckpt")
        {
            Assert.True(ckpt.NestedStateDict);
            Assert.Contains("note", ckpt.SkippedKeys);
        }
        else Assert.Equal(["note", "count"], ckpt.SkippedKeys);
    }

    [Fact]
    public void ViewsOfOneStorageKeepTheirOffsets()
    {
        using var ckpt = PickleCheckpoint.Open(Ref("state.pt"));
        using var full = ckpt.Read("shared.full");
        using var rows = ckpt.Read("shared.rows");
        using var col = ckpt.Read("shared.col");
        using var wantRows = full.narrow(0, 2, 3);
        using var wantCol = full.select(1, 1);
        Parity.AssertEqual(rows, wantRows, "rows view");
        Parity.AssertEqual(col, wantCol, "strided column view");
    }

    public static TheoryData<string, string> EvilFiles => new()
    {
        { "evil_os.pt", "posix.system" },
        { "evil_eval.pt", "__builtin__.eval" },      // protocol 2 spells Python 3 names the Python 2 way
        { "evil_popen.pt", "commands.Popen" },
        { "evil_load_from_bytes.pt", "torch.storage._load_from_bytes" },
        { "evil_getattr.pt", "__builtin__.getattr" },
        { "evil_p4.pkl", "posix.system" },
        { "evil_p0.pkl", "posix.system" },
    };

    [Theory]
    [MemberData(nameof(EvilFiles))]
    public void NonAllowedGlobalsAreRefusedByNameAndNothingRuns(string file, string global)
    {
        foreach (var m in new[] { "os", "eval", "popen", "load_from_bytes", "getattr" })
            File.Delete($"/tmp/selfcascade_pickle_pwned_{m}");
        var e = Assert.Throws<UnsafePickleException>(() => PickleCheckpoint.Open(Ref(file)));
        Assert.Equal(global, e.Global);
        Assert.Contains(global, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        foreach (var m in new[] { "os", "eval", "popen", "load_from_bytes", "getattr" })
            Assert.False(File.Exists($"/tmp/selfcascade_pickle_pwned_{m}"), "a payload ran");
    }

    [Fact]
    public void CraftedGlobalsAreRefusedBeforeAnyCall()
    {
        // STACK_GLOBAL / GLOBAL / INST for names an attacker would use, including near-misses of allowed names.
        string[] names = ["os.system", "posix.system", "nt.system", "builtins.exec", "builtins.__import__", "torch.load",
            "torch._utils._rebuild_device_tensor_from_numpy", "torch._tensor._rebuild_from_type_v2", "torch.FloatStorage.__init__",
            "collections.OrderedDict.fromkeys", "numpy.load", "torch.serialization.load", "pickle.loads", "torch.UntypedStorage"];
        foreach (var n in names)
        {
            int dot = n.LastIndexOf('.');
            string module = n[..dot], name = n[(dot + 1)..];
            var viaGlobal = Pkl(b => { b.Global(module, name); b.Op(')'); b.Op('R'); b.Op('.'); });
            var e1 = Assert.Throws<UnsafePickleException>(() => OpenZip(viaGlobal));
            Assert.Equal(n, e1.Global);
            var viaStack = Pkl(b => { b.Str(module); b.Str(name); b.Op(0x93); b.Op(')'); b.Op('R'); b.Op('.'); });
            Assert.Equal(n, Assert.Throws<UnsafePickleException>(() => OpenZip(viaStack)).Global);
            var viaInst = Pkl(b => { b.Op('('); b.Raw(Encoding.ASCII.GetBytes($"i{module}\n{name}\n")); b.Op('.'); });
            Assert.Equal(n, Assert.Throws<UnsafePickleException>(() => OpenZip(viaInst)).Global);
        }
        var ext = Pkl(b => { b.Op(0x82); b.Op(1); b.Op('.'); });
        Assert.Throws<UnsafePickleException>(() => OpenZip(ext));
        // REDUCE on something that is not an allowed global (a string on the stack) is a format error.
        var reduceString = Pkl(b => { b.Str("os.system"); b.Op(')'); b.Op('R'); b.Op('.'); });
        Assert.Throws<PickleFormatException>(() => OpenZip(reduceString));
    }

    [Fact]
    public void FuzzedAndHostileInputsGiveOneLineErrors()
    {
        int cases = 0, opened = 0;
        void Case(byte[] bytes, string what)
        {
            cases++;
            var path = P($"case{cases}.pt");
            File.WriteAllBytes(path, bytes);
            var t = Task.Run(() =>
            {
                try
                {
                    using var c = PickleCheckpoint.Open(path);
                    foreach (var name in c.Entries.Keys) c.Read(name).Dispose();
                    return (Exception?)null;
                }
                catch (Exception e) { return e; }
            });
            Assert.True(t.Wait(TimeSpan.FromSeconds(20)), $"{what}: hangs");
            var ex = t.Result;
            if (ex is null) { opened++; return; }
            Assert.True(ex is PickleFormatException, $"{what}: {ex.GetType().Name}: {ex.Message}");
            Assert.DoesNotContain('\n', ex.Message);
            Assert.Contains(path, ex.Message);
        }

        var rng = new Random(1234);
        foreach (var file in new[] { "state.pt", "legacy.pt", "nested.ckpt", "state_p4.pt" })
        {
            var good = File.ReadAllBytes(Ref(file));
            // Truncations.
            for (int i = 0; i < 30; i++) Case(good[..rng.Next(good.Length)], $"{file} truncated");
            Case([], "empty");
            // Random byte mutations (1-4 bytes each).
            for (int i = 0; i < 60; i++)
            {
                var bad = (byte[])good.Clone();
                for (int k = rng.Next(1, 5); k > 0; k--) bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
                Case(bad, $"{file} mutated");
            }
        }
        // Mutations of the pickle itself inside a valid zip (CRCs right), so the unpickler sees the damage.
        var pkl = ReadDataPkl(Ref("state.pt"), out var storages);
        for (int i = 0; i < 150; i++)
        {
            var bad = (byte[])pkl.Clone();
            for (int k = rng.Next(1, 4); k > 0; k--) bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
            Case(Zip(bad, storages), "data.pkl mutated");
        }
        for (int i = 0; i < 20; i++) Case(Zip(pkl[..rng.Next(pkl.Length)], storages), "data.pkl truncated");
        // Storages shorter than the pickle declares.
        Case(Zip(pkl, storages.ToDictionary(kv => kv.Key, kv => kv.Value[..(kv.Value.Length / 2)])), "storages cut");
        Case(Zip(pkl, new Dictionary<string, byte[]>()), "storages missing");

        // Hand-made hostile pickles.
        Case(Zip(Pkl(b => { b.Op(0x8d); b.Raw(BitConverter.GetBytes(1L << 60)); b.Op('.'); }), new()), "BINUNICODE8 2^60");
        Case(Zip(Pkl(b => { b.Op('X'); b.Raw(BitConverter.GetBytes(uint.MaxValue)); b.Op('.'); }), new()), "BINUNICODE 4G");
        Case(Zip(Pkl(b => { b.Op(0x8e); b.Raw(BitConverter.GetBytes(long.MaxValue)); b.Op('.'); }), new()), "BINBYTES8 max");
        Case(Zip(Pkl(b => { b.Op(0x8b); b.Raw(BitConverter.GetBytes(1_000_000_000)); b.Op('.'); }), new()), "LONG4 1e9 bytes");
        Case(Zip(Pkl(b => { for (int i = 0; i < 200_000; i++) b.Op('('); b.Op('.'); }), new()), "200k marks");
        Case(Zip(Pkl(b => { for (int i = 0; i < 1_100_000; i++) b.Op('N'); b.Op('.'); }), new()), "1.1M stack items");
        Case(Zip(Pkl(b => { b.Op('h'); b.Op(7); b.Op('.'); }), new()), "memo get unset");
        Case(Zip(Pkl(b => { b.Op('.'); }), new()), "STOP on empty stack");
        Case(Zip(Pkl(b => { b.Op(0xff); }), new()), "unknown opcode");
        Case(Zip(Pkl(b => { b.Op(']'); b.Op('.'); }), new()), "root is a list");
        Case(Zip(Pkl(b => { b.Op('}'); b.Op('.'); }), new()), "no tensors");
        Case(Zip(Pkl(b => { b.Op(']'); b.Op('q'); b.Op(0); b.Op('h'); b.Op(0); b.Op('a'); b.Op('.'); }), new()), "self-containing list");
        var four = new byte[16];
        Case(Zip(TensorPkl("0", numel: 1_000_000, size: [4], stride: [1]), new() { ["0"] = four }), "storage numel > record");
        Case(Zip(TensorPkl("0", numel: 4, size: [100], stride: [1]), new() { ["0"] = four }), "view past storage");
        Case(Zip(TensorPkl("0", numel: 4, size: [2, 2], stride: [1, 3]), new() { ["0"] = four }), "strided view past storage");
        Case(Zip(TensorPkl("0", numel: 4, size: [1L << 40, 1L << 40], stride: [1, 1]), new() { ["0"] = four }), "size overflow");
        Case(Zip(TensorPkl("0", numel: long.MaxValue / 2, size: [4], stride: [1]), new() { ["0"] = four }), "numel x size overflow");
        Case(Zip(TensorPkl("../../etc/passwd", numel: 4, size: [4], stride: [1]), new() { ["0"] = four }), "traversal key");
        Case(Zip(TensorPkl("1", numel: 4, size: [4], stride: [1]), new() { ["0"] = four }), "missing storage");
        Case(Encoding.ASCII.GetBytes("PK\u0003\u0004 not really a zip"), "fake zip");
        Case([0x80, 0x02, 0x8a, 0x0a], "legacy cut in the magic");
        var random = new byte[4096];
        rng.NextBytes(random);
        random[0] = 0x80;
        Case(random, "random bytes after PROTO");
        // The sane tensor pickle opens (so the hostile variants fail for the reason under test).
        Case(Zip(TensorPkl("0", numel: 4, size: [2, 2], stride: [2, 1]), new() { ["0"] = four }), "control");
        Assert.True(opened >= 1);
        _out.WriteLine($"fuzzed/hostile pickle cases: {cases} ({opened} still readable, {cases - opened} refused with one-line errors)");
        Console.WriteLine($"fuzzed/hostile pickle cases: {cases}");
        Assert.True(cases >= 500);
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    private void OpenZip(byte[] pkl)
    {
        var path = P("crafted.pt");
        File.WriteAllBytes(path, Zip(pkl, new()));
        PickleCheckpoint.Open(path).Dispose();
    }

    private static byte[] ReadDataPkl(string path, out Dictionary<string, byte[]> storages)
    {
        using var z = ZipFile.OpenRead(path);
        storages = new();
        byte[] pkl = [];
        foreach (var e in z.Entries)
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            if (e.FullName.EndsWith("/data.pkl")) pkl = ms.ToArray();
            else if (e.FullName.Contains("/data/")) storages[e.FullName[(e.FullName.IndexOf("/data/") + 6)..]] = ms.ToArray();
        }
        return pkl;
    }

    private static byte[] Zip(byte[] pkl, Dictionary<string, byte[]> storages)
    {
        var ms = new MemoryStream();
        using (var z = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, byte[] data)
            {
                var e = z.CreateEntry(name, CompressionLevel.NoCompression);
                using var s = e.Open();
                s.Write(data);
            }
            Add("archive/data.pkl", pkl);
            Add("archive/byteorder", Encoding.ASCII.GetBytes("little"));
            foreach (var (k, v) in storages) Add("archive/data/" + k, v);
            Add("archive/version", Encoding.ASCII.GetBytes("3\n"));
        }
        return ms.ToArray();
    }

    /// <summary>{'t': _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), 0, size, stride, False, OrderedDict())}.</summary>
    private static byte[] TensorPkl(string key, long numel, long[] size, long[] stride) => Pkl(b =>
    {
        b.Op('}'); b.Str("t");
        b.Global("torch._utils", "_rebuild_tensor_v2");
        b.Op('(');
        b.Op('('); b.Str("storage"); b.Global("torch", "FloatStorage"); b.Str(key); b.Str("cpu"); b.Long(numel); b.Op('t'); b.Op('Q');
        b.Long(0);
        b.Op('('); foreach (var s in size) b.Long(s); b.Op('t');
        b.Op('('); foreach (var s in stride) b.Long(s); b.Op('t');
        b.Op(0x89);
        b.Global("collections", "OrderedDict"); b.Op(')'); b.Op('R');
        b.Op('t'); b.Op('R');
        b.Op('s'); b.Op('.');
    });

    private static byte[] Pkl(Action<PickleBuilder> build)
    {
        var b = new PickleBuilder();
        b.Op(0x80); b.Op(2);
        build(b);
        return b.Bytes.ToArray();
    }

    private sealed class PickleBuilder
    {
        public readonly List<byte> Bytes = new();
        public void Op(int op) => Bytes.Add((byte)op);
        public void Raw(byte[] b) => Bytes.AddRange(b);
        public void Global(string module, string name) { Op('c'); Raw(Encoding.ASCII.GetBytes($"{module}\n{name}\n")); }
        public void Str(string s) { var u = Encoding.UTF8.GetBytes(s); Op('X'); Raw(BitConverter.GetBytes(u.Length)); Raw(u); }
        public void Long(long v) { Op(0x8a); Op(8); Raw(BitConverter.GetBytes(v)); }
    }
}
