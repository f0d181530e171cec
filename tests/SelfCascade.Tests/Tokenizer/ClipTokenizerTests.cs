using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.Models.Clip;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Tokenizer;

/// <summary>
/// Parity with transformers' CLIPTokenizer (fixtures/diffusers-parity/tokenizer/cases.json, made by transformers 5,
/// tokenizers backend, ftfy not installed) for both SD tokenizer kinds: pad "&lt;|endoftext|&gt;" and pad "!".
/// </summary>
public class ClipTokenizerTests
{
    private sealed record Case(string Prompt, int[] PadEos, int[] PadBang, int[] Untruncated, string[] Tokens);

    private static readonly Lazy<Case[]> Cases = new(LoadCases);
    private static readonly Lazy<ClipTokenizer> PadEos = new(() => ClipTokenizer.FromFolder(Fixtures.ParityPath("tokenizer", "pad_eos")));
    private static readonly Lazy<ClipTokenizer> PadBang = new(() => ClipTokenizer.FromFolder(Fixtures.ParityPath("tokenizer", "pad_bang")));

    private static Case[] LoadCases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Fixtures.ParityPath("tokenizer", "cases.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("prompt").GetString()!,
            Ints(c.GetProperty("input_ids_pad_eos")),
            Ints(c.GetProperty("input_ids_pad_bang")),
            Ints(c.GetProperty("input_ids_untruncated")),
            c.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray())).ToArray();

        static int[] Ints(JsonElement a) => a.EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Cases.Value.Length; i++) data.Add(i);
        return data;
    }

    [Fact]
    public void FixtureHasTwelveCases() => Assert.Equal(12, Cases.Value.Length);

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void PadEosIdsMatchTransformers(int index)
    {
        var c = Cases.Value[index];
        Assert.Equal(c.PadEos, PadEos.Value.Encode(c.Prompt));
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void PadBangIdsMatchTransformers(int index)
    {
        var c = Cases.Value[index];
        Assert.Equal(c.PadBang, PadBang.Value.Encode(c.Prompt));
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void UntruncatedIdsMatchTransformers(int index)
    {
        var c = Cases.Value[index];
        Assert.Equal(c.Untruncated, PadEos.Value.EncodeUntruncated(c.Prompt));
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void TokenStringsMatchTransformers(int index)
    {
        var c = Cases.Value[index];
        Assert.Equal(c.Tokens[1..^1], PadEos.Value.Tokenize(c.Prompt)); // fixture tokens include BOS and EOS
    }

    [Fact]
    public void SpecialTokensComeFromTheFolder()
    {
        var eos = PadEos.Value;
        Assert.Equal((49406, 49407, 49407, 49407), (eos.BosTokenId, eos.EosTokenId, eos.PadTokenId, eos.UnkTokenId));
        Assert.Equal("<|endoftext|>", eos.PadToken);
        Assert.Equal(77, eos.ModelMaxLength);
        Assert.Equal(49408, eos.VocabSize);

        var bang = PadBang.Value;
        Assert.Equal((49406, 49407, 0), (bang.BosTokenId, bang.EosTokenId, bang.PadTokenId));
        Assert.Equal("!", bang.PadToken);
    }

    [Fact]
    public void PadBangSplitsExclamationMarksAsSpecialTokens()
    {
        // "!" is the pad special token of SD 2.x tokenizers, so transformers cuts it out before BPE: "wow!!" is
        // "wow</w>" + two pad ids instead of "wow</w>" + "!!</w>" (748).
        Assert.Equal([49406, 2781, 0, 0, 49407], PadBang.Value.EncodeUntruncated("wow!!"));
        Assert.Equal([49406, 2781, 748, 49407], PadEos.Value.EncodeUntruncated("wow!!"));
    }

    [Fact]
    public void SpecialTokenLiteralsInTextMapToTheirIds()
    {
        var ids = PadEos.Value.EncodeUntruncated("a<|endoftext|>photo");
        Assert.Equal([49406, 320, 49407, 1125, 49407], ids);
    }

    [Fact]
    public void EncodeTruncatesAndPadsToTheRequestedLength()
    {
        var ids = PadBang.Value.Encode("a photo of a red circle", maxLength: 5);
        Assert.Equal([49406, 320, 1125, 539, 49407], ids);
        var padded = PadBang.Value.Encode("a photo", maxLength: 6);
        Assert.Equal([49406, 320, 1125, 49407, 0, 0], padded);
        Assert.Throws<ArgumentOutOfRangeException>(() => PadBang.Value.Encode("a", maxLength: 1));
    }

    [Fact]
    public void NormalisationIsNfcWhitespaceAndLowercase()
    {
        // Decomposed "e" + U+0301 composes to "é" (NFC); NBSP and ideographic space are whitespace; case folds.
        var composed = PadEos.Value.EncodeUntruncated("café résumé");
        Assert.Equal(composed, PadEos.Value.EncodeUntruncated("CAFE\u0301\u00A0\u3000RE\u0301SUME\u0301"));
    }

    [Theory]
    // Regex alternation order: a contraction wins at "'", so "'sand" is "'s" + "and" (as in the reference).
    [InlineData("'sand it's", new[] { "'s", "and", "it", "'s" })]
    // Supplementary-plane letters (U+20000, CJK ext. B) are \p{L}: one word with the letters around them.
    [InlineData("a\U00020000b 12", new[] { "a\U00020000b", "1", "2" })]
    // Punctuation runs are greedy and swallow apostrophes; emoji (So) are symbols, not letters.
    [InlineData("x?'s \U0001F600\U0001F680!", new[] { "x", "?'", "s", "\U0001F600\U0001F680!" })]
    public void PreTokenizerFollowsClipRegex(string text, string[] expected) =>
        Assert.Equal(expected, ClipTokenizer.PreTokenize(text).ToArray());

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TokenizerJsonLayoutGivesIdenticalIds(bool mergesAsPairs)
    {
        string dir = Directory.CreateTempSubdirectory("clip-tok-").FullName;
        try
        {
            WriteTokenizerJson(dir, mergesAsPairs);
            File.Copy(Fixtures.ParityPath("tokenizer", "pad_bang", "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
            var tok = ClipTokenizer.FromFolder(dir);
            Assert.Equal((49406, 49407, 0, 77), (tok.BosTokenId, tok.EosTokenId, tok.PadTokenId, tok.ModelMaxLength));
            foreach (var c in Cases.Value)
            {
                Assert.Equal(c.PadBang, tok.Encode(c.Prompt));
                // Fixture token strings come from the pad-eos tokenizer ("!" is special here), so compare with the folder.
                Assert.Equal(PadBang.Value.Tokenize(c.Prompt), tok.Tokenize(c.Prompt));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TokenizerJsonWithObjectSpecialTokensAndNoConfig()
    {
        string dir = Directory.CreateTempSubdirectory("clip-tok-").FullName;
        try
        {
            WriteTokenizerJson(dir, mergesAsPairs: false);
            // transformers-4.x style: special tokens serialised as AddedToken objects.
            File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), """
                {"bos_token": {"content": "<|startoftext|>", "normalized": true},
                 "eos_token": {"content": "<|endoftext|>", "normalized": true},
                 "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
                """);
            var tok = ClipTokenizer.FromFolder(dir);
            Assert.Equal((49407, 77), (tok.PadTokenId, tok.ModelMaxLength));
            foreach (var c in Cases.Value)
            {
                Assert.Equal(c.PadEos, tok.Encode(c.Prompt));
                Assert.Equal(c.Untruncated, tok.EncodeUntruncated(c.Prompt));
                Assert.Equal(c.Tokens[1..^1], tok.Tokenize(c.Prompt));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void MissingVocabularyIsAFileNotFoundNamingTheFolder()
    {
        string dir = Directory.CreateTempSubdirectory("clip-tok-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{}");
            var e = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFolder(dir));
            Assert.Contains(dir, e.Message);
            Assert.Contains("vocabulary", e.Message);

            File.Copy(Fixtures.ParityPath("tokenizer", "clip", "vocab.json"), Path.Combine(dir, "vocab.json"));
            var e2 = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFolder(dir));
            Assert.Contains("merges.txt", e2.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Assert.Throws<DirectoryNotFoundException>(() => ClipTokenizer.FromFolder(dir));
    }

    [Theory]
    [InlineData("vocab.json")]
    [InlineData("tokenizer_config.json")]
    public void BrokenJsonIsInvalidDataNamingTheFile(string broken)
    {
        string dir = CopyOfFolder("pad_eos");
        try
        {
            File.WriteAllText(Path.Combine(dir, broken), "{\"a\": 1,");
            var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir));
            Assert.Contains(Path.Combine(dir, broken), e.Message);
            Assert.Contains("malformed JSON", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void SpecialTokenOutsideTheVocabularyIsInvalidData()
    {
        string dir = CopyOfFolder("pad_eos");
        try
        {
            File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), """{"pad_token": "<|pad|>"}""");
            var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(dir));
            Assert.Contains("<|pad|>", e.Message);
            Assert.Contains(dir, e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // ------------------------------------------------------------------ helpers

    private static string CopyOfFolder(string name)
    {
        string dir = Directory.CreateTempSubdirectory("clip-tok-").FullName;
        foreach (var f in Directory.GetFiles(Fixtures.ParityPath("tokenizer", name)))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    /// <summary>An HF fast-layout tokenizer.json from the fixture's vocab.json + merges.txt.</summary>
    private static void WriteTokenizerJson(string dir, bool mergesAsPairs)
    {
        var vocab = JsonNode.Parse(File.ReadAllText(Fixtures.ParityPath("tokenizer", "clip", "vocab.json")))!.AsObject();
        var merges = new JsonArray();
        foreach (var line in File.ReadLines(Fixtures.ParityPath("tokenizer", "clip", "merges.txt")).Skip(1))
        {
            if (line.Length == 0) continue;
            var parts = line.Split(' ');
            merges.Add(mergesAsPairs ? new JsonArray(parts[0], parts[1]) : JsonValue.Create(line));
        }
        static JsonObject Added(int id, string content) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        };
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Added(49406, "<|startoftext|>"), Added(49407, "<|endoftext|>")),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<|endoftext|>", ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "</w>", ["fuse_unk"] = false, ["vocab"] = vocab.DeepClone(), ["merges"] = merges,
            },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), root.ToJsonString());
    }
}
