using System.Buffers.Binary;
using System.Text;
using SelfCascade.IO;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-st-").FullName;

    public SafeTensorsTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>Writes a safetensors file from a raw header string and data bytes.</summary>
    private string WriteRaw(string name, string header, byte[] data, ulong? claimedHeaderLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, claimedHeaderLength ?? (ulong)h.Length);
        File.WriteAllBytes(P(name), [.. len, .. h, .. data]);
        return P(name);
    }

    [Fact]
    public void RoundTripsEveryDType()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = torch.arange(12, dtype: ScalarType.Float32).reshape(3, 4),
            ["f16"] = torch.linspace(-2, 2, 5).to(ScalarType.Float16),
            ["bf16"] = torch.linspace(-3, 3, 7).to(ScalarType.BFloat16),
            ["f64"] = torch.tensor(new[] { 1.5, -2.25 }),
            ["i64"] = torch.tensor(new long[] { 1, -5, long.MaxValue }),
            ["i32"] = torch.tensor(new[] { 7, -8 }),
            ["u8"] = torch.tensor(new byte[] { 0, 255, 3 }),
            ["bool"] = torch.tensor(new[] { true, false, true }),
            ["scalar"] = torch.tensor(3.25f),
            ["empty"] = torch.zeros(0, 4),
        };
        SafeTensorsWriter.Save(P("all.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        using var f = SafeTensorsFile.Open(P("all.safetensors"));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(tensors.Count, f.Entries.Count);
        foreach (var (name, t) in tensors)
        {
            using var back = f.Read(name);
            Assert.Equal(t.dtype, back.dtype);
            Assert.Equal(t.shape, back.shape);
            using var eq = back.eq(t).all();
            Assert.True(eq.item<bool>(), name);
        }
        Assert.Equal("F16", f.Entry("f16").DType);
        Assert.Equal("BF16", f.Entry("bf16").DType);
        Assert.Equal("BOOL", f.Entry("bool").DType);
        foreach (var t in tensors.Values) t.Dispose();
    }

    [Fact]
    public void ReadIntoConvertsHalfPrecisionIntoFloat32()
    {
        using var src = torch.linspace(-1, 1, 6).reshape(2, 3);
        using var half = src.to(ScalarType.Float16);
        using var bhalf = src.to(ScalarType.BFloat16);
        SafeTensorsWriter.Save(P("h.safetensors"), [new("h", half), new("b", bhalf)]);
        using var f = SafeTensorsFile.Open(P("h.safetensors"));
        using var dest = torch.zeros(2, 3);
        f.ReadInto("h", dest);
        using var expectH = half.to(ScalarType.Float32);
        Assert.True(Parity.Same(dest, expectH));
        f.ReadInto("b", dest);
        using var expectB = bhalf.to(ScalarType.Float32);
        Assert.True(Parity.Same(dest, expectB));
        using var wrong = torch.zeros(3, 2);
        Assert.Throws<ArgumentException>(() => f.ReadInto("h", wrong));
    }

    [Fact]
    public void TruncatedFileIsRejectedNamingFileAndTensor()
    {
        using var t = torch.ones(64, 64);
        SafeTensorsWriter.Save(P("full.safetensors"), [new("w", t)]);
        var bytes = File.ReadAllBytes(P("full.safetensors"));
        File.WriteAllBytes(P("cut.safetensors"), bytes[..(bytes.Length - 100)]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(P("cut.safetensors")));
        Assert.Contains("cut.safetensors", e.Message);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void HeaderLengthBeyondFileIsRejectedBeforeAllocating()
    {
        var path = WriteRaw("huge.safetensors", "{}", [], claimedHeaderLength: 1UL << 60);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("header claims", e.Message);
        File.WriteAllBytes(P("tiny.safetensors"), [1, 2, 3]);
        Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(P("tiny.safetensors")));
    }

    [Theory]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,16]}}", "needs")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,4096]}}", "beyond")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,4],\"data_offsets\":[0,16]}}", "overflows")]
    [InlineData("{\"w\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", "unsupported dtype")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", "invalid dimension")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", "invalid data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "overlap")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4]", "not valid JSON")]
    [InlineData("[1,2,3]", "not an object")]
    public void LyingOrCorruptHeadersAreRejected(string header, string expected)
    {
        var path = WriteRaw("bad.safetensors", header, new byte[16]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains("bad.safetensors", e.Message);
    }

    [Fact]
    public void MissingFileIsAClearError()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Open(P("nope.safetensors")));
        Assert.Contains("nope.safetensors", e.Message);
    }
}
