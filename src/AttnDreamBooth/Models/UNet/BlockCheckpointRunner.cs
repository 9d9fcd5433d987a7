using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Blocks;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.UNet;

/// <summary>
/// Runs U-Net blocks through <see cref="GradientCheckpoint"/> while keeping recorded attention maps differentiable.
/// A map recorded inside a block is captured instead of stored, returned as an extra output of the checkpointed
/// function (so its gradient reaches the block's recomputation) and then put into its store as that output. The
/// recomputation during backward records into a capture again, which is thrown away: the store gets no duplicates.
/// </summary>
internal sealed class BlockCheckpointRunner
{
    private readonly AttentionMapStore[] _stores;
    private readonly IAttentionMapRecorder[] _recorders;

    public BlockCheckpointRunner(IEnumerable<IAttentionMapRecorder> recorders)
    {
        var all = recorders.Distinct().ToArray();
        _stores = all.Select(r => r.Store).Distinct().ToArray();
        _recorders = all;
    }

    /// <summary>Runs <paramref name="body"/> checkpointed and returns its outputs (without the maps).</summary>
    public Tensor[] Run(Func<Tensor?[], Tensor[]> body, Tensor?[] inputs, IEnumerable<Tensor> parameters)
    {
        List<(AttentionMapStore Store, RecordedAttentionMap Map)>? firstPass = null;
        int bodyOutputs = 0;
        // The recomputation must record exactly what the forward pass recorded (its maps are outputs whose gradients
        // are waiting), even if the caller changed the recording settings in between.
        var recording = _stores.Select(s => s.IsRecording).ToArray();
        var states = _recorders.Select(r => r.SnapshotState()).ToArray();

        Tensor[] Function(Tensor?[] args)
        {
            var captures = new List<AttentionMapCapture>(_stores.Length);
            var currentRecording = _stores.Select(s => s.IsRecording).ToArray();
            var currentStates = _recorders.Select(r => r.SnapshotState()).ToArray();
            Tensor[] outputs;
            try
            {
                for (int i = 0; i < _stores.Length; i++) _stores[i].IsRecording = recording[i];
                for (int i = 0; i < _recorders.Length; i++) _recorders[i].RestoreState(states[i]);
                foreach (var store in _stores) captures.Add(store.BeginCapture());
                outputs = body(args);
            }
            catch
            {
                // Captured tensors are detached from every scope: nobody else will release them.
                foreach (var map in captures.SelectMany(c => c.Maps)) map.Probabilities.Dispose();
                throw;
            }
            finally
            {
                for (int c = captures.Count - 1; c >= 0; c--) captures[c].Dispose();
                for (int i = 0; i < _stores.Length; i++) _stores[i].IsRecording = currentRecording[i];
                for (int i = 0; i < _recorders.Length; i++) _recorders[i].RestoreState(currentStates[i]);
            }
            var maps = captures.SelectMany(c => c.Maps.Select(m => (c.Store, m))).ToList();
            if (firstPass is null)
            {
                firstPass = maps;
                bodyOutputs = outputs.Length;
            }
            return [.. outputs, .. maps.Select(m => m.m.Probabilities)];
        }

        var results = GradientCheckpoint.Run(Function, inputs, parameters);
        for (int j = 0; j < firstPass!.Count; j++)
        {
            var (store, map) = firstPass[j];
            store.Add(map with { Probabilities = results[bodyOutputs + j] });
        }
        return results[..bodyOutputs];
    }
}
