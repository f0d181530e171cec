using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Offload;

/// <summary>Where the networks' weights live between uses.</summary>
public enum OffloadMode
{
    /// <summary>Everything stays on the execution device.</summary>
    None,
    /// <summary>Each component (text encoders, UNet, VAE) is moved to the execution device only while it runs, back to
    /// the CPU after: peak = the largest component plus activations (diffusers' enable_model_cpu_offload).</summary>
    Model,
    /// <summary>Every leaf module (linear, conv, norm) is moved just before its forward and back right after: peak =
    /// one layer's weights plus activations, at the cost of a weight transfer per layer per step
    /// (diffusers' enable_sequential_cpu_offload).</summary>
    Sequential,
}

/// <summary>
/// Moves modules between the storage device (the CPU) and the execution device. <see cref="Use"/> brackets a
/// component's run (model offload); <see cref="AttachSequential"/> puts forward hooks on every leaf module that holds
/// weights (sequential offload; the hooks fire because the networks call their layers through <c>call</c>).
/// Counts every move so tests can see the mechanism run even where both devices are the CPU.
/// </summary>
public sealed class ModuleOffloader(OffloadMode mode, Device execution, Device? storage = null) : IDisposable
{
    private readonly List<Action> _removeHooks = [];

    public OffloadMode Mode { get; } = mode;
    public Device Execution { get; } = execution;
    public Device Storage { get; } = storage ?? torch.CPU;
    public int MovesToExecution { get; private set; }
    public int MovesToStorage { get; private set; }

    /// <summary>Model offload: the module on the execution device until the returned scope ends. A no-op otherwise.</summary>
    public IDisposable Use(nn.Module? module)
    {
        if (Mode != OffloadMode.Model || module is null) return NoOp.Instance;
        module.to(Execution);
        MovesToExecution++;
        return new Restore(() => { module.to(Storage); MovesToStorage++; });
    }

    /// <summary>Sequential offload: hooks on every leaf module of <paramref name="root"/> that has parameters.</summary>
    public int AttachSequential(nn.Module root)
    {
        if (Mode != OffloadMode.Sequential) return 0;
        int count = 0;
        foreach (var (_, module) in root.named_modules())
        {
            if (module.children().Any() || !module.parameters(recurse: false).Any()) continue;
            if (module is not nn.Module<Tensor, Tensor> leaf)
                throw new NotSupportedException($"sequential offload: leaf {module.GetName()} ({module.GetType().Name}) is not a tensor-to-tensor module");
            var pre = leaf.register_forward_pre_hook(m => { m.to(Execution); MovesToExecution++; });
            var post = leaf.register_forward_hook(m => { m.to(Storage); MovesToStorage++; });
            _removeHooks.Add(pre.remove);
            _removeHooks.Add(post.remove);
            count++;
        }
        return count;
    }

    public void Dispose()
    {
        foreach (var remove in _removeHooks) remove();
        _removeHooks.Clear();
    }

    private sealed class NoOp : IDisposable
    {
        public static readonly NoOp Instance = new();
        public void Dispose() { }
    }

    private sealed class Restore(Action action) : IDisposable
    {
        private Action? _action = action;
        public void Dispose() { _action?.Invoke(); _action = null; }
    }
}
