using SelfCascade.Cascade.Upsamplers;
using SelfCascade.IO;
using SelfCascade.Tests.Support;
using SelfCascade.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Training;

/// <summary>train-upsamplers (Algorithm 1) on the sd_tiny folder (VAE latent space).</summary>
[Collection(AloneCollection.Name)]
public sealed class UpsamplerTrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-uptrain-").FullName;
    private readonly string _data;
    private readonly string _model;

    public UpsamplerTrainingTests()
    {
        TorchSetup.Ensure();
        torch.set_num_threads(1);
        _data = Path.Combine(_dir, "data");
        SyntheticImages.Make(_data, 40, variants: 1);
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
    }

    public void Dispose()
    {
        torch.set_num_threads(2);
        Directory.Delete(_dir, true);
    }

    private UpsamplerTrainingOptions Up(UpsamplerVariant variant = UpsamplerVariant.Full) =>
        new() { ModelDir = _model, Variant = variant, Size = 32, MaxTimestep = 700 };

    private TrainingOptions Loop(string name, int steps, bool resume = false) => new()
    {
        OutputDir = Path.Combine(_dir, name), Steps = steps, BatchSize = 2, GradientAccumulation = 2, LearningRate = 1e-3,
        Seed = 3, CheckpointEvery = 2, Resume = resume,
    };

    [Fact]
    public void TwoStepsChangeOnlyTheUpsamplersAndSaveALoadableSet()
    {
        using var task = new UpsamplerTrainingTask(Up());
        Assert.Equal((32, 16), (task.HighResSize, task.LowResSize));
        var frozen = task.FrozenModules.SelectMany(m => m.named_parameters().Select(p => (m.GetName() + "." + p.name, p.parameter.detach().clone()))).ToList();
        Assert.True(frozen.Count > 100);
        var before = task.TrainableParameters.Select(p => p.Parameter.detach().clone()).ToList();
        var data = new ImageFolderDataset(_data, task.HighResSize);
        var result = new Trainer(task, data, Loop("two", 2)).Run();
        Assert.All(result.Losses, r => Assert.True(double.IsFinite(r.Loss) && r.Loss > 0));

        var after = task.FrozenModules.SelectMany(m => m.named_parameters().Select(p => (m.GetName() + "." + p.name, p.parameter))).ToList();
        foreach (var ((name, b), (_, a)) in frozen.Zip(after))
        {
            Assert.False(a.requires_grad, name);
            Assert.Null(a.grad);
            Parity.AssertEqual(a, b, "frozen " + name);
        }
        int changed = task.TrainableParameters.Zip(before).Count(x => !x.First.Parameter.eq(x.Second).all().item<bool>());
        Assert.True(changed > 0, "no upsampler parameter changed");
        // The zero-initialised gate received a gradient: the set no longer outputs zeros.
        Assert.Contains(task.TrainableParameters, p => p.Name.EndsWith("gate") && p.Parameter.abs().sum().item<float>() > 0);

        var saved = Path.Combine(_dir, "two", UpsamplerTrainingTask.UpsamplerFolder);
        using var loaded = FeatureUpsamplerSet.Load(saved, task.Pipeline.Unet);
        Assert.Equal(2, FeatureUpsamplerSet.ReadConfig(saved).TrainingSteps);
        foreach (var ((name, p), q) in task.TrainableParameters.Zip(loaded.parameters()))
            Parity.AssertEqual(q, p, "saved " + name);
    }

    [Fact]
    public void ResumedUpsamplerTrainingIsBitIdentical()
    {
        var data = new ImageFolderDataset(_data, 32);
        using (var a = new UpsamplerTrainingTask(Up(UpsamplerVariant.Lite), seed: 3)) new Trainer(a, data, Loop("a", 4)).Run();
        using (var b = new UpsamplerTrainingTask(Up(UpsamplerVariant.Lite), seed: 3)) new Trainer(b, data, Loop("b", 2)).Run();
        using (var b = new UpsamplerTrainingTask(Up(UpsamplerVariant.Lite), seed: 3)) new Trainer(b, data, Loop("b", 4, resume: true)).Run();
        using var ca = CheckpointStore.Open(Path.Combine(_dir, "a", "checkpoints", CheckpointStore.FolderName(4)));
        using var cb = CheckpointStore.Open(Path.Combine(_dir, "b", "checkpoints", CheckpointStore.FolderName(4)));
        foreach (var group in new[] { Trainer.TrainableGroup, Trainer.OptimizerGroup })
        {
            using var fa = SafeTensorsFile.Open(Path.Combine(ca.Directory, group + ".safetensors"));
            foreach (var name in fa.Entries.Keys)
            {
                using var ta = fa.Read(name);
                using var tb = cb.Reader(group)(name)!;
                Parity.AssertEqual(ta, tb, $"{group}/{name}");
            }
        }
    }
}
