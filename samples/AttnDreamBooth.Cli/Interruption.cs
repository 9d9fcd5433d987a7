using System.Runtime.InteropServices;

namespace AttnDreamBooth.Cli;

/// <summary>
/// Ctrl-C for a long run: the first SIGINT cancels the token (training finishes its step, checkpoints and stops);
/// a second one says that a checkpoint being written is incomplete and terminates the process at once with the default
/// signal action (exit status 130).
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration _registration;
    private int _count;

    public Interruption()
    {
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            if (Interlocked.Increment(ref _count) == 1)
            {
                context.Cancel = true;
                Console.Error.WriteLine("Stopping after the current step and writing a checkpoint… (press Ctrl-C again to abort at once)");
                _cts.Cancel();
            }
            else
            {
                // Checkpoints are written to a temporary folder and renamed when complete, so one cut off here is never
                // taken for a checkpoint; the next start deletes it.
                Console.Error.WriteLine(AbortMessage);
                // Default action: the process ends now, killed by SIGINT.
                context.Cancel = false;
            }
        });
    }

    /// <summary>What the second Ctrl-C prints before the process ends.</summary>
    internal const string AbortMessage =
        "Aborted at once. A checkpoint that was being written is incomplete and will be ignored; --resume continues from the last complete checkpoint.";

    public CancellationToken Token => _cts.Token;

    public void Dispose()
    {
        _registration.Dispose();
        _cts.Dispose();
    }
}
