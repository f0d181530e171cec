using SelfCascade.Data;
using SelfCascade.Evaluation;

namespace SelfCascade.Tests.Evaluation;

/// <summary>bench-quality's prompt choice: the test split's first N (unchanged), the train split's N spread over it, one per caption.</summary>
public sealed class QualityPromptSelectionTests
{
    private static List<DatasetEntry> Designs(Split split, params string[] captions) =>
        captions.Select((c, i) => new DatasetEntry($"set__d{i:D2}", "set", $"d{i:D2}", c, split, "CC0")).ToList();

    [Fact]
    public void TestSplitTakesTheFirstNByIdAsBefore()
    {
        var designs = Designs(Split.Test, "x", "x", "y", "z", "w");
        var prompts = QualityBenchmarkRunner.SelectPrompts(designs, Split.Test, 3);
        Assert.Equal(["set__d00", "set__d01", "set__d02"], prompts.Select(p => p.Id));
        Assert.Equal(["x", "x", "y"], prompts.Select(p => p.Caption));
        Assert.Equal([0L, 1, 2], prompts.Select(p => p.Seed));
        Assert.Equal(5, QualityBenchmarkRunner.SelectPrompts(designs, Split.Test, 99).Count);
    }

    [Fact]
    public void TrainSplitSpreadsOverTheSplitAndSkipsTakenCaptions()
    {
        // Starts 0, 2, 4: d00 "x"; d02 "x" taken, d03 "x" taken -> d04 "z"; d04 taken -> d05 "w".
        var designs = Designs(Split.Train, "x", "y", "x", "x", "z", "w");
        var prompts = QualityBenchmarkRunner.SelectPrompts(designs, Split.Train, 3);
        Assert.Equal(["set__d00", "set__d04", "set__d05"], prompts.Select(p => p.Id));
        Assert.Equal([0L, 1, 2], prompts.Select(p => p.Seed));
        // Evenly spread without collisions: design i * 8 / 4.
        var plain = Designs(Split.Train, "a", "b", "c", "d", "e", "f", "g", "h");
        Assert.Equal(["a", "c", "e", "g"], QualityBenchmarkRunner.SelectPrompts(plain, Split.Train, 4).Select(p => p.Caption));
    }

    [Fact]
    public void TrainSplitWrapsAroundAndStopsAtTheDistinctCaptions()
    {
        // Starts 0, 2, 4: d00 "a"; d02 "c"; d04 "c" taken, d05 "c" taken, wrap: d00 "a" taken -> d01 "b".
        var designs = Designs(Split.Train, "a", "b", "c", "c", "c", "c");
        Assert.Equal(["set__d00", "set__d02", "set__d01"], QualityBenchmarkRunner.SelectPrompts(designs, Split.Train, 3).Select(p => p.Id));
        // More prompts than captions: one per caption, each once.
        var all = QualityBenchmarkRunner.SelectPrompts(designs, Split.Train, 10);
        Assert.Equal(3, all.Count);
        Assert.Equal(["a", "b", "c"], all.Select(p => p.Caption).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ValidationSplitAndZeroPromptsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => QualityBenchmarkRunner.SelectPrompts(Designs(Split.Validation, "a"), Split.Validation, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => QualityBenchmarkRunner.SelectPrompts(Designs(Split.Train, "a"), Split.Train, 0));
    }

    [Fact]
    public void PromptsThatAreNoClassOfTheNetFailNamingTheFirst()
    {
        var prompts = new[] { new QualityPrompt("s__a", "apple", 0), new QualityPrompt("s__b", "bear", 1), new QualityPrompt("s__c", "cat", 2) };
        QualityBenchmarkRunner.RequirePromptClasses(prompts, ["apple", "bear", "cat", "dog"], "net.safetensors", "train");
        var e = Assert.Throws<InvalidDataException>(() => QualityBenchmarkRunner.RequirePromptClasses(prompts, ["apple", "dog"], "net.safetensors", "train"));
        Assert.Contains("'bear'", e.Message);
        Assert.Contains("net.safetensors", e.Message);
        Assert.Contains("--split train", e.Message);
    }
}
