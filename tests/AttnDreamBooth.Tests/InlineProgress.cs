namespace AttnDreamBooth.Tests;

/// <summary>An <see cref="IProgress{T}"/> that runs <paramref name="report"/> synchronously on the reporting thread.
/// <see cref="Progress{T}"/> posts each report to the thread pool, so a test that cancels at a given step, or reads the
/// reports once the call has returned, would race with it.</summary>
public sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
