using System.Runtime.InteropServices;

namespace AttnDreamBooth.Cli;

/// <summary>
/// Stopping a long run: the first SIGINT (Ctrl-C) or SIGTERM (<c>kill</c>, a service manager, a container stop) cancels
/// the token (training finishes its step, checkpoints and stops; exit 130 after SIGINT, 143 after SIGTERM); a second one
/// says that a checkpoint being written is incomplete and terminates the process at once with the default signal action.
/// </summary>
/// <remarks>SIGTERM matters as much as Ctrl-C: a run started in the background (<c>nohup … &amp;</c>) ignores SIGINT,
/// so <c>kill</c> is how it is stopped, and without a handler .NET ends the process at once, losing every step since the
/// last periodic checkpoint.</remarks>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration _interrupt;
    private readonly PosixSignalRegistration _terminate;
    private int _count;
    private int _firstSignal;

    public Interruption()
    {
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            Interlocked.Exchange(ref _firstSignal, (int)context.Signal);
            context.Cancel = true;
            string again = context.Signal == PosixSignal.SIGINT ? "press Ctrl-C again" : "send the signal again";
            Console.Error.WriteLine($"Stopping after the current step and writing a checkpoint… ({again} to abort at once)");
            _cts.Cancel();
        }
        else
        {
            // Checkpoints are written to a temporary folder and renamed when complete, so one cut off here is never
            // taken for a checkpoint; the next start deletes it.
            Console.Error.WriteLine(AbortMessage);
            // Default action: the process ends now, killed by the signal.
            context.Cancel = false;
        }
    }

    /// <summary>What the second signal prints before the process ends.</summary>
    internal const string AbortMessage =
        "Aborted at once. A checkpoint that was being written is incomplete and will be ignored; --resume continues from the last complete checkpoint.";

    public CancellationToken Token => _cts.Token;

    /// <summary>The process's exit status for a run that ended with <paramref name="exitCode"/>: a cancelled run (130) that
    /// SIGTERM stopped reports 143 (128 + 15), as the shell does for a process the signal killed.</summary>
    public int ExitCode(int exitCode) =>
        exitCode == 130 && Volatile.Read(ref _firstSignal) == (int)PosixSignal.SIGTERM ? 143 : exitCode;

    public void Dispose()
    {
        _interrupt.Dispose();
        _terminate.Dispose();
        _cts.Dispose();
    }
}
