using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SelfCascade.Models.Clip;

/// <summary>
/// CLIP byte-level BPE tokenizer, matching transformers' <c>CLIPTokenizer</c> (transformers 5, tokenizers backend;
/// the same ids as the v4 fast tokenizer and the slow one without ftfy). Pipeline, in the reference order:
/// <list type="number">
/// <item>added/special tokens (bos, eos, unk, pad, tokenizer.json <c>added_tokens</c>) are cut out of the raw text
/// first, leftmost-longest; this is why the SD 2.x tokenizer (pad <c>!</c>) encodes <c>!!</c> as two pad ids;</item>
/// <item>each remaining piece is normalised: NFC, <c>\s+</c> → one space, lowercase;</item>
/// <item>it is split with CLIP's regex (whitespace dropped), then ByteLevel maps UTF-8 bytes to GPT-2 symbols;</item>
/// <item>each word runs through BPE with <c>&lt;/w&gt;</c> on its last symbol (tokenizers' merge order).</item>
/// </list>
/// Thread-safe once built.
/// </summary>
public sealed class ClipTokenizer
{
    /// <summary>CLIP's context length, used where the folder gives none (or a placeholder such as 1e30).</summary>
    public const int DefaultModelMaxLength = 77;

    private const string DefaultBos = "<|startoftext|>";
    private const string DefaultEos = "<|endoftext|>";
    private const int CacheCapacity = 10_000; // tokenizers' BPE cache size; past it words are not cached

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<int, string> _idToToken;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges; // (left id, right id) -> rank, merged id
    private readonly string _endOfWordSuffix;
    private readonly List<AddedToken> _rawAdded;        // matched on the raw text (normalized: false)
    private readonly List<AddedToken> _normalizedAdded; // matched on normalised text, by normalised content
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public int BosTokenId { get; }
    public int EosTokenId { get; }
    public int PadTokenId { get; }
    public int UnkTokenId { get; }
    public string BosToken { get; }
    public string EosToken { get; }
    public string PadToken { get; }
    public string UnkToken { get; }
    public int ModelMaxLength { get; }
    /// <summary>Number of distinct ids (vocabulary plus added tokens outside it), as <c>len(tokenizer)</c>.</summary>
    public int VocabSize => _idToToken.Count;

    /// <summary>An added token as tokenizers stores it; <paramref name="Normalized"/> picks raw vs normalised matching.</summary>
    private sealed record AddedToken(string Content, int Id, bool Normalized);

    /// <summary>A special token named in the config: content plus the normalized flag when given as an object.</summary>
    private sealed record SpecialSpec(string Content, bool? Normalized);

    private ClipTokenizer(Dictionary<string, int> vocab, IReadOnlyList<(string A, string B)> merges, string suffix,
        IReadOnlyList<(string Content, int? Id, bool Normalized)> added, SpecialSpec bos, SpecialSpec eos,
        SpecialSpec unk, SpecialSpec pad, int modelMaxLength, string source)
    {
        _vocab = vocab;
        _endOfWordSuffix = suffix;
        ModelMaxLength = modelMaxLength;

        _idToToken = new Dictionary<int, string>(vocab.Count + 8);
        foreach (var (tok, id) in vocab) _idToToken[id] = tok;

        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (a, b) = merges[rank];
            // tokenizers refuses merges whose parts or result are not in the vocabulary; so do we.
            if (!vocab.TryGetValue(a, out int ia) || !vocab.TryGetValue(b, out int ib) || !vocab.TryGetValue(a + b, out int inew))
                throw new InvalidDataException($"{source}: merge #{rank + 1} '{a} {b}' uses a token that is not in the vocabulary");
            _merges.TryAdd(Key(ia, ib), (rank, inew)); // a repeated merge keeps its first (best) rank
        }

        // Added tokens: explicit entries first, then the special tokens (first occurrence of a content wins).
        var addedByContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        void Add(string content, int? id, bool normalized)
        {
            if (content.Length == 0 || addedByContent.ContainsKey(content)) return;
            int resolved = vocab.TryGetValue(content, out int v) ? v
                : id ?? throw new InvalidDataException($"{source}: special token '{content}' is not in the vocabulary");
            addedByContent[content] = new AddedToken(content, resolved, normalized);
            _idToToken.TryAdd(resolved, content);
        }
        foreach (var (content, id, normalized) in added) Add(content, id, normalized);
        // Special tokens given as plain strings become AddedToken(special=True), whose default is normalized=False.
        foreach (var s in new[] { bos, eos, unk, pad }) Add(s.Content, null, s.Normalized ?? false);

        _rawAdded = addedByContent.Values.Where(t => !t.Normalized).ToList();
        _normalizedAdded = addedByContent.Values.Where(t => t.Normalized)
            .Select(t => t with { Content = Normalize(t.Content) }).Where(t => t.Content.Length > 0).ToList();

        BosToken = bos.Content; BosTokenId = addedByContent[bos.Content].Id;
        EosToken = eos.Content; EosTokenId = addedByContent[eos.Content].Id;
        UnkToken = unk.Content; UnkTokenId = addedByContent[unk.Content].Id;
        PadToken = pad.Content; PadTokenId = addedByContent[pad.Content].Id;
    }

    // ------------------------------------------------------------------ public API

    /// <summary>Token strings without BOS/EOS (as <c>convert_ids_to_tokens</c> shows them).</summary>
    public IReadOnlyList<string> Tokenize(string text) => TokenIds(text).Select(IdToToken).ToList();

    /// <summary>BOS + tokens + EOS, with no truncation or padding.</summary>
    public IReadOnlyList<int> EncodeUntruncated(string text)
    {
        var ids = TokenIds(text);
        var result = new List<int>(ids.Count + 2) { BosTokenId };
        result.AddRange(ids);
        result.Add(EosTokenId);
        return result;
    }

    /// <summary>
    /// <c>tokenizer(text, padding="max_length", max_length=n, truncation=True).input_ids</c>: BOS, the first n-2 tokens,
    /// EOS, then <see cref="PadTokenId"/> up to n (n defaults to <see cref="ModelMaxLength"/>).
    /// </summary>
    public int[] Encode(string text, int? maxLength = null)
    {
        int n = maxLength ?? ModelMaxLength;
        if (n < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), n, "must leave room for BOS and EOS (>= 2)");
        var ids = TokenIds(text);
        int keep = Math.Min(ids.Count, n - 2);
        var result = new int[n];
        result[0] = BosTokenId;
        for (int i = 0; i < keep; i++) result[i + 1] = ids[i];
        result[keep + 1] = EosTokenId;
        for (int i = keep + 2; i < n; i++) result[i] = PadTokenId;
        return result;
    }

    public string IdToToken(int id) =>
        _idToToken.TryGetValue(id, out var t) ? t : throw new ArgumentOutOfRangeException(nameof(id), id, "not a token id");

    public bool TryGetId(string token, out int id) =>
        _vocab.TryGetValue(token, out id) || TryGetAddedId(token, out id);

    private bool TryGetAddedId(string token, out int id)
    {
        foreach (var t in _rawAdded.Concat(_normalizedAdded))
            if (t.Content == token) { id = t.Id; return true; }
        id = -1;
        return false;
    }

    // ------------------------------------------------------------------ pipeline

    /// <summary>All token ids of <paramref name="text"/>, without BOS/EOS.</summary>
    private List<int> TokenIds(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        foreach (var (rawPiece, rawToken) in SplitOnAdded(ReplaceLoneSurrogates(text), _rawAdded))
        {
            if (rawToken != null) { ids.Add(rawToken.Id); continue; }
            foreach (var (piece, token) in SplitOnAdded(Normalize(rawPiece), _normalizedAdded))
            {
                if (token != null) { ids.Add(token.Id); continue; }
                foreach (var word in PreTokenize(piece)) ids.AddRange(Bpe(ByteLevel(word)));
            }
        }
        return ids;
    }

    /// <summary>
    /// Cuts <paramref name="text"/> at occurrences of added tokens, leftmost-longest and non-overlapping (tokenizers'
    /// AddedVocabulary uses an Aho-Corasick LeftmostLongest automaton). Yields text pieces (token null) and tokens.
    /// </summary>
    private static IEnumerable<(string Piece, AddedToken? Token)> SplitOnAdded(string text, List<AddedToken> tokens)
    {
        if (tokens.Count == 0) { if (text.Length > 0) yield return (text, null); yield break; }
        int start = 0, i = 0;
        while (i < text.Length)
        {
            AddedToken? best = null;
            foreach (var t in tokens)
                if ((best == null || t.Content.Length > best.Content.Length) && MatchesAt(text, i, t.Content))
                    best = t;
            if (best == null) { i++; continue; }
            if (i > start) yield return (text[start..i], null);
            yield return (string.Empty, best);
            i += best.Content.Length;
            start = i;
        }
        if (start < text.Length) yield return (text[start..], null);
    }

    /// <summary>
    /// The reference normaliser, <c>Sequence([NFC(), Replace(Regex(r"\s+"), " "), Lowercase()])</c>. Whitespace is
    /// Unicode White_Space (oniguruma's \s, and .NET's). Lowercase is per code point with the full, unconditional
    /// mapping (Rust's <c>char::to_lowercase</c>): only U+0130 differs from the simple mapping .NET applies.
    /// </summary>
    internal static string Normalize(string text)
    {
        string nfc = text.IsNormalized(NormalizationForm.FormC) ? text : text.Normalize(NormalizationForm.FormC);
        var sb = new StringBuilder(nfc.Length);
        bool inSpace = false;
        foreach (var r in nfc.EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(r))
            {
                if (!inSpace) sb.Append(' ');
                inSpace = true;
                continue;
            }
            inSpace = false;
            if (r.Value == 0x130) sb.Append("i\u0307"); // İ -> i + combining dot above (SpecialCasing.txt)
            else sb.Append(Rune.ToLowerInvariant(r).ToString());
        }
        return sb.ToString();
    }

    /// <summary>
    /// CLIP's split, <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
    /// keeping only the matches, written as a scanner over code points: .NET's Regex classifies UTF-16 units, so it
    /// would treat supplementary letters (CJK extension B, math alphanumerics) as symbols, unlike the reference.
    /// Alternatives are tried in order at each position, as a regex does (so "'sa" gives "'s", "a").
    /// </summary>
    internal static IEnumerable<string> PreTokenize(string text)
    {
        int i = 0;
        while (i < text.Length)
        {
            if (MatchesAt(text, i, DefaultBos) || MatchesAt(text, i, DefaultEos))
            {
                // Only reachable for a literal that was not cut out as an added token (e.g. "<|ENDOFTEXT|>" lowercased).
                // ByteLevel's own GPT-2 regex then splits it into "<|", the name and "|>"; on every other CLIP piece
                // that regex is the identity, so it is not run in general.
                int len = MatchesAt(text, i, DefaultBos) ? DefaultBos.Length : DefaultEos.Length;
                yield return "<|";
                yield return text.Substring(i + 2, len - 4);
                yield return "|>";
                i += len;
                continue;
            }
            if (text[i] == '\'')
            {
                int c = ContractionLength(text, i);
                if (c > 0) { yield return text.Substring(i, c); i += c; continue; }
            }
            var r = RuneAt(text, i);
            if (IsLetter(r))
            {
                int j = i + r.Utf16SequenceLength;
                while (j < text.Length && IsLetter(RuneAt(text, j))) j += RuneAt(text, j).Utf16SequenceLength;
                yield return text[i..j];
                i = j;
            }
            else if (IsNumber(r))
            {
                yield return text.Substring(i, r.Utf16SequenceLength); // one numeric code point per token
                i += r.Utf16SequenceLength;
            }
            else if (Rune.IsWhiteSpace(r))
            {
                i += r.Utf16SequenceLength; // whitespace separates words and is dropped
            }
            else
            {
                int j = i + r.Utf16SequenceLength;
                while (j < text.Length && IsSymbol(RuneAt(text, j))) j += RuneAt(text, j).Utf16SequenceLength;
                yield return text[i..j];
                i = j;
            }
        }
    }

    private static int ContractionLength(string text, int i)
    {
        // Same order as the regex alternation; the two-letter forms cannot collide with the one-letter ones.
        foreach (var suffix in Contractions)
            if (MatchesAt(text, i + 1, suffix)) return suffix.Length + 1;
        return 0;
    }

    private static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];

    private static bool MatchesAt(string text, int i, string s) =>
        i + s.Length <= text.Length && string.CompareOrdinal(text, i, s, 0, s.Length) == 0;

    private static Rune RuneAt(string text, int i) =>
        Rune.TryGetRuneAt(text, i, out var r) ? r : Rune.ReplacementChar;

    private static bool IsLetter(Rune r) => Rune.GetUnicodeCategory(r) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => true,
        _ => false,
    };

    private static bool IsNumber(Rune r) => Rune.GetUnicodeCategory(r) switch
    {
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
        _ => false,
    };

    private static bool IsSymbol(Rune r) => !IsLetter(r) && !IsNumber(r) && !Rune.IsWhiteSpace(r);

    /// <summary>Python/Rust strings cannot hold lone surrogates; map them to U+FFFD rather than fail in NFC.</summary>
    private static string ReplaceLoneSurrogates(string text)
    {
        StringBuilder? sb = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool pair = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            if (pair) { sb?.Append(c).Append(text[i + 1]); i++; continue; }
            if (char.IsSurrogate(c))
            {
                sb ??= new StringBuilder(text, 0, i, text.Length);
                sb.Append('\uFFFD');
            }
            else sb?.Append(c);
        }
        return sb?.ToString() ?? text;
    }

    // ------------------------------------------------------------------ byte level + BPE

    /// <summary>GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.</summary>
    private static readonly char[] ByteToChar = BuildByteToChar();

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF; // '!'..'~', '¡'..'¬', '®'..'ÿ'
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    private static string ByteLevel(string word)
    {
        var bytes = Encoding.UTF8.GetBytes(word);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>
    /// BPE of one byte-level word, as tokenizers' <c>Word::merge_all</c>: a min-heap of candidate pairs ordered by
    /// (merge rank, position); stale entries are skipped; each merge pushes the new pairs with its neighbours.
    /// The last symbol carries the end-of-word suffix before lookup.
    /// </summary>
    private int[] Bpe(string word)
    {
        if (_cache.TryGetValue(word, out var cached)) return cached;

        int n = word.Length; // byte-level symbols are all in the BMP: one char each
        var id = new int[n];
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            string sym = i == n - 1 ? word[i] + _endOfWordSuffix : word[i].ToString();
            id[i] = _vocab.TryGetValue(sym, out int v) ? v : UnkTokenId; // fuse_unk=False: one unk per symbol
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }

        var heap = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>();
        for (int i = 0; i + 1 < n; i++)
            if (_merges.TryGetValue(Key(id[i], id[i + 1]), out var m)) heap.Enqueue((i, m.NewId), (m.Rank, i));

        while (heap.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (!alive[pos] || next[pos] < 0) continue;
            int right = next[pos];
            // The pair at pos may have changed since it was queued: only merge if it still yields the same token.
            if (!_merges.TryGetValue(Key(id[pos], id[right]), out var cur) || cur.NewId != top.NewId) continue;

            id[pos] = cur.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;

            if (prev[pos] >= 0 && _merges.TryGetValue(Key(id[prev[pos]], id[pos]), out var left))
                heap.Enqueue((prev[pos], left.NewId), (left.Rank, prev[pos]));
            if (next[pos] >= 0 && _merges.TryGetValue(Key(id[pos], id[next[pos]]), out var after))
                heap.Enqueue((pos, after.NewId), (after.Rank, pos));
        }

        var result = new List<int>(n);
        for (int i = 0; i >= 0 && i < n; i = next[i]) result.Add(id[i]);
        var arr = result.ToArray();
        if (_cache.Count < CacheCapacity) _cache.TryAdd(word, arr);
        return arr;
    }

    // ------------------------------------------------------------------ loading

    /// <summary>
    /// Loads a tokenizer folder: <c>tokenizer.json</c> (HF fast layout, preferred when present, as transformers does)
    /// or <c>vocab.json</c> + <c>merges.txt</c>; special tokens and <c>model_max_length</c> from
    /// <c>tokenizer_config.json</c>, overridden by <c>special_tokens_map.json</c> (transformers' precedence).
    /// </summary>
    public static ClipTokenizer FromFolder(string dir)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"tokenizer folder '{dir}' does not exist");
        return FromFiles(name => File.Exists(Path.Combine(dir, name)) ? File.ReadAllBytes(Path.Combine(dir, name)) : null, dir);
    }

    /// <summary>
    /// <see cref="FromFolder"/> over any file store: <paramref name="readFile"/> returns a file's bytes by name
    /// (tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json) or null when absent.
    /// Used for the CLIP tokenizer files that ship inside the library for single-file checkpoints.
    /// </summary>
    public static ClipTokenizer FromFiles(Func<string, byte[]?> readFile, string dir)
    {
        ArgumentNullException.ThrowIfNull(readFile);
        bool Exists(string path) => readFile(Path.GetFileName(path)) is not null;
        JsonDocument ReadJson(string path)
        {
            try { return JsonDocument.Parse(readFile(Path.GetFileName(path))!); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: malformed JSON ({e.Message})", e); }
        }

        Dictionary<string, int> vocab;
        List<(string, string)> merges;
        string suffix = "</w>";
        var added = new List<(string Content, int? Id, bool Normalized)>();

        string tokenizerJson = Path.Combine(dir, "tokenizer.json");
        string vocabJson = Path.Combine(dir, "vocab.json");
        string mergesTxt = Path.Combine(dir, "merges.txt");
        if (Exists(tokenizerJson))
        {
            using var doc = ReadJson(tokenizerJson);
            var root = doc.RootElement;
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{tokenizerJson}: no 'model' object");
            if (model.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() != "BPE")
                throw new InvalidDataException($"{tokenizerJson}: model type '{type.GetString()}' is not BPE");
            if (!model.TryGetProperty("vocab", out var v)) throw new InvalidDataException($"{tokenizerJson}: no 'model.vocab'");
            vocab = ParseVocab(v, tokenizerJson + " model.vocab");
            merges = model.TryGetProperty("merges", out var m) ? ParseJsonMerges(m, tokenizerJson) : [];
            if (model.TryGetProperty("end_of_word_suffix", out var s) && s.ValueKind == JsonValueKind.String)
                suffix = s.GetString()!;
            if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
                foreach (var t in at.EnumerateArray())
                {
                    var content = t.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                    if (content == null) throw new InvalidDataException($"{tokenizerJson}: added token without 'content'");
                    int? id = t.TryGetProperty("id", out var i) && i.TryGetInt32(out int iv) ? iv : null;
                    added.Add((content, id, GetBool(t, "normalized") ?? false));
                }
        }
        else if (Exists(vocabJson))
        {
            if (!Exists(mergesTxt))
                throw new FileNotFoundException($"tokenizer folder '{dir}' has vocab.json but no merges.txt", mergesTxt);
            using (var doc = ReadJson(vocabJson)) vocab = ParseVocab(doc.RootElement, vocabJson);
            merges = ParseMergesTxt(mergesTxt, readFile("merges.txt")!);
        }
        else
        {
            throw new FileNotFoundException(
                $"tokenizer folder '{dir}' has no vocabulary (neither tokenizer.json nor vocab.json + merges.txt)", vocabJson);
        }

        // Special tokens: CLIPTokenizer's defaults, then tokenizer_config.json, then special_tokens_map.json.
        var specials = new Dictionary<string, SpecialSpec>
        {
            ["bos_token"] = new(DefaultBos, null), ["eos_token"] = new(DefaultEos, null),
            ["unk_token"] = new(DefaultEos, null), ["pad_token"] = new(DefaultEos, null),
        };
        int maxLength = DefaultModelMaxLength;
        string configPath = Path.Combine(dir, "tokenizer_config.json");
        if (Exists(configPath))
        {
            using var doc = ReadJson(configPath);
            var root = doc.RootElement;
            ReadSpecials(root, specials, configPath);
            if (root.TryGetProperty("model_max_length", out var mml) && mml.ValueKind == JsonValueKind.Number &&
                mml.TryGetDouble(out double d) && d >= 2 && d <= 1_000_000 && d == Math.Floor(d))
                maxLength = (int)d; // transformers writes 1e30 for "unset"; CLIP's position table is 77 long
            if (root.TryGetProperty("added_tokens_decoder", out var dec) && dec.ValueKind == JsonValueKind.Object)
                foreach (var p in dec.EnumerateObject())
                {
                    var content = TokenContent(p.Value, configPath);
                    if (content != null && int.TryParse(p.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                        added.Add((content, id, GetBool(p.Value, "normalized") ?? false));
                }
        }
        string mapPath = Path.Combine(dir, "special_tokens_map.json");
        if (Exists(mapPath))
        {
            using var doc = ReadJson(mapPath);
            ReadSpecials(doc.RootElement, specials, mapPath);
        }

        var source = $"tokenizer folder '{dir}'";
        return new ClipTokenizer(vocab, merges, suffix, added, specials["bos_token"], specials["eos_token"],
            specials["unk_token"], specials["pad_token"], maxLength, source);
    }

    private static Dictionary<string, int> ParseVocab(JsonElement v, string where)
    {
        if (v.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected an object token -> id");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            if (!p.Value.TryGetInt32(out int id) || id < 0)
                throw new InvalidDataException($"{where}: token '{p.Name}' has no valid id");
            vocab[p.Name] = id;
        }
        if (vocab.Count == 0) throw new InvalidDataException($"{where}: empty vocabulary");
        return vocab;
    }

    /// <summary>merges.txt as tokenizers reads it: a "#version" line is skipped, every other line is "left right".</summary>
    private static List<(string, string)> ParseMergesTxt(string path, byte[] bytes)
    {
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (var line in Encoding.UTF8.GetString(bytes).TrimStart('\uFEFF').Split('\n').Select(l => l.TrimEnd('\r')))
        {
            lineNo++;
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new InvalidDataException($"{path}: line {lineNo} is not a merge 'left right'");
            merges.Add((parts[0], parts[1]));
        }
        return merges;
    }

    /// <summary>tokenizer.json merges: "left right" strings (older files) or ["left", "right"] pairs (newer files).</summary>
    private static List<(string, string)> ParseJsonMerges(JsonElement m, string path)
    {
        if (m.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{path}: 'model.merges' is not an array");
        var merges = new List<(string, string)>(m.GetArrayLength());
        foreach (var e in m.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String)
            {
                var s = e.GetString()!;
                int sp = s.IndexOf(' ');
                if (sp <= 0 || sp == s.Length - 1 || s.IndexOf(' ', sp + 1) >= 0)
                    throw new InvalidDataException($"{path}: merge '{s}' is not 'left right'");
                merges.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2 &&
                     e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String)
            {
                merges.Add((e[0].GetString()!, e[1].GetString()!));
            }
            else throw new InvalidDataException($"{path}: merge entry {e.GetRawText()} is neither \"a b\" nor [a, b]");
        }
        return merges;
    }

    private static void ReadSpecials(JsonElement root, Dictionary<string, SpecialSpec> specials, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object");
        foreach (var key in specials.Keys.ToList())
        {
            // A null value keeps the default (e.g. a config that leaves pad_token unset pads with <|endoftext|>).
            if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null) continue;
            var content = TokenContent(value, path)
                ?? throw new InvalidDataException($"{path}: '{key}' is neither a string nor an object with 'content'");
            specials[key] = new SpecialSpec(content, value.ValueKind == JsonValueKind.Object ? GetBool(value, "normalized") : null);
        }
    }

    /// <summary>A token given as "text" or as {"content": "text", ...} (AddedToken serialisation).</summary>
    private static string? TokenContent(JsonElement e, string path) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Object => e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String
            ? c.GetString()
            : throw new InvalidDataException($"{path}: token object without a string 'content'"),
        _ => null,
    };

    private static bool? GetBool(JsonElement e, string name) =>
        e.TryGetProperty(name, out var b) && b.ValueKind is JsonValueKind.True or JsonValueKind.False ? b.GetBoolean() : null;
}
