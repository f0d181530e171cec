using SelfCascade.IO;
using SelfCascade.Models.Clip;

namespace SelfCascade.Checkpoints;

/// <summary>A diffusers folder as a component set: the files are read exactly as before (same resolution, same names).</summary>
public sealed class FolderComponents(DiffusersModelFolder folder) : IModelComponents
{
    private readonly List<ITensorSource> _open = [];

    public DiffusersModelFolder Folder { get; } = folder;
    public string Source => Folder.Root;
    public ModelFamily Family { get; } = folder.DetectFamily();
    public ConfigJson ModelIndex { get; } = ConfigJson.Load(Path.Combine(folder.Root, "model_index.json"));

    public static FolderComponents Open(string dir) => new(DiffusersModelFolder.Open(dir));

    public bool Has(string component) => Folder.Has(component);

    public ConfigJson Config(string component) =>
        Folder.ComponentConfig(component, component == "scheduler" ? "scheduler_config.json" : "config.json");

    public ClipTokenizer Tokenizer(string component) => ClipTokenizer.FromFolder(Folder.ComponentDir(component));

    public IReadOnlyList<ITensorSource> Weights(string component, string? variant = null)
    {
        var files = WeightLoader.ResolveWeightFiles(Folder.ComponentDir(component), variant);
        var sources = new List<ITensorSource>();
        foreach (var f in files)
        {
            var s = SafeTensorsFile.Open(f);
            sources.Add(s);
            _open.Add(s);
        }
        return sources;
    }

    public void Dispose()
    {
        foreach (var s in _open) s.Dispose();
        _open.Clear();
    }
}
