using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>
/// Named tensors that <see cref="StateDictLoader"/> can load into a module: a folder's safetensors files
/// (<see cref="StateDictSource"/>) or a renamed/reshaped view of another layout (e.g. a single-file checkpoint
/// component). Shapes and dtypes are known without reading data.
/// </summary>
internal interface IStateDictSource
{
    /// <summary>All tensor names.</summary>
    IEnumerable<string> Names { get; }

    /// <summary>The files behind this source (for error messages).</summary>
    IReadOnlyList<string> FilePaths { get; }

    /// <summary>Whether a tensor of that name exists.</summary>
    bool Contains(string name);

    /// <summary>The shape the tensor has when read.</summary>
    long[] ShapeOf(string name);

    /// <summary>The dtype the tensor has when read without conversion.</summary>
    torch.ScalarType ScalarTypeOf(string name);

    /// <summary>The file that holds a tensor.</summary>
    string FileOf(string name);

    /// <summary>Reads a tensor, optionally converting its dtype and placing it on a device.</summary>
    torch.Tensor Read(string name, torch.ScalarType? dtype = null, torch.Device? device = null);
}
