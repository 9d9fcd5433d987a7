using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using TorchSharp;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// Where a pipeline's networks really got their weights: a diffusers folder, or an original-layout single file read
/// against a config folder. Training reloads exact float32 weights from here after holding frozen layers in half
/// precision or releasing the VAE or the text encoder — never from <see cref="StableDiffusionComponents.Folder"/>, which for a single file
/// holds configs only (or unrelated weights).
/// </summary>
internal sealed class ComponentWeightOrigin
{
    private readonly Func<string, (IStateDictSource Source, IDisposable Owner)> _open;

    private ComponentWeightOrigin(string description, Func<string, (IStateDictSource, IDisposable)> open)
    {
        Description = description;
        _open = open;
    }

    /// <summary>The folder or file, for messages.</summary>
    public string Description { get; }

    public static ComponentWeightOrigin FromFolder(DiffusersFolder folder) => new(folder.Root, component =>
    {
        var source = StateDictSource.OpenComponent(folder.ComponentPath(component));
        return (source, source);
    });

    public static ComponentWeightOrigin FromSingleFile(string path, SingleFileArchitecture architecture, SingleFileLoadOptions options)
    {
        // Reopening logs the skipped keys again; once at load time is enough.
        var quiet = options with { Logger = null };
        return new(path, component =>
        {
            var checkpoint = SingleFileCheckpoint.Open(path, architecture, quiet);
            try
            {
                return (checkpoint.OpenComponent(component), checkpoint);
            }
            catch
            {
                checkpoint.Dispose();
                throw;
            }
        });
    }

    /// <summary>Copies the exact stored values of <paramref name="names"/> into <paramref name="module"/>'s entries of the
    /// same name (converted to each entry's dtype and device).</summary>
    public void Restore(torch.nn.Module module, string component, IEnumerable<string> names)
    {
        var (source, owner) = _open(component);
        using (owner)
        {
            var live = module.state_dict();
            using var _ = torch.no_grad();
            foreach (string name in names)
            {
                var destination = live[name];
                using var value = source.Read(name, destination.dtype, destination.device);
                destination.copy_(value);
            }
        }
    }

    /// <summary>Checks, from the stored headers only, that <see cref="Load"/> would fill <paramref name="module"/> as it is now
    /// (keys and shapes), so weights are freed only when they can be given back.</summary>
    /// <exception cref="InvalidWeightsException">Missing, unexpected or mis-shaped keys.</exception>
    public void Validate(torch.nn.Module module, string component, StateDictLoadOptions? options = null)
    {
        var (source, owner) = _open(component);
        using (owner) StateDictLoader.Validate(module, source, options);
    }

    /// <summary>Loads a whole component strictly into <paramref name="module"/>.</summary>
    public void Load(torch.nn.Module module, string component, StateDictLoadOptions? options = null)
    {
        var (source, owner) = _open(component);
        using (owner) StateDictLoader.Load(module, source, options);
    }
}
