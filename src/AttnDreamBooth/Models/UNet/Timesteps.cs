using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.UNet;

/// <summary>
/// Sinusoidal timestep features (diffusers' <c>Timesteps</c>, the U-Net's <c>time_proj</c>; no parameters):
/// frequencies <c>f_i = exp(-ln(10000) * i / (half - freq_shift))</c>, features <c>[sin(t f), cos(t f)]</c>, or
/// <c>[cos, sin]</c> with <c>flip_sin_to_cos</c>; computed in float32.
/// </summary>
internal sealed class Timesteps : Module<Tensor, Tensor>
{
    private readonly int _channels;
    private readonly bool _flipSinToCos;
    private readonly double _freqShift;

    /// <summary>Creates the projection.</summary>
    public Timesteps(int channels, bool flipSinToCos, double freqShift) : base(nameof(Timesteps))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 2);
        _channels = channels;
        _flipSinToCos = flipSinToCos;
        _freqShift = freqShift;
        RegisterComponents();
    }

    /// <summary>Maps timesteps <c>[B]</c> (integer or float) to <c>[B, channels]</c> float32 features.</summary>
    public override Tensor forward(Tensor timesteps)
    {
        if (timesteps.dim() != 1) throw new ArgumentException($"Timesteps must be 1-D [B], got [{string.Join(", ", timesteps.shape)}].", nameof(timesteps));
        using var scope = NewDisposeScope();
        int half = _channels / 2;
        var exponent = arange(Kept(0), Kept(half), Kept(1), dtype: ScalarType.Float32, device: timesteps.device).mul(Kept(-Math.Log(10000.0))).div(Kept(half - _freqShift));
        var args = timesteps.unsqueeze(1).to_type(ScalarType.Float32).mul(exponent.exp().unsqueeze(0));
        var emb = _flipSinToCos ? cat([args.cos(), args.sin()], 1) : cat([args.sin(), args.cos()], 1);
        if (_channels % 2 == 1) emb = nn.functional.pad(emb, [0, 1, 0, 0]);
        return emb.MoveToOuterDisposeScope();
    }
}
